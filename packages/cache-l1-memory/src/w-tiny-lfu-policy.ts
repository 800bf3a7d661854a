import { FrequencySketch, hashKey, spreadHash } from './frequency-sketch.js';
import { ShadowLru } from './shadow-lru.js';

/** Options of {@link WTinyLfuPolicy}. */
export interface WTinyLfuPolicyOptions<K> {
  /** Capacity in cost units: bytes for the memory tier, entries in the simulator. */
  maximumWeight: number;
  /** Expected number of entries, to size the frequency sketch (it grows on demand). @default min(maximumWeight, 1024) */
  expectedEntries?: number;
  /** Initial share of the capacity given to the admission window (0..1). @default 0.05 */
  initialWindowFraction?: number;
  /** Share of the main space kept for the protected segment (0..1). @default 0.8 */
  protectedFraction?: number;
  /** Adapt the window size by hill climbing on the hit rate of each sample. @default true */
  adaptive?: boolean;
  /** Accesses per hill-climbing sample. @default 10 × the sketch's entry capacity, at most 10 × expectedEntries */
  climbSampleSize?: number;
  /** Step of the hill climber, as a share of the capacity. @default 0.0625 */
  climbStepFraction?: number;
  /** A hit-rate change (0..1) that restarts the climber with a full step. @default 0.05 */
  climbRestartThreshold?: number;
  /** Decay of the step after each sample with a small change. @default 0.98 */
  climbStepDecay?: number;
  /**
   * Watch a sampled shadow LRU (SHARDS-style spatial sampling: the keys whose hash falls in a
   * 1/2^k slice, with a capacity scaled alike, about 1024 sampled entries): when plain LRU would
   * have hit clearly more than this policy during a sample (or early in it), the window takes the
   * whole capacity at once (the policy is then an LRU), and it does not step down from there while
   * LRU stays as good. The hill climber still explores from there. Recency-heavy traces (zigzags,
   * shifting hot sets) then come within a point of LRU instead of trailing it by several.
   * @default true (with `adaptive`)
   */
  lruShadow?: boolean;
  /** Put a doorkeeper Bloom filter in front of the sketch. @default false */
  doorkeeper?: boolean;
  /** Hash of a key; computed once per entry. @default FNV-1a of strings, identity of integers */
  hash?: (key: K) => number;
  /** Seed of the admission jitter's pseudo-random generator. @default 0x2545f491 */
  seed?: number;
  /** Called for each entry evicted to make room (not for {@link WTinyLfuPolicy.remove}). */
  onEvict?: (key: K, slot: number) => void;
}

const FREE = 0;
const WINDOW = 1;
const PROBATION = 2;
const PROTECTED = 3;
const FIRST_SLOT = 4;
/**
 * Bytes per slot: everything the policy and its owner keep about one entry, side by side, so that
 * a hit, a write or a move touches one cache line (two at most) instead of one per array. As int32
 * (see `links`): 0 previous, 1 next, 2 hash, 3 queue; as float64: 2..4 the owner's, 5 the weight,
 * 6..7 the owner's ({@link OWNER_FIELDS}). What a hit reads (the owner's first fields, then the
 * links) sits in the first 32 bytes: one line whatever the allocation's alignment (16 bytes at
 * least) three times in four, and the first 48 bytes are one line when it is 16 mod 64, as large
 * allocations are.
 */
const SLOT_BYTES = 64;
/** Float64 per slot. */
export const SLOT_FLOATS = SLOT_BYTES / 8;
/** Float64 index of a slot's weight within its {@link SLOT_FLOATS}. */
const WEIGHT = 5;
/** The float64 indexes of a slot (within its {@link SLOT_FLOATS}) its owner may use, most read first. */
export const OWNER_FIELDS = [2, 3, 4, 6, 7] as const;
/** Candidates at least this frequent are admitted at random (1/128) even when not more frequent than the victim. */
const ADMIT_HASHDOS_THRESHOLD = 6;
/** Hits buffered by {@link WTinyLfuPolicy.recordAccess} before they are applied. */
const READ_BUFFER = 128;
/** Sampled entries the shadow LRU aims at (it samples 1/2^k of the keys so as to hold about this many). */
const SHADOW_ENTRIES = 1024;
/**
 * The shadow LRU "wins" a sample when it hit more than the policy by this share of the sampled
 * accesses plus {@link SHADOW_RELATIVE} of the policy's own sampled hits (a relative margin: a
 * recency-heavy trace gives LRU a large relative lead, a noisy sample a small one).
 */
