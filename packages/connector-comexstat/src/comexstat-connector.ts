import { type CacheEntry, ConfigError, InvalidKeyError, KeyPattern, type Level } from '@bgc/cache-core';
import { type AdmissionLimits, type BatchCell, CallBatcher } from './call-batcher.js';
import type { ComexStatClient } from './comexstat-client.js';
import {
  isFrozenYear,
  isOutdatedByRelease,
  isPublishedMonth,
  PAST_YEAR_TTL_MS,
  ttlForComexStat,
} from './comexstat-ttl.js';
import type {
  ComexStatFlow,
  ComexStatMonthRow,
  ComexStatMonthValue,
  ComexStatRelease,
} from './comexstat-types.js';
import { type ComexStatConnectorConfig, DEFAULT_CONNECTOR_CONFIG } from './connector-config.js';
import { CountryTable } from './country-table.js';
import { ReleaseTracker } from './release-tracker.js';
import type { SpacerPriority, SpacerRedis } from './request-spacer.js';
import { SharedMerge } from './shared-merge.js';
import { comexstatTags } from './comexstat-tags.js';

/** What a loader receives from {@link ComexStatCache.getOrLoad}. */
export interface ComexStatLoaderContext<T> {
  key: string;
  /** Aborted when the cache closes. */
  signal: AbortSignal;
  /** The entry being refreshed (eager refresh, expired or outdated), when one exists. */
  stale?: CacheEntry<T>;
  /** Tags of the entry the loader's value becomes (caches without tags leave it out). */
  setTags?(tags: readonly string[]): void;
}

/**
 * The part of `MultiLevelCache` (from `@bgc/cache-core`) the connector uses. Any object with
 * these methods works; a `MultiLevelCache` does.
 */
export interface ComexStatCache {
  /** Returns the cached value, or calls `loader` once (coalesced) and stores its result. */
  getOrLoad<T>(
    key: string,
    loader: (ctx: ComexStatLoaderContext<T>) => Promise<T>,
    opts?: {
      ttlMs?: number | ((value: T) => number);
      staleTtlMs?: number;
      endpoint?: string;
      /** Treat a fresh entry as stale (release-aware freshness); caches without it are covered by the connector. */
      isStale?: (entry: CacheEntry<T>) => boolean;
    },
  ): Promise<{ value: T; level: Level; stale: boolean }>;
  /** Writes many entries to every tier. */
  setMany(
    items: { key: string; value: unknown; ttlMs?: number; staleTtlMs?: number; tags?: readonly string[] }[],
  ): Promise<void>;
  /** Reads many keys; `value` is `undefined` on a miss. */
  getMany<T>(keys: string[]): Promise<{ value: T | undefined; level: Level }[]>;
}

/** One monthly cell to read. */
export interface ComexStatMonthQuery {
  flow: ComexStatFlow;
  /** Year, 1997 or later. */
  ano: number;
  /** Month, 1-12. */
  mes: number;
  /** 8-digit NCM, e.g. `'12019000'`. */
  ncm: string;
  /** 3-digit MDIC country code, e.g. `'160'` (China). */
  pais: string;
}

/** Options of one {@link ComexStatConnector.getMonth}. */
export interface GetMonthOptions {
  /**
   * Who asks (e.g. the client IP): its uncached queries count against `admission.clientBudget`.
   * Without it no per-client budget applies.
   */
  clientId?: string;
  /** Aborting withdraws the query from its pending call. */
  signal?: AbortSignal;
}

/** Result of {@link ComexStatConnector.getMonth}. */
export interface ComexStatMonthResult {
  /** The row of that cell; `[]` when there was no trade or the month is not published yet. */
  rows: ComexStatMonthRow[];
  /** `ok`, or `not_published` when the month was not released yet. */
  status: ComexStatMonthValue['status'];
  /** Where the value came from; `external` when an upstream call answered it. */
  level: Level;
  /** True when served past its freshness (expired, or fetched before a newer release) while a refresh runs. */
  stale: boolean;
  /** When the upstream call that produced it was sent, epoch ms. */
  fetchedAt: number;
}

