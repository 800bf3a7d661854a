import { describe, expect, it } from 'vitest';
import { formatMarkdown, formatNumber, formatTable, round, toJsonOutput } from '../src/format.js';
import { baselineOf, checkTarget, ratioOf, result, type ScenarioReport } from '../src/report.js';

const report: ScenarioReport = {
  scenario: 'l1-get-hit',
  title: 'L1 hit',
  baselines: { 'sync get': 'lru-cache get' },
  results: [
    result('lru-cache get', 'sync get', { opsPerSec: 10_000_000, spreadPct: 4 }),
    result('bgc orchestrator getSync', 'sync get', {
      opsPerSec: 4_000_000.4,
      spreadPct: 2,
      p50Ms: 0.00012,
      p99Ms: 0.0031,
    }),
    result('stampede | x', 'other', { opsPerSec: 5, loaderCalls: 1 }),
  ],
  targets: [checkTarget('time vs lru', 2.5, { max: 3 })],
  notes: ['a note'],
};

describe('report helpers', () => {
  it('names rows impl [case] and finds the case baseline', () => {
    expect(report.results[1]?.name).toBe('bgc orchestrator getSync [sync get]');
    expect(result('x', '', { opsPerSec: 1 }).name).toBe('x');
    expect(baselineOf(report, report.results[1]!)?.impl).toBe('lru-cache get');
    expect(ratioOf(report, report.results[1]!)).toBeCloseTo(0.4, 6);
    expect(ratioOf(report, report.results[2]!)).toBeUndefined();
  });

  it('computes ratios on hit rate when the metric says so', () => {
    const hr: ScenarioReport = {
      ...report,
      metric: 'hitRate',
      baselines: { t: 'lru' },
      results: [
        result('lru', 't', { opsPerSec: 1, hitRate: 0.4 }),
        result('bgc', 't', { opsPerSec: 9, hitRate: 0.5 }),
      ],
    };
    expect(ratioOf(hr, hr.results[1]!)).toBeCloseTo(1.25, 6);
    expect(formatTable(hr)).toContain('50.0%');
  });

  it('checks targets against upper and lower bounds', () => {
    expect(checkTarget('a', 2.9, { max: 3 })).toEqual({
      description: 'a',
      target: '<= 3.00x',
      actual: '2.90x',
      pass: true,
    });
    expect(checkTarget('b', 0.8, { min: 0.85 }, (x) => `${x * 100}%`).pass).toBe(false);
    expect(checkTarget('c', undefined, { min: 1 })).toMatchObject({ actual: 'n/a', pass: false });
  });
});

describe('formatting', () => {
  it('formats numbers with separators above 100 and decimals below', () => {
    expect(formatNumber(1234567.8)).toBe('1,234,568');
    expect(formatNumber(3.14259)).toBe('3.14');
    expect(formatNumber(0.0012, 4)).toBe('0.0012');
    expect(formatNumber(undefined)).toBe('-');
  });

  it('prints an aligned table with ratio, spread, targets and notes', () => {
    const text = formatTable(report);
    const lines = text.split('\n');
    expect(lines[0]).toBe('== l1-get-hit: L1 hit');
    expect(text).toMatch(/lru-cache get\s+10,000,000 .*4\.0%\s+1\.00x/);
    expect(text).toMatch(/bgc orchestrator getSync\s+4,000,000 .*0\.40x/);
    expect(text).toContain('target MET    time vs lru: 2.50x (target <= 3.00x)');
    expect(text).toContain('note: a note');
    const header = lines[1] ?? '';
    expect(header).toContain('p99 ms');
    expect(header).toContain('loader calls');
    expect(formatTable({ ...report, skipped: 'no redis' })).toContain('skipped: no redis');
  });

  it('renders Markdown with escaped pipes and the targets table', () => {
    const md = formatMarkdown(report);
    expect(md).toContain('| case | implementation | ops/s |');
    expect(md).toContain('stampede \\| x');
    expect(md).toContain('| time vs lru | 2.50x | <= 3.00x | met |');
    expect(formatMarkdown({ ...report, skipped: 'x' })).toBe('_Skipped: x_\n');
  });

  it('prints exactly the documented JSON keys', () => {
    const json = toJsonOutput(report);
    expect(Object.keys(json)).toEqual(['scenario', 'results']);
    expect(json.results[0]).toEqual({ name: 'lru-cache get [sync get]', opsPerSec: 10_000_000 });
    expect(json.results[1]).toEqual({
      name: 'bgc orchestrator getSync [sync get]',
      opsPerSec: 4_000_000,
      p50Ms: 0.0001,
      p99Ms: 0.0031,
    });
    expect(json.results[2]).toEqual({ name: 'stampede | x [other]', opsPerSec: 5, loaderCalls: 1 });
    expect(round(1234.56)).toBe(1235);
    expect(round(1.234567)).toBe(1.2346);
  });
});
