// Issue 17 (part): conditional requests, cache headers from the value's life, compression, bytes
// built once. End-to-end on `node dist/main.js` + the simulator for the headers and 304s (two
// processes agree on the ETag), in process (inject) for compression and stale answers.
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { type ComexStatSimulator, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerBody, etagMatches, pickEncoding } from '../src/http-body.js';
import { createApp, type MonthAnswer } from '../src/server.js';
import { type GatewayProcess, startGatewayProcess, testConnectorYaml } from './helpers.js';

let sim: ComexStatSimulator;
let a: GatewayProcess;
let b: GatewayProcess;
let year: number;

beforeAll(async () => {
  sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 2, perRowMs: 0 } });
  year = sim.release.year - 2;
  const env = {
    COMEXSTAT_BASE_URL: sim.url,
    COMEXSTAT_CONFIG: testConnectorYaml({ ttl: '168h' }),
    LOG_LEVEL: 'warn',
  };
  a = await startGatewayProcess({ ...env, INSTANCE_ID: 'http-a' });
  b = await startGatewayProcess({ ...env, INSTANCE_ID: 'http-b' });
});
afterAll(async () => {
  await a?.stop('SIGKILL');
  await b?.stop('SIGKILL');
  await sim?.close();
});

describe('conditional requests and cache headers (two gateway processes)', () => {
  const path = () => `/comexstat/exportacao_mes?ano=${year}&mes=4&ncm=12019000&pais=160`;

  it('a 200 carries a strong ETag, Last-Modified, Age and Cache-Control from the value life', async () => {
    const r = await fetch(`${a.url}${path()}`);
    expect(r.status).toBe(200);
    const etag = r.headers.get('etag') as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    // One row: too small to be compressed, so it has a single representation (no Vary).
    expect(r.headers.get('vary')).toBeNull();
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    const cc = r.headers.get('cache-control') as string;
    // A year frozen by a later release: the connector's 30-day TTL less the 10% jitter (27 days);
    // stale window 1 h (the test YAML).
    const maxAge = Number(/max-age=(\d+)/.exec(cc)?.[1]);
    expect(maxAge).toBeGreaterThan(27 * 86_400 - 60);
    expect(maxAge).toBeLessThanOrEqual(27 * 86_400);
    expect(cc).toContain('public');
    expect(cc).toContain('stale-while-revalidate=60');
    expect(cc).toContain('stale-if-error=3600');
    expect(Number(r.headers.get('age'))).toBeGreaterThanOrEqual(0);
    const lm = Date.parse(r.headers.get('last-modified') as string);
    expect(lm).toBeLessThanOrEqual(Date.now());
    expect(lm).toBeGreaterThan(Date.now() - 3_600_000);
    const body = (await r.json()) as { rows: unknown[] };
    expect(body.rows.length).toBeGreaterThan(0);
  });

  it('If-None-Match → 304 without a body; the ETag is the same on an L1 hit and on another instance', async () => {
    const first = await fetch(`${a.url}${path()}`);
    const etag = first.headers.get('etag') as string;
    expect(first.headers.get('x-cache-level')).toBe('l1');
    await first.arrayBuffer();
    const revalidated = await fetch(`${a.url}${path()}`, { headers: { 'if-none-match': etag } });
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe('');
    expect(revalidated.headers.get('etag')).toBe(etag);
    expect(revalidated.headers.get('cache-control')).toMatch(/max-age=\d+/);
    // Another process fetched the same data itself: same bytes, same validator.
    const other = await fetch(`${b.url}${path()}`, { headers: { 'if-none-match': `"nope", ${etag}` } });
    expect(other.status).toBe(304);
    const changed = await fetch(`${b.url}${path()}`, { headers: { 'if-none-match': '"something-else"' } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).toBe(etag);
  });

  it('If-Modified-Since: 304 at or after Last-Modified, 200 before; If-None-Match wins over it', async () => {
    const r = await fetch(`${a.url}${path()}`);
    const lm = r.headers.get('last-modified') as string;
    await r.arrayBuffer();
    expect((await fetch(`${a.url}${path()}`, { headers: { 'if-modified-since': lm } })).status).toBe(304);
    const before = new Date(Date.parse(lm) - 60_000).toUTCString();
    expect((await fetch(`${a.url}${path()}`, { headers: { 'if-modified-since': before } })).status).toBe(200);
    const both = await fetch(`${a.url}${path()}`, {
      headers: { 'if-modified-since': lm, 'if-none-match': '"x"' },
    });
    expect(both.status).toBe(200);
  });

  it('errors are no-store and carry no validator', async () => {
    const r = await fetch(`${a.url}/comexstat/exportacao_mes?ano=1900&mes=4&ncm=12019000&pais=160`);
    expect(r.status).toBe(400);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.headers.get('etag')).toBeNull();
  });
});

