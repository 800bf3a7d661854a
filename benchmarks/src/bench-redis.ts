import { Redis } from 'ioredis';
import { payload, payloadKey } from './payload.js';
import { zipfSequence } from './zipf.js';

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

/**
 * The Redis scenarios' workload: ioredis clients on the bench Redis (all disconnected by the
 * scenario at the end), `n` payload keys read in a Zipf (s=1) order, per-contender miss keys, and
 * the loader that builds a key's payload.
 */
export function redisWorkload(n: number) {
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(BENCH_REDIS_URL);
    clients.push(c);
    return c;
  };
  const keys = Array.from({ length: n }, (_, i) => payloadKey(i));
  const seq = zipfSequence({ n, length: 1 << 16, s: 1, seed: 3 });
  const k = (i: number) => keys[seq[i & 0xffff] as number] as string;
  const missKey = (impl: string, i: number) => `miss:${impl}:${i}`;
  const loader = (key: string) => payload(key.length + (key.charCodeAt(key.length - 1) % 97));
  return { clients, client, keys, k, missKey, loader };
}
