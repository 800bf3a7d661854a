/** Options of {@link FrequencySketch}. */
export interface FrequencySketchOptions {
  /** How many distinct items the sketch should tell apart (entries, not bytes). @default 16 */
  capacity?: number;
  /**
   * Put a one-bit Bloom filter (the "doorkeeper") in front of the counters: an item's first
   * access only sets its doorkeeper bit, so one-hit wonders do not pollute the counters.
   * @default false
   */
  doorkeeper?: boolean;
  /** Increments between two agings (halvings) of every counter. @default 10 × capacity */
  sampleSize?: number;
}

const SEEDS = [0x97cb3127, 0xb7a1c3d5, 0x8f1bbcdc, 0xc2b2ae35] as const;
const RESET_MASK = 0x77777777;
/** Tables up to this many words (32 KB, a CPU's L1 data cache) spread each item's counters. */
const SMALL_TABLE_WORDS = 8192;

/**
 * A 4-bit count-min sketch (TinyLFU's frequency filter): estimates how often an item was seen
 * recently, in at most 15 (16 with the doorkeeper), using half a byte per counter. Every
 * `sampleSize` increments all counters are halved, so old popularity fades.
 *
 * Items are given as 32-bit hashes; see {@link hashKey}.
 */
export class FrequencySketch {
  /** Increments between two agings. */
  sampleSize = 0;
  private table: Uint32Array = new Uint32Array(8);
  private mask = 7;
  /** Blocks of 16 words (64 bytes) minus one; -1 while the table is small (see `position`). */
  private blockMask = -1;
  private additions = 0;
  private capacity = 0;
  private door: Uint32Array | undefined;
  private doorMask = 0;
  private readonly useDoorkeeper: boolean;
  private readonly fixedSampleSize: number | undefined;
  /**
   * The xor of the words {@link FrequencySketch.incrementManySpread} loads ahead of their use; meaningless, and public only so
   * that nothing can prove it unread and drop those loads.
   */
  touched = 0;

  constructor(options: FrequencySketchOptions = {}) {
    this.useDoorkeeper = options.doorkeeper ?? false;
    this.fixedSampleSize = options.sampleSize;
    this.ensureCapacity(options.capacity ?? 16);
  }

  /** The number of distinct items the sketch is currently sized for. */
  get sizedFor(): number {
    return this.capacity;
  }

  /**
   * Resizes the sketch for `capacity` items if it is sized for fewer. Resizing forgets every
   * count, so callers grow it by doubling.
   */
  ensureCapacity(capacity: number): void {
    const wanted = Math.max(16, Math.min(capacity, 1 << 26));
    if (wanted <= this.capacity) return;
    this.capacity = wanted;
    // 8 counters per word, 2 words per item: about 16 counters per item as in Caffeine.
    const words = nextPowerOfTwo(wanted * 2);
    this.table = new Uint32Array(words);
    this.mask = words - 1;
    this.blockMask = words > SMALL_TABLE_WORDS ? (words >>> 4) - 1 : -1;
    this.sampleSize = this.fixedSampleSize ?? 10 * wanted;
    this.additions = 0;
    if (this.useDoorkeeper) {
      const doorWords = nextPowerOfTwo(Math.ceil(wanted / 4));
      this.door = new Uint32Array(doorWords);
      this.doorMask = doorWords * 32 - 1;
    }
  }

  /** The estimated number of occurrences of `hash`, 0..15 (0..16 with the doorkeeper). */
  frequency(hash: number): number {
    return this.frequencySpread(spread(hash));
  }

  /** {@link FrequencySketch.frequency} of a hash already mixed by {@link spreadHash} (saves the mixing). */
  frequencySpread(h: number): number {
    const c = rehash(h);
    const t = this.table;
    let min = 15;
    for (let i = 0; i < 4; i++) {
      const p = this.position(h, c, i);
      const n = ((t[p >>> 3] as number) >>> ((p & 7) << 2)) & 15;
      if (n < min) min = n;
    }
    if (this.door !== undefined && this.doorContains(h)) min++;
    return min;
  }

  /**
   * Loads both ends of the block of the item with spread hash `h` and returns their xor
   * (meaningless): a caller's load-only pass, after which {@link FrequencySketch.incrementManySpread}
   * may skip its own (`prefetched`). 0 without loading while the table is small.
   */
  touchSpread(h: number): number {
    const bm = this.blockMask;
    if (bm === -1) return 0;
    const block = (h & bm) << 4;
    return (this.table[block] as number) ^ (this.table[block + 15] as number);
  }

  /** Records one occurrence of `hash`; ages every counter once `sampleSize` increments were made. */
  increment(hash: number): void {
    this.incrementSpread(spread(hash));
  }

  /** {@link FrequencySketch.increment} of a hash already mixed by {@link spreadHash} (saves the mixing). */
  incrementSpread(h: number): void {
    if (this.door !== undefined && !this.doorAdd(h)) {
      if (++this.additions >= this.sampleSize) this.reset();
      return;
    }
    const c = rehash(h);
    const t = this.table;
    let added = false;
    for (let i = 0; i < 4; i++) {
      const p = this.position(h, c, i);
      const index = p >>> 3;
      const shift = (p & 7) << 2;
      const word = t[index] as number;
      if (((word >>> shift) & 15) !== 15) {
        t[index] = word + (1 << shift);
        added = true;
      }
    }
    if (added && ++this.additions >= this.sampleSize) this.reset();
  }