/** A whole-year group to fetch in one call (warming). */
export interface ComexStatYearGroup {
  flow: ComexStatFlow;
  ano: number;
  /** Months (1-12) that must be covered; the call covers every published month of the year. */
  months: number[];
  ncms: string[];
  countries: string[];
}

/** Admission control of cold misses (every field optional). */
export interface ComexStatAdmissionOptions {
  /**
   * Longest a query with nothing cached waits for the upstream call that answers it, ms. A query
   * whose call is expected later is refused at once with `UpstreamBacklogError` (503 +
   * Retry-After); one whose call is late gets it when the bound passes, and the call goes on and
   * stores its answer (the retry is a hit). Give the cache a `hardTimeoutMs` above it.
   * @default 2 × rate_limit.min_interval + 10 s (50 s at 20 s)
   */
  maxWaitMs?: number;
  /** Most upstream calls queued (not sent) at once. @default 8 */
  maxPendingCalls?: number;
  /** Most cells waited for at once. @default 20000 */
  maxPendingCells?: number;
  /** Most cells one client (`clientId`) may wait for at once; 0 disables. @default 200 */
  clientBudget?: number;
  /** Upstream time assumed per call in wait estimates, ms. @default 10000 */
  callTimeMs?: number;
}

/** Options of {@link ComexStatConnector}. */
export interface ComexStatConnectorOptions {
  client: ComexStatClient;
  cache: ComexStatCache;
  /** @default DEFAULT_CONNECTOR_CONFIG */
  config?: ComexStatConnectorConfig;
  /** Clock, epoch ms. @default Date.now */
  now?: () => number;
  /** Failures that nobody awaits (background refreshes, side writes, metadata checks). */
  onError?: (error: unknown) => void;
  /**
   * Receives every row an upstream call returned (e.g. to fill the L3 aggregates table). Not
   * awaited by the request that caused the call; a rejection goes to `onError`.
   */
  onRows?: (rows: ComexStatMonthRow[]) => unknown;
  /**
   * Merges cold misses across instances: each instance records the cells it waits for in Redis,
   * and whichever instance's call goes first adds them to its query and stores them in the shared
   * cache; an instance whose cells were answered meanwhile gives its slot up. Pass the ioredis
   * client of L2 (any object with `eval`) and a key prefix outside the cache's `clear()` reach.
   */
  shared?: { redis: SpacerRedis; keyPrefix?: string };
  /** Admission control of cold misses. */
  admission?: ComexStatAdmissionOptions;
  /**
   * How long a new call waits for more misses to join it before asking the spacer for its slot,
   * ms (a burst arriving over a few ms, or across instances, becomes one call). @default 50
   */
  gatherMs?: number;
  /**
   * Longest a new call keeps gathering while misses keep joining it (each period of `gatherMs`
   * that added a cell extends it), ms: a burst parsed over hundreds of ms becomes one call. A lone
   * miss waits `gatherMs` only. @default 2500
   */
  gatherMaxMs?: number;
  /**
   * With `shared`: how often an instance whose call is queued checks whether another instance's
   * call answered its waiters (one read per queued call, not per key), ms. Answered waiters are
   * resolved at once and a call left with none gives its slot up. @default 500
   */
  sharedCheckMs?: number;
}

