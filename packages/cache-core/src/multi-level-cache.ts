import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import type { DistributedLock, InvalidationBus, InvalidationMessage, Lease } from './bus.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { coarseNow } from './clock.js';
import { type CacheEntry, capEntry } from './entry.js';
import { ConfigError } from './errors/config-error.js';
import { InvalidValueError } from './errors/invalid-value-error.js';
import { TimeoutError } from './errors/timeout-error.js';
import { validateKey } from './key-pattern.js';
import { Level, type TierLevel } from './level.js';
import { type CacheOperation, type CircuitState, type MetricsAdapter, NOOP_METRICS } from './metrics.js';
import type {
  CacheErrorEvent,
  CacheEvents,
  CacheResult,
  GetOptions,
  GetOrLoadOptions,
  Loader,
  LoadResult,
  MultiLevelCacheOptions,
  SetManyItem,
  SetOptions,
  TierHealth,
} from './cache-options.js';
import { classifyError } from './classify-error.js';
import { InvalidationQueue, VersionGuard } from './coherence.js';
import { type GuardHost, GuardedTier } from './guarded-tier.js';
import type { ReadCallbacks, Tier, TierDeleteOptions, TierWrite } from './tier.js';
import {
  type Cascaded,
  type Found,
  type OperationDeadline,
  ReadAttempt,
  type ReadHost,
  type RecentLoad,
  SKIPPED,
  TierRead,
} from './tier-read.js';
import { armDeadline, delay, withTimeout } from './timeout.js';
import { nextVersion, observeVersion } from './version.js';
import { assertValue, makeEntry, type WriteHost, writeAll } from './write-fanout.js';

const tracer = trace.getTracer('@bgc/cache-core');

/** Within this many ms of an entry's fresh-until or stale-until, reads compare with `Date.now()`. */
const EXACT_CLOCK_WITHIN_MS = 1000;

/**
 * Typed events of {@link MultiLevelCache} ({@link CacheEvents}): `cache.on('error', (e) => ...)`
 * gets `e` as a {@link CacheErrorEvent}.
 */
export interface MultiLevelCache {
  on<K extends keyof CacheEvents>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  once<K extends keyof CacheEvents>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  off<K extends keyof CacheEvents>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  emit<K extends keyof CacheEvents>(event: K, ...args: CacheEvents[K]): boolean;
}

