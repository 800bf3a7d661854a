import { performance } from 'node:perf_hooks';
import type { CacheContext } from './cache-context.js';
import type { CacheResult, GetOptions } from './cache-options.js';
import { coarseNow } from './clock.js';
import { type CacheEntry, capEntry } from './entry.js';
import type { GuardedTier } from './guarded-tier.js';
import { validateKey } from './key-pattern.js';
import type { CacheEmitter, EventSwitches } from './events.js';
import { Level, type TierLevel } from './level.js';
import type { MetricsAdapter } from './metrics.js';
import { entryResult, missResult } from './result.js';
import type { ReadCallbacks, Tier } from './tier.js';
import {
  type CascadeNotes,
  type Cascaded,
  CascadeRead,
  type OperationDeadline,
  ReadAttempt,
  type ReadHost,
  ResultRead,
  SKIPPED,
  type TierRead,
} from './tier-read.js';
import { armDeadline } from './timeout.js';

/** Within this many ms of an entry's fresh-until or stale-until, reads compare with `Date.now()`. */
const EXACT_CLOCK_WITHIN_MS = 1000;

/** An L1 that answers fresh values directly ({@link Tier.getFreshValueSync}). */
type FreshValueTier = Tier & Required<Pick<Tier, 'getFreshValueSync'>>;

/**
 * The read side of the orchestrator, its hot path: the synchronous L1 lookups, the cascade through
 * the tiers (one {@link TierRead} object per read, answered by callbacks rather than promises),
 * batch reads, and the promotion of hits to the faster tiers. Internal to `@bgc/cache-core`.
 */
export class ReadCascade implements ReadHost {
  /** The L1's synchronous read, when the first tier is local and has one. */
  readonly l1Sync: ((key: string) => CacheEntry | undefined) | undefined;
  /** The L1 tier when it answers fresh values directly. */
  private readonly l1Fresh: FreshValueTier | undefined;
  /** Where a cascade starts: after the L1 when the L1 was read synchronously. */
  readonly start: number;
  private readonly states: readonly GuardedTier[];
  private readonly metrics: MetricsAdapter;
  private readonly connector: string;
  /** Where events go, and which have listeners. */
  private readonly events: CacheEmitter;
  private readonly listening: EventSwitches;
  private l1Reads = 0;

  constructor(private readonly ctx: CacheContext) {
    this.states = ctx.states;
    this.metrics = ctx.metrics;
    this.connector = ctx.connector;
    this.events = ctx.events;
    this.listening = ctx.events.listening;
    const first = ctx.states[0];
    this.l1Sync = first && !first.shared ? first.tier.getSync?.bind(first.tier) : undefined;
    this.l1Fresh = this.l1Sync && first?.tier.getFreshValueSync ? (first.tier as FreshValueTier) : undefined;
    this.start = this.l1Sync ? 1 : 0;
  }

  /** `MultiLevelCache.getSync`: the value of a fresh L1 hit, else `undefined`. */
  getSync<T>(key: string, endpoint: string): T | undefined {
    const now = coarseNow();
    let value: T | undefined;
    if (this.l1Fresh) value = this.readL1Fresh<T>(key, now, endpoint);
    else {
      const e = this.readL1Sync<T>(key, now, endpoint);
      value = e !== undefined && e.freshUntil > now ? e.value : undefined;
    }
    if (value !== undefined && this.listening.hit) this.hit(key, Level.L1, false);
    return value;
  }

