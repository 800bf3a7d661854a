import {
  type CacheEntry,
  ConfigError,
  InvalidValueError,
  type MetricsAdapter,
  NOOP_METRICS,
  type Tier,
  type TierAttachment,
  type TierDeleteOptions,
  type TierWrite,
} from '@bgc/cache-core';
import { coarseNow } from '@bgc/cache-core/internal';
import { sizeAndFreeze } from './size-and-freeze.js';
import { type OWNER_FIELDS, WTinyLfuPolicy } from './w-tiny-lfu-policy.js';

/** Options of {@link MemoryTier}. */
export interface MemoryTierOptions {
  /** Capacity in bytes (estimated heap cost of keys and values). @default 104857600 (100 MB) */
  maxSizeBytes?: number;
  /**
   * Longest lifetime (ms) an entry is kept when a slower tier can refill it; longer entries are
   * shortened (their {@link CacheEntry.ttlMs} is kept, so eager refresh still sees the loaded
   * lifetime). When the orchestrator attaches the tier as its last one
   * ({@link MemoryTier.attach}), entries keep their own lifetime. @default 300000 (5 min)
   */
  maxTtlMs?: number;
  /**
   * Cost of an entry in bytes. By default the larger of `entry.size` (the serialized size, known
   * when the value came from L2/L3) and an estimate of the value's heap size, plus the key.
   */
  cost?: (value: unknown, entry: CacheEntry) => number;
  /**
   * Largest share of the capacity one entry may take (0..1]. Bigger entries are refused (not
   * stored, any previous value of the key dropped, an error metric `too_large` recorded), so one
   * huge value can never flush the whole tier. @default 0.1
   */
  maxEntryFraction?: number;
  /**
   * Deep-freeze values when they are stored, so that a caller mutating what `get` returned
   * cannot corrupt the cached copy (reads hand out the same object, no copy). A value frozen by
   * the tier is walked once: storing it again reuses its remembered cost. Turn off only when
   * values are never mutated and the freeze walk shows in profiles; the size estimate then walks
   * the value on every write unless `entry.size` or {@link MemoryTierOptions.cost} gives it.
   * @default true
   */
  freeze?: boolean;
  /** Where evictions, sizes, errors (and hits/misses when {@link MemoryTierOptions.reportHits}) go. @default NOOP_METRICS */
  metrics?: MetricsAdapter;
  /**
   * Also report hits and misses (label connector/endpoint `"default"`). Off by default because
   * the orchestrator already reports them with the right labels. @default false
   */
  reportHits?: boolean;
  /** Interval (ms) of the background sweep removing entries past stale-until; 0 disables it. @default 30000 */
  sweepIntervalMs?: number;
  /** Clock in epoch ms (tests). @default coarseNow (Date.now at ~1 ms resolution, cheaper on the hot path) */
  now?: () => number;
}

/** Statistics of a {@link MemoryTier} since it was created (or cleared). */
export interface MemoryTierStats {
  /** Entries held. */
  entries: number;
  /** Their total cost, in bytes. */
  sizeBytes: number;
  /** Reads that found a servable entry. */
  hits: number;
  /** Reads that found nothing servable. */
  misses: number;
  /** Entries evicted by the policy to make room. */
  evictions: number;
  /** Entries removed because their stale-until passed. */
  expirations: number;
  /** Writes refused as too large. */
  refused: number;
  /** Current share of the capacity given to the admission window (0..1). */
  windowFraction: number;
}

const MB = 1024 * 1024;
/** Bytes of bookkeeping per entry besides key and value: slot arrays, map entry, entry object. */
const ENTRY_OVERHEAD = 120;
/**
 * A float64 of a slot the policy leaves to the tier, in its {@link WTinyLfuPolicy.slotData}: slot
 * `s` starts at `s << 3` (`SLOT_FLOATS` is 8). Literals, so that they compile to constants.
 */
