import type { InvalidationMessage } from './bus.js';
import type { CacheContext } from './cache-context.js';
import { InvalidationQueue, VersionGuard } from './coherence.js';
import type { CacheEntry } from './entry.js';
import { Level } from './level.js';
import type { LoadCoordinator } from './load-coordinator.js';
import type { TierDeleteOptions } from './tier.js';
import { withTimeout } from './timeout.js';
import { TagBook, type TagMode } from './tags.js';
import { nextVersion, observeVersion } from './version.js';

/**
 * The coherence side of the orchestrator: the per-key versions of this instance's writes, deletes
 * and received invalidations (no older load, promotion or re-store may undo them), publishing
 * invalidations to the other instances (with a bounded, deduplicated re-send queue while the bus
 * is down), applying the ones received, and turning local entries stale when they can no longer
 * be vouched for. Internal to `@bgc/cache-core`.
 */
export class Invalidator {
  /** Per-key versions of this instance's writes, deletes and received invalidations (local-tier guard). */
  readonly versions: VersionGuard;
  /** Invalidations that failed to publish, re-sent once the bus answers again. */
  private readonly unpublished: InvalidationQueue;
  private publishTimer: NodeJS.Timeout | undefined;
  /** The load coordinator, whose shared loads an invalidation ends (set once by the façade). */
  loads!: LoadCoordinator;

  constructor(private readonly ctx: CacheContext) {
    this.versions = new VersionGuard(ctx.opts.tombstoneMs);
    this.versions.tags = ctx.tags;
    this.unpublished = new InvalidationQueue(ctx.opts.publishQueueMax);
    const last = ctx.states.length - 1;
    this.promotes = ctx.local.some((s) => s.index < last);
  }

  /** Whether a read may promote an entry into a local tier (a local tier has a tier below it). */
  private readonly promotes: boolean;

  /** Listens to the bus (once, from the façade's constructor). */
  subscribe(): void {
    this.ctx.bus?.subscribe((message) => this.onBusMessage(message));
  }

  /**
   * Publishes an invalidation. One that fails (bus down, timeout) is queued, deduplicated and
   * bounded by `publishQueueMax`, and re-sent every `recoveryIntervalMs` until the bus takes it.
   */
  async publish(message: InvalidationMessage): Promise<void> {
    const bus = this.ctx.bus;
    if (!bus) return;
    try {
      await withTimeout(bus.publish(message), this.ctx.opts.tierTimeoutMs, 'invalidation publish');
    } catch (error) {
      this.ctx.report(Level.L2, message.type === 'clear' ? 'clear' : 'delete', undefined, error);
      this.queueUnpublished(message);
      return;
    }
    this.published(message);
  }

  /** Emits `'bus:published'` when it has a listener. */
  private published(message: InvalidationMessage): void {
    const events = this.ctx.events;
    if (events.listening.busPublished) events.tell('bus:published', { message });
  }

  /** Stops the re-send timer (on close). */
  stop(): void {
    if (this.publishTimer) clearInterval(this.publishTimer);
  }

  /** Queues a message that failed to publish, and starts the re-send timer. */
  private queueUnpublished(message: InvalidationMessage): void {
    this.unpublished.add(message);
    if (this.publishTimer || this.ctx.closed) return;
    this.publishTimer = setInterval(() => this.ctx.track(this.republish()), this.ctx.opts.recoveryIntervalMs);
    this.publishTimer.unref?.();
  }

  /** Re-sends the queued invalidations; stops the timer once the queue is empty. */
  private async republish(): Promise<void> {
    const bus = this.ctx.bus;
    if (!bus) return;
    for (const message of this.unpublished.take()) {
      try {
        await withTimeout(bus.publish(message), this.ctx.opts.tierTimeoutMs, 'invalidation publish');
      } catch {
        this.unpublished.add(message);
        continue;
      }
      this.published(message);
    }
    if (this.unpublished.empty && this.publishTimer) {
      clearInterval(this.publishTimer);
      this.publishTimer = undefined;
    }
  }

