// Issue 17 (part): the time-series route answers from one batch read of the cache (getMany), cold
// months through the connector's merged calls. In process: the gateway's own series source
// (seriesFetcher) over a real connector, the simulator, an L1 and a counting L2.
import { MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import {
  ComexStatClient,
  ComexStatConnector,
  type ComexStatMonthValue,
  DEFAULT_CONNECTOR_CONFIG,
  RequestSpacer,
} from '@bgc/connector-comexstat';
import { type ComexStatSimulator, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST_PATH_SHARE, l1Answers, seriesFetcher } from '../src/gateway.js';
import { createApp, type MonthAnswer, type MonthContext, type MonthQuery } from '../src/server.js';

interface Series {
  months: { ano: number; mes: number; rows: unknown[]; level: string; status?: string }[];
}

let sim: ComexStatSimulator | undefined;
let cache: MultiLevelCache | undefined;
let app: FastifyInstance | undefined;
let connector: ComexStatConnector | undefined;
afterEach(async () => {
  await app?.close();
  await connector?.drain();
  await cache?.close();
  await sim?.close();
  app = cache = connector = sim = undefined;
});

async function setup(l2Store?: FakeTier['store']) {
  sim ??= await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 2, perRowMs: 0 } });
  const l1 = new FakeTier({ level: 'l1', sync: true });
  const l2 = new FakeTier({ level: 'l2', batch: true, store: l2Store });
  // The sizes of the L2's batch reads (the connector makes small ones of its own: metadata).
  const batches: number[] = [];
  const getMany = (l2.getMany as NonNullable<FakeTier['getMany']>).bind(l2);
  l2.getMany = (keys) => {
    batches.push(keys.length);
    return getMany(keys);
  };
  cache = new MultiLevelCache({ tiers: [l1, l2], hardTimeoutMs: 30_000, softTimeoutMs: 1000 });
  connector = new ComexStatConnector({
    client: new ComexStatClient({
      baseUrl: sim.url,
      spacer: new RequestSpacer({ minIntervalMs: 1 }),
      retries: 0,
    }),
    cache,
    config: DEFAULT_CONNECTOR_CONFIG,
  });
  const c = connector;
  const monthly: MonthQuery[] = [];
  const fetchMonth = async (q: MonthQuery, ctx: MonthContext): Promise<MonthAnswer> => {
    monthly.push(q);
    return c.getMonth(q, { clientId: ctx.clientId });
  };
  app = createApp({
    cache,
    fetchMonth,
    fetchSeries: seriesFetcher(c, { cache }, fetchMonth),
    staleWindowMs: 3_600_000,
    freshUntil: (_q, a) => (a.fetchedAt ?? 0) + 60_000,
    logger: pino({ level: 'silent' }),
  });
  return { l1, l2, batches, monthly, connector: c, cache };
}

const calls = (tier: FakeTier, op: string) => tier.calls[op] ?? 0;

