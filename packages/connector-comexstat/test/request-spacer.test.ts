import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@bgc/cache-core';
import { DEFAULT_MIN_INTERVAL_MS, RequestSpacer, type SpacerPriority } from '../src/index.js';
import { ManualClock, minGap } from './helpers.js';

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
    // Grants are booked 250 ms apart on the Redis clock; the times compared are the local stamps
    // of their resolution, which a loaded machine may delay by tens of ms (failed once at 50/45).
    const a = new RequestSpacer({ minIntervalMs: 250, redis, redisKey: key });
    const b = new RequestSpacer({ minIntervalMs: 250, redis, redisKey: key });
    const times = await Promise.all([a, b, a, b, a, b].map((s) => s.acquire()));
    expect(minGap(times)).toBeGreaterThanOrEqual(200);
    // Redis' clock and ours may differ by a millisecond; the Redis-side booking is exact.
    await b.defer(100);
    const t = Date.now();
    await a.acquire();
    expect(Date.now() - t).toBeGreaterThanOrEqual(90);
  });

  it('fails closed when Redis fails: spaces this instance at interval × expected replicas (finding 9)', async () => {
    const errors: unknown[] = [];
    const broken = { eval: async () => Promise.reject(new Error('down')) };
    const s = new RequestSpacer({
      minIntervalMs: 20,
      expectedReplicas: 3,
      redis: broken,
      onError: (e) => errors.push(e),
    });
    const times = await Promise.all([s.acquire(), s.acquire(), s.acquire()]);
    await s.defer(1);
    expect(minGap(times)).toBeGreaterThanOrEqual(60);
    expect(s.failedClosed).toBe(3);
    expect(errors.length).toBeGreaterThanOrEqual(4);
    expect(new RequestSpacer({ env: { COMEXSTAT_EXPECTED_REPLICAS: '5' } }).expectedReplicas).toBe(5);
  });

  it('refuses an interval of 0, NaN or garbage with a typed config error (finding 23)', () => {
    for (const bad of [0, Number.NaN, -5, 1.5]) {
      expect(() => new RequestSpacer({ minIntervalMs: bad })).toThrow(ConfigError);
    }
    expect(() => new RequestSpacer({ env: { COMEXSTAT_MIN_INTERVAL_MS: '0' } })).toThrow(
      /COMEXSTAT_MIN_INTERVAL_MS/,
    );
    expect(() => new RequestSpacer({ env: { COMEXSTAT_MIN_INTERVAL_MS: 'abc' } })).toThrow(ConfigError);
    expect(() => new RequestSpacer({ env: { COMEXSTAT_EXPECTED_REPLICAS: '0' } })).toThrow(ConfigError);
  });

  it('serves the best priority first: user, refresh, metadata, warming (arrival order within one)', async () => {
    const clock = new ManualClock(0);
    const s = new RequestSpacer({ minIntervalMs: 100, clock });
    await s.acquire();
    const order: string[] = [];
    const asks: [string, SpacerPriority][] = [
      ['w1', 'warming'],
      ['m1', 'metadata'],
      ['r1', 'refresh'],
      ['u1', 'user'],
      ['w2', 'warming'],
      ['u2', 'user'],
    ];
    const all = asks.map(([name, priority]) => s.acquire({ priority }).then(() => order.push(name)));
    expect(s.expectedWaitMs('user')).toBe(100 + 2 * 100);
    expect(s.expectedWaitMs('warming')).toBe(100 + 6 * 100);
    for (let i = 0; i < asks.length; i++) await clock.advance(100);
    await Promise.all(all);
    expect(order).toEqual(['u1', 'u2', 'r1', 'm1', 'w1', 'w2']);
  });

  it('a priority read as a function rises with the batch; aborting withdraws; a full queue refuses', async () => {
    const clock = new ManualClock(0);
    const s = new RequestSpacer({ minIntervalMs: 100, clock, maxWaiting: 3 });
    await s.acquire();
    let p: SpacerPriority = 'warming';
    const order: string[] = [];
    const a = s.acquire({ priority: 'metadata' }).then(() => order.push('metadata'));
    const b = s.acquire({ priority: () => p }).then(() => order.push('batch'));
    const ac = new AbortController();
    const c = s.acquire({ priority: 'user', signal: ac.signal }).catch((e) => order.push(`aborted:${e}`));
    await expect(s.acquire()).rejects.toMatchObject({ code: 'E_UPSTREAM_BACKLOG' });
    ac.abort('bye');
    p = 'user';
    await clock.advance(100);
    await clock.advance(100);
    await Promise.all([a, b, c]);
    expect(order).toEqual(['aborted:bye', 'batch', 'metadata']);
    s.acquire().catch(() => order.push('rejected'));
    s.rejectAll(new Error('closing'));
    await clock.advance(0);
    expect(order.at(-1)).toBe('rejected');
  });

  it("shares priorities across instances: a user call elsewhere goes before this instance's warming", async () => {
    const key = `bgc-test:comexstat:spacer:${randomUUID()}`;
    keys.push(key, `${key}:want`);
    const a = new RequestSpacer({ minIntervalMs: 150, redis, redisKey: key });
    const b = new RequestSpacer({ minIntervalMs: 150, redis, redisKey: key });
    await a.acquire();
    const order: string[] = [];
    // b registers its user wish while the slot is booked; when it frees, a's warming must yield.
    const warm = a.acquire({ priority: 'warming' }).then((t) => order.push('a:warming') && t);
    const user = b.acquire({ priority: 'user' }).then((t) => order.push('b:user') && t);
    await Promise.all([warm, user]);
    expect(order).toEqual(['b:user', 'a:warming']);
  });

  it('within one priority the instance waiting longest goes first (a younger call elsewhere does not overtake it)', async () => {
    const key = `bgc-test:comexstat:spacer:${randomUUID()}`;
    keys.push(key, `${key}:want`);
    const [a, b, c] = [0, 1, 2].map(() => new RequestSpacer({ minIntervalMs: 150, redis, redisKey: key }));
    await a?.acquire();
    const order: string[] = [];
    const b1 = b?.acquire().then(() => order.push('b1'));
    // c's call waits from 40 ms after b's first, b's second from 80 ms. Without the order b would
    // take two slots in a row (its pump retries at once, c only when its sleep ends).
    await new Promise((r) => setTimeout(r, 40));
    const c1 = c?.acquire().then(() => order.push('c1'));
    await new Promise((r) => setTimeout(r, 40));
    const b2 = b?.acquire().then(() => order.push('b2'));
    await Promise.all([b1, b2, c1]);
    expect(order).toEqual(['b1', 'c1', 'b2']);
    // Every wish was withdrawn once granted.
    expect(await redis.hlen(`${key}:want`)).toBe(0);
  });

  it("a call's age (its oldest waiter's) orders it across instances, and a flow's leftovers go after a flow with no call", async () => {
    const key = `bgc-test:comexstat:spacer:${randomUUID()}`;
    keys.push(key, `${key}:want`);
    const [a, b, c] = [0, 1, 2].map(() => new RequestSpacer({ minIntervalMs: 150, redis, redisKey: key }));
    await a?.acquire();
    const order: string[] = [];
    // b asks first but its waiters are younger than c's; a's older still, but leftovers.
    const young = b?.acquire({ age: () => 10 }).then(() => order.push('b:young'));
    await new Promise((r) => setTimeout(r, 20));
    const old = c?.acquire({ age: () => 60_000 }).then(() => order.push('c:old'));
    const left = a
      ?.acquire({ age: () => 120_000, leftover: () => true })
      .then(() => order.push('a:leftover'));
    await Promise.all([young, old, left]);
    expect(order).toEqual(['c:old', 'b:young', 'a:leftover']);
    expect(await redis.hlen(`${key}:want`)).toBe(0);
  });

  it('in one instance: the best rank, then the oldest call, then arrival order', async () => {
    const clock = new ManualClock(0);
    const s = new RequestSpacer({ minIntervalMs: 100, clock });
    await s.acquire();
    const order: string[] = [];
    const asks: [string, Parameters<RequestSpacer['acquire']>[0]][] = [
      ['left-old', { leftover: () => true, age: () => 9000 }],
      ['young', { age: () => 5 }],
      ['first', {}],
      ['old', { age: () => 5000 }],
      ['second', {}],
      ['warming', { priority: 'warming', age: () => 99_000 }],
    ];
    const all = asks.map(([name, o]) => s.acquire(o).then(() => order.push(name)));
    await clock.advance(1);
    for (let i = 0; i < asks.length; i++) await clock.advance(100);
    await Promise.all(all);
    expect(order).toEqual(['old', 'first', 'second', 'young', 'left-old', 'warming']);
  });

  it('an aborted last caller withdraws its wish at once: a same-priority caller elsewhere is not held', async () => {
    const key = `bgc-test:comexstat:spacer:${randomUUID()}`;
    keys.push(key, `${key}:want`);
    const a = new RequestSpacer({ minIntervalMs: 200, redis, redisKey: key });
    const b = new RequestSpacer({ minIntervalMs: 200, redis, redisKey: key });
    await a.acquire();
    const abort = new AbortController();
    const gone = b.acquire({ signal: abort.signal }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 30));
    expect(await redis.hlen(`${key}:want`)).toBe(1);
    abort.abort(new Error('given up'));
    expect(await gone).toBeInstanceOf(Error);
    await new Promise((r) => setTimeout(r, 30));
    // b's pump still sleeps until the slot frees; its wish is gone already.
    expect(await redis.hlen(`${key}:want`)).toBe(0);
    expect(b.waiting).toBe(0);
  });
});

