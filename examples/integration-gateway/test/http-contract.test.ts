// The HTTP contract in process (Fastify inject): public error bodies and Retry-After, the admin
// route's throttling, trimming and placement. The data source is a fake; the cache is a real
// MultiLevelCache over a memory tier.
import { BgcCacheError, MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import Fastify from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../src/config.js';
import { createMetricsApp } from '../src/metrics-server.js';
import { createApp, type MonthContext, type MonthFetcher, registerAdminRoute } from '../src/server.js';

const TOKEN = 'a-long-enough-admin-token-0123';
const silent = pino({ level: 'silent' });
const caches: MultiLevelCache[] = [];
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close();
});

function newCache(): MultiLevelCache {
  const cache = new MultiLevelCache({ tiers: [new MemoryTier()] });
  caches.push(cache);
  return cache;
}

function upstreamError(code: string, message: string, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new BgcCacheError(code, message), extra);
}

const Q = '/comexstat/exportacao_mes?ano=2024&mes=3&ncm=12019000&pais=160';
const LEAK = 'http://10.0.0.7:3128/proxy/api-comexstat.mdic.gov.br/general?token=xyz';

describe('public error bodies', () => {
  it.each([
    ['E_CLIENT_BUDGET', 4200, 429, '5'],
    ['E_UPSTREAM_BACKLOG', 20_000, 503, '20'],
    ['E_COMEXSTAT_RATE_LIMITED', 61_500, 503, '62'],
    ['E_SHUTTING_DOWN', 0, 503, '1'],
    ['E_COMEXSTAT_UNMAPPED', undefined, 503, null],
    ['E_COMEXSTAT_INCOMPLETE', undefined, 503, null],
    ['E_COMEXSTAT_HTTP', undefined, 502, null],
    ['E_COMEXSTAT_NETWORK', undefined, 502, null],
  ] as const)(
    '%s → %i, Retry-After %s, no upstream URL or message',
    async (code, retryAfterMs, status, retryAfter) => {
      const fetchMonth: MonthFetcher = async () => {
        throw upstreamError(code, `POST ${LEAK} failed: upstream said "internal quota of tenant 42"`, {
          retryAfterMs,
        });
      };
      const app = createApp({ cache: newCache(), fetchMonth, logger: silent });
      const r = await app.inject({ method: 'GET', url: Q });
      expect(r.statusCode).toBe(status);
      expect(r.headers['retry-after'] ?? null).toBe(retryAfter);
      expect(r.headers['cache-control']).toBe('no-store');
      const body = r.json() as { error: { code: string; message: string } };
      expect(body.error.code).toMatch(/^E_/);
      expect(body.error.message).toMatch(/retry/i);
      expect(r.body).not.toContain('10.0.0.7');
      expect(r.body).not.toContain('tenant 42');
      expect(r.body).not.toContain('token');
      await app.close();
    },
  );

  it('passes the client IP to the data source as its client id', async () => {
    const seen: MonthContext[] = [];
    const app = createApp({
      cache: newCache(),
      fetchMonth: async (_q, ctx) => {
        seen.push(ctx);
        return { rows: [], level: 'l1', stale: false };
      },
      logger: silent,
    });
    const r = await app.inject({ method: 'GET', url: Q, remoteAddress: '203.0.113.9' });
    expect(r.statusCode).toBe(200);
    expect(seen).toEqual([{ clientId: '203.0.113.9' }]);
    await app.close();
  });
});

