import { describe, expect, it } from 'vitest';
import { ConfigError } from '@bgc/cache-core';
import { LOAD_MARGIN_MS, loadBoundsMs, loadGatewayConfig, redactUrl } from '../src/config.js';
import { goals, percentile, renderTable } from '../src/demo/report.js';
import { parseDemoArgs } from '../src/demo/args.js';
import { buildTraffic, zipf, prng } from '../src/demo/traffic.js';
import { safeEqual } from '../src/server.js';

describe('gateway configuration', () => {
  it('has the seed defaults', () => {
    const c = loadGatewayConfig({});
    expect(c).toMatchObject({
      port: 8080,
      metricsPort: 8081,
      databaseUrl: undefined,
      adminToken: undefined,
      logLevel: 'info',
    });
    expect(c.cache.l1.maxSizeBytes).toBe(100 * 1024 * 1024);
  });
  it('names the bad variable', () => {
    expect(() => loadGatewayConfig({ PORT: 'http' })).toThrow(/PORT/);
    expect(() => loadGatewayConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
    expect(() => loadGatewayConfig({ COMEXSTAT_BASE_URL: 'not a url' })).toThrow(/COMEXSTAT_BASE_URL/);
    expect(() => loadGatewayConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
    expect(() => loadGatewayConfig({ CACHE_L1_DEFAULT_TTL: '5 minutes' })).toThrow(/CACHE_L1_DEFAULT_TTL/);
  });
  it('derives the load bounds from the connector wait bound unless CACHE_LOAD_HARD_TIMEOUT is set', () => {
    const c = loadGatewayConfig({});
    expect(c.resilience.hardTimeoutMs).toBeUndefined();
    expect(c.tombstoneMs).toBeUndefined();
    expect(c.comexstat).toEqual({
      maxWaitMs: undefined,
      maxPendingCalls: undefined,
      maxPendingCells: undefined,
      clientBudget: undefined,
      expectedReplicas: undefined,
      spacerCommandTimeoutMs: 1000,
    });
    // 50 s: the connector's default bound at 20 s spacing (2 × 20 s + 10 s).
    expect(loadBoundsMs(c, 50_000)).toEqual({ hardTimeoutMs: 60_000, lockWaitMs: 60_000 });
    expect(loadBoundsMs(c, 50_000).hardTimeoutMs).toBeGreaterThan(50_000 + LOAD_MARGIN_MS - 1);
    const set = loadGatewayConfig({ CACHE_LOAD_HARD_TIMEOUT: '90s', CACHE_TOMBSTONE_TTL: '5m' });
    expect(loadBoundsMs(set, 50_000)).toEqual({ hardTimeoutMs: 90_000, lockWaitMs: 90_000 });
    expect(set.tombstoneMs).toBe(300_000);
  });
  it('reads and validates the admission variables, naming the variable without echoing secrets', () => {
    const c = loadGatewayConfig({
      COMEXSTAT_MAX_WAIT: '30s',
      COMEXSTAT_MAX_PENDING_CALLS: '4',
      COMEXSTAT_MAX_PENDING_CELLS: '5000',
      COMEXSTAT_CLIENT_BUDGET: '0',
      COMEXSTAT_EXPECTED_REPLICAS: '5',
      COMEXSTAT_SPACER_COMMAND_TIMEOUT: '2s',
    });
    expect(c.comexstat).toEqual({
      maxWaitMs: 30_000,
      maxPendingCalls: 4,
      maxPendingCells: 5000,
      clientBudget: 0,
      expectedReplicas: 5,
      spacerCommandTimeoutMs: 2000,
    });
    const bad: [string, string][] = [
      ['COMEXSTAT_MAX_WAIT', 'soon'],
      ['COMEXSTAT_MAX_WAIT', '10ms'],
      ['COMEXSTAT_MAX_PENDING_CALLS', '0'],
      ['COMEXSTAT_MAX_PENDING_CALLS', 'many'],
      ['COMEXSTAT_MAX_PENDING_CELLS', '-1'],
      ['COMEXSTAT_CLIENT_BUDGET', '1.5'],
      ['COMEXSTAT_EXPECTED_REPLICAS', '0'],
      ['COMEXSTAT_SPACER_COMMAND_TIMEOUT', 'long'],
    ];
    for (const [name, value] of bad) {
      let error: unknown;
      try {
        loadGatewayConfig({ [name]: value, REDIS_PASSWORD: 's3cr3t-pass' });
      } catch (e) {
        error = e;
      }
      expect(error, `${name}=${value}`).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).code).toBe('E_CONFIG');
      expect((error as Error).message).toContain(name);
      expect((error as Error).message).not.toContain('s3cr3t-pass');
    }
  });
  it('redacts passwords in URLs', () => {
    expect(redactUrl('redis://user:pw@h:6379')).toBe('redis://user:***@h:6379');
    expect(redactUrl('redis://u:p@ss@h:6379')).toBe('redis://u:***@h:6379');
    expect(redactUrl('postgres://u:secret@db/x')).toBe('postgres://u:***@db/x');
    expect(redactUrl('h:6379')).toBe('h:6379');
  });
  it('compares tokens in constant time, whatever their length', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abd')).toBe(false);
    expect(safeEqual('abc', 'a-much-longer-token')).toBe(false);
  });
});

