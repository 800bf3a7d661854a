import type { Lease } from './bus.js';
import type { CacheContext } from './cache-context.js';
import type { GetOrLoadOptions, Loader, LoadResult } from './cache-options.js';
import type { CacheEntry } from './entry.js';
import type { ReadCascade } from './read-cascade.js';
import type { Cascaded } from './tier-read.js';
import { acquireWithin } from './lease.js';

/** Runs a load of `key` whose stale fallback is `entry`, holding `lease` when one was taken. */
export type RefreshLoad = <T>(
  key: string,
  loader: Loader<T>,
  options: GetOrLoadOptions<T>,
  entry: CacheEntry<T>,
  lease: Lease | undefined,
) => Promise<LoadResult<T>>;

/**
 * Eager refresh (part of the load coordinator): a hit past `eagerRefreshThreshold` of the lifetime
 * its entry was loaded with starts one background load of the key, through the distributed lock
 * when there is one (at most one refresh per key across instances). Internal to `@bgc/cache-core`.
 */
export class EagerRefresher {
  /** Keys with an eager refresh in flight. */
  private readonly refreshing = new Set<string>();

  constructor(
    private readonly ctx: CacheContext,
    private readonly reads: ReadCascade,
    /** Whether a load of the key is in flight here (a refresh then has nothing to add). */
    private readonly loading: (key: string) => boolean,
    private readonly load: RefreshLoad,
  ) {}

  /** Starts a refresh of `key` in the background when `entry` has passed the threshold of its lifetime. */
  maybe<T>(
    key: string,
    entry: CacheEntry<T>,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    now: number,
  ): void {
    const threshold = this.ctx.opts.eagerRefreshThreshold;
    if (threshold === undefined || entry.createdAt === undefined) return;
    // Judged on the lifetime the entry was loaded with, not on a tier-capped freshUntil.
    const lifetime = entry.ttlMs ?? entry.freshUntil - entry.createdAt;
    if (now < entry.createdAt + lifetime * threshold) return;
    if (this.refreshing.has(key) || this.loading(key)) return;
    this.refreshing.add(key);
    const p = this.refresh(key, entry, loader, options)
      .catch(() => undefined)
      .finally(() => this.refreshing.delete(key));
    this.ctx.track(p);
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
    const lock = this.ctx.lock;
    if (lock) {
      const opts = this.ctx.opts;
      lease = await acquireWithin(lock, key, opts.lockLeaseMs, opts.tierTimeoutMs);
      if (!lease) return;
      const endpoint = options.endpoint ?? this.ctx.endpoint;
      let found: Cascaded<T> | undefined;
      try {
        found = await this.reads.cascade<T>(key, endpoint, this.reads.start, undefined, options.isStale);
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
    await this.load(key, loader, options, entry, lease);
  }
}
