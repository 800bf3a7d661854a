/** One request of the replayed day. */
export interface DemoRequest {
  path: string;
  key: string;
}

/** Options of {@link buildTraffic}. */
export interface TrafficOptions {
  requests: number;
  /** Warmed NCMs, most traded first. */
  ncms: readonly string[];
  /** Warmed countries, most traded first. */
  countries: readonly string[];
  /** Countries outside the warmed set, asked for now and then. */
  coldCountries: readonly string[];
  /** Latest published month. */
  latest: { year: number; month: number };
  /** Share of requests outside the warmed set. @default 0.01 */
  coldShare?: number;
  /** Share of import requests. @default 0.2 */
  importShare?: number;
  seed: number;
}

/** A small deterministic PRNG (mulberry32), so every run replays the same day. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Samples ranks 0..n-1 with probability ∝ 1/(rank+1)^s. */
export function zipf(n: number, s: number, random: () => number): () => number {
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

/**
 * A day of gateway traffic: Zipf over the warmed NCMs × countries × last 12 months (recent months
 * more often), mostly exports, plus a small share of requests for countries outside the warmed set.
 */
export function buildTraffic(o: TrafficOptions): DemoRequest[] {
  const random = prng(o.seed);
  const ncm = zipf(o.ncms.length, 1, random);
  const country = zipf(o.countries.length, 1, random);
  const cold = zipf(Math.max(1, o.coldCountries.length), 1.2, random);
  const monthBack = zipf(12, 0.6, random);
  const out: DemoRequest[] = [];
  for (let i = 0; i < o.requests; i++) {
    const flow = random() < (o.importShare ?? 0.2) ? 'imp' : 'exp';
    const back = monthBack();
    let year = o.latest.year;
    let month = o.latest.month - back;
    while (month < 1) {
      month += 12;
      year--;
    }
    const n = o.ncms[ncm()] as string;
    const isCold = o.coldCountries.length > 0 && random() < (o.coldShare ?? 0.01);
    const p = isCold ? (o.coldCountries[cold()] as string) : (o.countries[country()] as string);
    const endpoint = flow === 'exp' ? 'exportacao_mes' : 'importacao_mes';
    out.push({
      path: `/comexstat/${endpoint}?ano=${year}&mes=${month}&ncm=${n}&pais=${p}`,
      key: `comexstat:${flow}:${year}:${month}:${n}:${p}`,
    });
  }
  return out;
}
