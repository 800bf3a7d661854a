import type { CacheLogger } from './logger.js';
import type { DistributedLock, InvalidationBus } from './bus.js';
import type { CacheEntry } from './entry.js';
import type { Level } from './level.js';
import type { CacheOperation, MetricsAdapter } from './metrics.js';
import type { ReadSkipOptions, WriteCallOptions } from './call-options.js';
import type { TagOptions, TagWriteOptions } from './tags.js';
import type { Tier } from './tier.js';

/** Options of {@link MultiLevelCache}. Durations in ms. */
export interface MultiLevelCacheOptions extends TagOptions {
  /** The tiers, fastest first (e.g. memory, Redis, PostgreSQL). At least one. */
  tiers: readonly Tier[];
  /** Where hits, misses, latencies, promotions and errors are reported. @default NOOP_METRICS */
  metrics?: MetricsAdapter;
  /** `connector` label of hit/miss metrics. @default 'default' */
  connector?: string;
  /** `endpoint` label of hit/miss metrics, overridable per call. @default 'default' */
  endpoint?: string;
  /** Fresh lifetime of entries written without a `ttlMs`. @default 300000 (5 min) */
  defaultTtlMs?: number;
  /**
   * Fail-safe window: how long past fresh-until an entry is kept and may be served when the loader
   * fails or is slow. @default 0
   */
  staleTtlMs?: number;
  /** Fresh lifetime of `null` loader results (negative caching). @default 60000 */
  negativeTtlMs?: number;
  /**
   * Random reduction of each fresh TTL, as a fraction (0.1 = up to 10% shorter), so that keys
   * written together do not expire together. @default 0
   */
  ttlJitter?: number;
  /**
   * How long a settled load stays shareable by callers that arrive just after it when no tier could
   * store it (tiers down): they get it without another upstream call. Otherwise they read it from
   * the tiers. Writes and invalidations end the window. @default 10000
   */
  coalesceWindowMs?: number;
  /**
   * Cooperative time slicing of the answers of misses that waited (for a load, or for another
   * instance's load through the lock). Node goes on with every caller whose promise settled in one
   * I/O callback in one go: a reply or message that answers a thousand waiting misses runs a
   * thousand requests to their responses before the process reads its next request, and the
   * requests that arrive meanwhile wait behind them. Once the current turn of the event loop has
   * spent this long (or let 64 of them go on at once), the next waiters go on one at a time while
   * the turn has budget left, the rest in later turns, this long's worth per turn (at least one),
   * in the order they were answered, with I/O read in between. Hits, and misses answered by a
   * shared tier's read without waiting, are never held. The line is shared by every cache of the
   * process (one event loop). `0` turns it off.
   * @default 5
   */
  turnBudgetMs?: number;
  /** Timeout of each operation on a shared (remote) tier. @default 1000 */
  tierTimeoutMs?: number;
  /**
   * When a stale entry exists and the loader takes longer than this, answer with the stale value
   * and let the load finish in the background; the same bound applies to waiting for another
   * instance's load of the key (the distributed lock). When a tier did not answer the read before
   * the load (failed, timed out, circuit open), the tiers are read again once this passes (or as
   * soon as the load fails) and a value found then is answered. `0` answers stale at once.
   * @default 1000
   */
  softTimeoutMs?: number;
  /** Longest time a caller waits for a loader; then it gets the stale value or a TimeoutError. @default 10000 */
  hardTimeoutMs?: number;
  /** After a failed load served stale, wait this long before the next load attempt. @default 30000 */
  failSafeBackoffMs?: number;
  /**
   * Refresh an entry in the background when it is read after this fraction of its fresh lifetime
   * (e.g. 0.8). `undefined` disables eager refresh. @default undefined
   */
  eagerRefreshThreshold?: number;
  /** Circuit breaker per shared tier; `false` disables it. @default { failureThreshold: 3, cooldownMs: 5000 } */
  circuitBreaker?: { failureThreshold?: number; cooldownMs?: number } | false;
  /** Cross-instance invalidation of local tiers. */
  bus?: InvalidationBus;
  /** Cross-instance coalescing of loads (one loader call across instances). */
  lock?: DistributedLock;
  /** Lease time of the distributed lock, renewed while the load runs. @default 15000 */
  lockLeaseMs?: number;
  /**
   * Longest wait for another instance's load before loading here (with a stale value at hand,
   * `softTimeoutMs` ends the wait first, answering it). @default hardTimeoutMs
   */
  lockWaitMs?: number;
  /** Most keys remembered per tier for auto-recovery after an outage. @default 10000 */
  recoveryMaxKeys?: number;
  /** How often failed writes are retried (as invalidations) on a recovering tier. @default 2000 */
  recoveryIntervalMs?: number;
  /** Close the tiers, bus and lock on {@link MultiLevelCache.close}. @default true */
  ownsTiers?: boolean;
  /**
   * How long (ms) a delete's tombstone lives in the shared tiers, and how long this instance
   * remembers a key's last write or delete version: a load, promotion or refresh that started
   * before keeps its older value out until then. Must outlast the longest load that can still
   * write back. @default max(60000, 2 × (hardTimeoutMs + lockLeaseMs))
   */
  tombstoneMs?: number;
  /**
   * Most invalidation keys kept for re-publishing while the bus is down (deduplicated; the oldest
   * are dropped past it, and a `clear` replaces them all). @default 10000
   */
  publishQueueMax?: number;
  /**
   * Loads answer once the local tiers (L1) hold the value; the shared tiers' writes, the
   * invalidation and the lock's release finish in the background (failed writes go to
   * auto-recovery; `flush()` waits for them). Only with at least one local and one shared tier.
   * `set`/`setMany` always wait for every tier. `false`: a load answers once every tier holds
   * the value. @default true
   */
  backgroundWrites?: boolean;
  /**
   * A pino-compatible logger (`child`, `debug`, `info`, `warn`, `error`). The cache logs through
   * `logger.child({ pkg: '@bgc/cache-core' })`: tier and loader failures and bus failures at
   * `warn`, a circuit opening at `error`, its closing and recoveries at `info`.
   * @default silent
   */
  logger?: CacheLogger;
}