  /** `MultiLevelCache.get`. */
  get<T>(key: string, options: GetOptions): Promise<CacheResult<T>> {
    // Not an async function: an L2 hit resolves the returned promise straight from the tier's
    // reply (see readFrom), two promise hops fewer than awaiting a cascade.
    try {
      const endpoint = options.endpoint ?? this.ctx.endpoint;
      const now = coarseNow();
      // The entry, not only its value (getFreshValueSync): the result carries its times.
      const fast = this.readL1Sync<T>(key, now, endpoint);
      if (fast && (fast.freshUntil > now || options.allowStale)) {
        const stale = fast.freshUntil <= now;
        if (this.listening.hit) this.hit(key, Level.L1, stale);
        return Promise.resolve(entryResult(fast, Level.L1, stale));
      }
      validateKey(key);
      return new Promise((resolve, reject) => {
        const allowStale = options.allowStale === true;
        const listened = this.listening.hit || this.listening.miss;
        const done = listened
          ? (r: CacheResult<T>) => {
              this.announce(key, r);
              resolve(r);
            }
          : resolve;
        this.startRead(new ResultRead<T>(this, key, endpoint, fast, allowStale, done, reject), this.start);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** `MultiLevelCache.getMany`: each tier's batch read where it has one. */
  async getMany<T>(keys: readonly string[], options: GetOptions): Promise<CacheResult<T>[]> {
    const endpoint = options.endpoint ?? this.ctx.endpoint;
    for (const k of keys) validateKey(k);
    const results: CacheResult<T>[] = keys.map(() => missResult<T>());
    let missing = keys.map((_, i) => i);
    const hits: { i: number; entry: CacheEntry<T>; index: number }[] = [];
    for (const state of this.states) {
      if (missing.length === 0) break;
      const ks = missing.map((i) => keys[i] as string);
      const got = await state.call(
        'get_many',
        undefined,
        () => (state.tier.getMany ? state.tier.getMany(ks) : Promise.all(ks.map((k) => state.tier.get(k)))),
        ks.length,
      );
      const still: number[] = [];
      const now = Date.now();
      missing.forEach((i, j) => {
        const e = got === SKIPPED ? undefined : (got[j] as CacheEntry<T> | undefined);
        if (e && e.staleUntil > now && (e.freshUntil > now || options.allowStale)) {
          this.metrics.hit(state.tier.level, this.connector, endpoint);
          results[i] = entryResult(e, state.tier.level, e.freshUntil <= now);
          if (state.index > 0) hits.push({ i, entry: e, index: state.index });
        } else {
          this.metrics.miss(state.tier.level, this.connector, endpoint);
          still.push(i);
        }
      });
      missing = still;
    }
    for (let n = 0; n < missing.length; n++) this.metrics.miss(Level.External, this.connector, endpoint);
    if (hits.length > 0) this.ctx.track(this.promoteMany(keys, hits));
    if (this.listening.hit || this.listening.miss)
      for (let i = 0; i < keys.length; i++) this.announce(keys[i] as string, results[i] as CacheResult<T>);
    return results;
  }

  /** Emits `'hit'` (a listener exists: the caller checked). */
  hit(key: string, level: TierLevel, stale: boolean): void {
    this.events.tell('hit', { key, level, stale });
  }

  /** Emits `'hit'` or `'miss'` for the result of a lookup of `key`, as they have listeners. */
  announce(key: string, result: CacheResult<unknown>): void {
    const level = result.level;
    if (level === Level.External) {
      if (this.listening.miss) this.events.tell('miss', { key });
    } else if (this.listening.hit) this.events.tell('hit', { key, level, stale: result.stale });
  }

  /** The value of a fresh L1 entry through {@link Tier.getFreshValueSync}, with the hit metric. */
  readL1Fresh<T>(key: string, now: number, endpoint: string): T | undefined {
    const tier = this.l1Fresh as FreshValueTier;
    let value: unknown;
    const timed = (++this.l1Reads & 15) === 0;
    const t0 = timed ? performance.now() : 0;
    try {
      value = tier.getFreshValueSync(key, now);
    } catch (error) {
      this.ctx.report(Level.L1, 'get', key, error);
      return undefined;
    }
    if (value === undefined) return undefined;
    if (timed) this.metrics.latency(Level.L1, 'get', (performance.now() - t0) / 1000);
    this.metrics.hit(Level.L1, this.connector, endpoint);
    return value as T;
  }

  /** The L1's servable (fresh or stale) entry, counting a fresh hit; `undefined` without a sync L1. */
  readL1Sync<T>(key: string, now: number, endpoint: string): CacheEntry<T> | undefined {
    const sync = this.l1Sync;
    if (!sync) return undefined;
    let e: CacheEntry | undefined;
    // L1 reads take ~100 ns: timing each would double their cost, so 1 in 16 is timed.
    const timed = (++this.l1Reads & 15) === 0;
    const t0 = timed ? performance.now() : 0;
    try {
      e = sync(key);
    } catch (error) {
      this.ctx.report(Level.L1, 'get', key, error);
      return undefined;
    }
    if (timed) this.metrics.latency(Level.L1, 'get', (performance.now() - t0) / 1000);
    if (e && e.staleUntil > now) {
      if (e.freshUntil > now) this.metrics.hit(Level.L1, this.connector, endpoint);
      return e as CacheEntry<T>;
    }
    return undefined;
  }

  /**
   * Reads tiers from `start` on; stops at the first fresh entry, promotes it, and remembers the
   * freshest stale entry seen for fail-safe (`staleSoFar`, from tier `staleIndex`, to begin with).
   */
  cascade<T>(
    key: string,
    endpoint: string,
    start: number,
    staleSoFar: CacheEntry<T> | undefined,
    isStale?: (entry: CacheEntry<T>) => boolean,
    staleIndex = 0,
    notes?: CascadeNotes,
  ): Promise<Cascaded<T> | undefined> {
    return new Promise((resolve, reject) => {
      const read = new CascadeRead<T>(this, key, endpoint, staleSoFar, isStale, resolve, reject, notes);
      if (staleSoFar) read.staleIndex = staleIndex;
      this.startRead(read, start);
    });
  }

  /** Starts `read` at tier `start` (counting the L1 miss when it skips the L1). */
  private startRead<T>(read: TierRead<T>, start: number): void {
    if (start === 1) this.metrics.miss(Level.L1, this.connector, read.endpoint);
    this.readFrom(read, start);
  }

  /**
   * Asks tier `i` for `read.key`: through the circuit breaker, under the tier deadline, with the
   * read object itself as the callbacks (no closure or promise of ours per read).
   */
  private readFrom<T>(read: TierRead<T>, i: number): void {
    try {
      if (i >= this.states.length) {
        read.finish(read.staleIndex >= 0 ? read.staleEntry : undefined, read.staleIndex, false);
        return;
      }
      const state = this.states[i] as GuardedTier;
      read.index = i;
      read.state = state;
      if (!state.admit('get', read.key)) {
        read.unread = true;
        this.readStep(read, undefined);
        return;
      }
      read.t0 = performance.now();
      // The read object answers for the first tier it asks; any later tier gets callbacks of its
      // own, so a late reply (after its deadline) can only ever settle its own, finished call.
      let callbacks: OperationDeadline & ReadCallbacks;
      if (read.asked) {
        callbacks = new ReadAttempt(read as TierRead<unknown>, this);
      } else {
        read.asked = true;
        callbacks = read;
      }
      callbacks.settled = false;
      const ms = this.ctx.opts.tierTimeoutMs;
      if (state.shared && ms > 0) armDeadline(callbacks, ms);
      const tier = state.tier;
      try {
        if (tier.getWith) tier.getWith(read.key, callbacks);
        else
          tier.get(read.key).then(
            (entry) => callbacks.ok(entry),
            (error: unknown) => callbacks.failed(error),
          );
      } catch (error) {
        callbacks.failed(error);
      }
    } catch (error) {
      // A throwing error listener or metrics adapter must not leave the read unsettled.
      read.reject(error);
    }
  }

  /** {@link ReadHost}: the tier of `read` answered. */
  answered(read: TierRead<unknown>, entry: CacheEntry | undefined): void {
    (read.state as GuardedTier).succeeded('get', read.t0, entry);
    this.readStep(read, entry);
  }

  /** {@link ReadHost}: the tier of `read` failed or timed out: reported, then skipped. */
  failed(read: TierRead<unknown>, error: unknown): void {
    read.unread = true;
    (read.state as GuardedTier).failed('get', read.key, error);
    this.readStep(read, undefined);
  }

  /** {@link ReadHost}: the shared-tier deadline of a read. */
  timeoutMs(): number {
    return this.ctx.opts.tierTimeoutMs;
  }

  /** {@link ReadHost}: the level of tier `index`. */
  levelOf(index: number): Level {
    return this.ctx.levelOf(index);
  }

  /** {@link ReadHost}: a `get` found nothing servable. */
  missedEverywhere(endpoint: string): void {
    this.metrics.miss(Level.External, this.connector, endpoint);
  }

  /** Examines tier `read.index`'s entry: a fresh one ends the read (promoted), else on to the next tier. */
  private readStep<T>(read: TierRead<T>, e: CacheEntry<T> | undefined): void {
    const i = read.index;
    try {
      const state = this.states[i] as GuardedTier;
      // The coarse clock decides far from the entry's boundaries (a clock read costs as much as
      // the rest of this step); near them, the exact one.
      let now = coarseNow();
      if (e && (e.freshUntil - now < EXACT_CLOCK_WITHIN_MS || e.staleUntil - now < EXACT_CLOCK_WITHIN_MS))
        now = Date.now();
      if (e && e.staleUntil > now) {
        if (e.freshUntil > now && !read.isStale?.(e)) {
          this.metrics.hit(state.tier.level, this.connector, read.endpoint);
          this.promote(read.key, e, i);
          read.finish(e, i, true);
          return;
        }
        if (read.staleIndex < 0 || e.staleUntil > (read.staleEntry as CacheEntry<T>).staleUntil) {
          read.staleEntry = e;
          read.staleIndex = i;
        }
      }
      this.metrics.miss(state.tier.level, this.connector, read.endpoint);
    } catch (error) {
      read.reject(error);
      return;
    }
    this.readFrom(read, i + 1);
  }

  /** Copies a hit of tier `from` to every faster tier, keeping its remaining lifetime. */
  promote(key: string, entry: CacheEntry, from: number): void {
    if (from === 0) return;
    const fromLevel = this.ctx.levelOf(from);
    for (let j = 0; j < from; j++) {
      const state = this.states[j] as GuardedTier;
      // A local tier takes no entry older than this key's last write or invalidation here; shared
      // tiers check the entry's version themselves (compare-and-set, tombstones).
      if (!state.shared && this.ctx.parts.superseded(key, entry)) continue;
      const capped = capEntry(entry, state.tier.maxTtlMs);
      const p = state
        .call('set', key, () =>
          state.tier.set(key, capped).then(
            () => true,
            (error: unknown) => state.refusedValue(error),
          ),
        )
        .then((r) => {
          if (r === true) this.metrics.promotion(fromLevel, state.tier.level);
        });
      if (state.shared) this.ctx.track(p);
    }
  }

  private async promoteMany(
    keys: readonly string[],
    hits: { i: number; entry: CacheEntry; index: number }[],
  ): Promise<void> {
    for (let j = 0; j < this.states.length; j++) {
      const state = this.states[j] as GuardedTier;
      const writes = hits
        .filter((h) => h.index > j)
        .map((h) => ({
          key: keys[h.i] as string,
          entry: capEntry(h.entry, state.tier.maxTtlMs),
          from: h.index,
        }));
      if (writes.length === 0) continue;
      const r = await state.writeMany(writes);
      if (r === undefined)
        for (const w of writes) this.metrics.promotion(this.ctx.levelOf(w.from), state.tier.level);
    }
  }
}
