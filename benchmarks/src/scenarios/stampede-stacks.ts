import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { RedisLock, RedisTier } from '@bgc/cache-l2-redis';
import KeyvRedis from '@keyv/redis';
import { BentoCache, bentostore } from 'bentocache';
import { memoryDriver } from 'bentocache/drivers/memory';
import { redisDriver } from 'bentocache/drivers/redis';
import { CacheableMemory } from 'cacheable';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { payload } from '../payload.js';

/** The libraries compared in the stampede scenario. */
export const STAMPEDE_LIBS = ['bgc', 'bentocache', 'cache-manager'] as const;
/** One of {@link STAMPEDE_LIBS}. */
export type StampedeLib = (typeof STAMPEDE_LIBS)[number];

/** A memory + Redis stack answering `load(key)` through its own get-or-load API. */
export interface StampedeStack {
  /** Gets `key`, calling `loader` on a miss as the library decides. */
  load(key: string, loader: () => Promise<unknown>): Promise<unknown>;
  close(): Promise<void>;
}

const TTL = 60_000;

/** Builds one library's memory + Redis stack; `marker` prefixes every Redis key it writes. */
export function buildStampedeStack(lib: StampedeLib, redisUrl: string, marker: string): StampedeStack {
  if (lib === 'bgc') {
    const client = new Redis(redisUrl);
    const cache = new MultiLevelCache({
      tiers: [new MemoryTier({ maxTtlMs: TTL }), new RedisTier({ client, prefix: `${marker}:bgc:` })],
      // Cross-process coalescing: one loader call among every process sharing this Redis.
      lock: new RedisLock({ client, prefix: `${marker}:bgclock:`, pollIntervalMs: 10 }),
      defaultTtlMs: TTL,
    });
    return {
      load: async (key, loader) => (await cache.getOrLoad(key, () => loader())).value,
      close: async () => {
        await cache.close();
        client.disconnect();
      },
    };
  }
  if (lib === 'bentocache') {
    const client = new Redis(redisUrl);
    const bento = new BentoCache({
      default: 'c',
      stores: {
        c: bentostore()
          .useL1Layer(memoryDriver({ maxItems: 10_000 }))
          .useL2Layer(redisDriver({ connection: client, prefix: `${marker}:bento` })),
      },
    });
    return {
      load: (key, loader) => bento.getOrSet({ key, factory: loader, ttl: TTL }),
      close: async () => {
        await bento.disconnect();
        client.disconnect();
      },
    };
  }
  const manager = createCache({
    stores: [
      new Keyv({ store: new CacheableMemory({ lruSize: 10_000 }) }),
      new Keyv({ store: new KeyvRedis(redisUrl), namespace: `${marker}:cm` }),
    ],
    ttl: TTL,
  });
  return {
    load: (key, loader) => manager.wrap(key, loader),
    close: async () => {
      await manager.disconnect();
    },
  };
}

/** What one process measured in one burst. */
export interface BurstResult {
  /** Loader calls made in this process. */
  loaderCalls: number;
  /** Latency of each caller, in ms. */
  latenciesMs: number[];
  /** Wall time from the start signal to the last answer, in ms. */
  elapsedMs: number;
}

/**
 * Fires `callers` concurrent get-or-loads of one missing key at epoch ms `startAt`, with a loader
 * taking `loaderMs`, and reports loader calls and latencies.
 */
export async function burst(
  stack: StampedeStack,
  key: string,
  callers: number,
  loaderMs: number,
  startAt: number,
): Promise<BurstResult> {
  let loaderCalls = 0;
  const loader = async () => {
    loaderCalls++;
    await new Promise((r) => setTimeout(r, loaderMs));
    return payload(7);
  };
  const wait = startAt - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const t0 = performance.now();
  const latenciesMs = await Promise.all(
    Array.from({ length: callers }, async () => {
      const s = performance.now();
      await stack.load(key, loader);
      return performance.now() - s;
    }),
  );
  return { loaderCalls, latenciesMs, elapsedMs: performance.now() - t0 };
}