const SHADOW_MARGIN = 0.005;
/** See {@link SHADOW_MARGIN}. */
const SHADOW_RELATIVE = 0.2;
/**
 * The relative margin of an early look over the latest accesses only ({@link
 * WTinyLfuPolicy.lruWinsLately}): wider than {@link SHADOW_RELATIVE}, since fewer accesses are
 * judged. At 0.3, orm-night at 4,323 entries loses 2.7 points (LRU leads its first phase by ~7%
 * and the window never comes back down); at 0.4, the generated recency trace at 4,901 entries
 * stays 3.3 points below LRU (LRU leads it by ~35%).
 */
const LOOK_RELATIVE = 0.35;
/**
 * The smallest window the climber sets, as a share of the capacity (Caffeine keeps at least one
 * entry). With none, a loop larger than the cache settles at an empty window, where each new entry
 * competes at once: lirs-loop at 252 entries hit 22.5% instead of 23.9%, orm-night at 4,323 88.3%
 * instead of 88.9%.
 */
const MIN_WINDOW_FRACTION = 0.005;
/** An early look judges at least this many times the shadow's entries (at least 128) of sampled accesses. */
const LOOK_MIN_FACTOR = 0.75;

/**
 * The eviction and admission policy of the memory tier, shared with the hit-rate simulator:
 * an adaptive W-TinyLFU as in Caffeine.
 *
 * New entries enter a small LRU *window*; entries leaving it compete for the segmented-LRU *main*
 * space (probation, then protected after a second hit) against its least recently used victim,
 * and get in only if the frequency sketch says they are more popular (ties rejected, with a small
 * random chance of admission for popular candidates so that an attacker cannot pin the cache).
 * A hill climber resizes the window every sample: a large window behaves like LRU (good for
 * recency-heavy traffic), a small one like LFU (good for scans and loops).
 *
 * Entries live in slots (small integers) of intrusive doubly-linked lists kept in typed arrays,
 * so a hit costs a map lookup, a sketch increment and a few array writes. Costs are arbitrary
 * positive numbers (bytes, or 1 per entry).
 */
export class WTinyLfuPolicy<K> {
  /** Capacity in cost units. */
  readonly maximumWeight: number;
  private readonly map = new Map<K, number>();
  private keys: (K | undefined)[] = [];
  /**
   * Per slot ({@link SLOT_BYTES} apart), four int32 side by side: the previous and next slots in
   * its queue, the key's hash (mixed by `spreadHash`, as the sketch takes it) and the queue it is
   * in (FREE, WINDOW, PROBATION, PROTECTED). Slots 1..3 are the queues' sentinels.
   */
  private links: Int32Array;
  /** The same memory as float64, 8 per slot: 0 and 1 are `links`, {@link WEIGHT} the cost, 3..7 the owner's ({@link WTinyLfuPolicy.slotData}). */
  private data: Float64Array;
  private capacitySlots = 64;
  private freeHead = -1;
  private top = FIRST_SLOT;
  private windowWeight = 0;
  private probationWeight = 0;
  private protectedWeight = 0;
  private maxWindow: number;
  private maxProtected: number;
  private readonly protectedFraction: number;
  private readonly sketch: FrequencySketch;
  private readonly hash: (key: K) => number;
  private readonly onEvict: ((key: K, slot: number) => void) | undefined;
  private readonly adaptive: boolean;
  private readonly fixedSampleSize: number | undefined;
  private readonly stepFraction: number;
  private readonly restartThreshold: number;
  private readonly stepDecay: number;
  private hitsInSample = 0;
  private missesInSample = 0;
  private previousHitRate = 0;
  private stepSize: number;
  private random: number;
  private readonly shadowEnabled: boolean;
  /** Sampled key hashes and their weights, in LRU order. */
  private readonly shadow = new ShadowLru();
  private shadowMask = 0;
  private shadowCapacity = 0;
  private shadowHits = 0;
  private sampledHits = 0;
  private sampledAccesses = 0;
  private judgeAt = 128;
  /** The shadow's counters at the last early look ({@link WTinyLfuPolicy.lruWinsLately}). */
  private lookShadowHits = 0;
  private lookSampledHits = 0;
  private lookAccesses = 0;
  private readonly readBuffer = new Int32Array(READ_BUFFER);
  /** The hashes of the buffered slots while draining. */
  private readonly readHashes = new Int32Array(READ_BUFFER);
  private readCount = 0;
  /**
   * The xor of the words {@link WTinyLfuPolicy.drainReads} loads ahead of their use; meaningless, and public only so
   * that nothing can prove it unread and drop those loads.
   */
  touched = 0;

