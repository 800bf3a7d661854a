import type { InvalidationMessage } from './bus.js';
import type { CacheContext } from './cache-context.js';
import type { CacheEntry } from './entry.js';
import type { GuardedTier } from './guarded-tier.js';
import type { TierWrite } from './tier.js';
import { SKIPPED } from './tier-read.js';
import { VERSIONS_PER_MS } from './version.js';

/**
 * The recovery loop: every `recoveryIntervalMs` while some tier has keys whose writes or deletes
 * failed on it ({@link GuardedTier.pending}), it repairs those keys on the tiers that are reachable
 * again (writes them again or deletes them, see {@link Recovery.recover}), tells the other
 * instances, and emits `'recovered'`. It stops once nothing is
 * pending. Internal to `@bgc/cache-core`.
 */
export class Recovery {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: CacheContext,
    /** Publishes an invalidation to the other instances. */
    private readonly publish: (message: InvalidationMessage) => Promise<void>,
  ) {}

  /** Starts the loop (a no-op when it runs or the cache is closed). */
  schedule(): void {
    if (this.timer || this.ctx.closed) return;
    this.timer = setInterval(() => this.ctx.track(this.recover()), this.ctx.opts.recoveryIntervalMs);
    this.timer.unref?.();
  }

  /** Stops the loop (on close). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /**
   * Repairs, on tiers that are reachable again, the keys whose writes or deletes failed while they
   * were down or slow. A failed write is written again when nothing superseded it since (no newer
   * write, delete, clear or tag invalidation known here), it is still servable, and it is younger
   * than the tombstone lifetime (the span over which this instance remembers invalidations); the
   * tier's own version check refuses it if a newer write landed. Every other key is deleted: a
   * tier may hold an older value. Under a burst, writes that timed out had often landed: deleting
   * them turned hits into misses (and upstream calls).
   */
  private async recover(): Promise<void> {
    let left = 0;
    const now = Date.now();
    const youngest = (now - this.ctx.opts.tombstoneMs) * VERSIONS_PER_MS;
    for (const state of this.ctx.states) {
      if (state.pending.size === 0) continue;
      if (state.breaker && state.breaker.state === 'open') {
        left += state.pending.size;
        continue;
      }
      const taken = [...state.pending];
      const replays: TierWrite[] = [];
      const removals: string[] = [];
      for (const [key, entry] of taken) {
        if (
          entry !== undefined &&
          entry.version !== undefined &&
          entry.version > youngest &&
          entry.staleUntil > now &&
          !this.ctx.writeHost.superseded(key, entry)
        )
          replays.push({ key, entry });
        else removals.push(key);
      }
      // Written again: the keys whose replay the tier refused as invalid are deleted instead.
      const written = replays.length > 0 ? await state.writeMany(replays) : undefined;
      if (written === SKIPPED) {
        left += state.pending.size;
        continue;
      }
      if (written !== undefined) for (const w of replays) removals.push(w.key);
      const r = removals.length > 0 ? await state.removeMany(removals) : 0;
      if (r === SKIPPED) {
        // The replays landed (unless refused: then they are removals); the removals stay pending.
        if (written === undefined) for (const w of replays) this.forget(state, w.key, w.entry);
        left += state.pending.size;
        continue;
      }
      for (const [key, entry] of taken) this.forget(state, key, entry);
      if (this.ctx.events.listening.recovered)
        this.ctx.events.tell('recovered', {
          level: state.tier.level,
          tier: state.tier.name,
          keys: taken.length,
        });
      this.ctx.log?.info(
        {
          level: state.tier.level,
          tier: state.tier.name,
          keys: taken.length,
          rewritten: written === undefined ? replays.length : 0,
        },
        'cache tier recovered: writes that failed meanwhile written again or their keys invalidated',
      );
      // Other instances drop their local copies (read from this tier while it missed the writes).
      await this.publish({ type: 'delete', keys: taken.map(([key]) => key) });
      left += state.pending.size;
    }
    if (left === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Drops `key` from the tier's pending keys unless it failed again since (another entry). */
  private forget(state: GuardedTier, key: string, entry: CacheEntry | undefined): void {
    if (state.pending.has(key) && state.pending.get(key) === entry) state.pending.delete(key);
  }
}