type OwnerField = (typeof OWNER_FIELDS)[number];
/** Float64 fields of a slot in the policy's {@link WTinyLfuPolicy.slotData}: stale-until (0 when free). */
const STALE: OwnerField = 2;
/** Fresh-until, never above stale-until (so that getFreshValueSync need not read both). */
const FRESH: OwnerField = 3;
/** The entry's version (0 without one), read by writes without dereferencing the stored entry. */
const VERSION: OwnerField = 4;
/** The entry's `createdAt` (NaN without one), for an entry not built yet (see {@link MemoryTier.entryAt}). */
const CREATED: OwnerField = 6;
/** The entry's `ttlMs` (NaN without one), as {@link CREATED}. */
const TTL: OwnerField = 7;
/** Entries examined by the incremental sweep on each write. */
const SWEEP_PER_WRITE = 2;

/**
 * The L1 tier: an in-process, byte-bounded cache with an adaptive W-TinyLFU policy
 * ({@link WTinyLfuPolicy}) and per-entry expiry.
 *
 * - Writes are visible to the very next read (everything is synchronous underneath).
 * - Expired entries (past `staleUntil`) are never returned: they are dropped when read, by a
 *   small incremental sweep on every write and by a periodic background sweep (unref'd timer).
 *   Entries past `freshUntil` but within `staleUntil` are kept and returned (the orchestrator
 *   serves them as stale).
 * - Values are deep-frozen on write (see {@link MemoryTierOptions.freeze}); entries handed out
 *   are frozen too.
 *
 * ```ts
 * const l1 = new MemoryTier({ maxSizeBytes: 50 * 1024 * 1024 });
 * const cache = new MultiLevelCache({ tiers: [l1, redisTier] });
 * ```
 */
export class MemoryTier implements Tier {
  /** `"memory"`. */
  readonly name = 'memory';
  /** Always `'l1'`. */
  readonly level = 'l1' as const;
  /** Always `'local'`: other instances' writes evict keys from it through the invalidation bus. */
  readonly scope = 'local' as const;
  /** Longest lifetime kept, in ms. */
  readonly maxTtlMs: number;
  /** Capacity in bytes. */
  readonly maxSizeBytes: number;
  /** Largest entry accepted, in bytes. */
  readonly maxEntryBytes: number;
  private readonly policy: WTinyLfuPolicy<string>;
  // Per slot (the policy's entry numbers): the entry and a copy of its value; the entry's times
  // and version live in the policy's slot data, beside its queue links (one cache line per slot),
  // so that hits and writes never chase the entry object. A plain entry (no meta, size or tags)
  // is written as its value and numbers only: its entry object is built, frozen, the first time
  // it is handed out (`undefined` here until then; see entryAt), so a write neither copies nor
  // freezes one, and an entry only ever read through getFreshValueSync never needs one.
  private entries: (CacheEntry | undefined)[] = [];
  private values: unknown[] = [];
  private lastTier = false;
  /** Whether an entry with a version other than 0 was ever written (until then versions need no check). */
  private versioned = false;
  private readonly metrics: MetricsAdapter;
  private readonly reportHits: boolean;
  private readonly freeze: boolean;
  /** Whether size changes go anywhere (not to {@link NOOP_METRICS}). */
  private readonly reportSize: boolean;
  private readonly cost: ((value: unknown, entry: CacheEntry) => number) | undefined;
  private readonly now: () => number;
  /** The clock of rare operations that must be exact (expiry): Date.now unless a clock was given. */
  private readonly exactNow: () => number;
  private readonly timer: NodeJS.Timeout | undefined;
  private sweepCursor = 0;
  private closed = false;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private expirations = 0;
  private refused = 0;

