import type { CacheResult, LoadResult } from './cache-options.js';
import type { CacheEntry } from './entry.js';
import { Level } from './level.js';

/**
 * The results the orchestrator answers, built in one place so that every result has the same
 * shape (one hidden class on the hot path): `value`, `level`, `stale`, then the entry's times.
 * Internal to `@bgc/cache-core`.
 */

/**
 * The result of a value served from `entry` at `level`. `createdAt`: the entry's, or for an entry
 * stored without one (a tier written directly) its fresh-until less its loaded lifetime
 * (`freshUntil` when that is unknown too).
 */
export function entryResult<T>(entry: CacheEntry<T>, level: Level, stale: boolean): LoadResult<T> {
  return {
    value: entry.value,
    level,
    stale,
    createdAt: entry.createdAt ?? entry.freshUntil - (entry.ttlMs ?? 0),
    freshUntil: entry.freshUntil,
    staleUntil: entry.staleUntil,
  };
}

/** The result of a miss everywhere: no value, no times. */
export function missResult<T>(): CacheResult<T> {
  return {
    value: undefined,
    level: Level.External,
    stale: false,
    createdAt: undefined,
    freshUntil: undefined,
    staleUntil: undefined,
  };
}

/**
 * The result of a loader's value that was answered but not stored (`ctx.skip()`, a value no tier
 * kept): produced now, fresh for no time.
 */
export function uncachedResult<T>(value: T, now: number): LoadResult<T> {
  return { value, level: Level.External, stale: false, createdAt: now, freshUntil: now, staleUntil: now };
}
