import type { CacheEntry } from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import { RedisTier } from '../src/redis-tier.js';

/** Calls of one command since the last `CONFIG RESETSTAT`, from `INFO commandstats`. */
function calls(server: RedisServer, command: string): number {
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(server.cli('INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

const entry = (value: unknown, version?: number, ttlMs = 60_000): CacheEntry => {
  const now = Date.now();
  return { value, freshUntil: now + ttlMs, staleUntil: now + ttlMs, createdAt: now, version };
};

describe('RedisTier.setMany: one compare-and-set run per slot and 50 entries', () => {
  let server: RedisServer;
  let client: Redis;
  beforeAll(async () => {
    server = await startRedis();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    await client.quit();
    await server.stop();
  });

  it('decides each entry as a single set would (older refused, newer and unversioned written, expired deleted, below the clear refused, a key twice in order), in ceil(n / 50) script runs', async () => {
    const batch = new RedisTier({ client, prefix: 'batch:' });
    const single = new RedisTier({ client, prefix: 'single:' });
    // The same history on both tiers: stored entries, a clear, then one batch (or the same writes one by one).
    const older = nextVersion();
    const stored = nextVersion();
    const writes: { key: string; entry: CacheEntry }[] = [];
    for (const tier of [batch, single]) {
      for (let i = 0; i < 100; i++) await tier.set(`stored:${i}`, entry(`stored ${i}`, stored));
    }
    const beforeClear = nextVersion();
    await Promise.all([batch.clear({ version: nextVersion() }), single.clear({ version: nextVersion() })]);
    for (const tier of [batch, single]) {
      for (let i = 0; i < 100; i++) await tier.set(`stored:${i}`, entry(`after clear ${i}`, nextVersion()));
    }
    for (let i = 0; i < 450; i++) {
      const kind = i % 6;
      const key = kind < 2 ? `stored:${i % 100}` : `new:${i}`;
      const e =
        kind === 0
          ? entry(`older ${i}`, older) // below the stored version: refused
          : kind === 1
            ? entry(`newer ${i}`, nextVersion()) // above it: written
            : kind === 2
              ? entry(`plain ${i}`) // unversioned: written
              : kind === 3
                ? {
                    ...entry(`dead ${i}`, nextVersion()),
                    freshUntil: Date.now() - 10,
                    staleUntil: Date.now() - 1,
                  }
                : kind === 4
                  ? entry(`before clear ${i}`, beforeClear) // versioned below the clear: refused
                  : entry(`fresh ${i}`, nextVersion());
      writes.push({ key, entry: e });
    }
    // A key twice: the later write decides against the earlier one.
    writes.push({ key: 'twice', entry: entry('first', nextVersion()) });
    writes.push({ key: 'twice', entry: entry('second', nextVersion()) });
    writes.push({ key: 'twice-down', entry: entry('higher', nextVersion()) });
    writes.push({ key: 'twice-down', entry: entry('lower', older) });

    server.cli('CONFIG', 'RESETSTAT');
    await batch.setMany(writes);
    const scriptRuns = calls(server, 'evalsha') + calls(server, 'eval');
    for (const w of writes) await single.set(w.key, w.entry);

    const keys = [...new Set(writes.map((w) => w.key))];
    const a = await batch.getMany(keys);
    const b = await single.getMany(keys);
    expect(a.map((e) => e?.value)).toEqual(b.map((e) => e?.value));
    expect(a.filter((e) => e !== undefined).length).toBeGreaterThan(100);
    expect(a[keys.indexOf('twice')]?.value).toBe('second');
    expect(a[keys.indexOf('twice-down')]?.value).toBe('higher');
    expect(a[keys.indexOf('new:3')]).toBeUndefined(); // expired: nothing stored
    expect(a[keys.indexOf('new:4')]).toBeUndefined(); // below the clear
    expect(a[keys.indexOf('stored:0')]?.value).toBe('after clear 0'); // the older write refused
    // 454 writes, none a fill (no read saw the keys absent): 10 runs of at most 50 entries.
    expect(scriptRuns).toBe(Math.ceil(writes.length / 50));
    await batch.close();
    await single.close();
  });

  it('writes a lone entry and fills of keys read absent without the batch script', async () => {
    const tier = new RedisTier({ client, prefix: 'lone:' });
    await tier.get('absent');
    server.cli('CONFIG', 'RESETSTAT');
    await tier.setMany([{ key: 'absent', entry: entry('filled', nextVersion()) }]);
    await tier.setMany([{ key: 'one', entry: entry('one', nextVersion()) }]);
    expect(calls(server, 'set')).toBeGreaterThanOrEqual(1);
    expect(calls(server, 'evalsha') + calls(server, 'eval')).toBe(1);
    expect((await tier.getMany(['absent', 'one'])).map((e) => e?.value)).toEqual(['filled', 'one']);
    await tier.close();
  });
});