/**
 * The result of a lookup. A value comes with the times of its entry (epoch ms), from which a
 * server derives `Cache-Control: max-age` (`freshUntil - now`), `Age` (`now - createdAt`) and
 * `stale-if-error` (`staleUntil - freshUntil`).
 */
export interface CacheResult<T> {
  /** The value, or `undefined` on a miss everywhere. */
  value: T | undefined;
  /** Where it was found; `Level.External` on a miss (or when the loader answered). */
  level: Level;
  /** Whether the value is past its fresh-until time (served by fail-safe or a soft timeout). */
  stale: boolean;
  /**
   * When the value was produced (loaded or `set`), epoch ms; `undefined` on a miss. An entry a
   * tier holds without one (written to the tier directly) answers `freshUntil - ttlMs`.
   */
  createdAt: number | undefined;
  /** Until when the value is fresh, epoch ms (as the answering tier holds it); `undefined` on a miss. */
  freshUntil: number | undefined;
  /** Until when the value may be served stale (fail-safe), epoch ms; `undefined` on a miss. */
  staleUntil: number | undefined;
}

/**
 * The result of {@link MultiLevelCache.getOrLoad}: always a value and its times. A loaded value
 * that was not cached (`ctx.skip()`) has `createdAt`, `freshUntil` and `staleUntil` all at the
 * time it was answered.
 */
export interface LoadResult<T> extends CacheResult<T> {
  value: T;
  createdAt: number;
  freshUntil: number;
  staleUntil: number;
}

/** Options of one write. */
export interface SetOptions extends TagWriteOptions, WriteCallOptions {
  /** Fresh lifetime in ms. @default the cache's defaultTtlMs */
  ttlMs?: number;
  /** Fail-safe window after fresh-until, in ms. @default the cache's staleTtlMs */
  staleTtlMs?: number;
}

/** One item of {@link MultiLevelCache.setMany}. */
export interface SetManyItem<T = unknown> extends SetOptions {
  key: string;
  value: T;
}

/** What a loader may set for the entry it produces ({@link LoaderContext.setOptions}). */
export interface LoaderEntryOptions {
  /** Fresh lifetime of this value, ms (overrides the call's and the cache's `ttlMs`). */
  ttlMs?: number;
  /** Fail-safe window after fresh-until of this value, ms. */
  staleTtlMs?: number;
  /**
   * Metadata kept with the entry (e.g. `{ etag: '"abc"', lastModified: '...' }`) and handed back
   * as `ctx.stale.meta` to the next load of the key: what a conditional request needs. Strings,
   * numbers and booleans only (see `validateMeta`); `failSafe` and `retryAt` are reserved.
   */
  meta?: Readonly<Record<string, string | number | boolean>>;
}

