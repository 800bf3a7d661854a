import { describe, expect, it } from 'vitest';
import { mulberry32, zipfSequence } from '../src/zipf.js';

describe('mulberry32', () => {
  it('is deterministic per seed and stays in [0, 1)', () => {
    const a = mulberry32(1);
    const b = mulberry32(1);
    const c = mulberry32(2);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(xs[0]).not.toBe(c());
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});

describe('zipfSequence', () => {
  it('draws ranks in 0..n-1, the same for the same seed', () => {
    const a = zipfSequence({ n: 100, length: 10_000, seed: 9 });
    expect(a).toEqual(zipfSequence({ n: 100, length: 10_000, seed: 9 }));
    expect(Math.max(...a)).toBeLessThan(100);
    expect(a.length).toBe(10_000);
  });

  it('follows the Zipf law: rank k about 1/(k+1) as often as rank 0', () => {
    const n = 1000;
    const seq = zipfSequence({ n, length: 200_000, s: 1, seed: 1 });
    const counts = new Uint32Array(n);
    for (const r of seq) counts[r] = (counts[r] as number) + 1;
    const h = Array.from({ length: n }, (_, k) => 1 / (k + 1)).reduce((x, y) => x + y, 0);
    // Expected share of rank 0 is 1/H(n) (about 13.4% for n = 1000).
    expect((counts[0] as number) / seq.length).toBeCloseTo(1 / h, 2);
    expect((counts[0] as number) / (counts[1] as number)).toBeGreaterThan(1.8);
    expect((counts[0] as number) / (counts[1] as number)).toBeLessThan(2.2);
    expect(counts[0]).toBeGreaterThan((counts[9] as number) * 8);
  });

  it('is uniform with s = 0', () => {
    const seq = zipfSequence({ n: 4, length: 40_000, s: 0, seed: 3 });
    const counts = [0, 0, 0, 0];
    for (const r of seq) counts[r] = (counts[r] as number) + 1;
    for (const c of counts) expect(c / seq.length).toBeCloseTo(0.25, 1);
  });

  it('rejects invalid parameters', () => {
    expect(() => zipfSequence({ n: 0, length: 1 })).toThrow(/positive integer/);
    expect(() => zipfSequence({ n: 5, length: -1 })).toThrow(/length/);
    expect(() => zipfSequence({ n: 5, length: 1, s: -1 })).toThrow(/exponent/);
  });
});