  constructor(options: MemoryTierOptions = {}) {
    this.maxSizeBytes = options.maxSizeBytes ?? 100 * MB;
    if (!(this.maxSizeBytes > 0))
      throw new ConfigError('maxSizeBytes', `${this.maxSizeBytes} is not a positive number of bytes`);
    this.maxTtlMs = options.maxTtlMs ?? 5 * 60_000;
    if (!(this.maxTtlMs > 0))
      throw new ConfigError('maxTtlMs', `${this.maxTtlMs} is not a positive number of ms`);
    const fraction = options.maxEntryFraction ?? 0.1;
    if (!(fraction > 0 && fraction <= 1))
      throw new ConfigError('maxEntryFraction', `${fraction} is not in (0, 1]`);
    this.maxEntryBytes = this.maxSizeBytes * fraction;
    this.metrics = options.metrics ?? NOOP_METRICS;
    this.reportSize = this.metrics !== NOOP_METRICS;
    this.reportHits = options.reportHits ?? false;
    this.freeze = options.freeze ?? true;
    this.cost = options.cost;
    this.now = options.now ?? coarseNow;
    this.exactNow = options.now ?? Date.now;
    this.policy = new WTinyLfuPolicy<string>({
      maximumWeight: this.maxSizeBytes,
      expectedEntries: 1024,
      onEvict: (_key, slot) => {
        this.release(slot);
        this.evictions++;
        this.metrics.eviction('l1', 1);
      },
    });
    const sweepMs = options.sweepIntervalMs ?? 30_000;
    if (sweepMs > 0) {
      this.timer = setInterval(() => this.sweep(this.policy.slotLimit), sweepMs);
      this.timer.unref();
    }
  }

  /** Synchronous read (the orchestrator's hot path). `undefined` on a miss or an expired entry. */
  getSync(key: string): CacheEntry | undefined {
    const slot = this.policy.find(key);
    if (slot !== -1) {
      if ((this.policy.slotData[(slot << 3) + STALE] as number) > this.now()) {
        const found = this.entries[slot] ?? this.entryAt(slot);
        this.recordHit(slot);
        return found;
      }
      this.evictExpired(slot);
    }
    this.policy.onMiss(key);
    this.misses++;
    if (this.reportHits) this.metrics.miss('l1', 'default', 'default');
    return undefined;
  }

  /**
   * The value of a fresh entry (`freshUntil > now`), recorded as a hit; `undefined` otherwise,
   * without recording anything (the caller then reads through {@link MemoryTier.getSync} or
   * {@link MemoryTier.get}, which records the access). The orchestrator's fastest path.
   */
  getFreshValueSync(key: string, now: number): unknown {
    const slot = this.policy.find(key);
    if (slot === -1 || !((this.policy.slotData[(slot << 3) + FRESH] as number) > now)) return undefined;
    const value = this.values[slot];
    this.recordHit(slot);
    return value;
  }

  /** Reads one entry; see {@link MemoryTier.getSync}. */
  async get(key: string): Promise<CacheEntry | undefined> {
    return this.getSync(key);
  }

  /**
   * Called once by the orchestrator: a tier that is the last one (`lastTier`, nothing slower can
   * refill it) keeps each entry's own lifetime instead of capping it to {@link MemoryTier.maxTtlMs}.
   */
  attach(attachment: TierAttachment): void {
    this.lastTier = attachment.lastTier;
  }