/** Counters of a connector. */
export interface ComexStatConnectorStats {
  /** `POST /general` calls started. */
  generalCalls: number;
  /** Misses served by a call that another miss (or warming) had already scheduled. */
  mergedMisses: number;
  /** Entries written with `setMany` by fan-out. */
  keysStored: number;
  /** Rows whose country name is not one of the call's countries (their cells are not cached). */
  unmappedRows: number;
  /** Misses answered "not yet published" without an upstream call. */
  notPublished: number;
  /** Queries refused or timed out with `UpstreamBacklogError`. */
  backlogRefused: number;
  /** Queries refused with `ClientBudgetError`. */
  budgetRefused: number;
  /** Calls whose slot was given up because another instance answered every waiter. */
  slotsGivenUp: number;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * Reads ComexStat monthly cells through the cache with as few upstream calls as possible. A façade
 * over four parts, each readable alone: the {@link ReleaseTracker} and the {@link CountryTable}
 * (metadata, background only: no request waits for them), the {@link CallBatcher} (merging, admission
 * control, the shared merge across instances) and the pure `fanOutRows`.
 */
export class ComexStatConnector {
  /** The effective configuration. */
  readonly config: ComexStatConnectorConfig;
  /** Counters since construction. */
  readonly stats: ComexStatConnectorStats = {
    generalCalls: 0,
    mergedMisses: 0,
    keysStored: 0,
    unmappedRows: 0,
    notPublished: 0,
    backlogRefused: 0,
    budgetRefused: 0,
    slotsGivenUp: 0,
  };
  /** The client (its `stats.byKind` counts every upstream attempt by kind). */
  readonly client: ComexStatClient;
  /** The cache. */
  readonly cache: ComexStatCache;
  /** The release tracker (background `/general/dates/updated`). */
  readonly releases: ReleaseTracker;
  /** The countries table (bundled snapshot, shared copy, background refresh). */
  readonly countries: CountryTable;
  /** The admission bounds in force. */
  readonly admission: Readonly<AdmissionLimits>;
  private readonly batcher: CallBatcher;
  private readonly exportKeys: KeyPattern;
  private readonly importKeys: KeyPattern;
  private readonly metaPrefix: string;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly refreshing = new Map<string, Promise<unknown>>();
  /** Reads started and not yet at their loader nor answered: start time (performance.now()) by id. */
  private readonly approaching = new Map<number, number>();
  private nextRead = 0;
  private closed = false;

  constructor(options: ComexStatConnectorOptions) {
    this.client = options.client;
    this.cache = options.cache;
    this.config = options.config ?? DEFAULT_CONNECTOR_CONFIG;
    this.exportKeys = new KeyPattern(this.config.cache.keyPattern);
    this.importKeys = new KeyPattern(this.config.cache.importKeyPattern);
    this.metaPrefix = `${this.config.cache.keyPattern.split(':')[0] || 'comexstat'}:meta:`;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => {});
    const interval = this.client.spacer?.minIntervalMs ?? this.config.rateLimit.minIntervalMs;
    const a = options.admission ?? {};
    this.admission = Object.freeze({
      maxWaitMs: limit('admission.maxWaitMs', a.maxWaitMs, 2 * interval + 10_000),
      maxPendingCalls: limit('admission.maxPendingCalls', a.maxPendingCalls, 8),
      maxPendingCells: limit('admission.maxPendingCells', a.maxPendingCells, 20_000),
      clientBudget: limit('admission.clientBudget', a.clientBudget, 200, true),
      callTimeMs: limit('admission.callTimeMs', a.callTimeMs, 10_000, true),
    });
    const shared = options.shared
      ? new SharedMerge(options.shared.redis, options.shared.keyPrefix ?? `${this.metaPrefix}pending:`)
      : undefined;
    const claim = shared ? (name: string, ttlMs: number) => shared.claim(name, ttlMs) : undefined;
    this.releases = new ReleaseTracker({
      claim,
      client: this.client,
      cache: this.cache,
      key: `${this.metaPrefix}dates-updated`,
      intervalMs: this.config.releaseAware.checkIntervalMs,
      staleTtlMs: this.config.cache.staleTtlMs,
      enabled: this.config.releaseAware.enabled,
      // Two spacer intervals: the first cold misses of a new deployment and the call after them
      // go first (metadata never takes a free slot just before them).
      firstCheckAfterMs: 2 * interval,
      now: this.now,
      onError: this.onError,
    });
    this.countries = new CountryTable({
      claim,
      client: this.client,
      cache: this.cache,
      key: `${this.metaPrefix}countries:pt`,
      staleTtlMs: this.config.cache.staleTtlMs,
      now: this.now,
      onError: this.onError,
    });
    const onRows = options.onRows;
    this.batcher = new CallBatcher({
      client: this.client,
      countries: this.countries,
      shared,
      limits: this.admission,
      gatherMs: limit('gatherMs', options.gatherMs, 50, true),
      gatherMaxMs: limit('gatherMaxMs', options.gatherMaxMs, 2500, true),
      sharedCheckMs: limit('sharedCheckMs', options.sharedCheckMs, 500),
      approaching: (olderThanMs) => {
        const before = performance.now() - olderThanMs;
        let n = 0;
        for (const at of this.approaching.values()) if (at <= before) n++;
        return n;
      },
      maxCellsPerCall: this.config.api.maxCellsPerCall,
      fanOut: {
        enabled: this.config.fanOut.enabled,
        wholeYear: this.config.fanOut.wholeYear,
        allCountries: this.config.fanOut.allCountries,
        topNcms: this.config.fanOut.topLists ? this.config.warming.topNcms : [],
        topCountries: this.config.fanOut.topLists ? this.config.warming.topCountries : [],
      },
      release: () => this.releases.current,
      now: this.now,
      keyFor: (c) => this.keyFor(c),
      read: async (keys) => (await this.cache.getMany<ComexStatMonthValue>(keys)).map((r) => r.value),
      store: (cells) =>
        this.cache.setMany(cells.map((c) => this.item(c.key, c.ano, c.mes, c.value, comexstatTags(c)))),
      // Its promise (if any) goes to the batcher, which reports a rejection through onError.
      onRows: onRows ? (rows) => onRows(rows) : undefined,
      onError: this.onError,
      stats: this.stats,
    });
  }

