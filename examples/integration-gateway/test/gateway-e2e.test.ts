// End-to-end: the gateway as a separate process (`node dist/main.js`) against the ComexStat
// simulator, its own redis-server and the real PostgreSQL.
import { spawnSync } from 'node:child_process';
import { type ComexStatSimulator, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import { COMEXSTAT_ROWS_TABLE } from '@bgc/cache-l3-postgres/internal';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import {
  type GatewayProcess,
  PG_URL,
  startGatewayProcess,
  tempSchema,
  testConnectorYaml,
} from './helpers.js';

const TOKEN = 's3cret-admin-token-0123456789';
let sim: ComexStatSimulator;
let redis: RedisServer;
let schema: Awaited<ReturnType<typeof tempSchema>>;
let a: GatewayProcess;
let b: GatewayProcess;
let env: Record<string, string>;
let year: number;

const get = async (g: GatewayProcess, path: string) => {
  const r = await fetch(`${g.url}${path}`);
  return {
    status: r.status,
    level: r.headers.get('x-cache-level'),
    body: (await r.json()) as Record<string, unknown>,
  };
};

/** Waits until `key` is in Redis: a load's shared writes follow its answer (background writes). */
async function inRedis(key: string): Promise<void> {
  const client = new Redis({ port: redis.port, password: 'redis-pw-e2e', lazyConnect: true });
  await client.connect();
  try {
    for (let i = 0; i < 600 && (await client.exists(`bgc:c:${key}`)) === 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(await client.exists(`bgc:c:${key}`)).toBe(1);
  } finally {
    client.disconnect();
  }
}

beforeAll(async () => {
  sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 5, perRowMs: 0 } });
  year = sim.release.year - 1;
  redis = await startRedis({ password: 'redis-pw-e2e' });
  schema = await tempSchema();
  env = {
    COMEXSTAT_BASE_URL: sim.url,
    COMEXSTAT_CONFIG: testConnectorYaml(),
    CACHE_L2_ENABLED: 'true',
    REDIS_ADDR: `127.0.0.1:${redis.port}`,
    REDIS_PASSWORD: 'redis-pw-e2e',
    DATABASE_URL: PG_URL,
    L3_SCHEMA: schema.name,
    ADMIN_TOKEN: TOKEN,
    LOG_LEVEL: 'debug',
  };
  a = await startGatewayProcess({ ...env, INSTANCE_ID: 'e2e-a' });
  b = await startGatewayProcess({ ...env, INSTANCE_ID: 'e2e-b' });
});

afterAll(async () => {
  await a?.stop('SIGKILL');
  await b?.stop('SIGKILL');
  await sim?.close();
  await redis?.stop();
  await schema?.drop();
});

