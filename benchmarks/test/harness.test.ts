import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chartSpec, renderSvg } from '../src/chart.js';
import { parseBenchArgs } from '../src/cli-args.js';
import { formatMachine, machineInfo } from '../src/machine.js';
import { createLoop, pairedRatio, runConcurrent, runRounds, summarizeRounds } from '../src/measure.js';
import { result, type ScenarioReport } from '../src/report.js';
import { ResultsStore, summaryMarkdown } from '../src/results-store.js';
import { roundSettings } from '../src/scenario.js';

const known = ['l1-get-hit', 'stampede'];

describe('parseBenchArgs', () => {
  it('runs every scenario by default and parses flags', () => {
    expect(parseBenchArgs([], known)).toEqual({ scenarios: known, json: false, quick: false, noSave: false });
    expect(parseBenchArgs(['--', 'stampede', '--json', '--quick', '--no-save'], known)).toEqual({
      scenarios: ['stampede'],
      json: true,
      quick: true,
      noSave: true,
    });
  });

  it('names unknown scenarios and flags', () => {
    expect(() => parseBenchArgs(['nope'], known)).toThrow(
      /unknown scenario "nope"; choose from l1-get-hit, stampede/,
    );
    expect(() => parseBenchArgs(['--fast'], known)).toThrow(/unknown flag --fast/);
  });
});

describe('measure', () => {
  it('counts operations of sync and async loops', async () => {
    let calls = 0;
    const sync = await createLoop('sync').round(() => calls++, 5);
    expect(sync.ops).toBe(calls);
    let awaited = 0;
    const async = await createLoop('async').round(async () => awaited++, 5);
    expect(async.ops).toBe(awaited);
    expect(async.elapsedMs).toBeGreaterThanOrEqual(5);
  });

  it('measures heap bytes allocated per operation', async () => {
    const loop = createLoop('sync');
    const none = await loop.bytesPerOp((i) => i & 1, 200_000);
    const kept: number[][] = [];
    // A 100-element number array per call: at least 800 bytes of elements, whatever the collector does.
    const arrays = await loop.bytesPerOp(() => {
      kept.push(new Array(100).fill(1.5));
      if (kept.length > 1000) kept.length = 0;
    }, 20_000);
    expect(none).toBeLessThan(1);
    expect(arrays).toBeGreaterThan(800);
    expect(arrays).toBeLessThan(2000);
  });

  it('records one latency per operation at the given concurrency', async () => {
    let inFlight = 0;
    let most = 0;
    const sample = await runConcurrent(
      async () => {
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, 1));
        inFlight--;
      },
      { concurrency: 4, durationMs: 20 },
    );
    expect(most).toBe(4);
    expect(sample.latenciesMs).toHaveLength(sample.ops);
  });

  it('interleaves rounds, drops the warm-up and aggregates medians', async () => {
    const order: string[] = [];
    const rates = [10, 20, 30, 40];
    const make = (impl: string) => ({
      impl,
      round: async (_ms: number, r: number) => {
        order.push(`${impl}${r}`);
        return { ops: rates[r] as number, elapsedMs: 1000, latenciesMs: [r] };
      },
    });
    const figures = await runRounds([make('a'), make('b')], { warmup: 1, rounds: 3, durationMs: 1 });
    expect(order).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
    expect(figures[0]).toMatchObject({ impl: 'a', opsPerSec: 30, rounds: 3, p50Ms: 2 });
    expect(figures[0]?.spreadPct).toBeCloseTo((20 / 30) * 100, 6);
    expect(figures[0]?.roundRates).toEqual([20, 30, 40]);
    expect(summarizeRounds('x', [{ ops: 5, elapsedMs: 500 }])).toEqual({
      impl: 'x',
      opsPerSec: 10,
      spreadPct: 0,
      rounds: 1,
      roundRates: [10],
    });
  });

  it('compares two contenders round by round (median of paired ratios)', () => {
    const fig = (roundRates: number[]) => ({ impl: 'x', opsPerSec: 0, spreadPct: 0, rounds: 3, roundRates });
    // Load drifts between rounds; the paired ratio stays 0.9 where the medians' ratio would not.
    expect(pairedRatio(fig([90, 45, 180, 9]), fig([100, 50, 200, 10]))).toBeCloseTo(0.9, 9);
    expect(pairedRatio(fig([1, 2, 9]), fig([2, 2, 10]))).toBeCloseTo(0.9, 9);
    expect(() => pairedRatio(fig([]), fig([1]))).toThrow(RangeError);
  });

  it('shortens rounds in quick mode', () => {
    const ctx = { quick: true, log: () => undefined, runId: 'x', repoRoot: '/' };
    expect(roundSettings(ctx, 400)).toEqual({ warmup: 1, rounds: 2, durationMs: 100 });
    expect(roundSettings({ ...ctx, quick: false }, 400, 4)).toEqual({
      warmup: 1,
      rounds: 4,
      durationMs: 400,
    });
  });
});

describe('results and charts', () => {
  const report: ScenarioReport = {
    scenario: 'l1-get-hit',
    title: 'L1 hit',
    baselines: { g: 'lru' },
    results: [result('lru', 'g', { opsPerSec: 100 }), result('bgc x', 'g', { opsPerSec: 50 })],
    targets: [{ description: 'd', target: '<= 3x', actual: '2x', pass: true }],
    notes: [],
  };

  it('describes the machine', () => {
    const m = machineInfo();
    expect(m.cores).toBeGreaterThan(0);
    expect(m.node).toBe(process.version);
    expect(formatMachine(m)).toContain(`${m.cores} cores, Node ${process.version}`);
  });

  it('builds a vega-lite spec colouring ours apart and renders it to SVG headless', async () => {
    const spec = chartSpec(report) as unknown as { data: { values: { who: string }[] } };
    expect(spec.data.values.map((v) => v.who)).toEqual(['peer / limit', 'bgc-cache']);
    const svg = await renderSvg(chartSpec(report));
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('bgc x');
  });

  it('stores JSON and SVG per scenario and rebuilds the summary from them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bgc-bench-test-'));
    try {
      const store = new ResultsStore({ dir, order: ['stampede', 'l1-get-hit'] });
      const machine = { cpu: 'Test CPU', cores: 2, node: 'v20.0.0', os: 'linux', memoryGiB: 1 };
      await store.save(report, machine, new Date('2026-01-01T00:00:00Z'));
      await store.save({ ...report, scenario: 'stampede', results: [], skipped: 'no redis' }, machine);
      const stored = JSON.parse(readFileSync(join(dir, 'l1-get-hit.json'), 'utf8'));
      expect(stored).toMatchObject({
        scenario: 'l1-get-hit',
        date: '2026-01-01T00:00:00.000Z',
        machine: { cpu: 'Test CPU' },
      });
      expect(readFileSync(join(dir, 'l1-get-hit.svg'), 'utf8')).toContain('<svg');
      const md = store.writeSummary();
      expect(md).toBe(readFileSync(join(dir, 'SUMMARY.md'), 'utf8'));
      expect(md).toContain('Machine: Test CPU, 2 cores, Node v20.0.0');
      expect(md.indexOf('## stampede')).toBeLessThan(md.indexOf('## l1-get-hit'));
      expect(md).toContain('_Skipped: no redis_');
      expect(md).toContain('![l1-get-hit](l1-get-hit.svg)');
      expect(md).toContain('| l1-get-hit | d | 2x | <= 3x | met |');
      expect(new ResultsStore({ dir: join(dir, 'missing'), order: [] }).load()).toEqual([]);
      expect(summaryMarkdown([])).toContain('Machine: n/a');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
