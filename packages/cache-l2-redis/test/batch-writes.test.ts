import { nextVersion } from '@bgc/cache-core/internal';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchWrites } from '../src/redis-client.js';
import { RedisTier } from '../src/redis-tier.js';
import { REDIS_HOST, REDIS_PORT, uniquePrefix } from './helpers.js';

/** The socket of a ready standalone client, with its `_write` / `_writev` calls counted. */
function countWrites(client: Redis): { writes: number; writevs: number; chunks: number } {
  const stream = (client as unknown as { stream: Record<string, unknown> }).stream;
  const counts = { writes: 0, writevs: 0, chunks: 0 };
  const write = stream._write as (...a: unknown[]) => void;
  const writev = stream._writev as (chunks: unknown[], cb: unknown) => void;
  stream._write = function (this: unknown, ...a: unknown[]) {
    counts.writes++;
    counts.chunks++;
    return write.apply(this, a);
  };
  stream._writev = function (this: unknown, chunks: unknown[], cb: unknown) {
    counts.writevs++;
    counts.chunks += chunks.length;
    return writev.call(this, chunks, cb);
  };
  return counts;
}

const corked = (client: Redis) =>
  (client as unknown as { stream: { writableCorked: number } }).stream.writableCorked;

describe('batchWrites: the commands of one tick leave in one socket write', () => {
  let client: Redis;
  const prefix = uniquePrefix('batch');

  beforeAll(async () => {
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    await client.ping();
    await client.mset(...Array.from({ length: 20 }, (_, i) => [`${prefix}${i}`, `v${i}`]).flat());
  });

  afterAll(async () => {
    await client.del(...Array.from({ length: 20 }, (_, i) => `${prefix}${i}`), `${prefix}tier`);
    client.disconnect();
  });

  it('without it, ioredis writes each command on its own; with it, one writev carries the tick', async () => {
    const counts = countWrites(client);
    const plain = await Promise.all(Array.from({ length: 20 }, (_, i) => client.get(`${prefix}${i}`)));
    expect(plain).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
    expect(counts.writes + counts.writevs).toBe(20);

    Object.assign(counts, { writes: 0, writevs: 0, chunks: 0 });
    const batched = await Promise.all(
      Array.from({ length: 20 }, (_, i) => {
        batchWrites(client);
        return client.get(`${prefix}${i}`);
      }),
    );
    // Same replies, in order; 20 commands in one system call.
    expect(batched).toEqual(plain);
    expect(counts).toEqual({ writes: 0, writevs: 1, chunks: 20 });
  });

  it('uncorks at the end of the tick: a lone command is sent without waiting for another', async () => {
    batchWrites(client);
    expect(corked(client)).toBe(1);
    batchWrites(client); // already corked in this tick: no second cork
    expect(corked(client)).toBe(1);
    const reply = client.get(`${prefix}3`);
    await new Promise<void>((r) => process.nextTick(r));
    expect(corked(client)).toBe(0);
    expect(await reply).toBe('v3');
  });

  it('commands issued by reply callbacks in the same microtask drain join one write', async () => {
    const counts = countWrites(client);
    const [a, b] = await Promise.all([client.get(`${prefix}1`), client.get(`${prefix}2`)]);
    expect([a, b]).toEqual(['v1', 'v2']);
    Object.assign(counts, { writes: 0, writevs: 0, chunks: 0 });
    // Three callers continue from one reply each and issue their next command from a callback.
    const first = await Promise.all(
      [4, 5, 6].map((i) => {
        batchWrites(client);
        return client.get(`${prefix}${i}`).then((v) => {
          batchWrites(client);
          return client.get(`${prefix}${Number(String(v).slice(1)) + 10}`);
        });
      }),
    );
    expect(first).toEqual(['v14', 'v15', 'v16']);
    // The three first commands in one write; the three follow-ups in at most three (one per reply
    // chunk the socket delivered), never more writes than commands.
    expect(counts.writevs).toBeGreaterThanOrEqual(1);
    expect(counts.chunks).toBe(6);
    expect(counts.writes + counts.writevs).toBeLessThanOrEqual(4);
  });

  it("RedisTier's get, set and delete use it: 30 concurrent operations, each answered correctly", async () => {
    const tier = new RedisTier({ client, prefix: `${prefix}tier:` });
    const counts = countWrites(client);
    const now = Date.now();
    const entry = (i: number) => ({
      value: { i },
      freshUntil: now + 60_000,
      staleUntil: now + 60_000,
      version: nextVersion(),
    });
    await Promise.all(Array.from({ length: 10 }, (_, i) => tier.set(`k${i}`, entry(i))));
    const got = await Promise.all(Array.from({ length: 10 }, (_, i) => tier.get(`k${i}`)));
    expect(got.map((e) => e?.value)).toEqual(Array.from({ length: 10 }, (_, i) => ({ i })));
    const existed = await Promise.all(Array.from({ length: 10 }, (_, i) => tier.delete(`k${i}`)));
    expect(existed).toEqual(Array.from({ length: 10 }, () => true));
    expect(counts.chunks).toBe(30);
    expect(counts.writes + counts.writevs).toBeLessThanOrEqual(3);
    expect(await tier.get('k0')).toBeUndefined();
  });

  it('leaves alone a client that is not ready (its commands wait in the offline queue) and a Cluster', async () => {
    const lazy = new Redis({ host: REDIS_HOST, port: REDIS_PORT, lazyConnect: true });
    try {
      batchWrites(lazy);
      expect(lazy.status).toBe('wait');
      expect(await lazy.get(`${prefix}7`)).toBe('v7');
    } finally {
      lazy.disconnect();
    }
    const cluster = new Cluster([{ host: REDIS_HOST, port: REDIS_PORT }], { lazyConnect: true });
    try {
      expect(() => batchWrites(cluster)).not.toThrow();
      expect((cluster as unknown as { stream?: unknown }).stream).toBeUndefined();
    } finally {
      cluster.disconnect();
    }
  });
});