  /** An invalidation from another instance (or `resync` from the bus itself). */
  private onBusMessage(message: InvalidationMessage): void {
    const ctx = this.ctx;
    if (ctx.events.listening.busReceived) ctx.events.tell('bus:received', { message });
    if (message.type === 'resync') {
      // Messages may have been lost meanwhile: local entries can no longer be vouched for.
      this.expireLocal();
      return;
    }
    if (message.type === 'clear') {
      const version = message.version ?? nextVersion();
      observeVersion(version);
      this.clearLocalState(version);
      for (const s of ctx.local)
        if (s.tier.clear) ctx.track(s.call('clear', undefined, () => s.tier.clear!()));
      return;
    }
    const version = message.version ?? nextVersion();
    observeVersion(version);
    let keys = message.keys;
    // Tag invalidations travel as the keys of their records (see tags.ts).
    const records = TagBook.recordsIn(keys);
    if (records !== undefined) {
      this.applyTags(records.tags, message.type, version);
      keys = records.rest;
      if (keys.length === 0) return;
    }
    for (const k of keys) this.invalidate(k, version);
    this.dropLocal(keys, message.type, version);
  }

  /**
   * Removes (or, for an expire, turns stale) `keys` in the local tiers. `fallbackShared`: an expiry
   * removes them too when a shared tier keeps the stale entry as the fail-safe fallback (an L1 read
   * on the coarse clock could still see an entry expired "now" as fresh within the same tick).
   */
  dropLocal(keys: readonly string[], mode: TagMode, version: number, fallbackShared = false): void {
    const ctx = this.ctx;
    const keepStale = mode === 'expire' && !(fallbackShared && ctx.shared.length > 0);
    for (const s of ctx.local) {
      if (keepStale && s.tier.expire) {
        const expire = s.tier.expire.bind(s.tier);
        ctx.track(s.call('delete', undefined, () => expire(keys, version)));
      } else {
        ctx.track(s.removeMany(keys));
      }
    }
  }

  /**
   * A tag invalidation at `version`, made here or received: learnt (no older tagged entry reaches
   * a local tier any more), the local tiers' tagged keys evicted (or turned stale) at once, and
   * loads in flight no longer shared with new callers. When the index of tagged keys overflowed,
   * the local tiers are emptied (or all turned stale) instead.
   */
  applyTags(tags: readonly string[], mode: TagMode, version: number): void {
    const ctx = this.ctx;
    const keys = ctx.tags.learn(tags, mode, version);
    this.loads.forgetAll();
    if (keys === undefined) {
      if (mode === 'expire') {
        this.expireLocal();
        return;
      }
      for (const s of ctx.local)
        if (s.tier.clear) ctx.track(s.call('clear', undefined, () => s.tier.clear!()));
      return;
    }
    if (keys.length > 0) this.dropLocal(keys, mode, version, true);
  }

  /**
   * Records a write, delete or received invalidation of `key` at `version` (a new one by default):
   * older loads, promotions and re-stores no longer write it to local tiers, and callers that come
   * next start a new load instead of joining one that started before. Returns the version.
   */
  invalidate(key: string, version: number = nextVersion()): number {
    // The record only refuses local writes whose entry was fixed before it (loads and their
    // fail-safe re-stores, promotions). None can come when no tier promotes into a local one and
    // no load, flight or background work runs: the record would never be read (the memory-only set).
    if (this.promotes || this.ctx.background.size > 0 || !this.loads.idle || this.versions.loading)
      this.versions.record(key, version);
    this.loads.forget(key);
    return version;
  }

  /** A clear at `version`: older versions are subsumed; loads in flight no longer share their results. */
  clearLocalState(version: number): void {
    this.versions.clear(version);
    this.ctx.tags.resetIndex();
    this.loads.forgetAll();
  }

  /** Whether `entry` is older than this instance's last write or invalidation of `key` (see {@link VersionGuard}). */
  superseded(key: string, entry: CacheEntry): boolean {
    return this.versions.superseded(key, entry);
  }

  /** Removes `keys` from every tier (tombstones at `version` in shared tiers). */
  async removeEverywhere(keys: readonly string[], version: number | undefined): Promise<void> {
    const options: TierDeleteOptions | undefined =
      version === undefined ? undefined : { version, tombstoneMs: this.ctx.opts.tombstoneMs };
    await Promise.all(this.ctx.states.map((state) => state.removeOrRemember(keys, options)));
  }

  /** Local tiers: every entry stale at once (kept as fail-safe fallbacks, no longer fresh). */
  expireLocal(): void {
    this.loads.forgetRecent();
    for (const s of this.ctx.local) {
      try {
        s.tier.expireAll?.();
      } catch (error) {
        this.ctx.report(s.tier.level, 'delete', undefined, error, s.tier.name);
      }
    }
  }
}
