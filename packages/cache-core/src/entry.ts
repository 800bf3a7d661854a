/**
 * A cached value with its absolute lifetime. Times are epoch milliseconds, so that an entry
 * promoted to a faster tier keeps its *remaining* lifetime instead of a fresh TTL.
 */
export interface CacheEntry<T = unknown> {
  /** The cached value. `undefined` is never stored; `null` is a legitimate value (negative caching). */
  value: T;
  /** Until when (epoch ms) the entry is fresh. */
  freshUntil: number;
  /**
   * Until when (epoch ms) the entry may still be served as stale (fail-safe, soft timeouts).
   * Always `>= freshUntil`; past it the entry must not be returned by any tier.
   */
  staleUntil: number;
  /** When (epoch ms) the loader produced this value. Used for release-aware freshness. */
  createdAt?: number;
  /**
   * Serialized size in bytes, when a tier knows it (the value came from L2/L3). L1 uses it as the
   * entry's cost instead of estimating.
   */
  size?: number;
  /** Free-form tags kept with the entry (e.g. `{ negative: true }` for "not found" results). */
  meta?: Readonly<Record<string, string | number | boolean>>;
  /**
   * The version of the write that produced this entry (see {@link nextVersion}): a load carries the
   * version taken when it *started*, a `set` the version taken when it was called. Tiers never let a
   * lower version replace a higher one (entry or tombstone), so a slow load or a late promotion can
   * never undo a newer write or delete. `undefined` (entries written before versions existed) counts as 0.
   */
  version?: number;
  /**
   * The fresh lifetime (ms) the entry was loaded or set with, before any tier shortened it to its
   * cap. Eager refresh is judged on `createdAt + ttlMs`, never on a capped `freshUntil`.
   */
  ttlMs?: number;
  /**
   * The tags the entry was written with (`set(key, value, { tags })`, `getOrLoad(..., { tags })`,
   * `ctx.setTags()`): `deleteByTag`/`expireByTag` of any of them invalidates the entry on every
   * tier and instance. Shared tiers persist them with the entry (see `validateTags`).
   */
  tags?: readonly string[];
}

/** Whether the entry may still be served at `now` (fresh or stale). */
export function isServable(entry: CacheEntry, now: number): boolean {
  return entry.staleUntil > now;
}

/** Whether the entry is fresh at `now`. */
export function isFresh(entry: CacheEntry, now: number): boolean {
  return entry.freshUntil > now;
}

/**
 * Builds an entry from relative durations.
 * @param ttlMs how long the value is fresh, in ms
 * @param staleMs how long after that it may still be served as stale, in ms (default 0)
 */
export function createEntry<T>(value: T, ttlMs: number, staleMs = 0, now = Date.now()): CacheEntry<T> {
  const freshUntil = now + ttlMs;
  return { value, freshUntil, staleUntil: freshUntil + staleMs, createdAt: now };
}

/**
 * Caps an entry's lifetime to what a tier keeps (e.g. L1 keeps at most 5 minutes). Never extends
 * it: the result's times are the minimum of the entry's and `now + maxTtlMs`.
 */
export function capEntry<T>(
  entry: CacheEntry<T>,
  maxTtlMs: number | undefined,
  now = Date.now(),
): CacheEntry<T> {
  if (maxTtlMs === undefined || !Number.isFinite(maxTtlMs)) return entry;
  const limit = now + maxTtlMs;
  if (entry.staleUntil <= limit) return entry;
  return { ...entry, freshUntil: Math.min(entry.freshUntil, limit), staleUntil: limit };
}
