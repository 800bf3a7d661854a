import type { Redis } from 'ioredis';

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
