import { type CacheEntry, InvalidKeyError, KeyPattern, type Level } from '@bgc/cache-core';
import type { ComexStatClient } from './comexstat-client.js';
import {
  isFrozenYear,
  isOutdatedByRelease,
  isPublishedMonth,
  PAST_YEAR_TTL_MS,
  ttlForComexStat,
} from './comexstat-ttl.js';
import type {
  ComexStatCountry,
  ComexStatFlow,
  ComexStatMonthRow,
  ComexStatMonthValue,
  ComexStatRelease,
  GeneralQuery,
  GeneralRow,
} from './comexstat-types.js';
import { type ComexStatConnectorConfig, DEFAULT_CONNECTOR_CONFIG } from './connector-config.js';
import type { SpacerRedis } from './request-spacer.js';

/**
 * The part of `MultiLevelCache` (from `@bgc/cache-core`) the connector uses. Any object with
 * these methods works; a `MultiLevelCache` does.
 */
export interface ComexStatCache {
  /** Returns the cached value, or calls `loader` once (coalesced) and stores its result. */
  getOrLoad<T>(
    key: string,
    loader: (ctx: { key: string; signal: AbortSignal }) => Promise<T>,
    opts?: {
      ttlMs?: number | ((value: T) => number);
      staleTtlMs?: number;
      endpoint?: string;
      /** Treat a fresh entry as stale (release-aware freshness); caches without it are covered by the connector. */
      isStale?: (entry: CacheEntry<T>) => boolean;
    },
  ): Promise<{ value: T; level: Level; stale: boolean }>;
  /** Writes many entries to every tier. */
  setMany(items: { key: string; value: unknown; ttlMs?: number; staleTtlMs?: number }[]): Promise<void>;
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
  /** When the upstream produced it, epoch ms. */
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

/** Options of {@link ComexStatConnector}. */
export interface ComexStatConnectorOptions {
  client: ComexStatClient;
  cache: ComexStatCache;
  /** @default DEFAULT_CONNECTOR_CONFIG */
  config?: ComexStatConnectorConfig;
  /** Clock, epoch ms. @default Date.now */
  now?: () => number;
  /** Failures that nobody awaits (background refreshes, side writes, release checks). */
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
   * client of L2 (any object with `eval`).
   */
  shared?: { redis: SpacerRedis; keyPrefix?: string };
}

/** Counters of a connector. */
export interface ComexStatConnectorStats {
  /** `POST /general` calls started. */
  generalCalls: number;
  /** Misses served by a call that another miss (or warming) had already scheduled. */
  mergedMisses: number;
  /** Entries written with `setMany` by fan-out. */
  keysStored: number;
  /** Rows whose country name is not in the countries table (dropped). */
  unmappedRows: number;
  /** Misses answered "not yet published" without an upstream call. */
  notPublished: number;
}

interface Waiter {
  key: string;
  /** Loader waiters are stored by the cache itself; others are written by the batch. */
  loader: boolean;
  resolve(value: ComexStatMonthValue): void;
  reject(error: unknown): void;
}

interface BatchAddition {
  months: number[];
  ncms: string[];
  countries: string[];
  fanOut: boolean;
}

interface Batch {
  flow: ComexStatFlow;
  ano: number;
  months: Set<number>;
  ncms: Set<string>;
  countries: Set<string>;
  fanOut: boolean;
  waiters: Waiter[];
  sealed?: { months: number[]; ncms: Set<string>; countries: Set<string> };
  results?: Map<string, ComexStatMonthValue>;
  /** Month of each result key. */
  resultMonths?: Map<string, number>;
  /** Set when the call failed for good. */
  error?: unknown;
  done: Promise<void>;
}

const META_COUNTRIES_TTL_MS = 7 * 24 * 3_600_000;
/** How long cells other instances wait for stay in Redis if nobody drains them. */
const PENDING_TTL_MS = 60_000;
const ADD_PENDING = `redis.call('SADD', KEYS[1], unpack(ARGV, 2)); redis.call('PEXPIRE', KEYS[1], ARGV[1]); return 1`;
const DRAIN_PENDING = `local m = redis.call('SMEMBERS', KEYS[1]); redis.call('DEL', KEYS[1]); return m`;
const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * Reads ComexStat monthly cells through the cache with as few upstream calls as possible:
 * - **coalescing**: misses of the same flow and year waiting behind the spacer are merged into the
 *   next call (union of months, NCMs and countries);
 * - **fan-out**: every (month, NCM, country) the call covered is stored under its own key, with
 *   `rows: []` for combinations without trade (negative caching); rows carry country names, mapped
 *   back to codes through the (cached) countries table;
 * - **release awareness**: months not yet published are answered "not_published" without a call and
 *   cached until the next release check; values fetched before a release that revised them are
 *   served stale while refreshed.
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
  };
  /** The client (its `stats.requests` counts every upstream attempt). */
  readonly client: ComexStatClient;
  /** The cache. */
  readonly cache: ComexStatCache;
  private readonly exportKeys: KeyPattern;
  private readonly importKeys: KeyPattern;
  private readonly metaPrefix: string;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly onRows: ((rows: ComexStatMonthRow[]) => unknown) | undefined;
  private readonly shared: { redis: SpacerRedis; keyPrefix: string } | undefined;
  private readonly open = new Map<string, Batch>();
  private readonly inflight = new Set<Batch>();
  /** Every batch not settled yet (open, full and waiting, or on the wire). */
  private readonly pending = new Set<Batch>();
  private readonly refreshing = new Map<string, Promise<unknown>>();
  private release: { value: ComexStatRelease | undefined; checkedAt: number } | undefined;
  private releasePending: Promise<ComexStatRelease | undefined> | undefined;
  private countryMap: { source: unknown; map: Map<string, string> } | undefined;

  constructor(options: ComexStatConnectorOptions) {
    this.client = options.client;
    this.cache = options.cache;
    this.config = options.config ?? DEFAULT_CONNECTOR_CONFIG;
    this.exportKeys = new KeyPattern(this.config.cache.keyPattern);
    this.importKeys = new KeyPattern(this.config.cache.importKeyPattern);
    this.metaPrefix = `${this.config.cache.keyPattern.split(':')[0] || 'comexstat'}:meta:`;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => {});
    this.onRows = options.onRows;
    this.shared = options.shared
      ? { redis: options.shared.redis, keyPrefix: options.shared.keyPrefix ?? `${this.metaPrefix}pending:` }
      : undefined;
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

  /**
   * Reads one (flow, year, month, NCM, country) cell: from the cache, else from a coalesced upstream
   * call that also fills its siblings.
   * @throws {InvalidKeyError} when the query is malformed (codes not zero-padded, month out of range...)
   * @throws {ComexStatApiError} when the upstream fails and nothing servable is cached
   */
  async getMonth(q: ComexStatMonthQuery): Promise<ComexStatMonthResult> {
    validateQuery(q);
    const key = this.keyFor(q);
    if (!this.config.cache.enabled) {
      const value = await this.want(q, key, false);
      return {
        rows: value.rows,
        status: value.status,
        level: 'external',
        stale: false,
        fetchedAt: value.fetchedAt,
      };
    }
    // Read the release first (memoized) so that isStale below judges entries against it.
    const release = await this.releaseInfo();
    const res = await this.cache.getOrLoad<ComexStatMonthValue>(key, () => this.want(q, key, true), {
      ttlMs: (v) => this.ttlFor(q.ano, q.mes, v),
      staleTtlMs: this.config.cache.staleTtlMs,
      endpoint: q.flow === 'export' ? 'exportacao_mes' : 'importacao_mes',
      isStale: (entry) => release !== undefined && this.outdated(q, entry.value, release),
    });
    let { value, level, stale } = res;
    if (level !== 'external' && release) {
      if (value.status === 'not_published' && isPublishedMonth(q.ano, q.mes, release)) {
        // Released since we cached "not yet": the old answer is wrong, not merely old.
        value = await this.refresh(q, key);
        level = 'external';
        stale = false;
      } else if (!stale && this.outdated(q, value, release)) {
        // A cache without isStale returned it as fresh: serve it stale and refresh here.
        stale = true;
        void this.refresh(q, key).catch(this.onError);
      }
    }
    return { rows: value.rows, status: value.status, level, stale, fetchedAt: value.fetchedAt };
  }

  /**
   * Fetches a whole year of a flow for the given NCMs and countries in one upstream call (merged
   * with any pending misses of that flow and year) and stores every cell. Used by warming.
   * Resolves how many keys were written.
   */
  async fetchYear(group: ComexStatYearGroup): Promise<number> {
    const release = await this.releaseInfo();
    const published = group.months.filter((m) => !release || isPublishedMonth(group.ano, m, release));
    if (published.length === 0) {
      const items = [];
      for (const mes of group.months) {
        for (const ncm of group.ncms) {
          for (const pais of group.countries) {
            const value: ComexStatMonthValue = { status: 'not_published', rows: [], fetchedAt: this.now() };
            items.push(
              this.item(
                this.keyFor({ flow: group.flow, ano: group.ano, mes, ncm, pais }),
                group.ano,
                mes,
                value,
              ),
            );
          }
        }
      }
      await this.cache.setMany(items);
      this.stats.keysStored += items.length;
      return items.length;
    }
    // Keep each call under the API's size limit: split the NCMs when the group alone is too big.
    const perNcm =
      12 *
      (group.countries.length + (this.config.fanOut.topLists ? this.config.warming.topCountries.length : 0));
    const chunk = Math.max(1, Math.floor(this.config.api.maxCellsPerCall / Math.max(1, perNcm)));
    const batches: Batch[] = [];
    for (let i = 0; i < group.ncms.length; i += chunk) {
      const ncms = group.ncms.slice(i, i + chunk);
      const batch = this.openBatch(group.flow, group.ano, {
        months: published,
        ncms,
        countries: group.countries,
        fanOut: true,
      });
      batch.fanOut = true;
      for (const m of published) batch.months.add(m);
      for (const n of ncms) batch.ncms.add(n);
      for (const c of group.countries) batch.countries.add(c);
      batches.push(batch);
    }
    let stored = 0;
    for (const batch of new Set(batches)) {
      await batch.done;
      if (batch.error !== undefined) throw batch.error;
      stored += batch.results?.size ?? 0;
    }
    return stored;
  }

  /**
   * The latest release (`/general/dates/updated`), read through the cache at most once per
   * `release_aware.check_interval`. `undefined` when release awareness is off or it cannot be read.
   */
  async releaseInfo(): Promise<ComexStatRelease | undefined> {
    if (!this.config.releaseAware.enabled) return undefined;
    const interval = this.config.releaseAware.checkIntervalMs;
    if (this.release && this.release.checkedAt + interval > this.now()) return this.release.value;
    this.releasePending ??= this.cache
      .getOrLoad<ComexStatRelease>(`${this.metaPrefix}dates-updated`, () => this.client.datesUpdated(), {
        ttlMs: interval,
        endpoint: 'dates_updated',
      })
      .then(
        (r) => {
          this.release = { value: r.value, checkedAt: this.now() };
          return r.value;
        },
        (error) => {
          this.onError(error);
          // Keep what we knew; retry at the next check rather than on every miss.
          this.release = { value: this.release?.value, checkedAt: this.now() };
          return this.release.value;
        },
      )
      .finally(() => {
        this.releasePending = undefined;
      });
    return this.releasePending;
  }

  /** Country name → 3-digit code, from `/tables/countries` read through the cache (7 days). */
  async countryCodes(): Promise<Map<string, string>> {
    const res = await this.cache.getOrLoad<ComexStatCountry[]>(
      `${this.metaPrefix}countries`,
      () => this.client.countries(),
      { ttlMs: META_COUNTRIES_TTL_MS, staleTtlMs: this.config.cache.staleTtlMs, endpoint: 'countries' },
    );
    if (this.countryMap?.source !== res.value) {
      const map = new Map<string, string>();
      for (const c of res.value) if (!map.has(c.text.trim())) map.set(c.text.trim(), c.id);
      this.countryMap = { source: res.value, map };
    }
    return this.countryMap.map;
  }

  /** Resolves when every scheduled call and background refresh has settled. */
  async drain(): Promise<void> {
    for (;;) {
      const pending = [...[...this.pending].map((b) => b.done), ...this.refreshing.values()];
      if (pending.length === 0) return;
      await Promise.allSettled(pending);
    }
  }

  /** TTL of a stored value, ms: see the README's policy table. */
  ttlFor(ano: number, mes: number, value: ComexStatMonthValue): number {
    if (value.status === 'not_published') return this.config.releaseAware.checkIntervalMs;
    const release = this.release?.value;
    if (this.config.releaseAware.enabled && release && isFrozenYear(ano, release))
      return this.config.cache.frozenTtlMs;
    const ttl = ttlForComexStat(ano, mes, new Date(this.now()));
    return ttl === PAST_YEAR_TTL_MS ? this.config.cache.ttlMs : ttl;
  }

  private outdated(q: ComexStatMonthQuery, value: ComexStatMonthValue, release: ComexStatRelease): boolean {
    if (value.status === 'not_published') return isPublishedMonth(q.ano, q.mes, release);
    return isOutdatedByRelease(q.ano, value.fetchedAt, release);
  }

  private refresh(q: ComexStatMonthQuery, key: string): Promise<ComexStatMonthValue> {
    const running = this.refreshing.get(key) as Promise<ComexStatMonthValue> | undefined;
    if (running) return running;
    const p = this.want(q, key, false).finally(() => this.refreshing.delete(key));
    this.refreshing.set(key, p);
    return p;
  }

  private async want(q: ComexStatMonthQuery, key: string, loader: boolean): Promise<ComexStatMonthValue> {
    const release = await this.releaseInfo();
    if (release && !isPublishedMonth(q.ano, q.mes, release)) {
      this.stats.notPublished++;
      return { status: 'not_published', rows: [], fetchedAt: this.now() };
    }
    for (const b of this.inflight) {
      const s = b.sealed;
      if (
        b.flow === q.flow &&
        b.ano === q.ano &&
        s?.months.includes(q.mes) &&
        s.ncms.has(q.ncm) &&
        s.countries.has(q.pais)
      ) {
        this.stats.mergedMisses++;
        await b.done;
        const v = b.results?.get(key);
        if (v) return v;
      }
    }
    const batch = this.openBatch(q.flow, q.ano, {
      months: [q.mes],
      ncms: [q.ncm],
      countries: [q.pais],
      fanOut: false,
    });
    if (batch.waiters.length > 0 || batch.months.size > 0) this.stats.mergedMisses++;
    batch.months.add(q.mes);
    batch.ncms.add(q.ncm);
    batch.countries.add(q.pais);
    if (this.shared) {
      this.shared.redis
        .eval(ADD_PENDING, 1, this.pendingKey(q.flow, q.ano), PENDING_TTL_MS, `${q.mes}|${q.ncm}|${q.pais}`)
        .catch(this.onError);
    }
    return new Promise<ComexStatMonthValue>((resolve, reject) => {
      batch.waiters.push({ key, loader: loader && this.config.cache.enabled, resolve, reject });
    });
  }

  private openBatch(flow: ComexStatFlow, ano: number, adding: BatchAddition): Batch {
    const id = `${flow}:${ano}`;
    const existing = this.open.get(id);
    if (
      existing &&
      (existing.months.size === 0 || this.cellsWith(existing, adding) <= this.config.api.maxCellsPerCall)
    ) {
      return existing;
    }
    // A full batch keeps its place in the spacer queue; later misses start the next one.
    const batch: Batch = {
      flow,
      ano,
      months: new Set(),
      ncms: new Set(),
      countries: new Set(),
      fanOut: this.config.fanOut.enabled,
      waiters: [],
      done: Promise.resolve(),
    };
    this.open.set(id, batch);
    this.pending.add(batch);
    batch.done = this.run(batch, id).finally(() => this.pending.delete(batch));
    return batch;
  }

  /** (month, NCM, country) cells the batch's call would cover after `adding`. */
  private cellsWith(batch: Batch, adding: BatchAddition): number {
    const fan = batch.fanOut || adding.fanOut;
    const top = fan && this.config.fanOut.topLists;
    const ncms = new Set([...batch.ncms, ...adding.ncms, ...(top ? this.config.warming.topNcms : [])]).size;
    const countries = new Set([
      ...batch.countries,
      ...adding.countries,
      ...(top ? this.config.warming.topCountries : []),
    ]).size;
    const months = [...batch.months, ...adding.months];
    const span = fan && this.config.fanOut.wholeYear ? 12 : Math.max(...months) - Math.min(...months) + 1;
    return ncms * countries * span;
  }

  private pendingKey(flow: ComexStatFlow, ano: number): string {
    return `${(this.shared as { keyPrefix: string }).keyPrefix}${flow}:${ano}`;
  }

  /**
   * Cross-instance merge, once the spacer grants the slot: answers from the shared cache the
   * waiters another instance's call covered meanwhile (`false` when nothing is left to ask), and
   * adds to the batch the cells other instances are waiting for, as far as the call's size allows.
   */
  private async mergeShared(batch: Batch): Promise<boolean> {
    const shared = this.shared as { redis: SpacerRedis; keyPrefix: string };
    if (!batch.fanOut && batch.waiters.length > 0) {
      const got = await this.cache.getMany<ComexStatMonthValue>(batch.waiters.map((w) => w.key));
      const left: Waiter[] = [];
      batch.waiters.forEach((w, i) => {
        const v = got[i]?.value;
        if (v === undefined) left.push(w);
        else w.resolve(v);
      });
      batch.waiters = left;
      if (left.length === 0) return false;
    }
    const key = this.pendingKey(batch.flow, batch.ano);
    const members = (await shared.redis.eval(DRAIN_PENDING, 1, key)) as string[];
    const back: string[] = [];
    for (const m of members) {
      const [mes, ncm, pais] = m.split('|');
      const addition = {
        months: [Number(mes)],
        ncms: [ncm as string],
        countries: [pais as string],
        fanOut: false,
      };
      if (!(Number(mes) >= 1 && Number(mes) <= 12) || !ncm || !pais) continue;
      if (this.cellsWith(batch, addition) > this.config.api.maxCellsPerCall) {
        back.push(m);
        continue;
      }
      batch.months.add(Number(mes));
      batch.ncms.add(ncm);
      batch.countries.add(pais);
    }
    if (back.length > 0) await shared.redis.eval(ADD_PENDING, 1, key, PENDING_TTL_MS, ...back);
    return true;
  }

  private async seal(batch: Batch, id: string): Promise<GeneralQuery | null> {
    if (this.open.get(id) === batch) this.open.delete(id);
    if (this.shared) {
      try {
        if (!(await this.mergeShared(batch))) return null;
      } catch (error) {
        this.onError(error);
      }
    }
    this.inflight.add(batch);
    const release = this.release?.value;
    const lastMonth = release && batch.ano === release.year ? release.month : 12;
    const requested = [...batch.months].sort((a, b) => a - b);
    const first = batch.fanOut && this.config.fanOut.wholeYear ? 1 : (requested[0] as number);
    const last =
      batch.fanOut && this.config.fanOut.wholeYear
        ? lastMonth
        : Math.min(lastMonth, requested[requested.length - 1] as number);
    const ncms = new Set(batch.ncms);
    const countries = new Set(batch.countries);
    if (batch.fanOut && this.config.fanOut.topLists) {
      for (const n of this.config.warming.topNcms) ncms.add(n);
      for (const c of this.config.warming.topCountries) countries.add(c);
    }
    const months: number[] = [];
    for (let m = first; m <= last; m++) months.push(m);
    batch.sealed = { months, ncms, countries };
    this.stats.generalCalls++;
    // A single year with a month window is one of the API's safe period forms (reference §3).
    return {
      flow: batch.flow,
      monthDetail: true,
      period: { from: `${batch.ano}-${pad2(first)}`, to: `${batch.ano}-${pad2(last)}` },
      filters: [
        { filter: 'ncm', values: [...ncms] },
        { filter: 'country', values: [...countries] },
      ],
      details: ['ncm', 'country'],
      metrics: ['metricFOB', 'metricKG'],
    };
  }

  private async run(batch: Batch, id: string): Promise<void> {
    // Let the caller finish adding to the batch before anything else happens.
    await Promise.resolve();
    try {
      const names = await this.countryCodes();
      const rows = await this.client.generalWhenDue(() => this.seal(batch, id));
      // Another instance's call answered every waiter: the slot was given up.
      if (rows === null) return;
      batch.results = this.fanOut(batch, rows, names);
      if (this.onRows) {
        const all = [...batch.results.values()].flatMap((v) => v.rows);
        if (all.length > 0) Promise.resolve(all).then(this.onRows).catch(this.onError);
      }
      const loaderKeys = new Set(batch.waiters.filter((w) => w.loader).map((w) => w.key));
      const items = [];
      for (const [key, value] of batch.results) {
        if (loaderKeys.has(key)) continue;
        items.push(this.item(key, batch.ano, batch.resultMonths?.get(key) ?? 12, value));
      }
      if (items.length > 0) {
        try {
          await this.cache.setMany(items);
          this.stats.keysStored += items.length;
        } catch (error) {
          this.onError(error);
        }
      }
      const results = batch.results;
      for (const w of batch.waiters) {
        w.resolve(results.get(w.key) ?? { status: 'ok', rows: [], fetchedAt: this.now() });
      }
    } catch (error) {
      if (this.open.get(id) === batch) this.open.delete(id);
      batch.error = error;
      for (const w of batch.waiters) w.reject(error);
    } finally {
      this.inflight.delete(batch);
    }
  }

  private fanOut(
    batch: Batch,
    rows: GeneralRow[],
    names: Map<string, string>,
  ): Map<string, ComexStatMonthValue> {
    const sealed = batch.sealed as NonNullable<Batch['sealed']>;
    const fetchedAt = this.now();
    const out = new Map<string, ComexStatMonthValue>();
    const monthKeys = new Map<string, number>();
    for (const mes of sealed.months) {
      for (const ncm of sealed.ncms) {
        for (const pais of sealed.countries) {
          const key = this.keyFor({ flow: batch.flow, ano: batch.ano, mes, ncm, pais });
          out.set(key, { status: 'ok', rows: [], fetchedAt });
          monthKeys.set(key, mes);
        }
      }
    }
    for (const row of rows) {
      const pais = names.get((row.country ?? '').trim());
      const mes = Number(row.monthNumber);
      const ncm = row.coNcm ?? '';
      if (pais === undefined) {
        this.stats.unmappedRows++;
        continue;
      }
      const key = this.keyFor({ flow: batch.flow, ano: batch.ano, mes, ncm, pais });
      const value = out.get(key);
      if (!value) continue;
      value.rows.push({
        flow: batch.flow,
        ano: batch.ano,
        mes,
        ncm,
        pais,
        fob: Number(row.metricFOB ?? 0),
        kg: Number(row.metricKG ?? 0),
      });
    }
    batch.resultMonths = monthKeys;
    return out;
  }

  private item(key: string, ano: number, mes: number, value: ComexStatMonthValue) {
    return { key, value, ttlMs: this.ttlFor(ano, mes, value), staleTtlMs: this.config.cache.staleTtlMs };
  }
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