  constructor(options: WTinyLfuPolicyOptions<K>) {
    if (!(options.maximumWeight > 0)) throw new RangeError('maximumWeight must be a positive number');
    this.maximumWeight = options.maximumWeight;
    const buffer = new ArrayBuffer(this.capacitySlots * SLOT_BYTES);
    this.links = new Int32Array(buffer);
    this.data = new Float64Array(buffer);
    this.protectedFraction = options.protectedFraction ?? 0.8;
    this.maxWindow = this.maximumWeight * (options.initialWindowFraction ?? 0.05);
    this.maxProtected = this.protectedFraction * (this.maximumWeight - this.maxWindow);
    this.sketch = new FrequencySketch({
      capacity: options.expectedEntries ?? Math.min(this.maximumWeight, 1024),
      doorkeeper: options.doorkeeper ?? false,
    });
    this.hash = options.hash ?? hashKey;
    this.onEvict = options.onEvict;
    this.adaptive = options.adaptive ?? true;
    this.fixedSampleSize = options.climbSampleSize;
    this.stepFraction = options.climbStepFraction ?? 0.0625;
    this.restartThreshold = options.climbRestartThreshold ?? 0.05;
    this.stepDecay = options.climbStepDecay ?? 0.98;
    this.stepSize = this.stepFraction * this.maximumWeight;
    this.random = options.seed ?? 0x2545f491;
    this.shadowEnabled = this.adaptive && (options.lruShadow ?? true);
    this.resizeShadow(options.expectedEntries ?? Math.min(this.maximumWeight, 1024));
    for (let q = WINDOW; q <= PROTECTED; q++) {
      this.links[q << 4] = q;
      this.links[(q << 4) + 1] = q;
    }
  }

  /** Number of entries held. */
  get size(): number {
    return this.map.size;
  }

  /** Total cost of the entries held. */
  get weightedSize(): number {
    return this.windowWeight + this.probationWeight + this.protectedWeight;
  }

  /** The window's current share of the capacity (0..1), as set by the hill climber. */
  get windowFraction(): number {
    return this.maxWindow / this.maximumWeight;
  }

  /**
   * Per slot, {@link SLOT_FLOATS} float64 (slot `s` at `s * SLOT_FLOATS`) of which the
   * {@link OWNER_FIELDS} are free for the owner (the memory tier keeps an entry's times
   * and version there, beside the policy's own fields). Zeros in a slot never used; kept as they are
   * when a slot is freed (the owner resets what it must) and zeroed by {@link WTinyLfuPolicy.clear}.
   * A new array after an {@link WTinyLfuPolicy.add} that grew the slots: read it after adding.
   */
  get slotData(): Float64Array {
    return this.data;
  }

  /** The slot holding `key`, or -1. Does not count as an access. */
  find(key: K): number {
    return this.map.get(key) ?? -1;
  }

  /** The key held in `slot`. */
  keyAt(slot: number): K {
    return this.keys[slot] as K;
  }

