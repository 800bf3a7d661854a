import { ConfigError, ERROR_TYPES } from '@bgc/cache-core';
import { Histogram, Registry, register } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_LATENCY_BUCKETS, DEFAULT_PREFIX, PrometheusMetrics } from '../src/index.js';
import { parseExposition, seriesOf } from './exposition.js';

const P = DEFAULT_PREFIX;

async function scrape(registry: Registry) {
  return parseExposition(await registry.metrics());
}

/** The scripted sequence every exposition test replays. */
function drive(m: PrometheusMetrics): void {
  for (let i = 0; i < 3; i++) m.hit('l1', 'comexstat', 'exportacao_mes');
  m.hit('l2', 'comexstat', 'paises');
  m.miss('l1', 'comexstat', 'exportacao_mes');
  m.miss('l1', 'comexstat', 'paises');
  m.miss('l2', 'comexstat', 'paises');
  m.miss('external', 'comexstat', 'paises');
  m.latency('l1', 'get', 2e-6);
  m.latency('l1', 'get', 2e-6);
  m.latency('l2', 'get', 0.003);
  m.latency('external', 'load', 1.2);
  m.size('l1', 1024);
  m.size('l2', 2048);
  m.size('l1', 4096);
  m.promotion('l2', 'l1');
  m.promotion('l2', 'l1');
  m.promotion('l3', 'l2');
  m.eviction('l1', 5);
  m.eviction('l1');
  m.error('l2', 'get', 'redis_error');
  m.error('l2', 'get', 'redis_error');
  m.error('l3', 'set', 'postgres_error');
  m.circuitState('l2', 'open');
}