  /** The cache key of a cell, from the configured key patterns. */
  keyFor(q: ComexStatMonthQuery): string {
    const pattern = q.flow === 'export' ? this.exportKeys : this.importKeys;
    return pattern.build({
      ano: q.ano,
      mes: pad2(q.mes),
      ncm: q.ncm,
      pais: q.pais,
      flow: q.flow === 'export' ? 'exp' : 'imp',
    });
  }

  /** The latest release known (never waits; `undefined` until the background check answers). */
  get release(): ComexStatRelease | undefined {
    return this.releases.current;
  }

  /** Cells waited for by queries (every client). */
  get pendingCells(): number {
    return this.batcher.pendingCells;
  }

  /** Upstream calls queued or on the wire. */
  get pendingCalls(): number {
    return this.batcher.pendingCalls;
  }

  /**
   * Starts the background metadata work (release check, countries table) without waiting for it.
   * `getMonth` does the same on every call; call this at start-up to have it early.
   */
  start(): void {
    this.releases.poke();
    this.countries.poke();
  }

  /**
   * Reads one (flow, year, month, NCM, country) cell: from the cache, else from a merged upstream
   * call that also fills its siblings. Never waits for metadata.
   * @throws {InvalidKeyError} when the query is malformed (codes not zero-padded, month out of range...)
   * @throws {UpstreamBacklogError} (`E_UPSTREAM_BACKLOG`, `retryAfterMs`) when its call is not due within the wait bound
   * @throws {ClientBudgetError} (`E_CLIENT_BUDGET`, `retryAfterMs`) when `clientId` waits for too many cells
   * @throws {ComexStatApiError} when the upstream fails and nothing servable is cached
   */
  async getMonth(q: ComexStatMonthQuery, options: GetMonthOptions = {}): Promise<ComexStatMonthResult> {
    validateQuery(q);
    const key = this.keyFor(q);
    this.start();
    if (!this.config.cache.enabled) {
      const value = await this.want(q, key, { loader: false, priority: 'user', admit: true, ...options });
      return {
        rows: value.rows,
        status: value.status,
        level: 'external',
        stale: false,
        fetchedAt: value.fetchedAt,
      };
    }
    const release = this.releases.current;
    // Until it reaches its loader (or is answered), this read may still become a miss: a call
    // gathering misses waits for such reads (see CallBatcher, `approaching`).
    const id = this.nextRead++;
    this.approaching.set(id, performance.now());
    const arrived = () => this.approaching.delete(id);
    let res: Awaited<ReturnType<ComexStatCache['getOrLoad']>> & { value: ComexStatMonthValue };
    try {
      res = await this.cache.getOrLoad<ComexStatMonthValue>(
        key,
        (ctx) => {
          arrived();
          // Tagged by flow, year, NCM and country (deleteByTag/expireByTag), on loads only.
          ctx.setTags?.(comexstatTags(q));
          return this.want(q, key, {
            loader: true,
            // A load with a servable entry (eager refresh, outdated by a release) is a refresh.
            priority: ctx.stale ? 'refresh' : 'user',
            admit: !ctx.stale,
            clientId: options.clientId,
            signal: mergeSignals(ctx.signal, options.signal),
          });
        },
        {
          ttlMs: (v) => this.ttlFor(q.ano, q.mes, v),
          staleTtlMs: this.config.cache.staleTtlMs,
          endpoint: q.flow === 'export' ? 'exportacao_mes' : 'importacao_mes',
          isStale: (entry) => release !== undefined && this.outdated(q, entry.value, release),
        },
      );
    } finally {
      arrived();
    }
    let { value, level, stale } = res;
    const now = this.releases.current;
    if (level !== 'external' && now) {
      if (value.status === 'not_published' && isPublishedMonth(q.ano, q.mes, now)) {
        // Released since we cached "not yet": the old answer is wrong, not merely old.
        value = await this.refresh(q, key, 'user', options);
        level = 'external';
        stale = false;
      } else if (!stale && this.outdated(q, value, now)) {
        // A cache without isStale (or a release learnt since) returned it as fresh: serve it stale, refresh.
        stale = true;
        void this.refresh(q, key, 'refresh', {}).catch(this.onError);
      }
    }
    return { rows: value.rows, status: value.status, level, stale, fetchedAt: value.fetchedAt };
  }