  /** The cost of the entry in `slot`. */
  weightAt(slot: number): number {
    return this.data[(slot << 3) + WEIGHT] as number;
  }

  /**
   * Records a hit on the entry in `slot` lazily (as Caffeine's read buffer does): the slot is
   * appended to a small buffer, and the buffered hits are applied in order (frequency counted,
   * entry moved up its queue) when the buffer is full or before anything else changes the policy
   * (an add, update, remove, miss or clear), so every decision sees every access. When the
   * buffer fills, the hill climber may resize the window and evict entries, `slot` included:
   * read what the slot holds before calling this.
   */
  recordAccess(slot: number): void {
    const n = this.readCount;
    this.readBuffer[n] = slot;
    this.readCount = n + 1;
    if (n + 1 === READ_BUFFER) {
      this.drainReads();
      if (this.adaptive && this.hitsInSample + this.missesInSample >= this.sampleSize()) this.climb();
    }
  }

  /**
   * Applies the hits buffered by {@link WTinyLfuPolicy.recordAccess}, in order. Never evicts.
   * In three passes rather than one hit after another: loads only (each slot's hash, its queue
   * neighbours and its sketch block, all independent, so that their cache misses are in flight at
   * once), the sketch increments, the queue moves (which then find their lines in the CPU's
   * cache). The decisions are those of one hit after another (moving entries in their queues
   * never reads the sketch).
   */
  drainReads(): void {
    const n = this.readCount;
    if (n === 0) return;
    this.readCount = 0;
    const buffer = this.readBuffer;
    const hashes = this.readHashes;
    const links = this.links;
    const sketch = this.sketch;
    let touched = 0;
    for (let i = 0; i < n; i++) {
      const at = (buffer[i] as number) << 4;
      const h = links[at + 2] as number;
      hashes[i] = h;
      touched ^= sketch.touchSpread(h);
      // The slot's queue neighbours, which the move will relink: loaded here, all of them in
      // flight at once, rather than one move after another.
      touched ^=
        (links[(links[at] as number) << 4] as number) ^ (links[(links[at + 1] as number) << 4] as number);
    }
    this.touched = touched;
    sketch.incrementManySpread(hashes, n, true);
    this.hitsInSample += n;
    for (let i = 0; i < n; i++) this.moveOnHit(buffer[i] as number, hashes[i] as number);
  }

  /** Records a hit on the entry in `slot` at once: counts it and moves it up its queue. */
  onHit(slot: number): void {
    this.drainReads();
    this.applyHit(slot);
    if (this.adaptive && this.hitsInSample + this.missesInSample >= this.sampleSize()) this.climb();
  }

  private applyHit(slot: number): void {
    if (this.links[(slot << 4) + 3] === FREE) return;
    const h = this.links[(slot << 4) + 2] as number;
    this.sketch.incrementSpread(h);
    this.hitsInSample++;
    this.moveOnHit(slot, h);
  }

  /** The queue part of a hit (and the shadow LRU's), after the sketch counted it. */
  private moveOnHit(slot: number, h: number): void {
    const q = this.links[(slot << 4) + 3] as number;
    if (q === FREE) return;
    if (this.shadowEnabled && (h & this.shadowMask) === 0) {
      this.sampledHits++;
      this.shadowAccess(h, this.data[(slot << 3) + WEIGHT] as number);
    }
    if (q === PROBATION) {
      const w = this.data[(slot << 3) + WEIGHT] as number;
      this.unlink(slot);
      this.probationWeight -= w;
      this.links[(slot << 4) + 3] = PROTECTED;
      this.pushMru(PROTECTED, slot);
      this.protectedWeight += w;
      if (this.protectedWeight > this.maxProtected) this.demoteProtected();
    } else if (this.links[q << 4] !== slot) {
      this.unlink(slot);
      this.pushMru(q, slot);
    }
  }