describe('PrometheusMetrics exposition', () => {
  it('exposes exactly the seed metrics with their types, labels and values after a scripted sequence', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, hitRateWindowMs: 0 });
    drive(m);
    const e = await scrape(registry);

    expect(Object.fromEntries(e.types)).toEqual({
      [`${P}hits_total`]: 'counter',
      [`${P}misses_total`]: 'counter',
      [`${P}latency_seconds`]: 'histogram',
      [`${P}size_bytes`]: 'gauge',
      [`${P}hit_rate`]: 'gauge',
      [`${P}promotions_total`]: 'counter',
      [`${P}evictions_total`]: 'counter',
      [`${P}errors_total`]: 'counter',
      [`${P}circuit_state`]: 'gauge',
    });
    for (const name of e.types.keys()) expect(e.help.get(name)?.length).toBeGreaterThan(10);

    expect(seriesOf(e, `${P}hits_total`)).toEqual({
      'connector=comexstat,endpoint=exportacao_mes,level=l1': 3,
      'connector=comexstat,endpoint=paises,level=l2': 1,
    });
    expect(seriesOf(e, `${P}misses_total`)).toEqual({
      'connector=comexstat,endpoint=exportacao_mes,level=l1': 1,
      'connector=comexstat,endpoint=paises,level=l1': 1,
      'connector=comexstat,endpoint=paises,level=l2': 1,
      'connector=comexstat,endpoint=paises,level=external': 1,
    });
    expect(seriesOf(e, `${P}size_bytes`)).toEqual({ 'level=l1': 4096, 'level=l2': 2048 });
    // l1: 3 hits / 5 lookups; l2: 1 / 2; 'external' only ever misses and is not reported.
    expect(seriesOf(e, `${P}hit_rate`)).toEqual({ 'level=l1': 0.6, 'level=l2': 0.5 });
    expect(seriesOf(e, `${P}promotions_total`)).toEqual({
      'from_level=l2,to_level=l1': 2,
      'from_level=l3,to_level=l2': 1,
    });
    expect(seriesOf(e, `${P}evictions_total`)).toEqual({ 'level=l1': 6 });
    expect(seriesOf(e, `${P}errors_total`)).toEqual({
      'error_type=redis_error,level=l2,operation=get': 2,
      'error_type=postgres_error,level=l3,operation=set': 1,
    });
    expect(seriesOf(e, `${P}circuit_state`)).toEqual({ 'level=l2': 2 });

    expect(seriesOf(e, `${P}latency_seconds_count`)).toEqual({
      'level=l1,operation=get': 2,
      'level=l2,operation=get': 1,
      'level=external,operation=load': 1,
    });
    const sums = seriesOf(e, `${P}latency_seconds_sum`);
    expect(sums['level=l1,operation=get']).toBeCloseTo(4e-6, 12);
    expect(sums['level=l2,operation=get']).toBeCloseTo(0.003, 12);
    expect(sums['level=external,operation=load']).toBeCloseTo(1.2, 12);
    const buckets = e.samples.filter((s) => s.name === `${P}latency_seconds_bucket`);
    expect(buckets).toHaveLength(3 * (DEFAULT_LATENCY_BUCKETS.length + 1));
    const bucket = (level: string, le: number | string) =>
      buckets.find((s) => s.labels.level === level && s.labels.le === String(le))?.value;
    expect(bucket('l1', '0.000001')).toBe(0);
    expect(bucket('l1', '0.000005')).toBe(2);
    expect(bucket('l2', 0.001)).toBe(0);
    expect(bucket('l2', 0.005)).toBe(1);
    expect(bucket('external', 1)).toBe(0);
    expect(bucket('external', 2.5)).toBe(1);
    expect(bucket('external', '+Inf')).toBe(1);
    for (const s of buckets) expect(Object.keys(s.labels).sort()).toEqual(['le', 'level', 'operation']);
  });

  it('writes the latency histogram exactly as a plain prom-client Histogram would', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const m = new PrometheusMetrics({ registry: ours });
    const h = new Histogram({
      name: `${P}latency_seconds`,
      help: 'x',
      labelNames: ['level', 'operation'],
      buckets: [...DEFAULT_LATENCY_BUCKETS],
      registers: [theirs],
    });
    // Includes values exactly on bucket bounds (le is inclusive), zero and above the last bound.
    const values = [0, 1e-6, 3e-6, 5e-6, 0.0001, 0.05, 0.07, 10, 11, 0.5];
    for (const [i, v] of values.entries()) {
      const level = i % 2 === 0 ? 'l1' : 'l2';
      m.latency(level, 'get', v);
      h.observe({ level, operation: 'get' }, v);
    }
    const pick = (text: string) => text.split('\n').filter((l) => l.startsWith(`${P}latency_seconds`));
    const ourLines = pick(await ours.metrics());
    expect(ourLines).toHaveLength(2 * (DEFAULT_LATENCY_BUCKETS.length + 3));
    expect(ourLines).toEqual(pick(await theirs.metrics()));
    expect((await ours.getMetricsAsJSON()).find((x) => x.name === `${P}latency_seconds`)?.type).toBe(
      'histogram',
    );
  });

  it('accumulates across scrapes and honours registry.resetMetrics()', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry });
    m.hit('l1', 'c', 'e');
    m.latency('l1', 'get', 0.001);
    expect(seriesOf(await scrape(registry), `${P}hits_total`)).toEqual({
      'connector=c,endpoint=e,level=l1': 1,
    });
    m.hit('l1', 'c', 'e');
    m.hit('l1', 'c', 'e');
    expect(seriesOf(await scrape(registry), `${P}hits_total`)).toEqual({
      'connector=c,endpoint=e,level=l1': 3,
    });
    registry.resetMetrics();
    m.hit('l1', 'c', 'e');
    const e = await scrape(registry);
    expect(seriesOf(e, `${P}hits_total`)).toEqual({ 'connector=c,endpoint=e,level=l1': 1 });
    expect(seriesOf(e, `${P}latency_seconds_count`)).toEqual({ 'level=l1,operation=get': 0 });
  });
});

