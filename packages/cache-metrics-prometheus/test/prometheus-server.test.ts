/**
 * End to end: a real Prometheus server (Debian package `prometheus`) scrapes a small HTTP server
 * exposing a registry fed by a real MultiLevelCache (FakeTier L1/L2/L3), then every dashboard panel
 * query is evaluated through Prometheus's HTTP API and must return data, and the alert rules load.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../scripts/redis-servers.mjs';
import { PrometheusMetrics } from '../src/index.js';

const DASHBOARD = resolve(import.meta.dirname, '../dashboards/grafana-dashboard.json');
const ALERTS = resolve(import.meta.dirname, '../dashboards/prometheus-alerts.yml');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
}

/** Every target expression of the dashboard, with Grafana's variables replaced for a 1 s scrape. */
function dashboardQueries(): PanelQuery[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { title: string; targets: { refId: string; expr: string }[] }[];
  };
  return dashboard.panels.flatMap((p) =>
    p.targets.map((t) => ({
      panel: p.title,
      refId: t.refId,
      expr: t.expr.replaceAll(/\$\{?(__rate_interval|__interval|__range)\}?/g, '15s'),
    })),
  );
}

let work: string;
let prometheus: ChildProcess | undefined;
let prometheusLog = '';
let server: Server;
let cache: MultiLevelCache;
let driving = true;
let driver: Promise<void>;
let promUrl: string;

async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data: { resultType: string; result: [] };
  };
  if (body.status !== 'success') throw new Error(`query failed: ${expr}: ${body.error}`);
  return body.data.result;
}