  /**
   * Synchronous write: stores `entry` under `key`, capped to {@link MemoryTier.maxTtlMs} (unless
   * attached as the last tier). An entry whose {@link CacheEntry.version} is lower than the stored
   * one's is dropped silently (it lost a race to a newer write). An entry already past
   * stale-until, or larger than {@link MemoryTier.maxEntryBytes}, is not stored and removes the
   * key's previous value. The stored entry keeps `version` and `ttlMs` (when the cap shortens an
   * entry without `ttlMs`, its loaded lifetime `freshUntil - createdAt` is kept as `ttlMs`). The
   * caller's later changes to its object never reach the tier: a plain entry (no `meta`, `size`
   * or `tags`, no explicit version 0) is kept as its value and numbers, its frozen object built
   * when first handed out; another is kept as the caller's object itself when that is frozen (it
   * cannot change) and not capped (the orchestrator's tagged `set` on a memory-only cache hands
   * its entries over so), else as a frozen copy.
   * @throws {InvalidValueError} when `entry.value` is `undefined`.
   */
  setSync(key: string, entry: CacheEntry): void {
    const value = entry.value;
    if (value === undefined) {
      throw new InvalidValueError(
        `Cannot cache undefined under ${JSON.stringify(key)}: store null for "not found" instead`,
      );
    }
    const existing = this.policy.find(key);
    const version = entry.version ?? 0;
    // Until a versioned entry comes, every stored version is 0: no need to read the stored entry.
    if (version !== 0) this.versioned = true;
    if (
      existing !== -1 &&
      this.versioned &&
      version < (this.policy.slotData[(existing << 3) + VERSION] as number)
    )
      return;
    const now = this.now();
    const staleUntil = entry.staleUntil;
    if (staleUntil <= now) {
      if (existing !== -1) this.removeSlot(existing);
      return;
    }
    let freshUntil = entry.freshUntil;
    let servableUntil = staleUntil;
    let ttlMs = entry.ttlMs;
    const capped = !this.lastTier && staleUntil > now + this.maxTtlMs;
    if (capped) {
      servableUntil = now + this.maxTtlMs;
      if (ttlMs === undefined && entry.createdAt !== undefined) ttlMs = freshUntil - entry.createdAt;
      freshUntil = Math.min(freshUntil, servableUntil);
    }
    // The entry this write stores: none yet for a plain one (its numbers go to the slot, its
    // object is built on first hand-out, see entryAt); the caller's object itself when frozen (it
    // can no longer change) and not capped; otherwise a frozen copy.
    let stored: CacheEntry | undefined;
    if (
      entry.meta === undefined &&
      entry.size === undefined &&
      entry.tags === undefined &&
      entry.version !== 0 &&
      freshUntil <= servableUntil &&
      !this.cost
    ) {
      stored = undefined;
    } else if (!capped && Object.isFrozen(entry)) {
      stored = entry;
    } else {
      stored = this.copy(entry, freshUntil, servableUntil, ttlMs);
    }
    const bytes =
      existing !== -1 &&
      this.freeze &&
      this.values[existing] === value &&
      entry.size === undefined &&
      !this.cost
        ? // the same frozen value again (a fail-safe re-store, new tags): its cost is unchanged
          this.policy.weightAt(existing)
        : (this.cost
            ? this.cost(value, stored as CacheEntry)
            : this.freeze || entry.size === undefined
              ? Math.max(entry.size ?? 0, sizeAndFreeze(value, this.freeze))
              : entry.size) +
          2 * key.length +
          ENTRY_OVERHEAD;
    if (this.freeze && stored !== undefined) {
      if (this.cost) sizeAndFreeze(value, true);
      if (stored.meta !== undefined) Object.freeze(stored.meta);
      if (stored !== entry) Object.freeze(stored);
    }
    if (bytes > this.maxEntryBytes) {
      if (existing !== -1) this.removeSlot(existing);
      this.refused++;
      this.metrics.error('l1', 'set', 'too_large');
      return;
    }
    if (existing !== -1) {
      this.store(existing, value, stored, freshUntil, servableUntil, entry.version, entry.createdAt, ttlMs);
      this.policy.update(existing, bytes);
    } else {
      const slot = this.policy.add(key, bytes);
      if (slot !== -1)
        this.store(slot, value, stored, freshUntil, servableUntil, entry.version, entry.createdAt, ttlMs);
    }
    this.sweep(SWEEP_PER_WRITE);
    if (this.reportSize) this.metrics.size('l1', this.policy.weightedSize);
  }

  /** Stores one entry; see {@link MemoryTier.setSync}. */
  async set(key: string, entry: CacheEntry): Promise<void> {
    this.setSync(key, entry);
  }

