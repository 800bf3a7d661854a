import { MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisInvalidationBus } from '../src/redis-invalidation-bus.js';
import { RedisTier } from '../src/redis-tier.js';
import { REDIS_HOST, REDIS_PORT, uniquePrefix, waitUntil } from './helpers.js';

/** Waits (up to 5 s) for `check`, failing the test with `what` if it never holds. */
async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const waited = await waitUntil(check, 5000);
  if (waited < 0) throw new Error(`never happened: ${what}`);
}

/**
 * Issue 16's tags, namespaces, expire and skipBus across two orchestrators (an L1 each) sharing
 * the real Redis through RedisTier and RedisInvalidationBus.
 */
describe('tags, namespaces and expire across two instances on the real Redis (issue 16)', () => {
  const base = uniquePrefix('tags2');
  const prefix = `${base}c:`;
  const clients: Redis[] = [];
  let one: MultiLevelCache;
  let two: MultiLevelCache;
  let l1Two: FakeTier;

  const instance = async (l1: FakeTier, withBus = true) => {
    const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    clients.push(client);
    const bus = withBus ? new RedisInvalidationBus({ client, prefix }) : undefined;
    const cache = new MultiLevelCache({
      tiers: [l1, new RedisTier({ client, prefix })],
      bus,
      defaultTtlMs: 60_000,
      staleTtlMs: 60_000,
      tagRecordCacheMs: 200,
    });
    await cache.connect();
    await bus?.ready();
    return cache;
  };

  beforeAll(async () => {
    one = await instance(new FakeTier({ level: 'l1', sync: true, fresh: true }));
    l1Two = new FakeTier({ level: 'l1', sync: true, fresh: true });
    two = await instance(l1Two);
  });
  afterAll(async () => {
    await one.clear();
    await one.close();
    await two.close();
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  });

  it('deleteByTag on one instance: the other misses from its L1 and from Redis; untagged and other tags stay', async () => {
    await one.set('ncm:1:2024', 'a', { tags: ['ncm:1', 'year:2024'] });
    await one.set('ncm:2:2024', 'b', { tags: ['ncm:2', 'year:2024'] });
    await one.set('ncm:1:2025', 'c', { tags: ['ncm:1', 'year:2025'] });
    await one.set('plain', 'p');
    for (const k of ['ncm:1:2024', 'ncm:2:2024', 'ncm:1:2025', 'plain'])
      expect((await two.get(k)).value).toBeDefined();
    expect(two.getSync('ncm:1:2024')).toBe('a'); // in two's L1

    await one.deleteByTag(['ncm:1']);
    // The bus message evicts two's L1 copies...
    await eventually(() => l1Two.getSync?.('ncm:1:2024') === undefined, 'two evicted its L1 copy');
    expect(two.getSync('ncm:1:2025')).toBeUndefined();
    // ...and Redis' copies read as misses through either cache (one record, not one delete per key).
    for (const cache of [one, two]) {
      expect(
        (await cache.getMany(['ncm:1:2024', 'ncm:2:2024', 'ncm:1:2025', 'plain'])).map((r) => r.value),
      ).toEqual([undefined, 'b', undefined, 'p']);
    }
    const raw = await (clients[0] as Redis).get(`${prefix}ncm:1:2024`);
    expect(raw).toContain('"g":["ncm:1","year:2024"]');
  });

  it('a third instance without the bus learns the invalidation from the record in Redis', async () => {
    await one.set('late', 'v', { tags: ['late-tag'] });
    await one.deleteByTag(['late-tag']);
    const three = await instance(new FakeTier({ level: 'l1', sync: true, fresh: true }), false);
    try {
      expect((await three.get('late')).value).toBeUndefined();
      expect((await three.getOrLoad('late', () => 'reloaded', { tags: ['late-tag'] })).value).toBe(
        'reloaded',
      );
      await three.flush();
      await eventually(async () => (await two.get('late')).value === 'reloaded', 'two sees the new value');
    } finally {
      await three.close();
    }
  });

  it('expireByTag keeps the value as the fail-safe fallback on the other instance', async () => {
    await one.set('exp', 'kept', { tags: ['exp-tag'] });
    expect((await two.get('exp')).value).toBe('kept');
    await one.expireByTag(['exp-tag']);
    await eventually(async () => (await two.get('exp')).value === undefined, 'two sees it stale');
    expect(await two.get('exp', { allowStale: true })).toMatchObject({ value: 'kept', stale: true });
    const r = await two.getOrLoad('exp', () => {
      throw new Error('upstream down');
    });
    expect(r).toMatchObject({ value: 'kept', stale: true });
  });

  it('a load in flight across a deleteByTag on the other instance does not resurrect', async () => {
    let release!: (v: string) => void;
    const slow = one.getOrLoad('inflight', () => new Promise<string>((r) => (release = r)), {
      tags: ['flight'],
    });
    await new Promise((r) => setTimeout(r, 50));
    await two.deleteByTag(['flight']);
    release('read-before');
    expect((await slow).value).toBe('read-before');
    await one.flush();
    for (const cache of [one, two]) expect((await cache.get('inflight')).value).toBeUndefined();
  });

  it('namespace clear on one instance removes that namespace only, on both', async () => {
    const a = one.namespace('tenant-a');
    await a.set('x', 1);
    await a.namespace('eu').set('y', 2);
    await one.namespace('tenant-b').set('x', 3);
    expect((await two.get('tenant-a:eu:y')).value).toBe(2);
    await two.namespace('tenant-a').clear();
    await eventually(async () => (await one.get('tenant-a:x')).value === undefined, 'one sees the clear');
    expect((await one.get('tenant-a:eu:y')).value).toBeUndefined();
    expect((await two.namespace('tenant-b').get('x')).value).toBe(3);
  });

  it('expire on one instance turns the key stale on the other; skipBus leaves its L1 copy', async () => {
    await one.set('e', 'v');
    expect((await two.get('e')).value).toBe('v');
    await one.expire('e');
    await eventually(async () => (await two.get('e')).value === undefined, 'two sees it stale');
    expect((await two.get('e', { allowStale: true })).stale).toBe(true);

    await one.set('quiet', 'v1');
    expect((await two.get('quiet')).value).toBe('v1');
    await one.set('quiet', 'v2', { skipBus: true });
    await new Promise((r) => setTimeout(r, 100));
    expect(two.getSync('quiet')).toBe('v1');
    expect(await two.pull('quiet')).toBe('v1');
    await eventually(async () => (await one.get('quiet')).value === undefined, 'pull deleted it everywhere');
  });
});
