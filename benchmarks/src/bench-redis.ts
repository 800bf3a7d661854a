import { Redis } from 'ioredis';

/** The Redis every Redis scenario uses (loopback by default). */
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Connects the scenario's admin client (cleanup, checks), or says why Redis cannot be used: the
 * scenario then reports itself skipped with that reason.
 */
export async function connectAdmin(): Promise<{ admin: Redis } | { unreachable: string }> {
  const admin = new Redis(BENCH_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await admin.connect();
    await admin.ping();
    return { admin };
  } catch (error) {
    admin.disconnect();
    return {
      unreachable: `Redis unreachable at ${BENCH_REDIS_URL} (${(error as Error).message}); start it or set BENCH_REDIS_URL`,
    };
  }
}

/**
 * Deletes every key matching `*<marker>*` (SCAN + UNLINK in batches): what a scenario wrote under
 * its run id, and nothing else on the shared Redis.
 * @returns how many keys were removed
 */
export async function deleteKeysContaining(client: Redis, marker: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  const pattern = `*${marker.replace(/[*?[\]\\]/g, '\\$&')}*`;
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) removed += await client.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}
