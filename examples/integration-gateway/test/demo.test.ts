// The README's first command runs the demo: it must print no warning or error line, migrate its
// embedded L3 (PGlite) and show every level at work, L3 answering after the restart.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DemoReport } from '../src/demo/report.js';
import { here } from './helpers.js';

const DEMO = path.resolve(here, '../dist/demo.js');

function runDemo(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const env = { ...process.env };
  // The embedded default: no Redis, no PostgreSQL server (the demo's own configuration decides).
  for (const k of [
    'REDIS_ADDR',
    'CACHE_L2_ENABLED',
    'DATABASE_URL',
    'LOG_LEVEL',
    'CACHE_L2_PREFIX',
    'L3_SCHEMA',
  ])
    delete env[k];
  const r = spawnSync(process.execPath, [DEMO, ...args], { env, encoding: 'utf8', timeout: 240_000 });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

describe('pnpm demo (embedded default: memory L1 + PGlite L3)', () => {
  it('prints only its report, no warning or error line, and L3 answers after the restart', () => {
    const { stdout, stderr, status } = runDemo(['--requests', '600', '--restart-requests', '300', '--json']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const lines = stdout.trim().split('\n');
    // One line: the report. A pino warning (JSON with "level":40) would be another line.
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0] as string) as DemoReport;
    expect(report.tiers).toBe('l1 + l3');
    expect(report.errors).toBe(0);
    expect(report.keysWarmed).toBe(12_000);
    expect(report.levels.l1).toBeGreaterThan(0);
    expect(report.restart?.requests).toBe(300);
    expect(report.restart?.errors).toBe(0);
    expect(report.restart?.levels.l3).toBeGreaterThan(0);
  }, 300_000);

  it('--cold: no warming; reports the first request, the 503s and the upstream calls', () => {
    const { stdout, stderr, status } = runDemo([
      '--cold',
      '--requests',
      '200',
      '--restart-requests',
      '0',
      '--json',
    ]);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const report = JSON.parse(stdout.trim()) as DemoReport;
    expect(report.keysWarmed).toBe(0);
    expect(report.upstreamCallsWarming).toBe(0);
    expect(report.cold?.firstRequestMs).toBeGreaterThan(0);
    expect(report.cold?.upstreamCallsTotal).toBeGreaterThan(0);
    expect(report.cold?.count503).toBe(
      (report.statuses[503] ?? 0) + (report.cold?.firstStatus === 503 ? 1 : 0),
    );
    expect(report.levels.external).toBeGreaterThan(0);
    expect(report.restart).toBeUndefined();
  }, 300_000);
});