describe('PrometheusMetrics label cardinality', () => {
  it('maps connectors and endpoints outside the allow-lists to "other" (and always allows "default")', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, connectors: ['comexstat'], endpoints: ['paises'] });
    m.hit('l1', 'comexstat', 'paises');
    m.hit('l1', 'default', 'default');
    m.hit('l1', 'rogue', 'paises');
    m.hit('l1', 'comexstat', '/v1/paises/123');
    m.miss('l2', '', 'paises');
    m.hit('l1', 'rogue', 'paises');
    expect(seriesOf(await scrape(registry), `${P}hits_total`)).toEqual({
      'connector=comexstat,endpoint=paises,level=l1': 1,
      'connector=default,endpoint=default,level=l1': 1,
      'connector=other,endpoint=paises,level=l1': 2,
      'connector=comexstat,endpoint=other,level=l1': 1,
    });
    expect(seriesOf(await scrape(registry), `${P}misses_total`)).toEqual({
      'connector=other,endpoint=paises,level=l2': 1,
    });
  });

  it('100k distinct keys, paths or ids add no series (allow-list) and at most maxLabelValues without one', async () => {
    const allowRegistry = new Registry();
    const allow = new PrometheusMetrics({
      registry: allowRegistry,
      connectors: ['comexstat'],
      endpoints: ['paises'],
    });
    allow.hit('l1', 'comexstat', 'paises');
    const before = (await scrape(allowRegistry)).samples.length;
    for (let i = 0; i < 100_000; i++) {
      allow.hit('l1', 'comexstat', `comexstat:exp:2024:${i}`);
      allow.miss('l1', `connector-${i}`, 'paises');
      allow.error('l2', 'get', 'redis_error');
    }
    const after = await scrape(allowRegistry);
    // 'other' endpoint for hits, 'other' connector for misses, one error series, hit_rate unchanged.
    expect(after.samples.length - before).toBe(3);
    expect(seriesOf(after, `${P}hits_total`)['connector=comexstat,endpoint=other,level=l1']).toBe(100_000);

    const openRegistry = new Registry();
    const open = new PrometheusMetrics({ registry: openRegistry, maxLabelValues: 5 });
    for (let i = 0; i < 100_000; i++) open.hit('l1', 'comexstat', `key-${i}`);
    const hits = seriesOf(await scrape(openRegistry), `${P}hits_total`);
    expect(Object.keys(hits)).toHaveLength(6);
    expect(hits['connector=comexstat,endpoint=other,level=l1']).toBe(99_995);
    expect(hits['connector=comexstat,endpoint=key-0,level=l1']).toBe(1);
  });

  it('records unknown levels, operations and error types under bounded values and ignores invalid numbers', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry });
    const anyM = m as unknown as Record<string, (...args: unknown[]) => void>;
    anyM.hit!('l9', 'c', 'e');
    anyM.latency!('l1', 'scan', 0.001);
    anyM.error!('l2', 'get', 'cosmic_ray');
    anyM.error!('l2', 'get', 'cosmic_ray');
    anyM.promotion!('l4', 'l1');
    anyM.eviction!('l0', 2);
    anyM.size!('lx', 3);
    anyM.circuitState!('l2', 'melted');
    m.latency('l1', 'get', Number.NaN);
    m.latency('l1', 'get', -1);
    m.latency('l1', 'get', Number.POSITIVE_INFINITY);
    m.size('l1', -5);
    m.size('l2', Number.NaN);
    m.eviction('l1', 0);
    m.eviction('l1', Number.NaN);
    const e = await scrape(registry);
    expect(seriesOf(e, `${P}hits_total`)).toEqual({ 'connector=c,endpoint=e,level=other': 1 });
    expect(seriesOf(e, `${P}latency_seconds_count`)).toEqual({ 'level=l1,operation=other': 1 });
    expect(seriesOf(e, `${P}errors_total`)).toEqual({ 'error_type=unknown,level=l2,operation=get': 2 });
    expect(seriesOf(e, `${P}promotions_total`)).toEqual({ 'from_level=other,to_level=l1': 1 });
    expect(seriesOf(e, `${P}evictions_total`)).toEqual({ 'level=other': 2 });
    expect(seriesOf(e, `${P}size_bytes`)).toEqual({ 'level=other': 3 });
    expect(seriesOf(e, `${P}circuit_state`)).toEqual({});
    expect(ERROR_TYPES).toContain('unknown');
  });

  it('reports every circuit state as 0 closed, 1 half-open, 2 open', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry });
    m.circuitState('l1', 'closed');
    m.circuitState('l2', 'half_open');
    m.circuitState('l3', 'open');
    expect(seriesOf(await scrape(registry), `${P}circuit_state`)).toEqual({
      'level=l1': 0,
      'level=l2': 1,
      'level=l3': 2,
    });
  });
});