  /**
   * {@link FrequencySketch.incrementSpread} of `hashes[0..n)`, in order (the same counts as one
   * call each). A batch of items whose counters are far apart in a large table is faster in one
   * tight loop: the CPU overlaps the cache misses of consecutive items. A first pass only loads
   * both ends of every item's block (a block may straddle two cache lines), so that the misses of
   * the whole batch are in flight at once (the increments' loop, longer and with stores, keeps only
   * a few in flight); the increments then find their lines in the CPU's cache. `prefetched`: the
   * caller made that pass itself ({@link FrequencySketch.touchSpread}, in a pass of its own loads).
   */
  incrementManySpread(hashes: Int32Array, n: number, prefetched = false): void {
    const bm = this.blockMask;
    if (bm === -1 || this.door !== undefined) {
      for (let i = 0; i < n; i++) this.incrementSpread(hashes[i] as number);
      return;
    }
    const t = this.table;
    const limit = this.sampleSize;
    if (!prefetched) {
      let touched = 0;
      for (let i = 0; i < n; i++) {
        const block = ((hashes[i] as number) & bm) << 4;
        touched ^= (t[block] as number) ^ (t[block + 15] as number);
      }
      // Kept, so that the compiler cannot drop the loads.
      this.touched = touched;
    }
    for (let i = 0; i < n; i++) {
      const h = hashes[i] as number;
      const c = rehash(h);
      // The four counters of the item, in the four quarters of its block (as `position` places them).
      const block = (h & bm) << 4;
      const i0 = block + (c & 3);
      const s0 = ((c >>> 2) & 7) << 2;
      const i1 = block + 4 + ((c >>> 8) & 3);
      const s1 = ((c >>> 10) & 7) << 2;
      const i2 = block + 8 + ((c >>> 16) & 3);
      const s2 = ((c >>> 18) & 7) << 2;
      const i3 = block + 12 + ((c >>> 24) & 3);
      const s3 = ((c >>> 26) & 7) << 2;
      const w0 = t[i0] as number;
      const w1 = t[i1] as number;
      const w2 = t[i2] as number;
      const w3 = t[i3] as number;
      let added = 0;
      if (((w0 >>> s0) & 15) !== 15) {
        t[i0] = w0 + (1 << s0);
        added = 1;
      }
      if (((w1 >>> s1) & 15) !== 15) {
        t[i1] = w1 + (1 << s1);
        added = 1;
      }
      if (((w2 >>> s2) & 15) !== 15) {
        t[i2] = w2 + (1 << s2);
        added = 1;
      }
      if (((w3 >>> s3) & 15) !== 15) {
        t[i3] = w3 + (1 << s3);
        added = 1;
      }
      if (added === 1 && ++this.additions >= limit) this.reset();
    }
  }

  /**
   * Where the `i`-th counter (0..3) of the item with spread hash `h` (and `c = rehash(h)`) is:
   * `word index << 3 | counter in the word`. A small table spreads the four counters over all of
   * it (fewer collisions, and it sits in the CPU's L1 cache anyway); a larger one keeps them in
   * one 64-byte block picked by `h` (as Caffeine does), so an access costs one cache miss, not four.
   */
  private position(h: number, c: number, i: number): number {
    if (this.blockMask === -1) {
      const x = Math.imul(h, SEEDS[i] as number);
      return (((x ^ (x >>> 17)) & this.mask) << 3) | (x >>> 29);
    }
    const x = c >>> (i << 3);
    return ((((h & this.blockMask) << 4) + (i << 2) + (x & 3)) << 3) | ((x >>> 2) & 7);
  }

  /** Halves every counter and clears the doorkeeper. */
  reset(): void {
    const t = this.table;
    for (let i = 0; i < t.length; i++) t[i] = ((t[i] as number) >>> 1) & RESET_MASK;
    this.door?.fill(0);
    this.additions = this.additions >>> 1;
  }

  /** Forgets every count. */
  clear(): void {
    this.table.fill(0);
    this.door?.fill(0);
    this.additions = 0;
  }

  /** Sets the item's doorkeeper bits; returns whether they were all set already. */
  private doorAdd(h: number): boolean {
    const door = this.door as Uint32Array;
    let present = true;
    for (let i = 0; i < 2; i++) {
      const bit = Math.imul(h, SEEDS[i + 2] as number) & this.doorMask;
      const w = bit >>> 5;
      const m = 1 << (bit & 31);
      if (((door[w] as number) & m) === 0) {
        present = false;
        door[w] = (door[w] as number) | m;
      }
    }
    return present;
  }

  private doorContains(h: number): boolean {
    const door = this.door as Uint32Array;
    for (let i = 0; i < 2; i++) {
      const bit = Math.imul(h, SEEDS[i + 2] as number) & this.doorMask;
      if (((door[bit >>> 5] as number) & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** A second mix of an already spread hash (Caffeine's), picking the counters inside a block. */
function rehash(x: number): number {
  x = Math.imul(x, 0x31848bab);
  return x ^ (x >>> 14);
}

/** Mixes the bits of a 32-bit hash (murmur3 finalizer), so that close inputs spread far apart. */
export function spreadHash(x: number): number {
  return spread(x);
}

function spread(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  return x ^ (x >>> 16);
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * A 32-bit hash of a string (FNV-1a) or a number. Cost grows with the key's length, so callers
 * compute it once per entry.
 */
export function hashKey(key: unknown): number {
  if (typeof key === 'number') {
    return Number.isInteger(key) ? (key | 0) ^ (Math.floor(key / 4294967296) | 0) : hashKey(String(key));
  }
  const s = typeof key === 'string' ? key : String(key);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}