/**
 * The multi-level cache: cascades reads L1 → L2 → L3, promotes hits to the faster tiers with their
 * remaining lifetime, writes and deletes on every tier, and coalesces loads so one upstream call
 * serves every concurrent caller (across instances with a {@link DistributedLock}).
 *
 * A tier that fails or times out is reported (metrics, `'error'` event) and skipped: a request never
 * fails because of a cache tier. Shared tiers get a per-operation timeout and a circuit breaker.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: typed overloads of the inherited EventEmitter methods
export class MultiLevelCache extends EventEmitter {
  private readonly states: GuardedTier[];
  private readonly local: GuardedTier[];
  private readonly shared: GuardedTier[];
  private readonly l1Sync: ((key: string) => CacheEntry | undefined) | undefined;
  /** The L1 tier when it answers fresh values directly ({@link Tier.getFreshValueSync}). */
  private readonly l1Fresh: (Tier & Required<Pick<Tier, 'getFreshValueSync'>>) | undefined;
  private readonly metrics: MetricsAdapter;
  private readonly connector: string;
  private readonly endpoint: string;
  private readonly opts: Required<
    Pick<
      MultiLevelCacheOptions,
      | 'defaultTtlMs'
      | 'staleTtlMs'
      | 'negativeTtlMs'
      | 'ttlJitter'
      | 'coalesceWindowMs'
      | 'tierTimeoutMs'
      | 'softTimeoutMs'
      | 'hardTimeoutMs'
      | 'failSafeBackoffMs'
      | 'lockLeaseMs'
      | 'lockWaitMs'
      | 'recoveryMaxKeys'
      | 'recoveryIntervalMs'
      | 'tombstoneMs'
      | 'publishQueueMax'
      | 'backgroundWrites'
    >
  > & { eagerRefreshThreshold: number | undefined };
  private readonly bus: InvalidationBus | undefined;
  private readonly lock: DistributedLock | undefined;
  private readonly ownsTiers: boolean;
  private readonly inflight = new Map<string, Promise<LoadResult<unknown>>>();
  private readonly refreshing = new Set<string>();
  private readonly recent = new Map<string, RecentLoad>();
  private readonly background = new Set<Promise<unknown>>();
  private readonly loads = new Set<AbortController>();
  private recoveryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Per-key versions of this instance's writes, deletes and received invalidations (local-tier guard). */
  private readonly versions: VersionGuard;
  /** Invalidations that failed to publish, re-sent once the bus answers again. */
  private readonly unpublished: InvalidationQueue;
  private publishTimer: NodeJS.Timeout | undefined;
  private l1Reads = 0;
  /** The orchestrator's side of {@link writeAll}. */
  private readonly writeHost: WriteHost;
  /** What a {@link TierRead} calls back, bound once per cache (the read path's private methods). */
  private readonly readHost: ReadHost = {
    answered: (read, entry) => this.readAnswered(read, entry),
    failed: (read, error) => this.readFailed(read, error),
    timeoutMs: () => this.opts.tierTimeoutMs,
  };

  constructor(options: MultiLevelCacheOptions) {
    super();
    if (!options || !Array.isArray(options.tiers))
      throw new ConfigError('tiers', 'expected an array of tiers, fastest first');
    const nonNeg = (name: keyof MultiLevelCacheOptions, v: number | undefined, d: number): number => {
      if (v === undefined) return d;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        throw new ConfigError(name, `${String(v)} is not a non-negative number of milliseconds`);
      }
      return v;
    };
    const hard = nonNeg('hardTimeoutMs', options.hardTimeoutMs, 10_000);
    const jitter = options.ttlJitter ?? 0;
    if (!(jitter >= 0 && jitter < 1)) throw new ConfigError('ttlJitter', `${jitter} must be in [0, 1)`);
    const eager = options.eagerRefreshThreshold;
    if (eager !== undefined && !(eager > 0 && eager < 1)) {
      throw new ConfigError('eagerRefreshThreshold', `${eager} must be a fraction in (0, 1)`);
    }
    this.opts = {
      defaultTtlMs: nonNeg('defaultTtlMs', options.defaultTtlMs, 300_000),
      staleTtlMs: nonNeg('staleTtlMs', options.staleTtlMs, 0),
      negativeTtlMs: nonNeg('negativeTtlMs', options.negativeTtlMs, 60_000),
      ttlJitter: jitter,
      coalesceWindowMs: nonNeg('coalesceWindowMs', options.coalesceWindowMs, 10_000),
      tierTimeoutMs: nonNeg('tierTimeoutMs', options.tierTimeoutMs, 1000),
      softTimeoutMs: nonNeg('softTimeoutMs', options.softTimeoutMs, 1000),
      hardTimeoutMs: hard,
      failSafeBackoffMs: nonNeg('failSafeBackoffMs', options.failSafeBackoffMs, 30_000),
      lockLeaseMs: nonNeg('lockLeaseMs', options.lockLeaseMs, 15_000),
      lockWaitMs: nonNeg('lockWaitMs', options.lockWaitMs, hard),
      recoveryMaxKeys: nonNeg('recoveryMaxKeys', options.recoveryMaxKeys, 10_000),
      recoveryIntervalMs: nonNeg('recoveryIntervalMs', options.recoveryIntervalMs, 2000),
      tombstoneMs: 0,
      publishQueueMax: nonNeg('publishQueueMax', options.publishQueueMax, 10_000),
      backgroundWrites: options.backgroundWrites ?? false,
      eagerRefreshThreshold: eager,
    };
    this.opts.tombstoneMs = nonNeg(
      'tombstoneMs',
      options.tombstoneMs,
      Math.max(60_000, 2 * (hard + this.opts.lockLeaseMs)),
    );
    this.metrics = options.metrics ?? NOOP_METRICS;
    this.writeHost = {
      metrics: this.metrics,
      superseded: (key, entry) => this.superseded(key, entry),
      removeEverywhere: (keys, version) => this.removeEverywhere(keys, version),
    };
    this.connector = options.connector ?? 'default';
    this.endpoint = options.endpoint ?? 'default';
    const breakerOpts = options.circuitBreaker === false ? undefined : (options.circuitBreaker ?? {});
    const guardHost: GuardHost = {
      metrics: this.metrics,
      tierTimeoutMs: this.opts.tierTimeoutMs,
      recoveryMaxKeys: this.opts.recoveryMaxKeys,
      report: (level, op, key, error, tier) => this.report(level, op, key, error, tier),
      listensForErrors: () => this.listenerCount('error') > 0,
      emitError: (event) => this.emit('error', event),
      scheduleRecovery: () => this.scheduleRecovery(),
      superseded: (key, entry) => this.superseded(key, entry),
    };
    const seen = new Set<string>();
    this.states = options.tiers.map((tier, index) => {
      if (!tier || typeof tier.get !== 'function' || typeof tier.set !== 'function') {
        throw new ConfigError(`tiers[${index}]`, 'is not a Tier (needs get, set, delete and close)');
      }
      if (seen.has(tier.level))
        throw new ConfigError(`tiers[${index}]`, `two tiers declare level ${tier.level}`);
      seen.add(tier.level);
      const shared = tier.scope === 'shared';
      const breaker =
        shared && breakerOpts
          ? new CircuitBreaker({
              ...breakerOpts,
              onStateChange: (s: CircuitState) => {
                this.metrics.circuitState?.(tier.level, s);
                this.emit('circuit', { level: tier.level, tier: tier.name, state: s });
                // Back from an outage: local entries may have missed invalidations meanwhile.
                if (s === 'closed') this.expireLocal();
              },
            })
          : undefined;
      return new GuardedTier(tier, index, breaker, guardHost);
    });
    this.local = this.states.filter((s) => !s.shared);
    this.shared = this.states.filter((s) => s.shared);
    const first = this.states[0];
    this.l1Sync = first && !first.shared ? first.tier.getSync?.bind(first.tier) : undefined;
    this.l1Fresh =
      this.l1Sync && first?.tier.getFreshValueSync
        ? (first.tier as Tier & Required<Pick<Tier, 'getFreshValueSync'>>)
        : undefined;
    this.versions = new VersionGuard(this.opts.tombstoneMs);
    this.unpublished = new InvalidationQueue(this.opts.publishQueueMax);
    this.bus = options.bus;
    this.lock = options.lock;
    this.ownsTiers = options.ownsTiers ?? true;
    const last = this.states.length - 1;
    for (const s of this.states) s.tier.attach?.({ index: s.index, lastTier: s.index === last });
    this.bus?.subscribe((message) => this.onBusMessage(message));
  }

  /**
   * Connects every tier and the lock ({@link Tier.connect}, {@link DistributedLock.connect}),
   * resolving once all can serve. Rejects with the first failure (each one is also reported as an
   * `'error'` event); the cache still serves without the failed part, so a caller may go on.
   */
  async connect(): Promise<void> {
    const parts: Promise<unknown>[] = this.states.map((s) =>
      s.tier.connect
        ? s.tier.connect().catch((error: unknown) => {
            this.report(s.tier.level, 'get', undefined, error, s.tier.name);
            throw error;
          })
        : Promise.resolve(),
    );
    const lock = this.lock;
    if (lock?.connect)
      parts.push(
        lock.connect().catch((error: unknown) => {
          this.report(Level.L2, 'load', undefined, error);
          throw error;
        }),
      );
    const results = await Promise.allSettled(parts);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** The tiers, fastest first. */
  get tiers(): readonly Tier[] {
    return this.states.map((s) => s.tier);
  }

  /**
   * Synchronous L1 lookup, the hot path: the value of a fresh L1 hit, without a promise or an
   * entry object (through {@link Tier.getFreshValueSync} when the L1 has it), and `undefined`
   * otherwise (miss, stale entry, or no synchronous L1). Callers fall back to {@link get} or
   * {@link getOrLoad} on `undefined`. Records the same hit metric as {@link get}.
   */
  getSync<T = unknown>(key: string, endpoint: string = this.endpoint): T | undefined {
    const now = coarseNow();
    if (this.l1Fresh) return this.readL1Fresh<T>(key, now, endpoint);
    const e = this.readL1Sync<T>(key, now, endpoint);
    return e !== undefined && e.freshUntil > now ? e.value : undefined;
  }

  /**
   * Looks a key up, fastest tier first, and promotes a hit to every faster tier (keeping its
   * remaining lifetime). Resolves `{ value: undefined, level: 'external' }` on a miss everywhere.
   */
  get<T = unknown>(key: string, options: GetOptions = {}): Promise<CacheResult<T>> {
    // Not an async function: an L2 hit resolves the returned promise straight from the tier's
    // reply (see readFrom), two promise hops fewer than awaiting a cascade.
    try {
      const endpoint = options.endpoint ?? this.endpoint;
      const now = coarseNow();
      if (this.l1Fresh) {
        const value = this.readL1Fresh<T>(key, now, endpoint);
        if (value !== undefined) return Promise.resolve({ value, level: Level.L1, stale: false });
      }
      const fast = this.readL1Sync<T>(key, now, endpoint);
      if (fast && (fast.freshUntil > now || options.allowStale)) {
        return Promise.resolve({ value: fast.value, level: Level.L1, stale: fast.freshUntil <= now });
      }
      validateKey(key);
      return new Promise((resolve, reject) => {
        const read = new TierRead<T>(this.readHost, key, endpoint, fast, undefined, true, resolve, reject);
        read.allowStale = options.allowStale === true;
        this.startRead(read, this.l1Sync ? 1 : 0);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Looks many keys up, using each tier's batch read where it has one (one Redis round trip). */
  async getMany<T = unknown>(keys: readonly string[], options: GetOptions = {}): Promise<CacheResult<T>[]> {
    const endpoint = options.endpoint ?? this.endpoint;
    for (const k of keys) validateKey(k);
    const results: CacheResult<T>[] = keys.map(() => ({
      value: undefined,
      level: Level.External,
      stale: false,
    }));
    let missing = keys.map((_, i) => i);
    const hits: { i: number; entry: CacheEntry<T>; index: number }[] = [];
    for (const state of this.states) {
      if (missing.length === 0) break;
      const ks = missing.map((i) => keys[i] as string);
      const got = await state.call(
        'get_many',
        undefined,
        () => (state.tier.getMany ? state.tier.getMany(ks) : Promise.all(ks.map((k) => state.tier.get(k)))),
        ks.length,
      );
      const still: number[] = [];
      const now = Date.now();
      missing.forEach((i, j) => {
        const e = got === SKIPPED ? undefined : (got[j] as CacheEntry<T> | undefined);
        if (e && e.staleUntil > now && (e.freshUntil > now || options.allowStale)) {
          this.metrics.hit(state.tier.level, this.connector, endpoint);
          results[i] = { value: e.value, level: state.tier.level, stale: e.freshUntil <= now };
          if (state.index > 0) hits.push({ i, entry: e, index: state.index });
        } else {
          this.metrics.miss(state.tier.level, this.connector, endpoint);
          still.push(i);
        }
      });
      missing = still;
    }
    for (let n = 0; n < missing.length; n++) this.metrics.miss(Level.External, this.connector, endpoint);
    if (hits.length > 0) this.track(this.promoteMany(keys, hits));
    return results;
  }

  /** Writes a value to every tier and tells other instances to drop their local copy. */
  async set<T>(key: string, value: T, options: SetOptions = {}): Promise<void> {
    validateKey(key);
    assertValue(key, value);
    const entry = makeEntry(this.opts, value, options.ttlMs ?? this.opts.defaultTtlMs, options.staleTtlMs);
    const version = this.invalidate(key);
    entry.version = version;
    await writeAll(this.writeHost, this.states, key, entry);
    await this.publish({ type: 'delete', keys: [key], version });
  }

  /** Writes many values to every tier, in one round trip per tier that has `setMany`. */
  async setMany<T>(items: readonly SetManyItem<T>[]): Promise<void> {
    if (items.length === 0) return;
    const prepared = items.map((it) => {
      validateKey(it.key);
      assertValue(it.key, it.value);
      return makeEntry(this.opts, it.value, it.ttlMs ?? this.opts.defaultTtlMs, it.staleTtlMs);
    });
    const version = nextVersion();
    const writes: TierWrite[] = items.map((it, i) => {
      this.invalidate(it.key, version);
      const entry = prepared[i] as CacheEntry;
      entry.version = version;
      return { key: it.key, entry };
    });
    let invalid: unknown;
    await Promise.all(
      this.states.map((state) =>
        state.writeMany(writes).then((r) => {
          if (r === SKIPPED) for (const w of writes) state.remember(w.key);
          else if (r !== undefined && invalid === undefined) invalid = r;
        }),
      ),
    );
    const keys = writes.map((w) => w.key);
    if (invalid !== undefined) {
      // A tier refused the batch as invalid: no tier keeps entries the others lack.
      await this.removeEverywhere(keys, version);
      await this.publish({ type: 'delete', keys, version });
      throw invalid;
    }
    await this.publish({ type: 'delete', keys, version });
  }

  /** Removes a key from every tier and from every instance's local tier. */
  async delete(key: string): Promise<void> {
    validateKey(key);
    await this.deleteMany([key]);
  }

  /** Removes keys from every tier and every instance's local tier. Resolves how many tiers-keys existed at most. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    for (const k of keys) validateKey(k);
    const version = nextVersion();
    for (const k of keys) this.invalidate(k, version);
    const options: TierDeleteOptions = { version, tombstoneMs: this.opts.tombstoneMs };
    const counts = await Promise.all(
      this.states.map((state) =>
        state.removeMany(keys, options).then((r) => {
          if (r === SKIPPED) {
            for (const k of keys) state.remember(k);
            return 0;
          }
          return r;
        }),
      ),
    );
    await this.publish({ type: 'delete', keys, version });
    return Math.max(0, ...counts);
  }

  /**
   * Empties every tier that supports `clear()` and every instance's local tier. Loads, promotions
   * and refreshes that started before the clear do not write their values back afterwards.
   */
  async clear(): Promise<void> {
    const version = nextVersion();
    this.clearLocalState(version);
    await Promise.all(
      this.states.map((state) =>
        state.tier.clear ? state.call('clear', undefined, () => state.tier.clear!({ version })) : undefined,
      ),
    );
    await this.publish({ type: 'clear', version });
  }

  /**
   * Returns the cached value, or calls `loader` once (however many callers ask at the same time,
   * and across instances when a lock is configured), stores its result in every tier and returns
   * it with `level: 'external'`.
   *
   * Fail-safe: when the loader fails or exceeds the hard timeout and a stale entry exists, the
   * stale value is returned (`stale: true`) and kept; otherwise the loader's error (or a
   * {@link TimeoutError}) is thrown.
   */
  async getOrLoad<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T> = {},
  ): Promise<LoadResult<T>> {
    const endpoint = options.endpoint ?? this.endpoint;
    const now = coarseNow();
    const fast = this.readL1Sync<T>(key, now, endpoint);
    if (fast && fast.freshUntil > now && !options.isStale?.(fast)) {
      this.maybeEagerRefresh(key, fast, loader, options, now);
      return { value: fast.value, level: Level.L1, stale: false };
    }
    validateKey(key);
    const shared = this.inflight.get(key) ?? this.sharedRecent(key, now);
    if (shared) return shared as Promise<LoadResult<T>>;
    const flight: Promise<LoadResult<T>> = this.resolveMiss(key, loader, options, endpoint, fast).finally(
      () => {
        // A write or delete meanwhile may have replaced this flight by a newer one: leave that be.
        if (this.inflight.get(key) === (flight as Promise<LoadResult<unknown>>)) this.inflight.delete(key);
      },
    );
    this.inflight.set(key, flight as Promise<LoadResult<unknown>>);
    return flight;
  }

  /**
   * Health of each tier from its circuit breaker and last operation: `down` while the breaker is
   * open, `degraded` while probing or after a failed operation, `up` otherwise.
   */
  tierStatus(): Partial<Record<TierLevel, TierHealth>> {
    const out: Partial<Record<TierLevel, TierHealth>> = {};
    for (const s of this.states) {
      const b = s.breaker?.state;
      out[s.tier.level] = b === 'open' ? 'down' : b === 'half_open' || s.lastError ? 'degraded' : 'up';
    }
    return out;
  }

  /** Pings every tier (bounded by tierTimeoutMs) and returns its health. */
  async checkTiers(): Promise<Partial<Record<TierLevel, TierHealth>>> {
    await Promise.all(
      this.states.map((s) => (s.tier.ping ? s.call('get', undefined, () => s.tier.ping!()) : undefined)),
    );
    return this.tierStatus();
  }

  /** Waits for background work (promotions, refreshes, recoveries) to settle. Useful in tests and on shutdown. */
  async flush(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Stops timers, waits for background work, and closes the tiers and the bus (when owned). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    if (this.publishTimer) clearInterval(this.publishTimer);
    for (const c of this.loads) c.abort(new Error('the cache was closed'));
    await this.flush();
    if (!this.ownsTiers) return;
    await this.bus?.close().catch((error: unknown) => this.report(Level.L2, 'clear', undefined, error));
    await this.lock?.close?.().catch((error: unknown) => this.report(Level.L2, 'load', undefined, error));
    await Promise.all(
      this.states.map((s) =>
        s.tier.close().catch((error: unknown) => this.report(s.tier.level, 'clear', undefined, error)),
      ),
    );
  }

  // ---------------------------------------------------------------- internals

  /** The value of a fresh L1 entry through {@link Tier.getFreshValueSync}, with the hit metric. */
  private readL1Fresh<T>(key: string, now: number, endpoint: string): T | undefined {
    const tier = this.l1Fresh as Tier & Required<Pick<Tier, 'getFreshValueSync'>>;
    let value: unknown;
    const timed = (++this.l1Reads & 15) === 0;
    const t0 = timed ? performance.now() : 0;
    try {
      value = tier.getFreshValueSync(key, now);
    } catch (error) {
      this.report(Level.L1, 'get', key, error);
      return undefined;
    }
    if (value === undefined) return undefined;
    if (timed) this.metrics.latency(Level.L1, 'get', (performance.now() - t0) / 1000);
    this.metrics.hit(Level.L1, this.connector, endpoint);
    return value as T;
  }

  private readL1Sync<T>(key: string, now: number, endpoint: string): CacheEntry<T> | undefined {
    const sync = this.l1Sync;
    if (!sync) return undefined;
    let e: CacheEntry | undefined;
    // L1 reads take ~100 ns: timing each would double their cost, so 1 in 16 is timed.
    const timed = (++this.l1Reads & 15) === 0;
    const t0 = timed ? performance.now() : 0;
    try {
      e = sync(key);
    } catch (error) {
      this.report(Level.L1, 'get', key, error);
      return undefined;
    }
    if (timed) this.metrics.latency(Level.L1, 'get', (performance.now() - t0) / 1000);
    if (e && e.staleUntil > now) {
      if (e.freshUntil > now) this.metrics.hit(Level.L1, this.connector, endpoint);
      return e as CacheEntry<T>;
    }
    return undefined;
  }

  /**
   * Reads tiers from `start` on; stops at the first fresh entry, promotes it, and remembers the
   * freshest stale entry seen for fail-safe.
   */
  private cascade<T>(
    key: string,
    endpoint: string,
    start: number,
    staleSoFar: CacheEntry<T> | undefined,
    isStale?: (entry: CacheEntry<T>) => boolean,
  ): Promise<Cascaded<T> | undefined> {
    return new Promise((resolve, reject) => {
      this.startRead(
        new TierRead<T>(this.readHost, key, endpoint, staleSoFar, isStale, false, resolve, reject),
        start,
      );
    });
  }

  /** Starts `read` at tier `start` (counting the L1 miss when it skips the L1). */
  private startRead<T>(read: TierRead<T>, start: number): void {
    if (start === 1) this.metrics.miss(Level.L1, this.connector, read.endpoint);
    this.readFrom(read, start);
  }

  /**
   * Asks tier `i` for `read.key`: through the circuit breaker, under the tier deadline, with the
   * read object itself as the callbacks (no closure or promise of ours per read).
   */
  private readFrom<T>(read: TierRead<T>, i: number): void {
    try {
      if (i >= this.states.length) {
        this.finishRead(read, read.staleIndex >= 0 ? read.staleEntry : undefined, read.staleIndex, false);
        return;
      }
      const state = this.states[i] as GuardedTier;
      read.index = i;
      read.state = state;
      if (!state.admit('get', read.key)) {
        this.readStep(read, undefined);
        return;
      }
      read.t0 = performance.now();
      // The read object answers for the first tier it asks; any later tier gets callbacks of its
      // own, so a late reply (after its deadline) can only ever settle its own, finished call.
      let callbacks: OperationDeadline & ReadCallbacks;
      if (read.asked) {
        callbacks = new ReadAttempt(read as TierRead<unknown>, this.readHost);
      } else {
        read.asked = true;
        callbacks = read;
      }
      callbacks.settled = false;
      if (state.shared && this.opts.tierTimeoutMs > 0) armDeadline(callbacks, this.opts.tierTimeoutMs);
      const tier = state.tier;
      try {
        if (tier.getWith) tier.getWith(read.key, callbacks);
        else
          tier.get(read.key).then(
            (entry) => callbacks.ok(entry),
            (error: unknown) => callbacks.failed(error),
          );
      } catch (error) {
        callbacks.failed(error);
      }
    } catch (error) {
      // A throwing error listener or metrics adapter must not leave the read unsettled.
      read.reject(error);
    }
  }

  /** The tier of `read` answered. */
  private readAnswered<T>(read: TierRead<T>, entry: CacheEntry | undefined): void {
    (read.state as GuardedTier).succeeded('get', read.t0, entry);
    this.readStep(read, entry as CacheEntry<T> | undefined);
  }

  /** The tier of `read` failed or timed out: reported, then skipped. */
  private readFailed<T>(read: TierRead<T>, error: unknown): void {
    (read.state as GuardedTier).failed('get', read.key, error);
    this.readStep(read, undefined);
  }

  /** Examines tier `read.index`'s entry: a fresh one ends the read (promoted), else on to the next tier. */
  private readStep<T>(read: TierRead<T>, e: CacheEntry<T> | undefined): void {
    const i = read.index;
    try {
      const state = this.states[i] as GuardedTier;
      // The coarse clock decides far from the entry's boundaries (a clock read costs as much as
      // the rest of this step); near them, the exact one.
      let now = coarseNow();
      if (e && (e.freshUntil - now < EXACT_CLOCK_WITHIN_MS || e.staleUntil - now < EXACT_CLOCK_WITHIN_MS))
        now = Date.now();
      if (e && e.staleUntil > now) {
        if (e.freshUntil > now && !read.isStale?.(e)) {
          this.metrics.hit(state.tier.level, this.connector, read.endpoint);
          this.promote(read.key, e, i);
          this.finishRead(read, e, i, true);
          return;
        }
        if (read.staleIndex < 0 || e.staleUntil > (read.staleEntry as CacheEntry<T>).staleUntil) {
          read.staleEntry = e;
          read.staleIndex = i;
        }
      }
      this.metrics.miss(state.tier.level, this.connector, read.endpoint);
    } catch (error) {
      read.reject(error);
      return;
    }
    this.readFrom(read, i + 1);
  }

  /** Settles `read`: a {@link CacheResult} for `get`, a {@link Cascaded} for the load paths. */
  private finishRead<T>(
    read: TierRead<T>,
    entry: CacheEntry<T> | undefined,
    index: number,
    fresh: boolean,
  ): void {
    if (!read.asResult) {
      read.resolve(entry ? { best: { entry, index }, fresh } : undefined);
      return;
    }
    if (entry && (fresh || read.allowStale)) {
      read.resolve({ value: entry.value, level: this.levelOf(index), stale: !fresh });
      return;
    }
    this.metrics.miss(Level.External, this.connector, read.endpoint);
    read.resolve({ value: undefined, level: Level.External, stale: false });
  }

  private promote(key: string, entry: CacheEntry, from: number): void {
    if (from === 0) return;
    const fromLevel = this.levelOf(from);
    for (let j = 0; j < from; j++) {
      const state = this.states[j] as GuardedTier;
      // A local tier takes no entry older than this key's last write or invalidation here; shared
      // tiers check the entry's version themselves (compare-and-set, tombstones).
      if (!state.shared && this.superseded(key, entry)) continue;
      const capped = capEntry(entry, state.tier.maxTtlMs);
      const p = state
        .call('set', key, () =>
          state.tier.set(key, capped).then(
            () => true,
            (error: unknown) => state.refusedValue(error),
          ),
        )
        .then((r) => {
          if (r === true) this.metrics.promotion(fromLevel, state.tier.level);
        });
      if (state.shared) this.track(p);
    }
  }

  private async promoteMany(
    keys: readonly string[],
    hits: { i: number; entry: CacheEntry; index: number }[],
  ): Promise<void> {
    for (let j = 0; j < this.states.length; j++) {
      const state = this.states[j] as GuardedTier;
      const writes = hits
        .filter((h) => h.index > j)
        .map((h) => ({
          key: keys[h.i] as string,
          entry: capEntry(h.entry, state.tier.maxTtlMs),
          from: h.index,
        }));
      if (writes.length === 0) continue;
      const r = await state.writeMany(writes);
      if (r === undefined)
        for (const w of writes) this.metrics.promotion(this.levelOf(w.from), state.tier.level);
    }
  }

  private async resolveMiss<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    endpoint: string,
    l1Stale: CacheEntry<T> | undefined,
  ): Promise<LoadResult<T>> {
    const span = tracer.startSpan('bgc.cache.get_or_load', {
      attributes: { 'bgc.cache.endpoint': endpoint },
    });
    try {
      // A fail-safe entry in its back-off window is served without calling the loader again.
      const retryAt = l1Stale?.meta?.failSafe === true ? (l1Stale.meta.retryAt as number) : 0;
      if (l1Stale && retryAt > Date.now()) return { value: l1Stale.value, level: Level.L1, stale: true };
      const start = this.l1Sync ? 1 : 0;
      const found = await this.cascade<T>(key, endpoint, start, l1Stale, options.isStale);
      if (found?.fresh) {
        span.setAttribute('bgc.cache.level', this.levelOf(found.best.index));
        return { value: found.best.entry.value, level: this.levelOf(found.best.index), stale: false };
      }
      const stale = found?.best;
      this.metrics.miss(Level.External, this.connector, endpoint);
      span.setAttribute('bgc.cache.level', Level.External);
      return await this.loadWithLock(key, loader, options, endpoint, stale, span);
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  }

  private async loadWithLock<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    endpoint: string,
    stale: Found<T> | undefined,
    span: Span,
  ): Promise<LoadResult<T>> {
    if (!this.lock) return this.load(key, loader, options, stale, undefined);
    const deadline = Date.now() + this.opts.lockWaitMs;
    for (;;) {
      let lease: Lease | undefined;
      try {
        lease = await withTimeout(
          this.lock.tryAcquire(key, this.opts.lockLeaseMs),
          this.opts.tierTimeoutMs,
          'lock acquire',
        );
      } catch (error) {
        // No lock service: load here rather than fail the request.
        this.report(Level.L2, 'load', key, error);
        return this.load(key, loader, options, stale, undefined);
      }
      if (lease) {
        span.setAttribute('bgc.cache.lock', 'acquired');
        // Another instance may have finished its load between our read and the lease.
        const again = await this.cascade<T>(key, endpoint, this.l1Sync ? 1 : 0, undefined, options.isStale);
        if (again?.fresh) {
          await lease.release();
          return { value: again.best.entry.value, level: this.levelOf(again.best.index), stale: false };
        }
        return this.load(key, loader, options, stale, lease);
      }
      span.setAttribute('bgc.cache.lock', 'waited');
      const remaining = deadline - Date.now();
      if (remaining <= 0) return this.load(key, loader, options, stale, undefined);
      // Serve stale at once instead of waiting for the other instance when soft timeout is 0.
      if (stale && this.opts.softTimeoutMs === 0)
        return { value: stale.entry.value, level: this.levelOf(stale.index), stale: true };
      await this.lock.waitForRelease(key, Math.min(remaining, this.opts.lockLeaseMs)).catch(() => delay(50));
      const after = await this.cascade<T>(key, endpoint, this.l1Sync ? 1 : 0, undefined, options.isStale);
      if (after?.fresh)
        return { value: after.best.entry.value, level: this.levelOf(after.best.index), stale: false };
    }
  }

  private async load<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    stale: Found<T> | undefined,
    lease: Lease | undefined,
  ): Promise<LoadResult<T>> {
    const controller = new AbortController();
    this.loads.add(controller);
    const t0 = performance.now();
    // The load's version is taken before the loader reads the upstream: any write or delete after
    // this point is newer than what the loader may return, and wins over it in every tier.
    const version = nextVersion();
    this.versions.loadStarted(version);
    let leaseHandedOff = false;
    const run = (async () => {
      try {
        const value = await loader({ key, signal: controller.signal, stale: stale?.entry });
        this.metrics.latency(Level.External, 'load', (performance.now() - t0) / 1000);
        if (value === undefined) {
          throw new InvalidValueError(
            `The loader for key ${JSON.stringify(key)} returned undefined; return null for "not found" or a value to cache`,
          );
        }
        const ttl =
          value === null
            ? this.opts.negativeTtlMs
            : typeof options.ttlMs === 'function'
              ? options.ttlMs(value)
              : (options.ttlMs ?? this.opts.defaultTtlMs);
        const entry = makeEntry(this.opts, value, ttl, options.staleTtlMs);
        entry.version = version;
        const background = this.opts.backgroundWrites && this.local.length > 0 && this.shared.length > 0;
        // Background writes: answer once the local tiers hold the value; the shared tiers' writes
        // (and the lease, held until they land) finish in the background.
        const stored = await writeAll(this.writeHost, background ? this.local : this.states, key, entry);
        if (background) {
          leaseHandedOff = true;
          this.track(this.finishSharedWrites(key, entry, lease));
          return value;
        }
        // Callers arriving just after find the value in a tier; when no tier could keep it (all
        // down), the settled result stays shareable for the window so the upstream is not hit again.
        if (stored === 0 && this.opts.coalesceWindowMs > 0) {
          this.recent.set(key, {
            result: { value, level: Level.External, stale: false },
            until: Date.now() + this.opts.coalesceWindowMs,
          });
          if (this.recent.size > 10_000) this.pruneRecent();
        }
        if (!this.superseded(key, entry)) await this.publish({ type: 'delete', keys: [key], version });
        return value;
      } catch (error) {
        this.metrics.error(
          Level.External,
          'load',
          error instanceof TimeoutError ? 'timeout' : 'loader_error',
        );
        throw error;
      } finally {
        this.loads.delete(controller);
        this.versions.loadEnded(version);
        if (!leaseHandedOff) await lease?.release();
      }
    })();
    // Keeps a background load (after a soft or hard timeout) from becoming an unhandled rejection.
    const settled = run.then(
      () => undefined,
      (error: unknown) => {
        if (stale) this.track(this.keepStale(key, stale.entry));
        this.report(Level.External, 'load', key, error);
      },
    );
    this.track(settled);

    const hard = this.opts.hardTimeoutMs;
    const soft = stale ? Math.min(this.opts.softTimeoutMs, hard) : hard;
    // softTimeoutMs 0: answer stale at once (withTimeout treats 0 as "no timeout").
    if (stale && soft <= 0)
      return { value: stale.entry.value, level: this.levelOf(stale.index), stale: true };
    try {
      const value = await withTimeout(run, soft, `Loading key ${JSON.stringify(key)}`);
      return { value, level: Level.External, stale: false };
    } catch (error) {
      if (error instanceof TimeoutError && stale) {
        return { value: stale.entry.value, level: this.levelOf(stale.index), stale: true };
      }
      if (error instanceof TimeoutError) {
        throw new TimeoutError(`Loading key ${JSON.stringify(key)} (no stale value to fall back on)`, hard);
      }
      if (stale) return { value: stale.entry.value, level: this.levelOf(stale.index), stale: true };
      throw error;
    }
  }

  /** After a failed load, keep the stale entry and hold off further loads for failSafeBackoffMs. */
  private async keepStale(key: string, entry: CacheEntry): Promise<void> {
    const retryAt = Date.now() + this.opts.failSafeBackoffMs;
    const kept: CacheEntry = { ...entry, meta: { ...entry.meta, failSafe: true, retryAt } };
    // The stale entry's own version: a write or delete since then wins.
    if (this.superseded(key, kept)) return;
    await Promise.all(this.local.map((state) => state.call('set', key, () => state.tier.set(key, kept))));
  }

  private maybeEagerRefresh<T>(
    key: string,
    entry: CacheEntry<T>,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    now: number,
  ): void {
    const threshold = this.opts.eagerRefreshThreshold;
    if (threshold === undefined || entry.createdAt === undefined) return;
    // Judged on the lifetime the entry was loaded with, not on a tier-capped freshUntil.
    const lifetime = entry.ttlMs ?? entry.freshUntil - entry.createdAt;
    if (now < entry.createdAt + lifetime * threshold) return;
    if (this.refreshing.has(key) || this.inflight.has(key)) return;
    this.refreshing.add(key);
    const p = this.refresh(key, entry, loader, options)
      .catch(() => undefined)
      .finally(() => this.refreshing.delete(key));
    this.track(p);
  }

  /**
   * An eager refresh: with a distributed lock, only the instance that takes the lease refreshes
   * (the others skip: the holder's result reaches them through the shared tiers), and the holder
   * first checks the shared tiers for a value newer than its own (another instance refreshed).
   */
  private async refresh<T>(
    key: string,
    entry: CacheEntry<T>,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
  ): Promise<void> {
    let lease: Lease | undefined;
    if (this.lock) {
      lease = await withTimeout(
        this.lock.tryAcquire(key, this.opts.lockLeaseMs),
        this.opts.tierTimeoutMs,
        'lock acquire',
      );
      if (!lease) return;
      const endpoint = options.endpoint ?? this.endpoint;
      let found: Cascaded<T> | undefined;
      try {
        found = await this.cascade<T>(key, endpoint, this.l1Sync ? 1 : 0, undefined, options.isStale);
      } catch (error) {
        await lease.release();
        throw error;
      }
      const got = found?.fresh ? found.best.entry : undefined;
      if (got && (got.createdAt ?? 0) > (entry.createdAt ?? 0)) {
        await lease.release();
        return;
      }
    }
    await this.load(key, loader, options, { entry, index: 0 }, lease);
  }

  private sharedRecent(key: string, now: number): Promise<LoadResult<unknown>> | undefined {
    const r = this.recent.get(key);
    if (!r) return undefined;
    if (r.until <= now) {
      this.recent.delete(key);
      return undefined;
    }
    return Promise.resolve(r.result);
  }

  private pruneRecent(): void {
    const now = Date.now();
    for (const [k, r] of this.recent) if (r.until <= now) this.recent.delete(k);
  }

  /**
   * The background half of a load with `backgroundWrites`: the shared tiers' writes (failures go
   * to auto-recovery; a refused value is removed everywhere and reported), then the invalidation
   * and the lease's release.
   */
  private async finishSharedWrites(key: string, entry: CacheEntry, lease: Lease | undefined): Promise<void> {
    try {
      await writeAll(this.writeHost, this.shared, key, entry);
      if (!this.superseded(key, entry))
        await this.publish({ type: 'delete', keys: [key], version: entry.version });
    } catch (error) {
      this.report(Level.External, 'load', key, error);
    } finally {
      await lease?.release();
    }
  }

  /**
   * Publishes an invalidation. One that fails (bus down, timeout) is queued, deduplicated and
   * bounded by `publishQueueMax`, and re-sent every `recoveryIntervalMs` until the bus takes it.
   */
  private async publish(message: InvalidationMessage): Promise<void> {
    if (!this.bus) return;
    try {
      await withTimeout(this.bus.publish(message), this.opts.tierTimeoutMs, 'invalidation publish');
    } catch (error) {
      this.report(Level.L2, message.type === 'clear' ? 'clear' : 'delete', undefined, error);
      this.queueUnpublished(message);
    }
  }

  /** Queues a message that failed to publish, and starts the re-send timer. */
  private queueUnpublished(message: InvalidationMessage): void {
    this.unpublished.add(message);
    if (this.publishTimer || this.closed) return;
    this.publishTimer = setInterval(() => this.track(this.republish()), this.opts.recoveryIntervalMs);
    this.publishTimer.unref?.();
  }

  /** Re-sends the queued invalidations; stops the timer once the queue is empty. */
  private async republish(): Promise<void> {
    const bus = this.bus;
    if (!bus) return;
    for (const message of this.unpublished.take()) {
      try {
        await withTimeout(bus.publish(message), this.opts.tierTimeoutMs, 'invalidation publish');
      } catch {
        this.unpublished.add(message);
      }
    }
    if (this.unpublished.empty && this.publishTimer) {
      clearInterval(this.publishTimer);
      this.publishTimer = undefined;
    }
  }

  /** An invalidation from another instance (or `resync` from the bus itself). */
  private onBusMessage(message: InvalidationMessage): void {
    if (message.type === 'resync') {
      // Messages may have been lost meanwhile: local entries can no longer be vouched for.
      this.expireLocal();
      return;
    }
    if (message.type === 'clear') {
      const version = message.version ?? nextVersion();
      observeVersion(version);
      this.clearLocalState(version);
      for (const s of this.local)
        if (s.tier.clear) this.track(s.call('clear', undefined, () => s.tier.clear!()));
      return;
    }
    const version = message.version ?? nextVersion();
    observeVersion(version);
    for (const k of message.keys) this.invalidate(k, version);
    for (const s of this.local) {
      if (message.type === 'expire' && s.tier.expire) {
        const expire = s.tier.expire.bind(s.tier);
        this.track(s.call('delete', undefined, () => expire(message.keys, version)));
      } else {
        this.track(s.removeMany(message.keys));
      }
    }
  }

  /**
   * Records a write, delete or received invalidation of `key` at `version` (a new one by default):
   * older loads, promotions and re-stores no longer write it to local tiers, and callers that come
   * next start a new load instead of joining one that started before. Returns the version.
   */
  private invalidate(key: string, version: number = nextVersion()): number {
    this.versions.record(key, version);
    this.inflight.delete(key);
    this.recent.delete(key);
    return version;
  }

  /** A clear at `version`: older versions are subsumed; loads in flight no longer share their results. */
  private clearLocalState(version: number): void {
    this.versions.clear(version);
    this.inflight.clear();
    this.recent.clear();
  }

  /** Whether `entry` is older than this instance's last write or invalidation of `key` (see {@link VersionGuard}). */
  private superseded(key: string, entry: CacheEntry): boolean {
    return this.versions.superseded(key, entry);
  }

  /** Removes `keys` from every tier (tombstones at `version` in shared tiers). */
  private async removeEverywhere(keys: readonly string[], version: number | undefined): Promise<void> {
    const options: TierDeleteOptions | undefined =
      version === undefined ? undefined : { version, tombstoneMs: this.opts.tombstoneMs };
    await Promise.all(this.states.map((state) => state.removeMany(keys, options)));
  }

  /** Local tiers: every entry stale at once (kept as fail-safe fallbacks, no longer fresh). */
  private expireLocal(): void {
    this.recent.clear();
    for (const s of this.local) {
      try {
        s.tier.expireAll?.();
      } catch (error) {
        this.report(s.tier.level, 'delete', undefined, error, s.tier.name);
      }
    }
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer || this.closed) return;
    this.recoveryTimer = setInterval(() => this.track(this.recover()), this.opts.recoveryIntervalMs);
    this.recoveryTimer.unref?.();
  }

  /** Invalidates, on tiers that are reachable again, the keys whose writes failed while they were down. */
  private async recover(): Promise<void> {
    let left = 0;
    for (const state of this.states) {
      if (state.pending.size === 0) continue;
      if (state.breaker && state.breaker.state === 'open') {
        left += state.pending.size;
        continue;
      }
      const keys = [...state.pending];
      const r = await state.removeMany(keys);
      if (r === SKIPPED) {
        left += state.pending.size;
        continue;
      }
      for (const k of keys) state.pending.delete(k);
      this.emit('recovered', { level: state.tier.level, tier: state.tier.name, keys: keys.length });
      await this.publish({ type: 'delete', keys });
      left += state.pending.size;
    }
    if (left === 0 && this.recoveryTimer) {
      clearInterval(this.recoveryTimer);
      this.recoveryTimer = undefined;
    }
  }

  private report(
    level: Level,
    operation: CacheOperation,
    key: string | undefined,
    error: unknown,
    tier?: string,
  ): void {
    if (level !== Level.External) this.metrics.error(level, operation, classifyError(error, tier));
    if (this.listenerCount('error') > 0)
      this.emit('error', { level, tier, operation, key, error } satisfies CacheErrorEvent);
  }

  private levelOf(index: number): Level {
    return (this.states[index] as GuardedTier).tier.level;
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined).finally(() => this.background.delete(q));
    this.background.add(q);
  }
}
