/**
 * A small seeded PRNG (mulberry32): the same seed gives the same sequence on every machine, so
 * every implementation of a scenario sees the very same keys.
 * @returns a function giving floats in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@link zipfSequence}. */
export interface ZipfOptions {
  /** Number of distinct items (ranks 0..n-1, rank 0 the most popular). */
  n: number;
  /** Length of the sequence. */
  length: number;
  /** Skew exponent: item of rank k has weight 1/(k+1)^s. @default 1 */
  s?: number;
  /** PRNG seed. @default 42 */
  seed?: number;
}

/**
 * A sequence of item ranks following a Zipf law (the shape of real cache traffic: a few hot keys,
 * a long tail), drawn by inverse CDF with a binary search.
 * @throws {RangeError} when `n` is not a positive integer, `length` negative or `s` negative.
 */
export function zipfSequence(options: ZipfOptions): Uint32Array {
  const { n, length } = options;
  const s = options.s ?? 1;
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`zipf n must be a positive integer, got ${n}`);
  if (!Number.isInteger(length) || length < 0)
    throw new RangeError(`zipf length must be >= 0, got ${length}`);
  if (!(s >= 0)) throw new RangeError(`zipf exponent s must be >= 0, got ${s}`);
  const cdf = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    total += 1 / (k + 1) ** s;
    cdf[k] = total;
  }
  const random = mulberry32(options.seed ?? 42);
  const out = new Uint32Array(length);
  for (let i = 0; i < length; i++) {
    const u = random() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    out[i] = lo;
  }
  return out;
}
