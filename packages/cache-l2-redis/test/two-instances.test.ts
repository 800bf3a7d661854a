import { MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisInvalidationBus } from '../src/redis-invalidation-bus.js';
import { RedisLock } from '../src/redis-lock.js';
import { RedisTier } from '../src/redis-tier.js';
import { REDIS_HOST, REDIS_PORT, uniquePrefix, waitUntil } from './helpers.js';

/**
 * Issue 20's first cases end to end: two orchestrators (a local tier each) sharing the real Redis
 * through RedisTier, RedisInvalidationBus and RedisLock.
 */
describe('two MultiLevelCache instances on the real Redis (issue 20)', () => {
  const base = uniquePrefix('two');
  const prefix = `${base}c:`;
  const clients: Redis[] = [];
  let one: MultiLevelCache;
  let two: MultiLevelCache;

  const instance = async () => {
    const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    clients.push(client);
    const cache = new MultiLevelCache({
      tiers: [
        new FakeTier({ level: 'l1' }),
        new RedisTier({ client, prefix, coordinationPrefixes: [`${base}x:`] }),
      ],
      bus: new RedisInvalidationBus({ client, prefix }),
      lock: new RedisLock({ client, prefix: `${base}x:lock:` }),
      defaultTtlMs: 60_000,
    });
    await cache.connect();
    return cache;
  };

  beforeAll(async () => {
    one = await instance();
    two = await instance();
  });
  afterAll(async () => {
    await one.clear();
    await one.close();
    await two.close();
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  });

  it('a delete during a slow load: neither instance serves the old value afterwards', async () => {
    let source = 'v1';
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = one.getOrLoad('row', async () => {
      const read = source; // the loader reads v1...
      await gate; // ...and takes its time
      return read;
    });
    // Let the load start (it holds the lease), then the source changes and an admin deletes the key.
    await new Promise((r) => setTimeout(r, 100));
    source = 'v2';
    await two.delete('row');
    release();
    await slow.catch(() => undefined);
    // Every later read loads again (or finds v2), on both instances, never v1.
    const loader = async () => source;
    const after = [await one.getOrLoad('row', loader), await two.getOrLoad('row', loader)];
    expect(after.map((r) => r.value)).toEqual(['v2', 'v2']);
    // What Redis holds is v2 (or a tombstone), never the load's v1.
    const stored = await (clients[0] as Redis).get(`${prefix}row`);
    expect(stored).not.toContain('"v1"');
  });

  it('a set on the other instance during a load is not overwritten by the load', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = one.getOrLoad('set-during-load', async () => {
      await gate;
      return 'v1 (load started first)';
    });
    await new Promise((r) => setTimeout(r, 100));
    await two.set('set-during-load', 'v3');
    release();
    await slow.catch(() => undefined);
    // The bus carries two's write to one's local tier; wait for it, then both read v3.
    await waitUntil(async () => (await one.get('set-during-load'))?.value === 'v3', 5000);
    expect((await one.get('set-during-load'))?.value).toBe('v3');
    expect((await two.get('set-during-load'))?.value).toBe('v3');
  });
});
