import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { RedisInvalidationBus, RedisLock, RedisTier } from '@bgc/cache-l2-redis';
import { Redis } from 'ioredis';

/** Where the cache keeps its data: memory only, or memory in front of Redis. */
export interface CacheStackOptions {
  /** Redis URL (`redis://host:port`); without it the cache is memory only. */
  redisUrl?: string;
  /** Prefix of this app's Redis keys. @default 'nestjs-keyv:' */
  prefix?: string;
}

/** The cache and what closes it. */
export interface CacheStack {
  cache: MultiLevelCache;
  close(): Promise<void>;
}

/**
 * Memory L1 (+ Redis L2, invalidation bus and load lock when a Redis URL is given): the cache
 * that @nestjs/cache-manager runs on through @bgc/cache-keyv.
 */
export function createCacheStack(options: CacheStackOptions = {}): CacheStack {
  if (!options.redisUrl) {
    const cache = new MultiLevelCache({ tiers: [new MemoryTier()] });
    return { cache, close: () => cache.close() };
  }
  const app = options.prefix ?? 'nestjs-keyv:';
  // Entries under `<app>c:`, leases under `<app>x:`: a clear() of the entries never drops a lease.
  const prefix = `${app}c:`;
  const coordination = `${app}x:`;
  const client = new Redis(options.redisUrl);
  const bus = new RedisInvalidationBus({ url: options.redisUrl, prefix });
  const lock = new RedisLock({ client, prefix: `${coordination}lock:` });
  const cache = new MultiLevelCache({
    tiers: [new MemoryTier(), new RedisTier({ client, prefix, coordinationPrefixes: [coordination] })],
    bus,
    lock,
  });
  cache.on('error', () => undefined); // failures are skipped tiers; metrics would report them
  return {
    cache,
    async close() {
      await cache.close();
      await lock.close();
      client.disconnect();
    },
  };
}
