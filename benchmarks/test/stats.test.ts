import { describe, expect, it } from 'vitest';
import { latencySummary, median, percentile, spread } from '../src/stats.js';

describe('stats', () => {
  it('takes the median of odd and even lists, in any order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });

  it('interpolates percentiles between closest ranks', () => {
    const xs = Array.from({ length: 101 }, (_, i) => i);
    expect(percentile(xs, 0)).toBe(0);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([10, 20], 25)).toBe(12.5);
  });

  it('rejects empty lists and out-of-range percentiles', () => {
    expect(() => median([])).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(/outside 0..100/);
    expect(() => spread([])).toThrow(RangeError);
  });

  it('reports the spread as (max - min) / median in percent', () => {
    expect(spread([90, 100, 110])).toEqual({ median: 100, min: 90, max: 110, spreadPct: 20 });
    expect(spread([5]).spreadPct).toBe(0);
    expect(spread([0, 0]).spreadPct).toBe(0);
  });

  it('summarizes latencies as p50, p95 and p99', () => {
    const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
    const s = latencySummary(xs);
    expect(s.p50Ms).toBeCloseTo(500.5, 5);
    expect(s.p95Ms).toBeCloseTo(950.05, 5);
    expect(s.p99Ms).toBeCloseTo(990.01, 5);
  });
});