describe('demo helpers', () => {
  it('parses arguments', () => {
    expect(parseDemoArgs(['--instances', '3', '--json'])).toEqual({
      instances: 3,
      requests: 20_000,
      concurrency: 32,
      json: true,
      cold: false,
      restartRequests: 4000,
    });
    expect(parseDemoArgs(['--cold', '--requests', '100', '--restart-requests', '0'])).toMatchObject({
      cold: true,
      requests: 100,
      restartRequests: 0,
    });
    expect(() => parseDemoArgs(['--restart-requests', '-1'])).toThrow(/non-negative/);
    expect(() => parseDemoArgs(['--instances', 'x'])).toThrow(/positive integer/);
    expect(() => parseDemoArgs(['--what'])).toThrow(/unknown argument/);
  });
  it('builds a deterministic Zipf day of valid requests', () => {
    const o = {
      requests: 2000,
      ncms: ['12019000', '09011110', '27090010'],
      countries: ['160', '249'],
      coldCountries: ['063'],
      latest: { year: 2026, month: 2 },
      seed: 1,
    };
    const a = buildTraffic(o);
    expect(buildTraffic(o)).toEqual(a);
    expect(a).toHaveLength(2000);
    for (const r of a)
      expect(r.path).toMatch(
        /^\/comexstat\/(exportacao|importacao)_mes\?ano=20(25|26)&mes=\d{1,2}&ncm=\d{8}&pais=\d{3}$/,
      );
    const top = a.filter((r) => r.path.includes('ncm=12019000')).length;
    expect(top).toBeGreaterThan(a.filter((r) => r.path.includes('ncm=27090010')).length);
    const z = zipf(10, 1, prng(3));
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 10_000; i++) counts[z()]++;
    expect(counts[0]).toBeGreaterThan(counts[9] * 5);
  });
  it('reports percentiles and goals', () => {
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([], 0.5)).toBe(0);
    const report = {
      instances: 1,
      tiers: 'l1 + l3',
      keysWarmed: 12000,
      upstreamCallsWarming: 4,
      requests: 100,
      errors: 0,
      statuses: { 200: 100 },
      levels: { l1: 99, external: 1 },
      hitRate: 0.99,
      p50Ms: 1,
      p95Ms: 60,
      p99Ms: 80,
      reqPerSec: 2000,
      seconds: 0.05,
      upstreamCallsDay: 3,
    };
    expect(goals(report).map((g) => g.ok)).toEqual([true, false, true, true]);
    expect(renderTable(report)).toContain('MISS  P95 < 50 ms');
    const withPhases = renderTable({
      ...report,
      cold: { firstRequestMs: 1433, firstStatus: 503, count503: 7, upstreamCallsTotal: 36, rateLimited: 2 },
      restart: {
        requests: 50,
        errors: 0,
        statuses: { 200: 50 },
        levels: { l1: 10, l3: 40 },
        hitRate: 1,
        p50Ms: 2,
        p95Ms: 9,
        p99Ms: 12,
        reqPerSec: 500,
        seconds: 0.1,
        upstreamCalls: 0,
      },
    });
    expect(withPhases).toMatch(/first request\s+1433 ms, status 503/);
    expect(withPhases).toMatch(/503 answers\s+7/);
    expect(withPhases).toMatch(/ {2}served from l3\s+80\.00% \(40\)/);
    expect(withPhases).toMatch(/served from l3 \(whole run\)\s+26\.67% \(40 of 150\)/);
  });
});