describe('RequestSpacer across two connectors', () => {
  it('two instances sharing Redis never trip the per-IP rate limit', async () => {
    const { ComexStatClient, ComexStatConnector, DEFAULT_CONNECTOR_CONFIG } = await import('../src/index.js');
    const { MultiLevelCache } = await import('@bgc/cache-core');
    const { FakeTier } = await import('@bgc/cache-core/testing');
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
            // 1 s against a 40 ms window: room for the send jitter of a loaded machine (the test,
            // both connectors and the simulator share one event loop; 250 ms was refused once).
            spacer: new RequestSpacer({ minIntervalMs: 1000, redis, redisKey: key }),
            retries: 0,
            onAttempt: (a) => sentAt.push(a.sentAt),
          }),
          cache: new MultiLevelCache({ tiers: [new FakeTier({ level: 'l2' })], hardTimeoutMs: 60_000 }),
          config: DEFAULT_CONNECTOR_CONFIG,
        });
      const [a, b] = [make(), make()];
      const results = await Promise.all(
        [2023, 2024, 2025].flatMap((ano) =>
          [a, b].map((c) => c.getMonth({ flow: 'export', ano, mes: 1, ncm: '12019000', pais: '160' })),
        ),
      );
      expect(results.every((r) => r.status === 'ok')).toBe(true);
      // One data call per instance (the three years merged). The release check is due two
      // intervals after start (behind a new deployment's first cold misses) and the countries
      // table is the bundled snapshot: no metadata call yet.
      expect(sim.stats.byPath['/general']).toBe(2);
      await Promise.all([a.drain(), b.drain()]);
      expect(sim.stats.calls).toBe(2);
      expect(sim.stats.rateLimited).toBe(0);
      // Grants are booked on the Redis clock; local stamps of two instances may differ by a few ms.
      expect(minGap(sentAt)).toBeGreaterThanOrEqual(950);
    } finally {
      await sim.close();
    }
  });
});
