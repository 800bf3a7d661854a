import type { CacheContext } from './cache-context.js';
import type { CacheResult, GetOptions, GetOrLoadOptions, Loader, LoadResult } from './cache-options.js';
import { validateKey } from './key-pattern.js';
import type { LoadCoordinator } from './load-coordinator.js';
import type { ReadCascade } from './read-cascade.js';
import { tiersFor } from './call-options.js';
import type { CacheEntry } from './entry.js';
import { Level, type TierLevel } from './level.js';
import { entryResult, missResult } from './result.js';
import { SKIPPED } from './tier-read.js';

/**
 * A lookup that leaves the levels of `skip` unread (`get(key, { skip: { read: ['l1'] } })`): the
 * other tiers are asked in order, through their guards, and the first fresh entry (or, with
 * `allowStale`, the freshest stale one) answers. Such a read does not promote what it finds: the
 * skipped levels are left as they are. Off the hot path: only calls with `skip.read` come here.
 * Internal to `@bgc/cache-core`.
 */
export async function readSkipping<T>(
  ctx: CacheContext,
  key: string,
  skip: readonly Level[],
  allowStale: boolean,
  endpoint: string,
): Promise<{ result: CacheResult<T>; entry?: CacheEntry<T> }> {
  let stale: { entry: CacheEntry<T>; level: TierLevel } | undefined;
  for (const state of tiersFor(ctx.states, skip, 'skip.read')) {
    const got = await state.call('get', key, () => state.tier.get(key));
    const e = got === SKIPPED ? undefined : (got as CacheEntry<T> | undefined);
    const now = Date.now();
    if (e && e.staleUntil > now) {
      if (e.freshUntil > now) {
        ctx.metrics.hit(state.tier.level, ctx.connector, endpoint);
        return { result: entryResult(e, state.tier.level, false), entry: e };
      }
      if (!stale || e.staleUntil > stale.entry.staleUntil) stale = { entry: e, level: state.tier.level };
    }
    ctx.metrics.miss(state.tier.level, ctx.connector, endpoint);
  }
  if (stale && allowStale) return { result: entryResult(stale.entry, stale.level, true), entry: stale.entry };
  ctx.metrics.miss(Level.External, ctx.connector, endpoint);
  return { result: missResult<T>() };
}

/** A `get` with `skip.read` (see {@link readSkipping}); announced like any read (events, metrics). */
export async function getSkipping<T>(
  ctx: CacheContext,
  reads: ReadCascade,
  key: string,
  options: GetOptions,
): Promise<CacheResult<T>> {
  validateKey(key);
  const endpoint = options.endpoint ?? ctx.endpoint;
  const { result } = await readSkipping<T>(
    ctx,
    key,
    options.skip?.read ?? [],
    options.allowStale === true,
    endpoint,
  );
  reads.announce(key, result);
  return result;
}

/**
 * A `getOrLoad` with `skip.read`: a fresh value in the levels read answers; otherwise a load
 * that ignores what the skipped levels hold (`forceFresh`: still coalesced, the cached value
 * only its fail-safe fallback).
 */
export async function loadSkipping<T>(
  ctx: CacheContext,
  reads: ReadCascade,
  loads: LoadCoordinator,
  key: string,
  loader: Loader<T>,
  options: GetOrLoadOptions<T>,
): Promise<LoadResult<T>> {
  validateKey(key);
  const endpoint = options.endpoint ?? ctx.endpoint;
  const r = await readSkipping<T>(ctx, key, options.skip?.read ?? [], false, endpoint);
  if (r.entry !== undefined && !options.isStale?.(r.entry)) {
    const result = r.result as LoadResult<T>;
    reads.announce(key, result);
    return result;
  }
  return loads.getOrLoad(key, loader, { ...options, skip: undefined, forceFresh: true });
}
