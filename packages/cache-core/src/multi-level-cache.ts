import { CacheContext, resolveOptions } from './cache-context.js';
import type {
  CacheResult,
  GetOptions,
  GetOrLoadOptions,
  Loader,
  LoadResult,
  MultiLevelCacheOptions,
  TierHealth,
} from './cache-options.js';
import type { GuardedTier } from './guarded-tier.js';
import { Invalidator } from './invalidator.js';
import { validateKey } from './key-pattern.js';
import { Level, type TierLevel } from './level.js';
import { LoadCoordinator } from './load-coordinator.js';
import { ReadCascade } from './read-cascade.js';
import { Recovery } from './recovery.js';
import type { Tier } from './tier.js';
import type { InvalidationCallOptions, WriteCallOptions } from './call-options.js';
import { checkTags } from './entry-tags.js';
import { getSkipping, loadSkipping } from './skip-read.js';
import {
  CacheNamespace,
  type SetCallOptions,
  type SetManyCallOptions,
  type TaggedSetManyItem,
} from './namespace.js';
import { TagCheckedTier, type TagMode, tagRecordKey } from './tags.js';
import { nextVersion } from './version.js';
import { channels, traced } from './instrumentation.js';
import { setValue } from './write-fanout.js';
import { expireMany, removeMany, writeMany } from './write-many.js';
import { CacheEmitter } from './events.js';
import { errField } from './logger.js';

/*
 * The façade of the orchestrator. Its parts, each in its own module:
 * - cache-context.ts: options, guarded tiers, metrics, error reporting, background work;
 * - read-cascade.ts: the synchronous L1 reads, the cascade through the tiers, promotion (hot path);
 * - load-coordinator.ts: coalescing, the distributed lock, the loader under timeouts, fail-safe;
 *   eager-refresh.ts: eager refresh (one per key, through the lock);
 * - invalidator.ts: versions, publishing and receiving invalidations;
 * - recovery.ts: invalidating keys whose writes failed once their tier is back;
 * - write-fanout.ts and guarded-tier.ts: writes to every tier, one tier's breaker and deadline;
 * - write-many.ts: setMany, deleteMany and expireMany (one version and one bus message a batch).
 */

/** The options of a `set` given none: one shared object, not a new `{}` per call (read only). */
const NO_SET_OPTIONS: SetCallOptions = Object.freeze({});

/**
 * The multi-level cache: cascades reads L1 → L2 → L3, promotes hits to the faster tiers with their
 * remaining lifetime, writes and deletes on every tier, and coalesces loads so one upstream call
 * serves every concurrent caller (across instances with a {@link DistributedLock}).
 *
 * A tier that fails or times out is reported (metrics, `'error'` event) and skipped: a request never
 * fails because of a cache tier. Shared tiers get a per-operation timeout and a circuit breaker.
 *
 * Events ({@link CacheEvents}: `hit`, `miss`, `set`, `delete`, `expire`, `clear`, `failsafe`,
 * `timeout`, `bus:published`, `bus:received`, `error`, `circuit`, `recovered`) are typed and
 * emitted only while they have a listener.
 */
export class MultiLevelCache extends CacheEmitter {
  private readonly ctx: CacheContext;
  private readonly states: readonly GuardedTier[];
  private readonly reads: ReadCascade;
  private readonly loads: LoadCoordinator;
  private readonly coherence: Invalidator;
  private readonly recovery: Recovery;
  private readonly ownsTiers: boolean;

