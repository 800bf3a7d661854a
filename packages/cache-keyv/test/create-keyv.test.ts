import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { RedisTier } from '@bgc/cache-l2-redis';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createKeyv, KeyvStore } from '../src/index.js';
import { REDIS_URL, uniquePrefix } from './helpers.js';

const client = new Redis(REDIS_URL);
const prefix = uniquePrefix('create');
const redisOnly = new MultiLevelCache({ tiers: [new RedisTier({ client, prefix })] });
afterAll(async () => {
  await redisOnly.clear();
  await redisOnly.close();
  client.disconnect();
});

describe('createKeyv', () => {
  it('builds a Keyv over a KeyvStore whose records reach the cache as objects', async () => {
    const keyv = createKeyv(redisOnly, { namespace: 'app', ttl: 30_000, defaultTtlMs: 1000 });
    expect(keyv.store).toBeInstanceOf(KeyvStore);
    expect(keyv.namespace).toBe('app');
    expect(keyv.ttl).toBe(30_000);
    const value = {
      when: new Date('2024-03-01T00:00:00Z'),
      tags: new Set(['a']),
      big: 12345678901234567890n,
    };
    await keyv.set('k', value);
    // Through Redis (the tier's value codec), the types come back as they went in.
    const [raw] = await redisOnly.getMany([`keyv/g${await generationOf(redisOnly, 'app')}/app:k`]);
    expect(raw?.value).toMatchObject({ value });
    expect(await keyv.get('k')).toEqual(value);
  });

  it('defaults the namespace to keyv and runs cache-manager wrap', async () => {
    const cache = new MultiLevelCache({ tiers: [new MemoryTier()] });
    try {
      const keyv = createKeyv(cache);
      expect(keyv.namespace).toBe('keyv');
      const manager = createCache({ stores: [keyv] });
      let calls = 0;
      const fn = async () => ({ n: ++calls });
      expect(await manager.wrap('w', fn, 60_000)).toEqual({ n: 1 });
      const again = await manager.wrap('w', fn, 60_000);
      expect(again).toEqual({ n: 1 });
      // The memory tier hands back its (deep-frozen) stored object.
      expect(Object.isFrozen(again)).toBe(true);
      expect(calls).toBe(1);
    } finally {
      await cache.close();
    }
  });
});

async function generationOf(cache: MultiLevelCache, namespace: string): Promise<string> {
  return (await cache.get<string>(`keyv/n/${namespace}`)).value as string;
}
