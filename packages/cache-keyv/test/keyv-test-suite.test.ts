// Keyv's own compliance suite (@keyv/test-suite, written by the Keyv maintainers) against KeyvStore,
// on a memory-only cache and on a memory + real Redis cache.
import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { RedisTier } from '@bgc/cache-l2-redis';
import keyvTestSuite from '@keyv/test-suite';
import { Redis } from 'ioredis';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { KeyvStore } from '../src/index.js';
import { REDIS_URL, uniquePrefix } from './helpers.js';

vitest.describe('@keyv/test-suite: KeyvStore on a memory tier', () => {
  const cache = new MultiLevelCache({ tiers: [new MemoryTier()] });
  vitest.afterAll(() => cache.close());
  keyvTestSuite(vitest, Keyv, () => new KeyvStore(cache));
});

vitest.describe('@keyv/test-suite: KeyvStore on memory + Redis tiers', () => {
  const client = new Redis(REDIS_URL);
  const cache = new MultiLevelCache({
    tiers: [new MemoryTier(), new RedisTier({ client, prefix: uniquePrefix('suite') })],
  });
  vitest.afterAll(async () => {
    await cache.clear();
    await cache.close();
    client.disconnect();
  });
  keyvTestSuite(vitest, Keyv, () => new KeyvStore(cache));
});

/** Keyv as createKeyv builds it: records reach the store as objects (serialize/deserialize off). */
class RecordKeyv extends Keyv {
  constructor(options: ConstructorParameters<typeof Keyv>[0] = {}) {
    super({ ...(options as object), serialize: undefined, deserialize: undefined });
  }
}

vitest.describe(
  '@keyv/test-suite: KeyvStore on memory + Redis tiers, records as objects (createKeyv)',
  () => {
    const client = new Redis(REDIS_URL);
    const cache = new MultiLevelCache({
      tiers: [new MemoryTier(), new RedisTier({ client, prefix: uniquePrefix('suite-records') })],
    });
    vitest.afterAll(async () => {
      await cache.clear();
      await cache.close();
      client.disconnect();
    });
    keyvTestSuite(vitest, RecordKeyv as typeof Keyv, () => new KeyvStore(cache));
  },
);