/** What a loader receives: the key, an abort signal, the stale entry, and ways to adapt the result. */
export interface LoaderContext<T> {
  /** The key being loaded. */
  key: string;
  /**
   * Aborted when the cache closes. A load outliving the hard timeout is not aborted: it goes on in
   * the background and fills the tiers for the next caller.
   */
  signal: AbortSignal;
  /**
   * The cached entry this load replaces, when one exists (stale, or fresh under `forceFresh` and
   * eager refresh), with the `meta` an earlier load set (e.g. an ETag for a conditional request).
   */
  stale: CacheEntry<T> | undefined;
  /**
   * Sets the fresh lifetime (ms) of the value this load returns, e.g. from the upstream's
   * `Cache-Control: max-age`. @throws {InvalidValueError} for a negative or non-finite value.
   */
  setTtl(ttlMs: number): void;
  /** Sets the lifetime and metadata of the entry this load produces. @throws {InvalidValueError} on a bad value. */
  setOptions(options: LoaderEntryOptions): void;
  /**
   * The value this load returns is answered to its callers but not cached (e.g. a partial
   * upstream answer): no tier is written, and the next call loads again.
   */
  skip(): void;
  /**
   * Fails the load with `error` (thrown): like a throwing loader, the callers get the stale value
   * when one exists (kept, and no new load for `failSafeBackoffMs`), else `error`.
   * Use as `return ctx.fail(new Error('upstream answered 503'))`.
   */
  fail(error: unknown): never;
  /**
   * The stale value is still right (e.g. the upstream answered `304 Not Modified`): it is stored
   * again with a new fresh lifetime (`setTtl`, the call's or the cache's) and a new version, and
   * returned. Use as `return ctx.notModified()`.
   * @throws {InvalidValueError} (`E_INVALID_VALUE`) when there is no stale entry to keep.
   */
  notModified(): T;
  /**
   * Sets the tags of the entry this load stores (replacing the `tags` option of the call), e.g.
   * tags known only from the loaded value. Same rules as {@link SetOptions.tags}.
   * @throws {InvalidTagError} (`E_INVALID_TAG`) for an invalid tag.
   */
  setTags(tags: readonly string[]): void;
}

/** Loads a value from the upstream. Resolve `null` for "not found" (cached for negativeTtlMs). */
export type Loader<T> = (ctx: LoaderContext<T>) => Promise<T> | T;

/**
 * Per-call options of a load; each one left out is the cache's option of the same name
 * ({@link MultiLevelCacheOptions}). Durations in ms.
 */
export interface LoadCallOptions {
  /** When a stale entry exists, answer it once the loader (or another instance's load) takes longer than this. */
  softTimeoutMs?: number;
  /** Longest wait for the loader; then the stale value or a TimeoutError. */
  hardTimeoutMs?: number;
  /** Fail-safe window of the loaded entry. */
  staleTtlMs?: number;
  /** After a failed load served stale, no new load of the key for this long. */
  failSafeBackoffMs?: number;
  /** Longest wait for another instance's load of the key before loading here. */
  lockWaitMs?: number;
  /**
   * Load even when a fresh value is cached (still coalesced with the loads of the key in flight).
   * The cached value is only the fail-safe fallback: answered (`stale: true`) when the loader fails
   * or exceeds the hard timeout, never on a soft timeout. @default false
   */
  forceFresh?: boolean;
}

/** Options of {@link MultiLevelCache.getOrLoad}. */
export interface GetOrLoadOptions<T> extends LoadCallOptions, TagWriteOptions, ReadSkipOptions {
  /** Fresh lifetime in ms, fixed or computed from the loaded value. */
  ttlMs?: number | ((value: T) => number);
  /** `endpoint` metric label for this call. */
  endpoint?: string;
  /** Treat a fresh cached entry as stale when this returns true (e.g. release-aware freshness). */
  isStale?: (entry: CacheEntry<T>) => boolean;
}

/** Options of {@link MultiLevelCache.get}. */
export interface GetOptions extends ReadSkipOptions {
  /** `endpoint` metric label for this call. */
  endpoint?: string;
  /** Also return a stale (past fresh-until) entry, flagged `stale: true`. @default false */
  allowStale?: boolean;
}

/** Emitted as `'error'` (only when a listener exists) for every tier or background failure. */
export interface CacheErrorEvent {
  level: Level;
  tier?: string;
  operation: CacheOperation;
  key?: string;
  error: unknown;
}

/** Health of one tier. */
export type TierHealth = 'up' | 'degraded' | 'down';

/** The event map of {@link MultiLevelCache}: see `events.ts`. */
export type { CacheEvents } from './events.js';
