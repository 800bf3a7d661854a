import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_MIN_INTERVAL_MS, RequestSpacer } from '../src/index.js';
import { minGap } from './helpers.js';

const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true, maxRetriesPerRequest: 1 });
const keys: string[] = [];
afterAll(async () => {
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe('RequestSpacer', () => {
  it('defaults to COMEXSTAT_MIN_INTERVAL_MS, else 20 s (reference: 15-20 s)', () => {
    expect(DEFAULT_MIN_INTERVAL_MS).toBe(20_000);
    expect(new RequestSpacer({ env: {} }).minIntervalMs).toBe(20_000);
    expect(new RequestSpacer({ env: { COMEXSTAT_MIN_INTERVAL_MS: '16000' } }).minIntervalMs).toBe(16_000);
    expect(
      new RequestSpacer({ minIntervalMs: 5, env: { COMEXSTAT_MIN_INTERVAL_MS: '16000' } }).minIntervalMs,
    ).toBe(5);
  });

  it('grants in order, one at a time, never closer than the interval', async () => {
    const spacer = new RequestSpacer({ minIntervalMs: 30 });
    const order: number[] = [];
    const times = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        spacer.acquire().then((t) => {
          order.push(i);
          return t;
        }),
      ),
    );
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(minGap(times)).toBeGreaterThanOrEqual(30);
    expect(spacer.grants).toBe(6);
    expect(spacer.waiting).toBe(0);
  });

  it('defer() holds every caller back', async () => {
    const spacer = new RequestSpacer({ minIntervalMs: 10 });
    const t0 = await spacer.acquire();
    await spacer.defer(80);
    const t1 = await spacer.acquire();
    expect(t1 - t0).toBeGreaterThanOrEqual(80);
  });

  it('spaces calls across instances sharing a Redis key', async () => {
    const key = `bgc-test:comexstat:spacer:${randomUUID()}`;
    keys.push(key);
    const a = new RequestSpacer({ minIntervalMs: 50, redis, redisKey: key });
    const b = new RequestSpacer({ minIntervalMs: 50, redis, redisKey: key });
    const times = await Promise.all([a, b, a, b, a, b].map((s) => s.acquire()));
    expect(minGap(times)).toBeGreaterThanOrEqual(45);
    // Redis' clock and ours may differ by a millisecond; the Redis-side booking is exact.
    await b.defer(100);
    const t = Date.now();
    await a.acquire();
    expect(Date.now() - t).toBeGreaterThanOrEqual(90);
  });

  it('falls back to local spacing when Redis fails', async () => {
    const errors: unknown[] = [];
    const broken = { eval: async () => Promise.reject(new Error('down')) };
    const s = new RequestSpacer({ minIntervalMs: 20, redis: broken, onError: (e) => errors.push(e) });
    const times = await Promise.all([s.acquire(), s.acquire()]);
    await s.defer(1);
    expect(minGap(times)).toBeGreaterThanOrEqual(20);
    expect(errors).toHaveLength(3);
  });
});

describe('RequestSpacer across two connectors', () => {
  it('two instances sharing Redis never trip the per-IP rate limit', async () => {
    const { ComexStatClient, ComexStatConnector, DEFAULT_CONNECTOR_CONFIG, SingleTierCache } = await import(
      '../src/index.js'
    );
    const { startComexStatSimulator } = await import('../src/simulator/index.js');
    const key = `bgc-test:comexstat:spacer:${randomUUID()}`;
    keys.push(key);
    const sim = await startComexStatSimulator({
      rateLimit: { max: 1, windowMs: 40, strict: true },
      latency: { baseMs: 1, perRowMs: 0 },
    });
    try {
      const sentAt: number[] = [];
      const make = () =>
        new ComexStatConnector({
          client: new ComexStatClient({
            baseUrl: sim.url,
            spacer: new RequestSpacer({ minIntervalMs: 100, redis, redisKey: key }),
            retries: 0,
            onAttempt: (a) => sentAt.push(a.sentAt),
          }),
          cache: new SingleTierCache(),
          config: DEFAULT_CONNECTOR_CONFIG,
        });
      const [a, b] = [make(), make()];
      const results = await Promise.all(
        [2023, 2024, 2025].flatMap((ano) =>
          [a, b].map((c) => c.getMonth({ flow: 'export', ano, mes: 1, ncm: '12019000', pais: '160' })),
        ),
      );
      expect(results.every((r) => r.status === 'ok')).toBe(true);
      // 2 × (dates + countries + 3 years) calls, none refused.
      expect(sim.stats.calls).toBe(10);
      expect(sim.stats.rateLimited).toBe(0);
      expect(minGap(sentAt)).toBeGreaterThanOrEqual(95);
    } finally {
      await sim.close();
    }
  });
});