  /** Records a miss on `key` (an access to an absent key): counts it in the frequency sketch. */
  onMiss(key: K): void {
    if (this.readCount !== 0) this.drainReads();
    this.sketch.incrementSpread(spreadHash(this.hash(key)));
    this.missesInSample++;
    if (this.adaptive && this.hitsInSample + this.missesInSample >= this.sampleSize()) this.climb();
  }

  /**
   * Inserts `key` (absent) with cost `weight`, evicting others as needed. Returns its slot, or -1
   * when the policy rejected the new entry itself (it was the least valuable).
   */
  add(key: K, weight: number): number {
    if (this.readCount !== 0) this.drainReads();
    const slot = this.allocate();
    this.keys[slot] = key;
    const h = spreadHash(this.hash(key));
    this.links[(slot << 4) + 2] = h;
    if (this.shadowEnabled && (h & this.shadowMask) === 0) {
      this.shadowAccess(h, weight);
      // Early looks within the sample, so that a recency-heavy start need not wait a whole sample.
      if (this.sampledAccesses % this.judgeAt === 0 && this.lruWinsLately())
        this.maxWindow = this.maximumWeight;
    }
    this.data[(slot << 3) + WEIGHT] = weight;
    this.links[(slot << 4) + 3] = WINDOW;
    this.map.set(key, slot);
    this.pushMru(WINDOW, slot);
    this.windowWeight += weight;
    // Growing forgets every count: only when clearly undersized, never for a transient extra entry.
    if (this.map.size > this.sketch.sizedFor * 1.25) {
      this.sketch.ensureCapacity(this.map.size * 2);
      this.resizeShadow(this.map.size * 2);
    }
    this.evict();
    return this.links[(slot << 4) + 3] === FREE || this.keys[slot] !== key ? -1 : slot;
  }

  /** Changes the cost of the entry in `slot` (an overwrite) and makes it most recently used. */
  update(slot: number, weight: number): void {
    if (this.readCount !== 0) this.drainReads();
    const old = this.data[(slot << 3) + WEIGHT] as number;
    this.data[(slot << 3) + WEIGHT] = weight;
    const q = this.links[(slot << 4) + 3] as number;
    if (q === WINDOW) this.windowWeight += weight - old;
    else if (q === PROBATION) this.probationWeight += weight - old;
    else this.protectedWeight += weight - old;
    if (this.links[q << 4] !== slot) {
      this.unlink(slot);
      this.pushMru(q, slot);
    }
    if (q === PROTECTED && this.protectedWeight > this.maxProtected) this.demoteProtected();
    this.evict();
  }

  /** Removes the entry in `slot` (a delete or an expiry; `onEvict` is not called). */
  remove(slot: number): void {
    if (this.readCount !== 0) this.drainReads();
    const q = this.links[(slot << 4) + 3] as number;
    if (q === FREE) return;
    const w = this.data[(slot << 3) + WEIGHT] as number;
    if (q === WINDOW) this.windowWeight -= w;
    else if (q === PROBATION) this.probationWeight -= w;
    else this.protectedWeight -= w;
    this.unlink(slot);
    this.map.delete(this.keys[slot] as K);
    this.keys[slot] = undefined;
    this.links[(slot << 4) + 3] = FREE;
    this.links[(slot << 4) + 1] = this.freeHead;
    this.freeHead = slot;
  }

  /** Removes every entry and forgets every count. */
  clear(): void {
    this.readCount = 0;
    this.map.clear();
    this.keys = [];
    this.links.fill(0);
    this.freeHead = -1;
    this.top = FIRST_SLOT;
    for (let q = WINDOW; q <= PROTECTED; q++) {
      this.links[q << 4] = q;
      this.links[(q << 4) + 1] = q;
    }
    this.windowWeight = this.probationWeight = this.protectedWeight = 0;
    this.sketch.clear();
    this.resizeShadow(this.sketch.sizedFor);
  }

  /** Every occupied slot, in no particular order (for sweeps). Upper bound of slot numbers. */
  get slotLimit(): number {
    return this.top;
  }

  /** Whether `slot` holds an entry. */
  isOccupied(slot: number): boolean {
    return slot >= FIRST_SLOT && slot < this.top && this.links[(slot << 4) + 3] !== FREE;
  }