describe('PrometheusMetrics hit rate window', () => {
  it('is hits / (hits + misses) over the last window, absent without traffic', async () => {
    let now = 1_000_000;
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, hitRateWindowMs: 60_000, now: () => now });
    const rate = async () => seriesOf(await scrape(registry), `${P}hit_rate`);

    expect(await rate()).toEqual({});
    for (let i = 0; i < 9; i++) m.hit('l1', 'c', 'e');
    m.miss('l1', 'c', 'e');
    now += 10_000;
    expect(await rate()).toEqual({ 'level=l1': 0.9 });

    m.miss('l1', 'c', 'e');
    m.miss('l1', 'c', 'e');
    now += 30_000;
    expect((await rate())['level=l1']).toBeCloseTo(9 / 12, 12);

    // 61 s after the scrape at +10 s, that scrape is the baseline: only the 2 later misses count.
    now += 31_000;
    expect(await rate()).toEqual({ 'level=l1': 0 });

    // Nothing happened in the last window: no traffic is not a 0 % hit rate.
    now += 61_000;
    expect(await rate()).toEqual({});
    m.hit('l2', 'c', 'e');
    expect(await rate()).toEqual({ 'level=l2': 1 });
    expect(m.hitRates()).toEqual(new Map([['l2', 1]]));
  });

  it('is cumulative since creation with hitRateWindowMs = 0', async () => {
    let now = 0;
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, hitRateWindowMs: 0, now: () => now });
    m.hit('l1', 'c', 'e');
    m.miss('l1', 'c', 'e');
    now += 3_600_000;
    await registry.metrics();
    now += 3_600_000;
    m.hit('l1', 'c', 'e');
    m.hit('l1', 'c', 'e');
    expect(seriesOf(await scrape(registry), `${P}hit_rate`)).toEqual({ 'level=l1': 0.75 });
  });

  it('keeps a bounded number of snapshots however often it is scraped', async () => {
    let now = 0;
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, hitRateWindowMs: 30_000, now: () => now });
    for (let i = 0; i < 2_000; i++) {
      now += 100;
      m.hit('l1', 'c', 'e');
      if (i % 2 === 0) m.miss('l1', 'c', 'e');
      m.hitRates();
    }
    const snapshots = (m as unknown as { hitRateWindow: { snapshots: unknown[] } }).hitRateWindow.snapshots;
    expect(snapshots.length).toBeLessThanOrEqual(32);
    expect(m.hitRates().get('l1')).toBeCloseTo(2 / 3, 2);
  });
});

describe('PrometheusMetrics registries and options', () => {
  afterEach(() => register.clear());

  it('uses a custom prefix and registry, leaving the default registry untouched', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, prefix: 'myapp_cache_' });
    m.hit('l1', 'c', 'e');
    const e = await scrape(registry);
    expect([...e.types.keys()].every((n) => n.startsWith('myapp_cache_'))).toBe(true);
    expect(e.types.get('myapp_cache_hits_total')).toBe('counter');
    expect(m.names.hits).toBe('myapp_cache_hits_total');
    expect(m.prefix).toBe('myapp_cache_');
    expect(await register.metrics()).not.toContain('cache_');
    expect(new PrometheusMetrics({ registry: new Registry(), prefix: '' }).names.errors).toBe('errors_total');
  });

  it("registers in prom-client's default registry by default, and unregister() removes its metrics", async () => {
    const m = new PrometheusMetrics();
    expect(m.registry).toBe(register);
    m.miss('l1', 'comexstat', 'paises');
    expect(await register.metrics()).toContain(
      `${P}misses_total{level="l1",connector="comexstat",endpoint="paises"} 1`,
    );
    expect(() => new PrometheusMetrics()).toThrow(ConfigError);
    expect(() => new PrometheusMetrics()).toThrow(/already registered.*unregister\(\)/);
    m.unregister();
    expect(await register.metrics()).not.toContain(P);
    const again = new PrometheusMetrics();
    again.hit('l1', 'c', 'e');
    expect(await register.metrics()).toContain(`${P}hits_total{level="l1",connector="c",endpoint="e"} 1`);
  });

  it('uses custom buckets', async () => {
    const registry = new Registry();
    const m = new PrometheusMetrics({ registry, buckets: [0.001, 0.1] });
    m.latency('l2', 'set', 0.05);
    expect(seriesOf(await scrape(registry), `${P}latency_seconds_bucket`)).toEqual({
      'le=0.001,level=l2,operation=set': 0,
      'le=0.1,level=l2,operation=set': 1,
      'le=+Inf,level=l2,operation=set': 1,
    });
  });

  it.each([
    [{ prefix: '1bad' }, /prefix/],
    [{ prefix: 'has space_' }, /prefix/],
    [{ buckets: [] }, /buckets/],
    [{ buckets: [0.1, 0.01] }, /strictly increasing/],
    [{ buckets: [0, 1] }, /buckets/],
    [{ buckets: [1, Number.POSITIVE_INFINITY] }, /buckets/],
    [{ maxLabelValues: 0 }, /maxLabelValues/],
    [{ maxLabelValues: 1.5 }, /maxLabelValues/],
    [{ hitRateWindowMs: -1 }, /hitRateWindowMs/],
    [{ hitRateWindowMs: Number.NaN }, /hitRateWindowMs/],
  ])('rejects invalid options %o with a ConfigError', (options, message) => {
    const create = () => new PrometheusMetrics({ registry: new Registry(), ...options });
    expect(create).toThrow(ConfigError);
    expect(create).toThrow(message);
  });
});