  /**
   * Fetches a whole year of a flow for the given NCMs and countries (merged with pending misses of
   * that flow, split to stay under the row bound) at the spacer's `warming` priority and stores
   * every cell. Resolves how many keys were written.
   */
  async fetchYear(group: ComexStatYearGroup, priority: SpacerPriority = 'warming'): Promise<number> {
    // A job, not a request: it may wait for the release (to skip unpublished months).
    const release = await this.releaseInfo();
    const published = group.months.filter((m) => !release || isPublishedMonth(group.ano, m, release));
    const unpublished = group.months.filter((m) => !published.includes(m));
    let stored = 0;
    if (unpublished.length > 0) {
      const items = [];
      for (const mes of unpublished) {
        for (const ncm of group.ncms) {
          for (const pais of group.countries) {
            const value: ComexStatMonthValue = { status: 'not_published', rows: [], fetchedAt: this.now() };
            items.push(
              this.item(
                this.keyFor({ flow: group.flow, ano: group.ano, mes, ncm, pais }),
                group.ano,
                mes,
                value,
                comexstatTags({ flow: group.flow, ano: group.ano, ncm, pais }),
              ),
            );
          }
        }
      }
      await this.cache.setMany(items);
      this.stats.keysStored += items.length;
      stored += items.length;
    }
    if (published.length === 0) return stored;
    const cells: BatchCell[] = [];
    for (const mes of published) {
      for (const ncm of group.ncms) {
        for (const pais of group.countries) {
          const c = { flow: group.flow, ano: group.ano, mes, ncm, pais };
          cells.push({ ...c, key: this.keyFor(c) });
        }
      }
    }
    return stored + (await this.batcher.fetchGroup(cells, priority));
  }

  /**
   * The latest release, checking now when it is unknown or due (for jobs: warming, demos; requests
   * never wait for it). `undefined` when release awareness is off or it cannot be read.
   */
  async releaseInfo(): Promise<ComexStatRelease | undefined> {
    this.releases.poke();
    await this.releases.settled();
    return this.releases.current ?? this.releases.check();
  }

  /** Resolves when every scheduled call, background refresh and metadata check has settled. */
  async drain(): Promise<void> {
    for (;;) {
      const pending = [
        ...this.batcher.settling(),
        ...this.refreshing.values(),
        this.releases.settled(),
        this.countries.settled(),
      ];
      await Promise.allSettled(pending);
      if (this.batcher.settling().length === 0 && this.refreshing.size === 0) return;
    }
  }

