/** A synthetic key trace of a known shape, for hit-rate measurements beside the research traces. */
export interface GeneratedTrace {
  /** Stable name, e.g. `loop-1.25x`. */
  name: string;
  /** What the trace does, in a few words. */
  shape: string;
  /** The keys, in access order. */
  keys: Int32Array;
}

/** A deterministic PRNG (mulberry32): the same seed gives the same trace on every machine. */
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

/** Draws ranks 0..n-1 with Zipf probabilities (exponent `s`), by inverting the CDF. */
function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  return () => {
    const u = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** Sweeps 1..n forward then backward, `sweeps` times: recency is everything (LRU is optimal). */
export function zigzagTrace(n = 2000, sweeps = 30): Int32Array {
  const out = new Int32Array(n * sweeps);
  let k = 0;
  for (let s = 0; s < sweeps; s++) for (let i = 0; i < n; i++) out[k++] = s % 2 === 0 ? i : n - 1 - i;
  return out;
}

/** Cycles over `n` keys `rounds` times: LRU gets nothing once the loop is larger than the cache. */
export function loopTrace(n = 1250, rounds = 40): Int32Array {
  const out = new Int32Array(n * rounds);
  for (let i = 0; i < out.length; i++) out[i] = i % n;
  return out;
}

/**
 * Zipf (s = 0.9) reads over a hot set of `hot` keys that moves to fresh keys every `period`
 * accesses: frequency must be forgotten quickly, recency matters.
 */
export function shiftingHotSetTrace(hot = 1000, period = 20_000, shifts = 10, seed = 11): Int32Array {
  const random = mulberry32(seed);
  const rank = zipfSampler(hot, 0.9, random);
  const out = new Int32Array(period * shifts);
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(i / period) * hot + rank();
  return out;
}

/**
 * Zipf (s = 0.8) reads over `hot` keys, interrupted every `every` accesses by a scan of `scan`
 * keys never seen before: a cache must not let the scans flush the hot set.
 */
export function scanPollutedTrace(
  hot = 2000,
  every = 10_000,
  scan = 4000,
  rounds = 12,
  seed = 13,
): Int32Array {
  const random = mulberry32(seed);
  const rank = zipfSampler(hot, 0.8, random);
  const out: number[] = [];
  let fresh = hot;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < every; i++) out.push(rank());
    for (let i = 0; i < scan; i++) out.push(fresh++);
  }
  return Int32Array.from(out);
}

/**
 * Reads of recently written keys: a new key every 4 accesses, the others at a geometric distance
 * (mean `mean` keys) behind the newest — a feed or session-like workload where LRU does well.
 */
export function recencyTrace(length = 200_000, mean = 150, seed = 17): Int32Array {
  const random = mulberry32(seed);
  const out = new Int32Array(length);
  let newest = 0;
  for (let i = 0; i < length; i++) {
    if (i % 4 === 0) newest++;
    const back = Math.floor(-Math.log(1 - random()) * mean);
    out[i] = Math.max(0, newest - back);
  }
  return out;
}

/** Stationary Zipf (s = 0.9) reads over `n` keys: frequency is everything. */
export function zipfTrace(n = 10_000, length = 200_000, seed = 19): Int32Array {
  const rank = zipfSampler(n, 0.9, mulberry32(seed));
  const out = new Int32Array(length);
  for (let i = 0; i < length; i++) out[i] = rank();
  return out;
}

/** The generated traces of the package README's second hit-rate table. */
export function generatedTraces(): GeneratedTrace[] {
  return [
    { name: 'zigzag', shape: 'forward and backward sweeps over 2,000 keys', keys: zigzagTrace() },
    { name: 'loop', shape: 'a loop over 1,250 keys', keys: loopTrace() },
    {
      name: 'shifting-hot-set',
      shape: 'Zipf 0.9 over 1,000 hot keys that change every 20,000 reads',
      keys: shiftingHotSetTrace(),
    },
    {
      name: 'scan-polluted',
      shape: 'Zipf 0.8 over 2,000 keys, a scan of 4,000 new keys every 10,000 reads',
      keys: scanPollutedTrace(),
    },
    {
      name: 'recency',
      shape: 'reads at a geometric distance (mean 150) behind a moving head',
      keys: recencyTrace(),
    },
    { name: 'zipf', shape: 'stationary Zipf 0.9 over 10,000 keys', keys: zipfTrace() },
  ];
}