describe('GET /comexstat/exportacao (time series)', () => {
  it('a cold 7-year range: one batch read, every month through the connector, one upstream call', async () => {
    const t = await setup();
    const s = sim as ComexStatSimulator;
    await t.connector.releaseInfo();
    const from = s.release.year - 8;
    const to = s.release.year - 2;
    const url = `/comexstat/exportacao?ncm=12019000&pais=160&de=${from}-01&ate=${to}-12`;
    const before = s.stats.byPath['/general'] ?? 0;
    const r = await (app as FastifyInstance).inject({ method: 'GET', url });
    expect(r.statusCode).toBe(200);
    const body = r.json() as Series;
    expect(body.months).toHaveLength(84);
    expect(body.months.every((m) => m.level === 'external')).toBe(true);
    expect(t.batches.filter((n) => n === 84)).toHaveLength(1);
    expect(t.monthly).toHaveLength(84);
    expect((s.stats.byPath['/general'] ?? 0) - before).toBe(1);
    // Max-age from the months' life (the earliest fresh-until), not 0.
    expect(r.headers['cache-control']).toMatch(/^public, max-age=(59|60), stale-while-revalidate=60/);

    // Again: all from L1 in the batch read; no tier read, no monthly fetch.
    t.monthly.length = 0;
    const l2Reads = t.batches.length + calls(t.l2, 'get');
    const again = await (app as FastifyInstance).inject({ method: 'GET', url });
    expect((again.json() as Series).months.every((m) => m.level === 'l1')).toBe(true);
    expect(again.headers['x-cache-level']).toBe('l1');
    expect(again.headers.etag).toBe(r.headers.etag);
    expect(t.monthly).toHaveLength(0);
    expect(t.batches.length + calls(t.l2, 'get')).toBe(l2Reads);
    expect((s.stats.byPath['/general'] ?? 0) - before).toBe(1);
  });

  it('another instance (empty L1, the same L2): one getMany round trip answers every month', async () => {
    const first = await setup();
    const s = sim as ComexStatSimulator;
    const from = s.release.year - 3;
    const url = `/comexstat/exportacao?ncm=09011110&pais=249&de=${from}-01&ate=${from + 1}-12`;
    expect((await (app as FastifyInstance).inject({ method: 'GET', url })).statusCode).toBe(200);
    await (cache as MultiLevelCache).flush();
    const generals = s.stats.byPath['/general'] ?? 0;
    await (app as FastifyInstance).close();
    await first.connector.drain();
    await first.cache.close();
    const t = await setup(first.l2.store);
    const r = await (app as FastifyInstance).inject({ method: 'GET', url });
    const body = r.json() as Series;
    expect(body.months).toHaveLength(24);
    expect(body.months.every((m) => m.level === 'l2')).toBe(true);
    expect(r.headers['x-cache-level']).toBe('l2');
    expect(t.batches.filter((n) => n === 24)).toHaveLength(1);
    expect(calls(t.l2, 'get')).toBe(0);
    expect(t.monthly).toHaveLength(0);
    expect(s.stats.byPath['/general'] ?? 0).toBe(generals);
  });

  it('a month the cache lacks, or one a release outdated, goes through the connector; the others do not', async () => {
    const t = await setup();
    const s = sim as ComexStatSimulator;
    const release = await t.connector.releaseInfo();
    expect(release).toBeDefined();
    const ano = s.release.year;
    const q = (mes: number): MonthQuery => ({ flow: 'export', ano, mes, ncm: '12019000', pais: '160' });
    const value = (fetchedAt: number): ComexStatMonthValue => ({ status: 'ok', rows: [], fetchedAt });
    const fresh = Date.now();
    // Month 1 fetched before the release (outdated), month 2 after it, month 3 not cached.
    await t.cache.set(t.connector.keyFor(q(1)), value((release?.updatedAt ?? fresh) - 86_400_000), {
      ttlMs: 3_600_000,
    });
    await t.cache.set(t.connector.keyFor(q(2)), value(fresh), { ttlMs: 3_600_000 });
    const r = await (app as FastifyInstance).inject({
      method: 'GET',
      url: `/comexstat/exportacao?ncm=12019000&pais=160&de=${ano}-01&ate=${ano}-03`,
    });
    expect(r.statusCode).toBe(200);
    const body = r.json() as Series;
    expect(t.monthly.map((m) => m.mes).sort()).toEqual([1, 3]);
    // The outdated month was loaded again (the simulator answers at once), the current one served.
    expect(body.months.map((m) => m.level)).toEqual(['external', 'l1', 'external']);
    const reloaded = await t.cache.get<ComexStatMonthValue>(t.connector.keyFor(q(1)));
    expect(reloaded.value?.fetchedAt).toBeGreaterThanOrEqual(fresh);
  });
});

describe('l1Answers (the fast path source of the monthly routes)', () => {
  it('answers fresh L1 values as getMonth would; leaves misses, outdated and ageing values to the route', async () => {
    const t = await setup();
    const release = await t.connector.releaseInfo();
    const lookup = l1Answers(t.connector, { cache: t.cache }) as NonNullable<ReturnType<typeof l1Answers>>;
    const ano = (release?.year ?? 2026) - 1;
    const q = (mes: number): MonthQuery => ({ flow: 'import', ano, mes, ncm: '12019000', pais: '160' });
    const rows = Object.freeze([Object.freeze({ ncm: '12019000', pais: '160', fob: 1 })]);
    const now = Date.now();
    const ttl = t.connector.ttlFor(ano, 1, { status: 'ok', rows: [], fetchedAt: now });
    const put = (mes: number, fetchedAt: number) =>
      t.cache.set(t.connector.keyFor(q(mes)), { status: 'ok', rows, fetchedAt }, { ttlMs: ttl });
    await put(1, now);
    await put(2, now - (FAST_PATH_SHARE + 0.05) * ttl);
    expect(lookup(q(1))).toEqual({ rows, status: 'ok', level: 'l1', stale: false, fetchedAt: now });
    expect(lookup(q(1))?.rows).toBe(rows);
    // Not cached; in the last part of its life (the route starts the eager refresh).
    expect(lookup(q(3))).toBeUndefined();
    expect(lookup(q(2))).toBeUndefined();
    // Of the release's year, fetched before the release (which revised it): the route answers
    // (and refreshes it); fetched after it: the fast path.
    const current = { ...q(5), ano: ano + 1 };
    const key = t.connector.keyFor(current);
    const updatedAt = release?.updatedAt as number;
    await t.cache.set(key, { status: 'ok', rows, fetchedAt: updatedAt - 86_400_000 }, { ttlMs: ttl });
    expect(lookup(current)).toBeUndefined();
    await t.cache.set(key, { status: 'ok', rows, fetchedAt: now }, { ttlMs: ttl });
    expect(lookup(current)?.level).toBe('l1');
    // A cache turned off: no fast path at all.
    const off = new ComexStatConnector({
      client: t.connector.client,
      cache: t.cache,
      config: { ...DEFAULT_CONNECTOR_CONFIG, cache: { ...DEFAULT_CONNECTOR_CONFIG.cache, enabled: false } },
    });
    expect(l1Answers(off, { cache: t.cache })).toBeUndefined();
  });
});