  constructor(options: MultiLevelCacheOptions) {
    super();
    const ctx = new CacheContext(this, options, resolveOptions(options));
    this.ctx = ctx;
    this.states = ctx.states;
    this.reads = new ReadCascade(ctx);
    this.coherence = new Invalidator(ctx);
    const coherence = this.coherence;
    this.loads = new LoadCoordinator(ctx, this.reads, coherence.versions, (key, version) =>
      coherence.publish({ type: 'delete', keys: [key], version }),
    );
    coherence.loads = this.loads;
    this.recovery = new Recovery(ctx, (message) => coherence.publish(message));
    const recovery = this.recovery;
    ctx.parts = {
      scheduleRecovery: () => recovery.schedule(),
      expireLocal: () => coherence.expireLocal(),
      superseded: (key, entry) => coherence.superseded(key, entry),
      removeEverywhere: (keys, version) => coherence.removeEverywhere(keys, version),
    };
    // A listener's exception never reaches the cache's work: logged, when there is a logger.
    this.listenerFailed = (event, error) =>
      ctx.log?.warn({ event, err: errField(error) }, 'cache event listener failed');
    this.ownsTiers = options.ownsTiers ?? true;
    const last = this.states.length - 1;
    for (const s of this.states) s.tier.attach?.({ index: s.index, lastTier: s.index === last });
    coherence.subscribe();
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
            this.ctx.report(s.tier.level, 'get', undefined, error, s.tier.name);
            throw error;
          })
        : Promise.resolve(),
    );
    const lock = this.ctx.lock;
    if (lock?.connect)
      parts.push(
        lock.connect().catch((error: unknown) => {
          this.ctx.report(Level.L2, 'load', undefined, error);
          throw error;
        }),
      );
    const results = await Promise.allSettled(parts);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  /** The tiers, fastest first. */
  get tiers(): readonly Tier[] {
    return this.states.map((s) => (s.tier instanceof TagCheckedTier ? s.tier.inner : s.tier));
  }

  /**
   * Synchronous L1 lookup, the hot path: the value of a fresh L1 hit, without a promise or an
   * entry object (through {@link Tier.getFreshValueSync} when the L1 has it), and `undefined`
   * otherwise (miss, stale entry, or no synchronous L1). Callers fall back to {@link get} or
   * {@link getOrLoad} on `undefined`. Records the same hit metric as {@link get}.
   */
  getSync<T = unknown>(key: string, endpoint: string = this.ctx.endpoint): T | undefined {
    return this.reads.getSync<T>(key, endpoint);
  }

  /**
   * Looks a key up, fastest tier first, and promotes a hit to every faster tier (keeping its
   * remaining lifetime). Resolves `{ value: undefined, level: 'external' }` on a miss everywhere.
   */
  get<T = unknown>(key: string, options: GetOptions = {}): Promise<CacheResult<T>> {
    const channel = channels.get;
    if (channel.hasSubscribers)
      return traced(channel, { operation: 'get', key }, () => this.getUntraced<T>(key, options));
    return this.getUntraced<T>(key, options);
  }

  private getUntraced<T = unknown>(key: string, options: GetOptions = {}): Promise<CacheResult<T>> {
    if (options.skip?.read !== undefined) return getSkipping<T>(this.ctx, this.reads, key, options);
    return this.reads.get<T>(key, options);
  }

  /** Looks many keys up, using each tier's batch read where it has one (one Redis round trip). */
  getMany<T = unknown>(keys: readonly string[], options: GetOptions = {}): Promise<CacheResult<T>[]> {
    const channel = channels.getMany;
    if (channel.hasSubscribers)
      return traced(channel, { operation: 'getMany', count: keys.length }, () =>
        this.getManyUntraced<T>(keys, options),
      );
    return this.getManyUntraced<T>(keys, options);
  }

  private getManyUntraced<T = unknown>(
    keys: readonly string[],
    options: GetOptions = {},
  ): Promise<CacheResult<T>[]> {
    if (options.skip?.read !== undefined)
      return Promise.all(keys.map((k) => getSkipping<T>(this.ctx, this.reads, k, options)));
    return this.reads.getMany<T>(keys, options);
  }

  /**
   * Writes a value to every tier and tells other instances to drop their local copy. With `tags`,
   * `deleteByTag`/`expireByTag` of any of them invalidates it; `skipBus` does not tell the other
   * instances; `skip.write` leaves the listed levels alone.
   */
  set<T>(key: string, value: T, options: SetCallOptions = NO_SET_OPTIONS): Promise<void> {
    const channel = channels.set;
    if (channel.hasSubscribers)
      return traced(channel, { operation: 'set', key }, () => this.setUntraced(key, value, options));
    return this.setUntraced(key, value, options);
  }

  private setUntraced<T>(key: string, value: T, options: SetCallOptions): Promise<void> {
    // Not async (see setValue): a memory-only write answers with a resolved promise.
    const written = setValue(this.ctx, this.coherence, key, value, options);
    if (!this.listening.set) return written;
    return written.then(() => {
      this.tell('set', { keys: [key], source: 'set' });
    });
  }

  /**
   * Writes many values to every tier, in one round trip per tier that has `setMany`. Each item may
   * carry its own `tags`; `options` apply to the whole batch.
   */
  async setMany<T>(items: readonly TaggedSetManyItem<T>[], options: SetManyCallOptions = {}): Promise<void> {
    const keys = await writeMany(this.ctx, this.coherence, this.states, items, options);
    if (keys !== undefined && this.listening.set) this.tell('set', { keys, source: 'set' });
  }

  /** Removes a key from every tier and from every instance's local tier. */
  delete(key: string, options: WriteCallOptions = {}): Promise<void> {
    const channel = channels.delete;
    if (channel.hasSubscribers)
      return traced(channel, { operation: 'delete', key }, () => this.deleteUntraced(key, options));
    return this.deleteUntraced(key, options);
  }

  private async deleteUntraced(key: string, options: WriteCallOptions = {}): Promise<void> {
    validateKey(key);
    await this.deleteMany([key], options);
  }

  /** Removes keys from every tier and every instance's local tier. Resolves how many tiers-keys existed at most. */
  async deleteMany(keys: readonly string[], options: WriteCallOptions = {}): Promise<number> {
    if (keys.length === 0) return 0;
    const removed = await removeMany(this.ctx, this.coherence, this.states, keys, options);
    if (this.listening.delete) this.tell('delete', { keys: [...keys] });
    return removed;
  }

  /**
   * Logical expiry: the entry turns stale at once on every tier and instance, but stays as the
   * fail-safe fallback for its stale window (a `get` misses it, a `getOrLoad` loads again and
   * answers it if the loader fails). A tier without logical expiry removes the key instead.
   */
  async expire(key: string, options: WriteCallOptions = {}): Promise<void> {
    validateKey(key);
    await this.expireMany([key], options);
  }

  /** {@link expire} of many keys, one round trip per tier. Resolves how many entries were expired at most (per tier). */
  async expireMany(keys: readonly string[], options: WriteCallOptions = {}): Promise<number> {
    if (keys.length === 0) return 0;
    const expired = await expireMany(this.ctx, this.coherence, this.states, keys, options);
    if (this.listening.expire) this.tell('expire', { keys: [...keys] });
    return expired;
  }

  /**
   * Whether a {@link get} with the same options would return a value (a fresh one; with
   * `allowStale`, a stale one too). Reads like `get` (and promotes what it finds).
   */
  async has(key: string, options: GetOptions = {}): Promise<boolean> {
    return (await this.get(key, options)).value !== undefined;
  }

  /**
   * Gets a key and removes it everywhere (every tier and instance): the value a {@link get} would
   * have returned, or `undefined`. The delete happens whether or not a value was found.
   */
  async pull<T = unknown>(key: string, options: GetOptions & WriteCallOptions = {}): Promise<T | undefined> {
    const found = await this.get<T>(key, options);
    await this.delete(key, options);
    return found.value;
  }

  /**
   * Invalidates every entry carrying one of `tags`, on every tier and instance, with one small
   * record per tag in the shared tiers whatever the number of entries: they read as misses from
   * now on. A load that started before does not write its value back where it would be served.
   * @throws {InvalidTagError} for an invalid tag.
   */
  deleteByTag(tags: readonly string[], options: InvalidationCallOptions = {}): Promise<void> {
    const channel = channels.deleteByTag;
    if (channel.hasSubscribers)
      return traced(channel, { operation: 'deleteByTag', tags }, () =>
        this.deleteByTagUntraced(tags, options),
      );
    return this.deleteByTagUntraced(tags, options);
  }

  private async deleteByTagUntraced(
    tags: readonly string[],
    options: InvalidationCallOptions = {},
  ): Promise<void> {
    const list = checkTags(tags);
    if (list === undefined) return;
    await this.invalidateTags(list, 'delete', options);
    if (this.listening.delete) this.tell('delete', { keys: [], tags: list });
  }

  /**
   * Turns every entry carrying one of `tags` stale, on every tier and instance: they stay as
   * fail-safe fallbacks for their stale window, like {@link expire}.
   * @throws {InvalidTagError} for an invalid tag.
   */
  async expireByTag(tags: readonly string[], options: InvalidationCallOptions = {}): Promise<void> {
    const list = checkTags(tags);
    if (list === undefined) return;
    await this.invalidateTags(list, 'expire', options);
    if (this.listening.expire) this.tell('expire', { keys: [], tags: list });
  }

  /**
   * The same API over the keys prefixed `name:` (nestable: `ns.namespace('x')` is `name:x:`).
   * `ns.clear()` removes that namespace only, on every tier and instance.
   * @throws {InvalidKeyError} for an invalid name (empty, `:`, control characters, too long).
   */
  namespace(name: string): CacheNamespace {
    return new CacheNamespace(this, name, undefined);
  }

  /** @internal A tag invalidation (also a namespace's clear): learnt here, recorded in the shared tiers, published. */
  async invalidateTags(
    tags: readonly string[],
    mode: TagMode,
    options: InvalidationCallOptions = {},
  ): Promise<void> {
    const version = nextVersion();
    this.coherence.applyTags(tags, mode, version);
    await this.ctx.tags.persist(this.ctx.shared, tags, mode, version);
    if (options.skipBus !== true)
      await this.coherence.publish({ type: mode, keys: tags.map((t) => tagRecordKey(t, mode)), version });
  }

  /**
   * Empties every tier that supports `clear()` and every instance's local tier. Loads, promotions
   * and refreshes that started before the clear do not write their values back afterwards.
   */
  clear(): Promise<void> {
    const channel = channels.clear;
    if (channel.hasSubscribers) return traced(channel, { operation: 'clear' }, () => this.clearUntraced());
    return this.clearUntraced();
  }

  private async clearUntraced(): Promise<void> {
    const version = nextVersion();
    this.coherence.clearLocalState(version);
    await Promise.all(
      this.states.map((state) =>
        state.tier.clear ? state.call('clear', undefined, () => state.tier.clear!({ version })) : undefined,
      ),
    );
    await this.coherence.publish({ type: 'clear', version });
    if (this.listening.clear) this.tell('clear', {});
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
  getOrLoad<T>(key: string, loader: Loader<T>, options: GetOrLoadOptions<T> = {}): Promise<LoadResult<T>> {
    const channel = channels.getOrLoad;
    if (channel.hasSubscribers)
      return traced(channel, { operation: 'getOrLoad', key }, () =>
        this.getOrLoadUntraced<T>(key, loader, options),
      );
    return this.getOrLoadUntraced<T>(key, loader, options);
  }

  private getOrLoadUntraced<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T> = {},
  ): Promise<LoadResult<T>> {
    if (options.tags !== undefined) {
      try {
        checkTags(options.tags);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (options.skip?.read !== undefined)
      return loadSkipping(this.ctx, this.reads, this.loads, key, loader, options);
    return this.loads.getOrLoad(key, loader, options);
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
    const background = this.ctx.background;
    while (background.size > 0) await Promise.allSettled([...background]);
  }

  /** Stops timers, waits for background work, and closes the tiers and the bus (when owned). */
  async close(): Promise<void> {
    const ctx = this.ctx;
    if (ctx.closed) return;
    ctx.closed = true;
    this.recovery.stop();
    this.coherence.stop();
    this.loads.abortAll(new Error('the cache was closed'));
    await this.flush();
    if (!this.ownsTiers) return;
    await ctx.bus?.close().catch((error: unknown) => ctx.report(Level.L2, 'clear', undefined, error));
    await ctx.lock?.close?.().catch((error: unknown) => ctx.report(Level.L2, 'load', undefined, error));
    await Promise.all(
      this.states.map((s) =>
        s.tier.close().catch((error: unknown) => ctx.report(s.tier.level, 'clear', undefined, error)),
      ),
    );
  }
}
