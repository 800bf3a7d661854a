/** Summary of repeated measurements of one figure (e.g. ops/s per round). */
export interface Spread {
  /** Median of the samples. */
  median: number;
  /** Smallest sample. */
  min: number;
  /** Largest sample. */
  max: number;
  /** `(max - min) / median`, in percent: how much the rounds disagree. 0 for one sample. */
  spreadPct: number;
}

function sorted(xs: ArrayLike<number>): number[] {
  return Array.from(xs).sort((a, b) => a - b);
}

/**
 * Median of the samples (mean of the two middle ones for an even count).
 * @throws {RangeError} on an empty list.
 */
export function median(xs: ArrayLike<number>): number {
  return percentile(xs, 50);
}

/**
 * The `p`-th percentile (0..100) by linear interpolation between closest ranks (the method of
 * numpy's default and of most spreadsheets): `percentile([1, 2, 3, 4], 50)` is 2.5.
 * @throws {RangeError} on an empty list or `p` outside 0..100.
 */
export function percentile(xs: ArrayLike<number>, p: number): number {
  if (xs.length === 0) throw new RangeError('percentile of an empty list: measure at least one sample');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside 0..100`);
  const s = sorted(xs);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (rank - lo);
}

/**
 * Median, extremes and relative spread of the samples.
 * @throws {RangeError} on an empty list.
 */
export function spread(xs: ArrayLike<number>): Spread {
  const s = sorted(xs);
  if (s.length === 0) throw new RangeError('spread of an empty list: measure at least one round');
  const m = median(s);
  const min = s[0] as number;
  const max = s[s.length - 1] as number;
  return { median: m, min, max, spreadPct: m === 0 ? 0 : ((max - min) / m) * 100 };
}

/** Latency percentiles in ms. */
export interface LatencySummary {
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

/**
 * p50, p95 and p99 of latency samples in ms.
 * @throws {RangeError} on an empty list.
 */
export function latencySummary(samplesMs: ArrayLike<number>): LatencySummary {
  const s = sorted(samplesMs);
  return { p50Ms: percentile(s, 50), p95Ms: percentile(s, 95), p99Ms: percentile(s, 99) };
}