describe('ComexStat routes', () => {
  it('serves exportacao_mes from upstream, then from L1, with the contract shape', async () => {
    const q = `/comexstat/exportacao_mes?ano=${year}&mes=3&ncm=12019000&pais=160`;
    const first = await get(a, q);
    expect(first.status).toBe(200);
    expect(first.level).toBe('external');
    expect(first.body).toMatchObject({ ano: year, mes: 3, ncm: '12019000', pais: '160' });
    const rows = first.body.rows as { ncm: string; pais: string; fob: number }[];
    expect(rows.length).toBeGreaterThan(0);
    expect(rows[0]).toMatchObject({ ncm: '12019000', pais: '160' });
    const second = await get(a, q);
    expect(second.level).toBe('l1');
    expect(second.body).toEqual(first.body);
  });

  it('feeds the rows it fetched into the L3 aggregates table', async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const r = await client.query(
        `SELECT count(*)::int AS n FROM ${schema.name}.${COMEXSTAT_ROWS_TABLE} WHERE ncm = '12019000'`,
      );
      expect(r.rows[0].n).toBeGreaterThan(0);
    } finally {
      await client.end();
    }
  });

  it('another instance finds it in L2 (shared Redis)', async () => {
    const q = `/comexstat/exportacao_mes?ano=${year}&mes=3&ncm=12019000&pais=160`;
    await inRedis(`comexstat:exp:${year}:03:12019000:160`);
    const r = await get(b, q);
    expect(r.status).toBe(200);
    expect(r.level).toBe('l2');
  });

  it('serves importacao_mes, and rows: [] when there was no trade', async () => {
    const r = await get(a, `/comexstat/importacao_mes?ano=${year}&mes=5&ncm=27090010&pais=249`);
    expect(r.status).toBe(200);
    expect(Array.isArray(r.body.rows)).toBe(true);
    const none = await get(a, `/comexstat/exportacao_mes?ano=${year}&mes=5&ncm=99999999&pais=160`);
    expect(none.status).toBe(200);
    expect(none.body.rows).toEqual([]);
  });

  it.each([
    ['ano=1990&mes=3&ncm=12019000&pais=160', 'ano'],
    ['ano=abc&mes=3&ncm=12019000&pais=160', 'ano'],
    ['ano=2024&mes=13&ncm=12019000&pais=160', 'mes'],
    ['ano=2024&mes=0&ncm=12019000&pais=160', 'mes'],
    ['ano=2024&mes=3&ncm=1201900&pais=160', 'ncm'],
    ['ano=2024&mes=3&ncm=1201900A&pais=160', 'ncm'],
    ['ano=2024&mes=3&ncm=12019000&pais=16', 'pais'],
    ['ano=2024&mes=3&ncm=12019000', 'pais'],
  ])('400 naming the parameter for %s', async (qs, param) => {
    const r = await get(a, `/comexstat/exportacao_mes?${qs}`);
    expect(r.status).toBe(400);
    const error = r.body.error as { code: string; message: string };
    expect(error.code).toBe('E_INVALID_PARAMETER');
    expect(error.message).toContain(`Parameter ${param}`);
  });

  it('404 with the error shape for unknown routes', async () => {
    const r = await get(a, '/comexstat/nope');
    expect(r.status).toBe(404);
    expect((r.body.error as { code: string }).code).toBe('E_NOT_FOUND');
  });

  it('upstream failure with nothing cached → 502 with the error shape', async () => {
    sim.faults.inject({ type: 'http-500', count: 5, path: '/general' });
    const r = await get(a, `/comexstat/exportacao_mes?ano=${year - 3}&mes=7&ncm=09011110&pais=249`);
    sim.faults.clear();
    expect([502, 503]).toContain(r.status);
    const error = r.body.error as { code: string; message: string };
    expect(error.code).toMatch(/^E_/);
    expect(error.message).toMatch(/ComexStat|upstream/i);
    // What happened and what to do, never the upstream's address or its own message.
    expect(error.message).toMatch(/retry/i);
    expect(JSON.stringify(r.body)).not.toContain(new URL(sim.url).host);
    expect(JSON.stringify(r.body)).not.toMatch(/HTTP 500|Internal Server Error/i);
  });
});

describe('admin invalidation', () => {
  const q = `/comexstat/exportacao_mes?ano=${new Date().getFullYear() - 2}&mes=8&ncm=26011100&pais=160`;
  const key = () => `comexstat:exp:${year - 1}:08:26011100:160`;

  it('401 without, with a wrong, and with a wrong-length token', async () => {
    for (const auth of [undefined, `Bearer ${TOKEN.replace('s', 'x')}`, 'Bearer short', 'Basic abc']) {
      const r = await fetch(`${a.url}/admin/cache/invalidate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
        body: JSON.stringify({ keys: ['x'] }),
      });
      expect(r.status).toBe(401);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHORIZED');
    }
  });

  it("removes keys from every tier and from the other instance's L1 through the bus", async () => {
    const path = q.replace(/ano=\d+/, `ano=${year - 1}`);
    await get(a, path);
    await inRedis(key());
    expect((await get(b, path)).level).toBe('l2');
    // b's copy in L1, waited for by its cause: a's invalidation message for its own load's write
    // may land after b's promotion and drop that copy once (then b promotes it again).
    let cached = (await get(b, path)).level;
    for (let i = 0; i < 100 && cached !== 'l1'; i++) {
      await new Promise((res) => setTimeout(res, 50));
      cached = (await get(b, path)).level;
    }
    expect(cached).toBe('l1');
    const r = await fetch(`${a.url}/admin/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ keys: [key()] }),
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ invalidated: 1, tags: 0, mode: 'delete' });
    // The bus message reaches b asynchronously: b answers from its L1 until it arrives, then
    // reloads (generous bound; what is checked is that it arrives and what b does then).
    let level = (await get(b, path)).level;
    for (let i = 0; i < 100 && level === 'l1'; i++) {
      await new Promise((res) => setTimeout(res, 50));
      level = (await get(b, path)).level;
    }
    expect(level).toBe('external');
  });

  it('an invalidation during an in-flight load is not undone by that load (tombstones through the core)', async () => {
    const path = `/comexstat/exportacao_mes?ano=${year - 5}&mes=6&ncm=02023000&pais=245`;
    const key = `comexstat:exp:${year - 5}:06:02023000:245`;
    const calls = sim.stats.byPath['/general'] ?? 0;
    sim.faults.inject({ type: 'slow', delayMs: 1500, count: 1, path: '/general' });
    const inflight = get(a, path);
    // The load is on the wire once the simulator has seen its call (a cause, not a delay).
    for (let i = 0; i < 200 && (sim.stats.byPath['/general'] ?? 0) === calls; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(sim.stats.byPath['/general'] ?? 0).toBeGreaterThan(calls);
    const r = await fetch(`${b.url}/admin/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ keys: [key] }),
    });
    expect(r.status).toBe(200);
    expect((await inflight).status).toBe(200);
    // The load that started before the invalidation answered its own request, but stored nothing
    // in any tier: the next read goes upstream again.
    expect((await get(a, path)).level).toBe('external');
  });

  it('400 for a malformed body', async () => {
    const r = await fetch(`${a.url}/admin/cache/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ keys: [] }),
    });
    expect(r.status).toBe(400);
  });
});