  /** Removes one key synchronously. Returns `true` if it held a servable entry. */
  deleteSync(key: string): boolean {
    const slot = this.policy.find(key);
    if (slot === -1) return false;
    const servable = (this.policy.slotData[(slot << 3) + STALE] as number) > this.now();
    this.removeSlot(slot);
    this.metrics.size('l1', this.policy.weightedSize);
    return servable;
  }

  /**
   * Removes one key. Resolves `true` if it held a servable entry. The tier keeps no tombstones
   * (`options` is accepted for the {@link Tier} contract and ignored): the orchestrator's per-key
   * versions keep a load that started before the delete from writing its value back.
   */
  async delete(key: string, _options?: TierDeleteOptions): Promise<boolean> {
    return this.deleteSync(key);
  }

  /** Reads many keys; the result is aligned with `keys`. */
  async getMany(keys: readonly string[]): Promise<(CacheEntry | undefined)[]> {
    return keys.map((key) => this.getSync(key));
  }

  /** Stores many entries, in order. */
  async setMany(writes: readonly TierWrite[]): Promise<void> {
    for (const w of writes) this.setSync(w.key, w.entry);
  }

  /** Removes many keys; resolves how many held a servable entry (no tombstones, as {@link MemoryTier.delete}). */
  async deleteMany(keys: readonly string[], _options?: TierDeleteOptions): Promise<number> {
    let n = 0;
    for (const key of keys) if (this.deleteSync(key)) n++;
    return n;
  }

  /**
   * Logical expiry: the servable entries of `keys` stop being fresh now (`freshUntil` = now) and
   * keep their `staleUntil`, so they remain fail-safe fallbacks. An entry whose version is higher
   * than `version` (written after the expiry was decided) is left alone. Resolves how many
   * entries were expired (servable ones that were not already stale).
   */
  async expire(keys: readonly string[], version?: number): Promise<number> {
    return this.expireSync(keys, version);
  }

  /** Synchronous form of {@link MemoryTier.expire}; returns how many entries were expired. */
  expireSync(keys: readonly string[], version?: number): number {
    const now = this.exactNow();
    let n = 0;
    for (const key of keys) {
      const slot = this.policy.find(key);
      if (slot === -1) continue;
      if (version !== undefined && (this.policy.slotData[(slot << 3) + VERSION] as number) > version)
        continue;
      if (this.expireSlot(slot, now)) n++;
    }
    return n;
  }

  /**
   * Turns every entry stale at once (`freshUntil` = now, `staleUntil` kept): what the orchestrator
   * does when it can no longer vouch for local entries (the invalidation bus reconnected). O(n).
   */
  expireAll(): void {
    const now = this.exactNow();
    const limit = this.policy.slotLimit;
    for (let slot = 0; slot < limit; slot++) if (this.policy.isOccupied(slot)) this.expireSlot(slot, now);
  }

  /** Removes every entry (and the policy's frequency history). */
  async clear(): Promise<void> {
    this.policy.clear();
    this.entries = [];
    this.values = [];
    this.sweepCursor = 0;
    this.metrics.size('l1', 0);
  }

  /** Always resolves: memory is always there. */
  async ping(): Promise<void> {}

  /** Stops the background sweep and drops every entry. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.clear();
  }

  /** Counters and the policy's state, for dashboards and tests. */
  stats(): MemoryTierStats {
    return {
      entries: this.policy.size,
      sizeBytes: this.policy.weightedSize,
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      expirations: this.expirations,
      refused: this.refused,
      windowFraction: this.policy.windowFraction,
    };
  }

  /**
   * Examines up to `count` slots from where the previous sweep stopped and removes entries past
   * stale-until. Cheap enough to run on every write; a full pass runs on the timer.
   */
  private sweep(count: number): void {
    const limit = this.policy.slotLimit;
    if (limit === 0) return;
    const now = this.now();
    const data = this.policy.slotData;
    for (let i = 0; i < count; i++) {
      if (this.sweepCursor >= limit) this.sweepCursor = 0;
      const slot = this.sweepCursor++;
      if (this.policy.isOccupied(slot) && (data[(slot << 3) + STALE] as number) <= now)
        this.evictExpired(slot);
    }
  }