  /** Samples 1/2^k of the keys so that the shadow holds about {@link SHADOW_ENTRIES} of `entries`; forgets it. */
  private resizeShadow(entries: number): void {
    let mask = 0;
    while ((mask + 1) * SHADOW_ENTRIES < entries) mask = mask * 2 + 1;
    this.shadowMask = mask;
    this.shadowCapacity = this.maximumWeight / (mask + 1);
    this.shadow.clear();
    this.shadowHits = this.sampledHits = this.sampledAccesses = 0;
    this.lookShadowHits = this.lookSampledHits = this.lookAccesses = 0;
  }

  /** Whether the shadow LRU hit clearly more than the policy on the sampled accesses of this sample. */
  private lruWins(): boolean {
    return (
      this.shadowHits - this.sampledHits >
      SHADOW_MARGIN * this.sampledAccesses + SHADOW_RELATIVE * this.sampledHits
    );
  }

  /**
   * An early look within the sample: whether the shadow LRU won the whole sample so far
   * ({@link WTinyLfuPolicy.lruWins}), or won by a wide margin ({@link LOOK_RELATIVE}) the sampled
   * accesses since the previous look, once they are at least {@link LOOK_MIN_FACTOR} times the
   * shadow's entries. A workload that turns recency-heavy within a long sample is then judged on
   * its own instead of diluted by what came before it in the sample.
   */
  private lruWinsLately(): boolean {
    const accesses = this.sampledAccesses - this.lookAccesses;
    if (accesses >= LOOK_MIN_FACTOR * Math.max(128, this.shadow.size)) {
      const hits = this.sampledHits - this.lookSampledHits;
      const lead = this.shadowHits - this.lookShadowHits - hits;
      this.lookShadowHits = this.shadowHits;
      this.lookSampledHits = this.sampledHits;
      this.lookAccesses = this.sampledAccesses;
      if (lead > SHADOW_MARGIN * accesses + LOOK_RELATIVE * hits) return true;
    }
    return this.lruWins();
  }

  /** One access of a sampled key to the shadow LRU. */
  private shadowAccess(h: number, weight: number): void {
    this.sampledAccesses++;
    if (this.shadow.access(h, weight, this.shadowCapacity)) this.shadowHits++;
  }

  private sampleSize(): number {
    return this.fixedSampleSize ?? this.sketch.sampleSize;
  }

  /** Hill climbing (Caffeine): keep moving the window size in the direction that raised the hit rate. */
  private climb(): void {
    const requests = this.hitsInSample + this.missesInSample;
    const hitRate = this.hitsInSample / requests;
    const change = hitRate - this.previousHitRate;
    let amount = change >= 0 ? this.stepSize : -this.stepSize;
    this.stepSize =
      Math.abs(change) >= this.restartThreshold
        ? this.stepFraction * this.maximumWeight * (amount >= 0 ? 1 : -1)
        : this.stepDecay * amount;
    // All window (an LRU) and LRU still as good as the policy: stay, do not step down on noise.
    if (
      amount < 0 &&
      this.maxWindow >= this.maximumWeight &&
      this.sampledAccesses >= 64 &&
      this.shadowHits >= this.sampledHits
    )
      amount = 0;
    if (this.sampledAccesses >= 64 && this.lruWins()) {
      // Plain LRU would have hit clearly more: recency wins here and a small window loses, so the
      // window takes the whole capacity at once (the policy is then an LRU); climbing goes on from there.
      amount = this.maximumWeight - this.maxWindow;
      this.stepSize = this.stepFraction * this.maximumWeight;
    }
    this.shadowHits = this.sampledHits = this.sampledAccesses = 0;
    this.lookShadowHits = this.lookSampledHits = this.lookAccesses = 0;
    this.judgeAt = Math.max(128, 2 * this.shadow.size);
    this.previousHitRate = hitRate;
    this.hitsInSample = 0;
    this.missesInSample = 0;
    this.maxWindow = Math.min(
      this.maximumWeight,
      Math.max(MIN_WINDOW_FRACTION * this.maximumWeight, this.maxWindow + amount),
    );
    this.maxProtected = this.protectedFraction * (this.maximumWeight - this.maxWindow);
    if (this.protectedWeight > this.maxProtected) this.demoteProtected();
    this.evict();
  }