describe('health, readiness, metrics, logs', () => {
  it('/healthz and /readyz report per-tier status', async () => {
    expect((await get(a, '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await get(a, '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ok', tiers: { l1: 'up', l2: 'up', l3: 'up' } });
  });

  it("/metrics on METRICS_PORT exposes the seed's metrics with bounded labels", async () => {
    const text = await (await fetch(a.metricsUrl)).text();
    expect(text).toMatch(
      /integration_gateway_cache_hits_total\{level="l1",connector="comexstat",endpoint="exportacao_mes"\} [1-9]/,
    );
    expect(text).toContain('integration_gateway_cache_misses_total');
    expect(text).toContain('integration_gateway_cache_latency_seconds_bucket');
    expect(text).not.toMatch(/comexstat:exp:/);
  });

  it('the whole /metrics (cache and process metrics) passes promtool check metrics', async () => {
    const text = await (await fetch(a.metricsUrl)).text();
    expect(text).toContain('process_cpu_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    if (r.error)
      throw new Error(`promtool could not be run (${r.error.message}); apt-get install -y prometheus`);
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('never logs the Redis password or the admin token', () => {
    expect(a.output()).toContain('integration gateway ready');
    expect(a.output()).not.toContain('redis-pw-e2e');
    expect(a.output()).not.toContain(TOKEN);
  });

  it('the admin route does not exist without ADMIN_TOKEN, and readiness survives a dead Redis', async () => {
    const dead = await startGatewayProcess({
      ...env,
      ADMIN_TOKEN: '',
      REDIS_ADDR: '127.0.0.1:1',
      INSTANCE_ID: 'e2e-c',
    });
    try {
      const r = await fetch(`${dead.url}/admin/cache/invalidate`, { method: 'POST', body: '{}' });
      expect(r.status).toBe(404);
      const served = await get(dead, `/comexstat/exportacao_mes?ano=${year}&mes=3&ncm=12019000&pais=160`);
      expect(served.status).toBe(200);
      expect(served.level).toBe('l3');
      const ready = await get(dead, '/readyz');
      expect(ready.status).toBe(200);
      expect(ready.body.status).toBe('degraded');
      expect((ready.body.tiers as Record<string, string>).l2).not.toBe('up');
    } finally {
      await dead.stop('SIGKILL');
    }
  });
});

describe('graceful shutdown', () => {
  it('SIGTERM finishes in-flight requests, turns readiness off and exits 0', async () => {
    const g = await startGatewayProcess({ ...env, INSTANCE_ID: 'e2e-d' });
    const calls = sim.stats.byPath['/general'] ?? 0;
    sim.faults.inject({ type: 'slow', delayMs: 1500, count: 1, path: '/general' });
    const inflight = get(g, `/comexstat/exportacao_mes?ano=${year - 4}&mes=2&ncm=17011400&pais=063`);
    // SIGTERM once the request's upstream call is on the wire (a cause, not a delay).
    for (let i = 0; i < 400 && (sim.stats.byPath['/general'] ?? 0) === calls; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(sim.stats.byPath['/general'] ?? 0).toBeGreaterThan(calls);
    const exited = g.stop('SIGTERM');
    const r = await inflight;
    expect(r.status).toBe(200);
    const code = await exited;
    if (code !== 0) console.log(g.output());
    expect(code).toBe(0);
    expect(g.output()).toContain('integration gateway stopped');
  });
});
