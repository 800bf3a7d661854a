import type { InvalidationMessage } from './bus.js';
import type { CacheContext } from './cache-context.js';
import { SKIPPED } from './tier-read.js';

/**
 * The recovery loop: every `recoveryIntervalMs` while some tier has keys whose writes or deletes
 * failed on it ({@link GuardedTier.pending}), it invalidates those keys on the tiers that are
 * reachable again, tells the other instances, and emits `'recovered'`. It stops once nothing is
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

  /** Invalidates, on tiers that are reachable again, the keys whose writes failed while they were down. */
  private async recover(): Promise<void> {
    let left = 0;
    for (const state of this.ctx.states) {
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
      if (this.ctx.events.listening.recovered)
        this.ctx.events.tell('recovered', {
          level: state.tier.level,
          tier: state.tier.name,
          keys: keys.length,
        });
      this.ctx.log?.info(
        { level: state.tier.level, tier: state.tier.name, keys: keys.length },
        'cache tier recovered: keys whose writes failed meanwhile invalidated',
      );
      await this.publish({ type: 'delete', keys });
      left += state.pending.size;
    }
    if (left === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