  private demoteProtected(): void {
    while (this.protectedWeight > this.maxProtected) {
      const s = this.links[(PROTECTED << 4) + 1] as number;
      if (s === PROTECTED) return;
      const w = this.data[(s << 3) + WEIGHT] as number;
      this.unlink(s);
      this.protectedWeight -= w;
      this.links[(s << 4) + 3] = PROBATION;
      this.pushMru(PROBATION, s);
      this.probationWeight += w;
    }
  }

  /**
   * Restores the bounds: while over capacity, the window's overflow competes with main's LRU
   * victim (or main's LRU is dropped when the window is within its share), then the window's
   * overflow moves to probation where there is room.
   */
  private evict(): void {
    while (this.windowWeight + this.probationWeight + this.protectedWeight > this.maximumWeight) {
      const victim = this.mainVictim();
      if (this.windowWeight > this.maxWindow || victim === -1) {
        const candidate = this.links[(WINDOW << 4) + 1] as number;
        if (victim === -1) {
          this.evictSlot(candidate);
        } else if (this.admit(candidate, victim)) {
          this.evictSlot(victim);
        } else {
          this.evictSlot(candidate);
        }
      } else {
        this.evictSlot(victim);
      }
    }
    while (this.windowWeight > this.maxWindow) {
      const s = this.links[(WINDOW << 4) + 1] as number;
      if (s === WINDOW) break;
      const w = this.data[(s << 3) + WEIGHT] as number;
      this.unlink(s);
      this.windowWeight -= w;
      this.links[(s << 4) + 3] = PROBATION;
      this.pushMru(PROBATION, s);
      this.probationWeight += w;
    }
  }

  private mainVictim(): number {
    const p = this.links[(PROBATION << 4) + 1] as number;
    if (p !== PROBATION) return p;
    const q = this.links[(PROTECTED << 4) + 1] as number;
    return q !== PROTECTED ? q : -1;
  }

  private admit(candidate: number, victim: number): boolean {
    const candidateFreq = this.sketch.frequencySpread(this.links[(candidate << 4) + 2] as number);
    const victimFreq = this.sketch.frequencySpread(this.links[(victim << 4) + 2] as number);
    if (candidateFreq > victimFreq) return true;
    if (candidateFreq >= ADMIT_HASHDOS_THRESHOLD) {
      // xorshift32: deterministic jitter, so simulations are reproducible.
      let x = this.random;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.random = x;
      return (x & 127) === 0;
    }
    return false;
  }

  private evictSlot(slot: number): void {
    const key = this.keys[slot] as K;
    this.remove(slot);
    this.onEvict?.(key, slot);
  }

  private allocate(): number {
    if (this.freeHead !== -1) {
      const s = this.freeHead;
      this.freeHead = this.links[(s << 4) + 1] as number;
      return s;
    }
    if (this.top === this.capacitySlots) this.grow();
    return this.top++;
  }

  private grow(): void {
    const n = this.capacitySlots * 2;
    const buffer = new ArrayBuffer(n * SLOT_BYTES);
    new Int32Array(buffer).set(this.links);
    this.links = new Int32Array(buffer);
    this.data = new Float64Array(buffer);
    this.capacitySlots = n;
  }

  private unlink(s: number): void {
    const p = this.links[s << 4] as number;
    const n = this.links[(s << 4) + 1] as number;
    this.links[(p << 4) + 1] = n;
    this.links[n << 4] = p;
  }

  private pushMru(q: number, s: number): void {
    const tail = this.links[q << 4] as number;
    this.links[(tail << 4) + 1] = s;
    this.links[s << 4] = tail;
    this.links[(s << 4) + 1] = q;
    this.links[q << 4] = s;
  }
}