/** Cache traffic with hits at every level, misses, promotions, upstream loads, errors and a tripped circuit. */
async function drive(metrics: PrometheusMetrics, l1: FakeTier, l2: FakeTier, l3: FakeTier): Promise<void> {
  let round = 0;
  while (driving) {
    round++;
    for (let i = 0; i < 20; i++) {
      await cache.getOrLoad(`comexstat:exp:2024:${i}`, async () => ({ ncm: i, fob: i * 10 }));
    }
    // A new key each round: an upstream call.
    await cache.getOrLoad(`comexstat:exp:new:${round}`, async () => ({ round }), { endpoint: 'paises' });
    if (round % 3 === 0) {
      // What an L1 tier reports when it evicts: its next reads promote from L2 (or L3).
      const n = l1.store.size;
      l1.store.clear();
      metrics.eviction('l1', n);
    }
    if (round % 5 === 0) l2.store.clear();
    metrics.size('l1', l1.store.size * 120);
    metrics.size('l2', l2.store.size * 140);
    metrics.size('l3', l3.store.size * 160);
    // L3 fails from round 4 on: errors, then its circuit opens.
    if (round === 4) l3.failWith = new Error('ECONNREFUSED 127.0.0.1:5432');
    await sleep(100);
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'bgc-prometheus-'));
  const registry = new Registry();
  const metrics = new PrometheusMetrics({ registry, connectors: ['comexstat'], hitRateWindowMs: 60_000 });
  const l1 = new FakeTier({ level: 'l1' });
  const l2 = new FakeTier({ level: 'l2' });
  const l3 = new FakeTier({ level: 'l3' });
  cache = new MultiLevelCache({
    tiers: [l1, l2, l3],
    metrics,
    connector: 'comexstat',
    endpoint: 'exportacao_mes',
    circuitBreaker: { failureThreshold: 3, cooldownMs: 60_000 },
    // Every call goes through the tiers (a settled load is otherwise shared for 10 s without a lookup).
    coalesceWindowMs: 0,
  });
  cache.on('error', () => {});

  server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      (error: Error) => res.writeHead(500).end(error.message),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const appPort = (server.address() as AddressInfo).port;
  driver = drive(metrics, l1, l2, l3);

  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  const config = join(work, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: ['${ALERTS}']`,
      'scrape_configs:',
      '  - job_name: bgc-cache',
      `    static_configs: [{ targets: ['127.0.0.1:${appPort}'] }]`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(work, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr?.on('data', (d: Buffer) => (prometheusLog += d.toString()));
  const started = await new Promise<boolean>((ok) => {
    prometheus!.once('error', () => ok(false));
    prometheus!.once('spawn', () => ok(true));
  });
  if (!started) throw new Error('prometheus could not be started. Install it: apt-get install -y prometheus');

  // Ready, then at least a few scrapes of the app.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (Date.now() > deadline)
      throw new Error(`Prometheus did not scrape the app in 30 s. Log:\n${prometheusLog}`);
    try {
      const up = await query('count_over_time(up{job="bgc-cache"}[1m])');
      if (Number(up[0]?.value[1] ?? 0) >= 5) break;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
}, 60_000);

afterAll(async () => {
  driving = false;
  await driver?.catch(() => {});
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus!.once('exit', r));
    prometheus.kill('SIGTERM');
    const timer = setTimeout(() => prometheus?.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  await new Promise((r) => server?.close(r));
  await cache?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('a real Prometheus scraping a MultiLevelCache', () => {
  it('scrapes the target successfully', async () => {
    const up = await query('up{job="bgc-cache"}');
    expect(up).toHaveLength(1);
    expect(up[0]!.value[1]).toBe('1');
  });

  it('returns data for every dashboard panel query', async () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThanOrEqual(11);
    for (const q of queries) expect(q.expr, q.panel).not.toContain('$');
    const empty: string[] = [];
    // Series appear as traffic happens (the circuit opens after a few rounds): retry briefly.
    const deadline = Date.now() + 20_000;
    for (;;) {
      empty.length = 0;
      for (const q of queries)
        if ((await query(q.expr)).length === 0) empty.push(`${q.panel} [${q.refId}]: ${q.expr}`);
      if (empty.length === 0 || Date.now() > deadline) break;
      await sleep(500);
    }
    expect(empty).toEqual([]);
  });

  it('shows plausible figures: hits at every level, upstream calls, promotions, an open L3 circuit', async () => {
    const byLevel = async (expr: string) =>
      Object.fromEntries((await query(expr)).map((r) => [r.metric.level ?? '', Number(r.value[1])]));
    const hitRate = await byLevel('integration_gateway_cache_hit_rate');
    expect(Object.keys(hitRate).sort()).toEqual(expect.arrayContaining(['l1', 'l2']));
    for (const v of Object.values(hitRate)) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
    }
    expect(hitRate.l1).toBeGreaterThan(0.5);

    const upstream = await query(
      'sum(increase(integration_gateway_cache_latency_seconds_count{level="external",operation="load"}[1m]))',
    );
    expect(Number(upstream[0]!.value[1])).toBeGreaterThan(0);
    const promotions = await query('sum(integration_gateway_cache_promotions_total{to_level="l1"})');
    expect(Number(promotions[0]!.value[1])).toBeGreaterThan(0);
    expect(await byLevel('integration_gateway_cache_circuit_state')).toMatchObject({ l3: 2 });
    const errors = await query('sum by (error_type) (integration_gateway_cache_errors_total{level="l3"})');
    expect(errors.map((r) => r.metric.error_type).sort()).toEqual(expect.arrayContaining(['circuit_open']));
    // Keys never become labels: only the two configured endpoints appear.
    const endpoints = await query(
      'count by (endpoint) ({__name__=~"integration_gateway_cache_(hits|misses)_total"})',
    );
    expect(endpoints.map((r) => r.metric.endpoint).sort()).toEqual(['exportacao_mes', 'paises']);

    const overall = dashboardQueries().find((q) => q.panel === 'Cache hit rate (all levels)')!;
    const value = Number((await query(overall.expr))[0]!.value[1]);
    expect(value).toBeGreaterThan(0.5);
    expect(value).toBeLessThan(1);
  });

  it('loads and evaluates the alert rules without errors', async () => {
    const res = await fetch(`${promUrl}/api/v1/rules`);
    const body = (await res.json()) as {
      data: { groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const rules = body.data.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.name).sort()).toEqual([
      'CacheCircuitOpen',
      'CacheErrorRateHigh',
      'CacheHitRateLow',
      'CacheLatencyP95High',
    ]);
    const deadline = Date.now() + 10_000;
    while (rules.some((r) => r.health === 'unknown') && Date.now() < deadline) await sleep(500);
    for (const r of rules) expect([r.name, r.health, r.lastError ?? '']).toEqual([r.name, 'ok', '']);
  });
});
