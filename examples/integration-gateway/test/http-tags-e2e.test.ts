// Issue 17, end to end: two gateways (`node dist/main.js`) on their own redis-server and the real
// PostgreSQL, against the ComexStat simulator. Conditional requests, cache headers and compression
// across instances, the time-series route (a 7-year range of a cold key: one upstream call per
// flow), and invalidation by tag made on A reaching B wherever B would have read the value from
// (its L1, Redis, PostgreSQL), in delete and in expire mode (a fail-safe fallback).
import { gunzipSync } from 'node:zlib';
import { type ComexStatSimulator, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import { type GatewayProcess, startGatewayProcess, tempSchema, testConnectorYaml } from './helpers.js';

const TOKEN = 'tags-e2e-admin-token-0123456789';
const REDIS_PASSWORD = 'redis-pw-tags-e2e';
let sim: ComexStatSimulator;
let redis: RedisServer;
let client: Redis;
let schema: Awaited<ReturnType<typeof tempSchema>>;
let a: GatewayProcess;
let b: GatewayProcess;
let year: number;

const get = async (g: GatewayProcess, path: string, headers: Record<string, string> = {}) => {
  const r = await fetch(`${g.url}${path}`, { headers });
  const text = r.status === 304 ? '' : await r.text();
  return { status: r.status, headers: r.headers, text, level: r.headers.get('x-cache-level') };
};

const invalidate = async (g: GatewayProcess, body: unknown) => {
  const r = await fetch(`${g.url}/admin/cache/invalidate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  expect(r.status).toBe(200);
  return r.json();
};

const calls = () => sim.stats.byPath['/general'] ?? 0;

/** B's level for `path` once the bus has had a chance to deliver (polled: the cause, not a delay). */
async function levelAfterBus(g: GatewayProcess, path: string, notLevel: string): Promise<string | null> {
  let level = (await get(g, path)).level;
  for (let i = 0; i < 100 && level === notLevel; i++) {
    await new Promise((r) => setTimeout(r, 50));
    level = (await get(g, path)).level;
  }
  return level;
}

/**
 * Reads `path` on `g` until its L1 answers (bounded): a read of a shared tier promotes into L1, and
 * the loading instance's invalidation message, which may arrive after that promotion, drops the
 * copy once (the next read promotes it again).
 */
async function untilL1(g: GatewayProcess, path: string): Promise<string | null> {
  let level = (await get(g, path)).level;
  for (let i = 0; i < 100 && level !== 'l1'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    level = (await get(g, path)).level;
  }
  return level;
}

/** Waits until `key` is in Redis: the shared writes of a load follow its answer (background writes). */
async function inRedis(key: string): Promise<void> {
  for (let i = 0; i < 600 && (await client.exists(`bgc:c:${key}`)) === 0; i++)
    await new Promise((r) => setTimeout(r, 25));
  expect(await client.exists(`bgc:c:${key}`)).toBe(1);
}

beforeAll(async () => {
  sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 2, perRowMs: 0 } });
  year = sim.release.year - 3;
  redis = await startRedis({ password: REDIS_PASSWORD });
  client = new Redis({ port: redis.port, password: REDIS_PASSWORD, lazyConnect: true });
  await client.connect();
  schema = await tempSchema();
  const env = {
    COMEXSTAT_BASE_URL: sim.url,
    COMEXSTAT_CONFIG: testConnectorYaml(),
    CACHE_L2_ENABLED: 'true',
    REDIS_ADDR: `127.0.0.1:${redis.port}`,
    REDIS_PASSWORD,
    DATABASE_URL: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    L3_SCHEMA: schema.name,
    ADMIN_TOKEN: TOKEN,
    LOG_LEVEL: 'warn',
    // Spaced calls, as in production (20 s there): a cold miss waits for its slot, and the misses
    // arriving meanwhile join its call.
    COMEXSTAT_MIN_INTERVAL_MS: '1000',
  };
  a = await startGatewayProcess({ ...env, INSTANCE_ID: 'tags-a' });
  b = await startGatewayProcess({ ...env, INSTANCE_ID: 'tags-b' });
});

afterAll(async () => {
  await a?.stop('SIGKILL');
  await b?.stop('SIGKILL');
  client?.disconnect();
  await sim?.close();
  await redis?.stop();
  await schema?.drop();
});

describe('HTTP caching across two instances (Redis + PostgreSQL)', () => {
  it('headers, the same strong ETag on both instances, 304 on either', async () => {
    const path = `/comexstat/exportacao_mes?ano=${year}&mes=3&ncm=12019000&pais=160`;
    const first = await get(a, path);
    expect(first.status).toBe(200);
    expect(first.level).toBe('external');
    const etag = first.headers.get('etag') as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(first.headers.get('cache-control')).toMatch(
      /^public, max-age=\d+, stale-while-revalidate=60, stale-if-error=\d+$/,
    );
    expect(Number(/max-age=(\d+)/.exec(first.headers.get('cache-control') as string)?.[1])).toBeGreaterThan(
      0,
    );
    expect(first.headers.get('last-modified')).toBe(
      new Date(Date.parse(first.headers.get('last-modified') as string)).toUTCString(),
    );
    expect(Number(first.headers.get('age'))).toBeGreaterThanOrEqual(0);
    expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
    await inRedis(`comexstat:exp:${year}:03:12019000:160`);
    const onB = await get(b, path);
    expect(onB.level).toMatch(/^l[23]$/);
    expect(onB.headers.get('etag')).toBe(etag);
    expect(onB.text).toBe(first.text);
    for (const g of [a, b]) {
      const revalidated = await get(g, path, { 'if-none-match': etag });
      expect(revalidated.status).toBe(304);
      expect(revalidated.text).toBe('');
      expect(revalidated.headers.get('etag')).toBe(etag);
      const since = await get(g, path, { 'if-modified-since': first.headers.get('last-modified') as string });
      expect(since.status).toBe(304);
    }
    expect((await get(b, path, { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('the time-series route: a 7-year range of a cold key costs one upstream call per flow, gzip-compressed, 304 on B', async () => {
    const from = sim.release.year - 9;
    const to = sim.release.year - 3;
    for (const [endpoint, other] of [
      ['exportacao', '10059010'],
      ['importacao', '23040090'],
    ] as const) {
      const path = `/comexstat/${endpoint}?ncm=09011110&pais=249&de=${from}-01&ate=${to}-12`;
      // A call just made takes the slot: the range's 84 months wait for the next one, together.
      expect((await get(a, `/comexstat/${endpoint}_mes?ano=${to}&mes=1&ncm=${other}&pais=160`)).status).toBe(
        200,
      );
      const before = calls();
      const r = await get(a, path, { 'accept-encoding': 'gzip' });
      expect(r.status).toBe(200);
      expect(calls() - before, `${endpoint}: upstream calls`).toBe(1);
      // fetch() decodes what it asked for: the raw bytes are checked through a second request.
      const raw = await fetch(`${a.url}${path}`, { headers: { 'accept-encoding': 'gzip' } });
      expect(raw.headers.get('content-encoding')).toBe('gzip');
      expect(raw.headers.get('vary')).toBe('accept-encoding');
      const body = JSON.parse(r.text) as { months: { ano: number; mes: number; level: string }[] };
      expect(body.months).toHaveLength(84);
      expect(body.months[0]).toMatchObject({ ano: from, mes: 1 });
      expect(body.months[83]).toMatchObject({ ano: to, mes: 12 });
      const etag = r.headers.get('etag') as string;
      expect(etag).toMatch(/^W\//);
      // B has the same data (from Redis or PostgreSQL once A's shared writes landed): same validator.
      await inRedis(`comexstat:${endpoint === 'exportacao' ? 'exp' : 'imp'}:${to}:12:09011110:249`);
      const onB = await get(b, path);
      expect(onB.headers.get('etag')).toBe(etag);
      expect((await get(b, path, { 'if-none-match': etag })).status).toBe(304);
      expect(calls() - before).toBe(1);
    }
  });

  it('compresses large answers: gunzipped bytes are the plain answer', async () => {
    const path = `/comexstat/exportacao?ncm=09011110&pais=249&de=${sim.release.year - 9}-01&ate=${sim.release.year - 3}-12`;
    const plain = await fetch(`${a.url}${path}`, { headers: { 'accept-encoding': 'identity' } });
    const plainBytes = Buffer.from(await plain.arrayBuffer());
    expect(plain.headers.get('content-encoding')).toBeNull();
    // undici's fetch decodes gzip itself; a raw request through node:http keeps the bytes.
    const { request } = await import('node:http');
    const packed = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>(
      (resolve, reject) => {
        request(`${a.url}${path}`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
        })
          .on('error', reject)
          .end();
      },
    );
    expect(packed.headers['content-encoding']).toBe('gzip');
    expect(packed.body.length).toBeLessThan(plainBytes.length / 3);
    const decoded = JSON.parse(gunzipSync(packed.body).toString('utf8')) as { months: { rows: unknown }[] };
    const original = JSON.parse(plainBytes.toString('utf8')) as { months: { rows: unknown }[] };
    expect(decoded.months.map((m) => m.rows)).toEqual(original.months.map((m) => m.rows));
  });
});

describe('invalidation by tag across instances', () => {
  const month = (ncm: string, pais: string, mes: number) =>
    `/comexstat/exportacao_mes?ano=${year}&mes=${mes}&ncm=${ncm}&pais=${pais}`;
  const key = (ncm: string, pais: string, mes: number) =>
    `comexstat:exp:${year}:${String(mes).padStart(2, '0')}:${ncm}:${pais}`;

  it("a deleteByTag on A reaches B's L1, Redis and PostgreSQL copies, and only the tagged entries", async () => {
    const inL1 = month('26011100', '160', 4);
    const inL2 = month('26011100', '160', 5);
    const inL3 = month('26011100', '160', 6);
    const other = month('17011400', '063', 4);
    for (const p of [inL1, inL2, inL3, other]) expect((await get(a, p)).status).toBe(200);
    for (const m of [4, 5, 6]) await inRedis(key('26011100', '160', m));
    await inRedis(key('17011400', '063', 4));
    // B holds inL1 in its L1; inL2 only in Redis (and PostgreSQL); inL3 only in PostgreSQL.
    expect(await untilL1(b, inL1)).toBe('l1');
    await client.del(`bgc:c:${key('26011100', '160', 6)}`);
    // Old and new copies are told apart by Last-Modified (the fetch time, whole seconds).
    const cutoff = Math.ceil(Date.now() / 1000) * 1000;
    await new Promise((r) => setTimeout(r, cutoff - Date.now() + 10));
    expect(await invalidate(a, { tags: ['comexstat:ncm:26011100'] })).toEqual({
      invalidated: 0,
      tags: 1,
      mode: 'delete',
    });
    const before = calls();
    // B's PostgreSQL copy (nothing reloaded it yet): refused, loaded again.
    expect((await get(b, inL3)).level).toBe('external');
    expect(calls()).toBeGreaterThan(before);
    // That load fetched the whole year (fan-out): what B now finds for the other months is the new
    // data, never the copies from before the invalidation (Redis for inL2, B's L1 for inL1, once
    // the bus message has arrived).
    const fetchedAfter = (r: Awaited<ReturnType<typeof get>>) =>
      Date.parse(r.headers.get('last-modified') as string) >= cutoff;
    expect(fetchedAfter(await get(b, inL2))).toBe(true);
    let r = await get(b, inL1);
    for (let i = 0; i < 100 && !fetchedAfter(r); i++) {
      await new Promise((res) => setTimeout(res, 50));
      r = await get(b, inL1);
    }
    expect(fetchedAfter(r)).toBe(true);
    // Untagged by that invalidation: still cached (B finds it in a shared tier, not upstream).
    const untouched = calls();
    expect((await get(b, other)).level).toMatch(/^l[123]$/);
    expect(calls()).toBe(untouched);
  });

  it('a tag by year or by country reaches the other instance too', async () => {
    const p = month('47032900', '149', 7);
    await get(a, p);
    await inRedis(key('47032900', '149', 7));
    expect(await untilL1(b, p)).toBe('l1');
    await invalidate(a, { tags: [`comexstat:year:${year}`] });
    expect(await levelAfterBus(b, p, 'l1')).toBe('external');
    await inRedis(key('47032900', '149', 7));
    expect((await get(b, p)).level).toBe('l1');
    await invalidate(b, { tags: ['comexstat:country:149'] });
    expect(await levelAfterBus(a, p, 'l1')).not.toBe('l1');
  });

  it('expire mode: B keeps serving the values, stale, while the upstream fails; fresh again once it answers', async () => {
    const p = month('02023000', '245', 8);
    const first = await get(a, p);
    await inRedis(key('02023000', '245', 8));
    expect(await untilL1(b, p)).toBe('l1');
    expect(await invalidate(a, { tags: ['comexstat:ncm:02023000'], mode: 'expire' })).toEqual({
      invalidated: 0,
      tags: 1,
      mode: 'expire',
    });
    sim.faults.inject({ type: 'http-500', count: 1000, path: '/general' });
    try {
      let r = await get(b, p);
      for (let i = 0; i < 100 && r.headers.get('x-cache-stale') !== 'true'; i++) {
        await new Promise((res) => setTimeout(res, 50));
        r = await get(b, p);
      }
      expect(r.status).toBe(200);
      expect(r.headers.get('x-cache-stale')).toBe('true');
      expect(r.headers.get('cache-control')).toMatch(/^public, max-age=0, stale-if-error=\d+$/);
      expect(JSON.parse(r.text)).toEqual(JSON.parse(first.text));
    } finally {
      sim.faults.clear();
    }
    // The upstream answers again: the stale value is refreshed (in the background or on the next miss).
    let level: string | null = 'l1';
    let stale = 'true';
    for (let i = 0; i < 100 && stale === 'true'; i++) {
      const r = await get(b, p);
      stale = r.headers.get('x-cache-stale') ?? 'false';
      level = r.level;
      if (stale === 'true') await new Promise((res) => setTimeout(res, 50));
    }
    expect(stale).toBe('false');
    expect(level).toMatch(/^(external|l1|l2|l3)$/);
  });
});
