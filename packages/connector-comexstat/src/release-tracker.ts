import type { CacheEntry } from '@bgc/cache-core';
import type { ComexStatClient } from './comexstat-client.js';
import type { ComexStatCache } from './comexstat-connector.js';
import type { ComexStatRelease } from './comexstat-types.js';

/** Options of {@link ReleaseTracker}. */
export interface ReleaseTrackerOptions {
  client: ComexStatClient;
  cache: ComexStatCache;
  /** Cache key of the shared release (`<prefix>meta:dates-updated`). */
  key: string;
  /** How often the release is checked for the whole cluster, ms (also its TTL in the cache). */
  intervalMs: number;
  /** Fail-safe window of the cached release, ms. */
  staleTtlMs: number;
  /** `false`: the tracker never calls and `current` stays `undefined`. */
  enabled: boolean;
  /** Clock, epoch ms. */
  now: () => number;
  /** Failures of background checks. */
  onError: (error: unknown) => void;
  /**
   * Cluster-wide claim (see `SharedMerge.claim`): only the instance that wins calls the upstream;
   * the others read its result from the shared cache a few seconds later.
   */
  claim?: (name: string, ttlMs: number) => Promise<boolean>;
  /**
   * How long after construction the first upstream check becomes due, ms (the copy in the shared
   * cache is read at once). A new deployment's first requests are cold misses: the check waits
   * behind them instead of taking the spacer's free slot just before they arrive. @default 0
   */
  firstCheckAfterMs?: number;
}

/** How soon an instance that lost the claim reads the shared result, ms. */
const CLAIM_RETRY_MS = 5_000;

/**
 * Knows the latest ComexStat release (`GET /general/dates/updated`) without ever making a request
 * wait for it: `current` is read synchronously; `poke()` starts a background check when one is due.
 * The result lives in the shared cache (TTL = the interval), so the cluster checks about once per
 * interval, at the spacer's `metadata` priority. Until it is known, the seed's calendar TTLs apply.
 *
 * The release instant (`updatedAt`) is the end of the release day (Brasília time) or the moment the
 * release was first seen, whichever is earlier: data fetched before it may predate the release.
 */
export class ReleaseTracker {
  private known: ComexStatRelease | undefined;
  private checkedAt: number;
  private pending: Promise<ComexStatRelease | undefined> | undefined;
  private readShared = false;
  private sharing: Promise<unknown> | undefined;

  constructor(private readonly options: ReleaseTrackerOptions) {
    this.checkedAt = options.now() - options.intervalMs + (options.firstCheckAfterMs ?? 0);
  }

  /** The latest release known, `undefined` until the first check answers (or when disabled). */
  get current(): ComexStatRelease | undefined {
    return this.known;
  }

  /**
   * Starts, in the background: a read of the shared copy (once, no upstream call), and the
   * upstream check when one is due. Never waits and never throws.
   */
  poke(): void {
    if (!this.options.enabled || this.pending || this.sharing) return;
    if (!this.readShared) {
      this.readShared = true;
      this.sharing = this.adoptShared().finally(() => {
        this.sharing = undefined;
      });
      return;
    }
    if (this.checkedAt + this.options.intervalMs > this.options.now()) return;
    void this.check();
  }

  private async adoptShared(): Promise<ComexStatRelease | undefined> {
    try {
      const cached = await this.options.cache.getMany<ComexStatRelease>([this.options.key]);
      this.adopt(cached[0]?.value);
    } catch (error) {
      this.options.onError(error);
    }
    return this.known;
  }

  /**
   * Checks now (joining a check under way) and resolves the release, `undefined` when it cannot be
   * read. For jobs (warming, demos), never for requests.
   */
  check(): Promise<ComexStatRelease | undefined> {
    if (!this.options.enabled) return Promise.resolve(undefined);
    this.pending ??= (this.sharing ?? Promise.resolve())
      .then(() => this.run())
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  private async run(): Promise<ComexStatRelease | undefined> {
    const o = this.options;
    // Checked (or failed): the next check is one interval away either way.
    this.checkedAt = o.now();
    try {
      const cached = await o.cache.getMany<ComexStatRelease>([o.key]);
      const shared = cached[0]?.value;
      if (shared) this.adopt(shared);
      if (o.claim && !(await o.claim('dates-updated', Math.min(o.intervalMs, 60_000)))) {
        // Another instance checks for the cluster: read its result soon.
        if (!shared) this.checkedAt = o.now() - o.intervalMs + CLAIM_RETRY_MS;
        return this.known;
      }
      const r = await o.cache.getOrLoad<ComexStatRelease>(o.key, (ctx) => this.load(ctx.stale), {
        ttlMs: o.intervalMs,
        staleTtlMs: o.staleTtlMs,
        endpoint: 'dates_updated',
      });
      this.adopt(r.value);
    } catch (error) {
      o.onError(error);
    }
    return this.known;
  }

  /** Resolves when no check is under way. */
  async settled(): Promise<void> {
    await this.sharing;
    await this.pending;
  }

  private adopt(release: ComexStatRelease | undefined): void {
    if (!release || typeof release.year !== 'number') return;
    const k = this.known;
    // Never go back to an older release (a stale copy read from a lagging tier).
    if (k && (release.year < k.year || (release.year === k.year && release.month < k.month))) return;
    this.known = release;
  }

  private async load(stale: CacheEntry<ComexStatRelease> | undefined): Promise<ComexStatRelease> {
    const seen = this.options.now();
    const fresh = await this.options.client.datesUpdated({ priority: 'metadata' });
    const previous = [stale?.value, this.known].find((r) => r?.updated === fresh.updated);
    // First detection: the instant stays the one recorded when this release was first seen.
    const updatedAt = Math.min(fresh.updatedAt, previous?.updatedAt ?? seen);
    return { ...fresh, updatedAt };
  }
}
