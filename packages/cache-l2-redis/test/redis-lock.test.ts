import { ConfigError } from '@bgc/cache-core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLock } from '../src/redis-lock.js';
import { REDIS_HOST, REDIS_PORT, sleep, uniquePrefix } from './helpers.js';

describe('RedisLock on the real Redis', () => {
  const prefix = uniquePrefix('lock');
  let raw: Redis;
  let a: RedisLock;
  let b: RedisLock;

  beforeAll(async () => {
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    a = new RedisLock({ client: raw, prefix });
    b = new RedisLock({
      host: REDIS_HOST,
      port: REDIS_PORT,
      prefix,
      pollIntervalMs: 5,
      commandTimeoutMs: 2000,
    });
    await sleep(100);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    expect(raw.status).toBe('ready');
    await raw.quit();
  });

  it('is exclusive: of 20 concurrent acquirers exactly one gets the lease', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).tryAcquire('exclusive', 5000)),
    );
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toHaveLength(1);
    await winners[0]!.release();
    expect(await raw.exists(`${prefix}exclusive`)).toBe(0);
    const again = await b.tryAcquire('exclusive', 5000);
    expect(again).toBeDefined();
    await again!.release();
    await again!.release();
  });

  it('is released only by its owner (compare-and-delete)', async () => {
    const lease = await a.tryAcquire('owner', 200);
    expect(lease).toBeDefined();
    await lease!.release();
    // b takes it after a released; a's stale release must not remove b's lease.
    const leaseB = await b.tryAcquire('owner', 5000);
    expect(leaseB).toBeDefined();
    await lease!.release();
    expect(await raw.exists(`${prefix}owner`)).toBe(1);
    // Someone else's token in the key: a late release of b does nothing.
    await raw.set(`${prefix}owner`, 'someone-else', 'PX', 5000);
    await leaseB!.release();
    expect(await raw.get(`${prefix}owner`)).toBe('someone-else');
    await raw.del(`${prefix}owner`);
  });

  it('renews the lease while held, and stops renewing once lost or released', async () => {
    const lease = await a.tryAcquire('renew', 300);
    await sleep(900);
    const pttl = await raw.pttl(`${prefix}renew`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    expect(await b.tryAcquire('renew', 300)).toBeUndefined();
    await lease!.release();
    expect(await raw.exists(`${prefix}renew`)).toBe(0);

    const lost = await a.tryAcquire('renew-lost', 300);
    await raw.set(`${prefix}renew-lost`, 'stolen', 'PX', 60_000);
    await sleep(250);
    expect(await raw.pttl(`${prefix}renew-lost`)).toBeGreaterThan(50_000);
    await lost!.release();
    expect(await raw.get(`${prefix}renew-lost`)).toBe('stolen');
    await raw.del(`${prefix}renew-lost`);
  });

  it('a crashed holder (no renewal) loses the lease after leaseMs', async () => {
    await raw.set(`${prefix}crashed`, 'dead-holder', 'PX', 150);
    expect(await a.tryAcquire('crashed', 1000)).toBeUndefined();
    const t0 = Date.now();
    await b.waitForRelease('crashed', 5000);
    expect(Date.now() - t0).toBeLessThan(1000);
    const lease = await a.tryAcquire('crashed', 1000);
    expect(lease).toBeDefined();
    await lease!.release();
  });

  it('waitForRelease resolves on release, shares one poll loop per key, and honours its timeout', async () => {
    const lease = await a.tryAcquire('wait', 5000);
    let released = 0;
    const waiters = Array.from({ length: 50 }, () => b.waitForRelease('wait', 5000).then(() => released++));
    expect((b as unknown as { pollers: Map<string, unknown> }).pollers.size).toBe(1);
    await sleep(100);
    expect(released).toBe(0);
    await lease!.release();
    await Promise.all(waiters);
    expect(released).toBe(50);

    const held = await a.tryAcquire('wait-timeout', 5000);
    const t0 = Date.now();
    await b.waitForRelease('wait-timeout', 120);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(100);
    expect(await raw.exists(`${prefix}wait-timeout`)).toBe(1);
    await held!.release();
    await b.waitForRelease('never-held', 1000);
  });

  it('rejects with a typed error when Redis is unreachable, and waiters give up at once', async () => {
    const down = new RedisLock({ host: '127.0.0.1', port: 1, connectTimeoutMs: 100, prefix });
    await expect(down.tryAcquire('x', 1000)).rejects.toMatchObject({ code: 'E_L2_CONNECTION' });
    const t0 = Date.now();
    await down.waitForRelease('x', 5000);
    expect(Date.now() - t0).toBeLessThan(1000);
    await down.close();
    await expect(a.tryAcquire('x', 0)).rejects.toThrow(ConfigError);
    expect(() => new RedisLock({ client: raw, pollIntervalMs: 0 })).toThrow(ConfigError);
    expect(() => new RedisLock({ client: raw, renewFraction: 1 })).toThrow(ConfigError);
  });
});