describe('admin route', () => {
  const post = (app: ReturnType<typeof Fastify>, auth: string | undefined, ip = '198.51.100.1') =>
    app.inject({
      method: 'POST',
      url: '/admin/cache/invalidate',
      remoteAddress: ip,
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      payload: JSON.stringify({ keys: ['comexstat:exp:2024:03:12019000:160'] }),
    });

  it('throttles a client after maxFailures failed attempts (429 + Retry-After), per client, for the window', async () => {
    let t = 1_000_000;
    const app = Fastify();
    registerAdminRoute(app, {
      cache: newCache(),
      token: TOKEN,
      maxFailures: 3,
      windowMs: 60_000,
      now: () => t,
    });
    for (let i = 0; i < 3; i++) expect((await post(app, 'Bearer wrong-token-guess')).statusCode).toBe(401);
    const blocked = await post(app, `Bearer ${TOKEN}`);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['retry-after']).toBe('60');
    expect((blocked.json() as { error: { code: string } }).error.code).toBe('E_TOO_MANY_ATTEMPTS');
    // Another client is not affected.
    expect((await post(app, `Bearer ${TOKEN}`, '198.51.100.2')).statusCode).toBe(200);
    t += 45_000;
    expect((await post(app, `Bearer ${TOKEN}`)).headers['retry-after']).toBe('15');
    t += 15_000;
    expect((await post(app, `Bearer ${TOKEN}`)).statusCode).toBe(200);
    await app.close();
  });

  it('a success clears the count of failures', async () => {
    const app = Fastify();
    registerAdminRoute(app, { cache: newCache(), token: TOKEN, maxFailures: 2, now: () => 0 });
    expect((await post(app, 'Bearer nope-nope-nope-nope')).statusCode).toBe(401);
    expect((await post(app, `Bearer ${TOKEN}`)).statusCode).toBe(200);
    expect((await post(app, 'Bearer nope-nope-nope-nope')).statusCode).toBe(401);
    expect((await post(app, `Bearer ${TOKEN}`)).statusCode).toBe(200);
    await app.close();
  });

  it('ADMIN_TOKEN: trimmed (a secret file trailing newline), at least 16 characters, never echoed', () => {
    expect(loadGatewayConfig({ ADMIN_TOKEN: `${TOKEN}\n` }).adminToken).toBe(TOKEN);
    expect(loadGatewayConfig({ ADMIN_TOKEN: '' }).adminToken).toBeUndefined();
    const short = 'short-secret';
    expect(() => loadGatewayConfig({ ADMIN_TOKEN: short })).toThrow(/ADMIN_TOKEN.*at least 16/);
    try {
      loadGatewayConfig({ ADMIN_TOKEN: short });
    } catch (error) {
      expect((error as { code: string }).code).toBe('E_CONFIG');
      expect((error as Error).message).not.toContain(short);
    }
    expect(() => loadGatewayConfig({ ADMIN_TOKEN: '   \n' })).toThrow(/ADMIN_TOKEN.*whitespace/);
  });

  it('ADMIN_ON_METRICS_PORT: the route is on the metrics app only', async () => {
    const cfg = loadGatewayConfig({ ADMIN_TOKEN: TOKEN, ADMIN_ON_METRICS_PORT: 'true' });
    expect(cfg.adminOnMetricsPort).toBe(true);
    const cache = newCache();
    const app = createApp({
      cache,
      fetchMonth: async () => ({ rows: [], level: 'l1', stale: false }),
      adminToken: TOKEN,
      adminElsewhere: true,
      logger: silent,
    });
    expect((await post(app, `Bearer ${TOKEN}`)).statusCode).toBe(404);
    const metrics = createMetricsApp({
      registry: new Registry(),
      logger: silent,
      admin: { cache, token: TOKEN },
    });
    await cache.set('comexstat:exp:2024:03:12019000:160', { rows: [] });
    const r = await post(metrics, `Bearer ${TOKEN}`);
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ invalidated: 1, tags: 0, mode: 'delete' });
    expect((await cache.get('comexstat:exp:2024:03:12019000:160')).value).toBeUndefined();
    expect((await post(metrics, 'Bearer wrong-wrong-wrong-wrong')).statusCode).toBe(401);
    const bad = await metrics.inject({
      method: 'POST',
      url: '/admin/cache/invalidate',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      payload: '{"keys":[]}',
    });
    expect(bad.statusCode).toBe(400);
    expect((await metrics.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    expect((await metrics.inject({ method: 'GET', url: '/nope' })).statusCode).toBe(404);
    await app.close();
    await metrics.close();
  });
});

describe('coordination prefix', () => {
  it('defaults to bgc:c: for entries and bgc:x: for coordination, and refuses overlapping prefixes', () => {
    const c = loadGatewayConfig({});
    expect([c.l2Prefix, c.coordPrefix]).toEqual(['bgc:c:', 'bgc:x:']);
    expect(() => loadGatewayConfig({ CACHE_L2_PREFIX: 'bgc:', CACHE_COORD_PREFIX: 'bgc:x:' })).toThrow(
      /CACHE_COORD_PREFIX.*overlap/,
    );
    expect(() => loadGatewayConfig({ CACHE_L2_PREFIX: 'a:c:', CACHE_COORD_PREFIX: 'a:c:' })).toThrow(
      /overlap/,
    );
  });
});