  private evictExpired(slot: number): void {
    this.removeSlot(slot);
    this.expirations++;
  }

  private removeSlot(slot: number): void {
    this.policy.remove(slot);
    this.release(slot);
  }

  private recordHit(slot: number): void {
    this.policy.recordAccess(slot);
    this.hits++;
    if (this.reportHits) this.metrics.hit('l1', 'default', 'default');
  }

  /** Makes a servable, fresh entry stale now; returns whether it did. */
  private expireSlot(slot: number, now: number): boolean {
    const data = this.policy.slotData;
    const at = slot << 3;
    if (!((data[at + STALE] as number) > now) || !((data[at + FRESH] as number) > now)) return false;
    data[at + FRESH] = now;
    // Not built yet: it will be, with this fresh-until.
    const e = this.entries[slot];
    if (e === undefined) return true;
    const stale: CacheEntry = { ...e, freshUntil: now };
    if (this.freeze) Object.freeze(stale);
    this.entries[slot] = stale;
    return true;
  }

  /** The stored form of `entry` with these times: one shape for every copy (the caller keeps its object, the tier its own). */
  private copy(
    entry: CacheEntry,
    freshUntil: number,
    staleUntil: number,
    ttlMs: number | undefined,
  ): CacheEntry {
    return {
      value: entry.value,
      freshUntil,
      staleUntil,
      createdAt: entry.createdAt,
      size: entry.size,
      meta: entry.meta,
      version: entry.version,
      ttlMs,
    };
  }

  /**
   * Records an entry in `slot`: `entry` is the stored object, or `undefined` for a plain entry
   * whose object {@link MemoryTier.entryAt} builds from these fields when first handed out.
   */
  private store(
    slot: number,
    value: unknown,
    entry: CacheEntry | undefined,
    freshUntil: number,
    staleUntil: number,
    version: number | undefined,
    createdAt: number | undefined,
    ttlMs: number | undefined,
  ): void {
    this.entries[slot] = entry;
    this.values[slot] = value;
    const data = this.policy.slotData;
    const at = slot << 3;
    // Never fresher than servable, so that getFreshValueSync need not read both.
    data[at + FRESH] = Math.min(freshUntil, staleUntil);
    data[at + STALE] = staleUntil;
    data[at + VERSION] = version ?? 0;
    if (entry === undefined) {
      data[at + CREATED] = createdAt ?? Number.NaN;
      data[at + TTL] = ttlMs ?? Number.NaN;
    }
  }

  /**
   * The entry of an occupied `slot` written without its object (see `entries`): built from the
   * slot's fields as {@link MemoryTier.copy} would have made it at the write (a version of 0 is
   * none: writes of an explicit 0 keep their object), frozen, and kept for the next reads.
   */
  private entryAt(slot: number): CacheEntry {
    const data = this.policy.slotData;
    const at = slot << 3;
    const createdAt = data[at + CREATED] as number;
    const ttlMs = data[at + TTL] as number;
    const version = data[at + VERSION] as number;
    const entry: CacheEntry = {
      value: this.values[slot],
      freshUntil: data[at + FRESH] as number,
      staleUntil: data[at + STALE] as number,
      createdAt: Number.isNaN(createdAt) ? undefined : createdAt,
      size: undefined,
      meta: undefined,
      version: version === 0 ? undefined : version,
      ttlMs: Number.isNaN(ttlMs) ? undefined : ttlMs,
    };
    if (this.freeze) Object.freeze(entry);
    this.entries[slot] = entry;
    return entry;
  }

  private release(slot: number): void {
    this.entries[slot] = undefined;
    this.values[slot] = undefined;
    this.policy.slotData[(slot << 3) + STALE] = 0;
  }
}