  /**
   * Shutdown: rejects the queries whose call was not sent yet (`E_SHUTTING_DOWN`; another
   * instance answers their retry) and withdraws those calls from the spacer; calls on the wire
   * finish. Then resolves when everything settled. Later `getMonth` misses reject at once.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.batcher.close();
    await this.drain();
  }

  /** Whether {@link close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** TTL of a stored value, ms: see the README's policy table. */
  ttlFor(ano: number, mes: number, value: ComexStatMonthValue): number {
    if (value.status === 'not_published') return this.config.releaseAware.checkIntervalMs;
    const release = this.releases.current;
    if (this.config.releaseAware.enabled && release && isFrozenYear(ano, release))
      return this.config.cache.frozenTtlMs;
    const ttl = ttlForComexStat(ano, mes, new Date(this.now()));
    return ttl === PAST_YEAR_TTL_MS ? this.config.cache.ttlMs : ttl;
  }

  private outdated(q: ComexStatMonthQuery, value: ComexStatMonthValue, release: ComexStatRelease): boolean {
    if (value.status === 'not_published') return isPublishedMonth(q.ano, q.mes, release);
    return isOutdatedByRelease(q.ano, value.fetchedAt, release);
  }

  private refresh(
    q: ComexStatMonthQuery,
    key: string,
    priority: SpacerPriority,
    options: GetMonthOptions,
  ): Promise<ComexStatMonthValue> {
    const running = this.refreshing.get(key) as Promise<ComexStatMonthValue> | undefined;
    if (running) return running;
    const p = this.want(q, key, { loader: false, priority, admit: priority === 'user', ...options }).finally(
      () => this.refreshing.delete(key),
    );
    this.refreshing.set(key, p);
    return p;
  }

  private want(
    q: ComexStatMonthQuery,
    key: string,
    options: {
      loader: boolean;
      priority: SpacerPriority;
      admit: boolean;
      clientId?: string;
      signal?: AbortSignal;
    },
  ): Promise<ComexStatMonthValue> {
    const release = this.releases.current;
    if (release && !isPublishedMonth(q.ano, q.mes, release)) {
      this.stats.notPublished++;
      return Promise.resolve({ status: 'not_published', rows: [], fetchedAt: this.now() });
    }
    return this.batcher.want(
      { flow: q.flow, ano: q.ano, mes: q.mes, ncm: q.ncm, pais: q.pais, key },
      { ...options, loader: options.loader && this.config.cache.enabled },
    );
  }

  private item(key: string, ano: number, mes: number, value: ComexStatMonthValue, tags: readonly string[]) {
    return {
      key,
      value,
      ttlMs: this.ttlFor(ano, mes, value),
      staleTtlMs: this.config.cache.staleTtlMs,
      tags,
    };
  }
}

function limit(name: string, value: number | undefined, fallback: number, zeroOk = false): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < (zeroOk ? 0 : 1)) {
    throw new ConfigError(
      name,
      `expected an integer ${zeroOk ? '>= 0' : '>= 1'}, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function mergeSignals(a: AbortSignal | undefined, b: AbortSignal | undefined): AbortSignal | undefined {
  if (!a) return b;
  if (!b) return a;
  return AbortSignal.any([a, b]);
}

function validateQuery(q: ComexStatMonthQuery): void {
  const shown = JSON.stringify(q);
  if (q.flow !== 'export' && q.flow !== 'import')
    throw new InvalidKeyError(shown, 'flow must be "export" or "import"');
  if (!Number.isInteger(q.ano) || q.ano < 1997 || q.ano > 9999) {
    throw new InvalidKeyError(
      shown,
      'ano must be a year from 1997 (earlier data is in /historical-data, not supported)',
    );
  }
  if (!Number.isInteger(q.mes) || q.mes < 1 || q.mes > 12)
    throw new InvalidKeyError(shown, 'mes must be an integer from 1 to 12');
  if (typeof q.ncm !== 'string' || !/^\d{8}$/.test(q.ncm)) {
    throw new InvalidKeyError(
      shown,
      'ncm must be an 8-digit string, zero-padded (e.g. "09011110"); the API ignores numbers',
    );
  }
  if (typeof q.pais !== 'string' || !/^\d{3}$/.test(q.pais)) {
    throw new InvalidKeyError(
      shown,
      'pais must be a 3-digit MDIC code string, zero-padded (e.g. "063" for Argentina)',
    );
  }
}
