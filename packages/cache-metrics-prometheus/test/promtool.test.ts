import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { collectDefaultMetrics } from 'prom-client';
import { collectProcessMetrics, NON_CONFORMING_DEFAULT_METRICS, PrometheusMetrics } from '../src/index.js';

const ALERTS = resolve(import.meta.dirname, '../dashboards/prometheus-alerts.yml');
const work = mkdtempSync(join(tmpdir(), 'bgc-promtool-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** promtool is required: the Debian package `prometheus` provides it (.ci/run installs it). */
function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8', timeout: 30_000 });
  if (r.error) {
    throw new Error(
      `promtool could not be run (${r.error.message}). Install it: apt-get install -y prometheus (Debian package).`,
    );
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('promtool', () => {
  it('is installed', () => {
    expect(execFileSync('promtool', ['--version'], { encoding: 'utf8' })).toMatch(/promtool, version/);
  });

  it('finds no problem in the exposition (every metric, every label set)', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, hitRateWindowMs: 0 });
    for (const level of ['l1', 'l2', 'l3'] as const) {
      m.hit(level, 'comexstat', 'exportacao_mes');
      m.miss(level, 'comexstat', 'exportacao_mes');
      m.latency(level, 'get', 0.0002);
      m.latency(level, 'set', 0.002);
      m.size(level, 1000);
      m.eviction(level, 2);
      m.error(level, 'get', 'timeout');
      m.circuitState(level, 'half_open');
    }
    m.miss('external', 'comexstat', 'exportacao_mes');
    m.latency('external', 'load', 0.8);
    m.error('external', 'load', 'loader_error');
    m.promotion('l2', 'l1');
    m.promotion('l3', 'l2');
    const text = await registry.metrics();
    const r = promtool(['check', 'metrics'], text);
    expect(r.output.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('finds no problem in a whole exposition: the cache metrics plus the process metrics', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, hitRateWindowMs: 0 });
    m.hit('l1', 'comexstat', 'exportacao_mes');
    m.latency('l2', 'get', 0.001);
    const removed = collectProcessMetrics({ registry });
    expect(removed).toEqual([...NON_CONFORMING_DEFAULT_METRICS]);
    const text = await registry.metrics();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_active_handles');
    expect(text).not.toMatch(/^nodejs_active_\w+_total/m);
    const r = promtool(['check', 'metrics'], text);
    expect(r.output.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it("rejects prom-client's unfiltered default metrics (what collectProcessMetrics removes)", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const r = promtool(['check', 'metrics'], await registry.metrics());
    expect(r.status).not.toBe(0);
    for (const name of NON_CONFORMING_DEFAULT_METRICS) expect(r.output).toContain(name);
  });

  it('applies a prefix to what it registers and removes', async () => {
    const registry = new Registry();
    expect(collectProcessMetrics({ registry, prefix: 'gw_' })).toEqual(
      NON_CONFORMING_DEFAULT_METRICS.map((n) => `gw_${n}`),
    );
    expect(await registry.metrics()).toContain('gw_process_cpu_seconds_total');
  });

  it('rejects a bad exposition (so the check above can fail)', () => {
    const r = promtool(['check', 'metrics'], '# HELP x_count\n# TYPE x_count counter\nx_count 1\n');
    expect(r.status).not.toBe(0);
  });

  it('accepts the alert rules', () => {
    const r = promtool(['check', 'rules', ALERTS]);
    expect(r.output).toContain('SUCCESS: 4 rules found');
    expect(r.status).toBe(0);
  });

  it('fires each alert on bad figures and none on healthy ones (promtool test rules)', () => {
    const P = 'integration_gateway_cache_';
    const lookups = (hitsPerMin: number, fullMissesPerMin: number) => [
      { series: `${P}hits_total{level="l1",connector="c",endpoint="e"}`, values: `0+${hitsPerMin}x40` },
      {
        series: `${P}misses_total{level="external",connector="c",endpoint="e"}`,
        values: `0+${fullMissesPerMin}x40`,
      },
    ];
    const latency = (le005: number, total: number, errors: number) => [
      { series: `${P}latency_seconds_bucket{level="l2",operation="get",le="0.05"}`, values: `0+${le005}x40` },
      { series: `${P}latency_seconds_bucket{level="l2",operation="get",le="0.1"}`, values: `0+${total}x40` },
      { series: `${P}latency_seconds_bucket{level="l2",operation="get",le="+Inf"}`, values: `0+${total}x40` },
      { series: `${P}latency_seconds_count{level="l2",operation="get"}`, values: `0+${total}x40` },
      {
        series: `${P}errors_total{level="l2",operation="get",error_type="redis_error"}`,
        values: `0+${errors}x40`,
      },
    ];
    const alerts = ['CacheHitRateLow', 'CacheLatencyP95High', 'CacheErrorRateHigh', 'CacheCircuitOpen'];
    const spec = {
      rule_files: [ALERTS],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            ...lookups(80, 20),
            ...latency(0, 60, 30),
            { series: `${P}circuit_state{level="l3"}`, values: '2x40' },
          ],
          alert_rule_test: [
            {
              eval_time: '30m',
              alertname: 'CacheHitRateLow',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning' },
                  exp_annotations: {
                    summary: 'Cache hit rate below 90 %',
                    description:
                      'Only 80% of cache lookups were answered by a cache level over the last 5 minutes (target 98 %). Check TTLs that are too short, non-normalized cache keys (key_pattern) and a level that is down (CacheCircuitOpen, CacheErrorRateHigh).',
                  },
                },
              ],
            },
            {
              eval_time: '30m',
              alertname: 'CacheLatencyP95High',
              exp_alerts: [
                {
                  exp_labels: { severity: 'warning', level: 'l2' },
                  exp_annotations: {
                    summary: 'Cache P95 latency above 50 ms at l2',
                    description:
                      'The 95th percentile of cache operations at level l2 is 97.5ms over the last 5 minutes (target < 50 ms). Check the backend of that level (Redis/PostgreSQL load, network) and the size of cached values.',
                  },
                },
              ],
            },
            {
              eval_time: '30m',
              alertname: 'CacheErrorRateHigh',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical', level: 'l2' },
                  exp_annotations: {
                    summary: 'More than 5 % of cache operations fail at l2',
                    description:
                      '50% of operations at level l2 failed over the last 5 minutes. The level is skipped while it fails (requests fall through to slower levels or the upstream); see integration_gateway_cache_errors_total by error_type.',
                  },
                },
              ],
            },
            {
              eval_time: '30m',
              alertname: 'CacheCircuitOpen',
              exp_alerts: [
                {
                  exp_labels: { severity: 'critical', level: 'l3' },
                  exp_annotations: {
                    summary: 'Cache level l3 circuit breaker is open',
                    description:
                      'The circuit breaker of level l3 has been open for over a minute: the level is skipped and its load goes to slower levels or the upstream. Check its backend.',
                  },
                },
              ],
            },
          ],
        },
        {
          interval: '1m',
          input_series: [
            ...lookups(990, 10),
            ...latency(60, 60, 0),
            { series: `${P}circuit_state{level="l3"}`, values: '0x40' },
          ],
          alert_rule_test: alerts.map((alertname) => ({ eval_time: '30m', alertname, exp_alerts: [] })),
        },
      ],
    };
    const file = join(work, 'alerts.test.yml');
    // JSON is valid YAML.
    writeFileSync(file, JSON.stringify(spec, null, 2));
    const r = promtool(['test', 'rules', file]);
    expect(r.output).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });
});