describe('time-series route', () => {
  it('answers a 7-year range of a cold key in one response, one upstream call per flow and year at most', async () => {
    const from = sim.release.year - 8;
    const to = sim.release.year - 2;
    const q = `/comexstat/exportacao?ncm=47032900&pais=149&de=${from}-01&ate=${to}-12`;
    const calls = sim.stats.byPath['/general'] ?? 0;
    const r = await fetch(`${a.url}${q}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(r.status).toBe(200);
    const upstream = (sim.stats.byPath['/general'] ?? 0) - calls;
    expect(upstream).toBeGreaterThan(0);
    expect(upstream).toBeLessThanOrEqual(7);
    const body = (await r.json()) as {
      ncm: string;
      pais: string;
      de: string;
      ate: string;
      months: { ano: number; mes: number; rows: unknown[]; level: string }[];
    };
    expect(body).toMatchObject({ ncm: '47032900', pais: '149', de: `${from}-01`, ate: `${to}-12` });
    expect(body.months).toHaveLength(84);
    expect(body.months[0]).toMatchObject({ ano: from, mes: 1 });
    expect(body.months[83]).toMatchObject({ ano: to, mes: 12 });
    expect(body.months.every((m) => Array.isArray(m.rows))).toBe(true);
    expect(r.headers.get('x-cache-level')).toMatch(/^(external|mixed)$/);
    const etag = r.headers.get('etag') as string;
    // Weak: the bytes differ in each month's level, the data does not.
    expect(etag).toMatch(/^W\/"[A-Za-z0-9_-]{27}"$/);
    // Again: every month from L1, the same validator, and a 304 on revalidation.
    const again = await fetch(`${a.url}${q}`);
    expect(again.headers.get('x-cache-level')).toBe('l1');
    expect(again.headers.get('etag')).toBe(etag);
    expect(((await again.json()) as typeof body).months.every((m) => m.level === 'l1')).toBe(true);
    expect((await fetch(`${a.url}${q}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((sim.stats.byPath['/general'] ?? 0) - calls).toBe(upstream);
    // The same months, one by one, are L1 hits too (the series shares the monthly entries).
    const one = await fetch(`${a.url}/comexstat/exportacao_mes?ano=${from}&mes=1&ncm=47032900&pais=149`);
    expect(one.headers.get('x-cache-level')).toBe('l1');
  });

  it.each([
    ['de=2020-05&ate=2020-04', 'ate'],
    ['de=2000-01&ate=2010-01', 'ate'],
    ['de=2020-13&ate=2021-01', 'de'],
    ['de=1990-01&ate=1991-01', 'de'],
    ['de=2020-01', 'ate'],
  ])('400 with the error shape for %s', async (range, param) => {
    const r = await fetch(`${a.url}/comexstat/importacao?ncm=12019000&pais=160&${range}`);
    expect(r.status).toBe(400);
    const body = (await r.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('E_INVALID_PARAMETER');
    expect(body.error.message).toContain(`Parameter ${param}`);
  });
});

describe('compression and stale answers (in process)', () => {
  const logger = pino({ level: 'silent' });
  const bigRows = Object.freeze(
    Array.from({ length: 200 }, (_, i) =>
      Object.freeze({ ncm: '12019000', pais: '160', fob: 1000 + i, kg: 2000 + i }),
    ),
  );
  const app = (answer: MonthAnswer) =>
    createApp({
      cache: new MultiLevelCache({ tiers: [new MemoryTier()] }),
      fetchMonth: async () => answer,
      logger,
    });
  const url = '/comexstat/exportacao_mes?ano=2024&mes=3&ncm=12019000&pais=160';

  it.each([
    ['gzip', 'gzip', (b: Buffer) => gunzipSync(b)],
    ['br', 'br;q=1, gzip;q=0.5', (b: Buffer) => brotliDecompressSync(b)],
  ] as const)(
    '%s by Accept-Encoding, the same JSON once decoded, the same ETag',
    async (encoding, accept, decode) => {
      const g = app({
        rows: bigRows,
        level: 'l1',
        stale: false,
        fetchedAt: Date.now() - 5000,
        freshUntil: Date.now() + 60_000,
      });
      const plain = await g.inject({ method: 'GET', url });
      const packed = await g.inject({ method: 'GET', url, headers: { 'accept-encoding': accept } });
      expect(packed.headers['content-encoding']).toBe(encoding);
      expect(packed.headers.vary).toBe('accept-encoding');
      expect(plain.headers.vary).toBe('accept-encoding');
      expect(packed.rawPayload.length).toBeLessThan(plain.rawPayload.length / 3);
      expect(decode(packed.rawPayload).toString('utf8')).toBe(plain.body);
      expect(packed.headers.etag).toBe(plain.headers.etag);
      expect(JSON.parse(plain.body)).toEqual({
        ano: 2024,
        mes: 3,
        ncm: '12019000',
        pais: '160',
        rows: bigRows,
      });
      await g.close();
    },
  );

  it('small answers are not compressed; a stale answer has max-age=0 and x-cache-stale', async () => {
    const g = app({
      rows: [],
      level: 'l3',
      stale: true,
      fetchedAt: Date.now() - 10_000,
      staleWindowMs: 7_200_000,
    });
    const r = await g.inject({ method: 'GET', url, headers: { 'accept-encoding': 'gzip, br' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.headers['cache-control']).toBe('public, max-age=0, stale-if-error=7200');
    expect(r.headers['x-cache-stale']).toBe('true');
    expect(Number(r.headers.age)).toBeGreaterThanOrEqual(10);
    await g.close();
  });

  it('builds the bytes once per cached value and query', () => {
    const head = '"ano":2024,"mes":3,"ncm":"12019000","pais":"160"';
    const one = answerBody(head, bigRows);
    expect(answerBody(head, bigRows)).toBe(one);
    // The same (shared, frozen) rows under another query get their own body.
    const other = answerBody('"ano":2024,"mes":4,"ncm":"12019000","pais":"160"', bigRows);
    expect(other.json).not.toBe(one.json);
    expect(other.etag).not.toBe(one.etag);
  });

  it('parses Accept-Encoding and If-None-Match', () => {
    expect(pickEncoding(undefined)).toBeUndefined();
    expect(pickEncoding('gzip, deflate')).toBe('gzip');
    expect(pickEncoding('br;q=0, gzip')).toBe('gzip');
    expect(pickEncoding('identity')).toBeUndefined();
    expect(pickEncoding('*')).toBe('gzip');
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"b", "a"', '"a"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
  });
});
