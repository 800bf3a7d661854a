import { BgcCacheError, type DistributedLock, type Lease, MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { RedisInvalidationBus, RedisLock, RedisTier } from '@bgc/cache-l2-redis';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import Keyv from 'keyv';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyvStore } from '../src/index.js';
import { REDIS_URL, sleep, uniquePrefix } from './helpers.js';

const closers: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

/** A cache with a memory L1 and a fake shared L2 (fault injection), and the L2 to inspect. */
function memoryAndFake(options: { defaultTtlMs?: number; store?: Map<string, never> } = {}) {
  const l2 = new FakeTier({ level: 'l2', batch: true, ...(options.store ? { store: options.store } : {}) });
  const cache = new MultiLevelCache({
    tiers: [new MemoryTier(), l2],
    circuitBreaker: false,
    ...(options.defaultTtlMs ? { defaultTtlMs: options.defaultTtlMs } : {}),
  });
  closers.push(() => cache.close());
  return { cache, l2 };
}

const entryOf = (l2: FakeTier, keyvKey: string) => {
  for (const [k, e] of l2.store) if (k.endsWith(`/${keyvKey}`) && !k.includes('/n/')) return e;
  return undefined;
};

describe('KeyvStore: TTLs', () => {
  it("maps Keyv's TTL (ms) onto the entry's fresh lifetime, and no TTL onto defaultTtlMs", async () => {
    const { cache, l2 } = memoryAndFake();
    const keyv = new Keyv({ store: new KeyvStore(cache, { defaultTtlMs: 90_000, staleTtlMs: 5000 }) });
    await keyv.set('short', 'a', 1234);
    await keyv.set('forever', 'b');
    const short = entryOf(l2, 'keyv:short')!;
    expect(short.freshUntil - short.createdAt!).toBe(1234);
    expect(short.staleUntil - short.freshUntil).toBe(5000);
    const forever = entryOf(l2, 'keyv:forever')!;
    expect(forever.freshUntil - forever.createdAt!).toBe(90_000);
  });

  it("no TTL and no defaultTtlMs: the cache's own default lifetime", async () => {
    const { cache, l2 } = memoryAndFake({ defaultTtlMs: 42_000 });
    const keyv = new Keyv({ store: new KeyvStore(cache) });
    await keyv.set('k', 'v');
    const e = entryOf(l2, 'keyv:k')!;
    expect(e.freshUntil - e.createdAt!).toBe(42_000);
  });

  it('an entry is gone once its TTL has passed (on every tier)', async () => {
    const { cache } = memoryAndFake();
    const keyv = new Keyv({ store: new KeyvStore(cache) });
    await keyv.set('brief', 'x', 50);
    expect(await keyv.get('brief')).toBe('x');
    await sleep(120);
    expect(await keyv.get('brief')).toBeUndefined();
    expect(await keyv.has('brief')).toBe(false);
  });

  it('a TTL of 0 or less given to the store removes the key (it is already expired)', async () => {
    const { cache } = memoryAndFake();
    const store = new KeyvStore(cache);
    store.namespace = 'n';
    await store.set('n:k', 'v', 60_000);
    expect(await store.get('n:k')).toBe('v');
    await store.set('n:k', 'v2', -1);
    expect(await store.get('n:k')).toBeUndefined();
    await store.setMany([
      { key: 'n:a', value: 1, ttl: 60_000 },
      { key: 'n:b', value: 2, ttl: 60_000 },
    ]);
    await store.setMany([{ key: 'n:a', value: 1, ttl: 0 }]);
    expect(await store.getMany(['n:a', 'n:b'])).toEqual([undefined, 2]);
  });

  it("cache-manager's ttl() reads the expiry Keyv recorded", async () => {
    const { cache } = memoryAndFake();
    const manager = createCache({ stores: [new Keyv({ store: new KeyvStore(cache) })] });
    const before = Date.now();
    await manager.set('k', { a: 1 }, 10_000);
    const expires = await manager.ttl('k');
    expect(expires).toBeGreaterThanOrEqual(before + 10_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 10_000);
  });
});

describe('KeyvStore: batches, has, delete', () => {
  it('getMany/setMany/deleteMany/has/hasMany through Keyv', async () => {
    const { cache } = memoryAndFake();
    const keyv = new Keyv({ store: new KeyvStore(cache), namespace: 'batch' });
    expect(
      await keyv.setMany([
        { key: 'a', value: 1 },
        { key: 'b', value: { two: 2 } },
        { key: 'c', value: [3], ttl: 60_000 },
      ]),
    ).toBeUndefined();
    expect(await keyv.getMany(['a', 'x', 'b', 'c'])).toEqual([1, undefined, { two: 2 }, [3]]);
    expect(await keyv.has(['a', 'x'])).toEqual([true, false]);
    expect(await keyv.deleteMany(['a', 'b'])).toBe(true);
    expect(await keyv.deleteMany(['a', 'b'])).toBe(false);
    expect(await keyv.get(['a', 'b', 'c'])).toEqual([undefined, undefined, [3]]);
    expect(await keyv.delete('c')).toBe(true);
    expect(await keyv.delete('c')).toBe(false);
  });

  it("a key the cache refuses is a miss on reads and an 'error' event with false on writes", async () => {
    const { cache } = memoryAndFake();
    const keyv = new Keyv({ store: new KeyvStore(cache) });
    const errors: unknown[] = [];
    keyv.on('error', (e: unknown) => errors.push(e));
    const bad = 'line\nbreak';
    expect(await keyv.set(bad, 'v')).toBe(false);
    expect(await keyv.get(bad)).toBeUndefined();
    expect(BgcCacheError.isInstance(errors[0]) && errors[0].code).toBe('E_INVALID_KEY');
    expect(await keyv.set('x'.repeat(2000), 'v')).toBe(false);
  });

  it('empty batches do nothing', async () => {
    const { cache, l2 } = memoryAndFake();
    const store = new KeyvStore(cache);
    expect(await store.getMany([])).toEqual([]);
    await store.setMany([]);
    expect(await store.deleteMany([])).toBe(false);
    expect(l2.calls.setMany ?? 0).toBe(0);
  });

  it('a raw record (Keyv built with serialize: undefined) reaches the cache as an object', async () => {
    const { cache, l2 } = memoryAndFake();
    const keyv = new Keyv({ store: new KeyvStore(cache), serialize: undefined, deserialize: undefined });
    const when = new Date('2024-03-01T00:00:00Z');
    await keyv.set('d', { when }, 60_000);
    expect(entryOf(l2, 'keyv:d')!.value).toMatchObject({ value: { when } });
    expect(await keyv.get('d')).toEqual({ when });
  });
});

describe('KeyvStore: namespaces', () => {
  it('clear() of one namespace removes only that namespace', async () => {
    const { cache } = memoryAndFake();
    const a = new Keyv({ store: new KeyvStore(cache), namespace: 'a' });
    const b = new Keyv({ store: new KeyvStore(cache), namespace: 'b' });
    await a.set('k', 'from-a');
    await b.set('k', 'from-b');
    await a.clear();
    expect(await a.get('k')).toBeUndefined();
    expect(await b.get('k')).toBe('from-b');
    await a.set('k', 'again');
    expect(await a.get('k')).toBe('again');
  });

  it('stores with different prefixes over one cache never see each other', async () => {
    const { cache } = memoryAndFake();
    const one = new Keyv({ store: new KeyvStore(cache, { prefix: 'one/' }) });
    const two = new Keyv({ store: new KeyvStore(cache, { prefix: 'two/' }) });
    await one.set('k', 1);
    expect(await two.get('k')).toBeUndefined();
    await two.clear();
    expect(await one.get('k')).toBe(1);
  });

  it('without a local tier, another instance sees a clear after namespaceCheckMs (0: at once)', async () => {
    const shared = new Map<string, never>();
    const mk = () => {
      const cache = new MultiLevelCache({ tiers: [new FakeTier({ level: 'l2', store: shared })] });
      closers.push(() => cache.close());
      return new Keyv({ store: new KeyvStore(cache, { namespaceCheckMs: 0 }), namespace: 'ns' });
    };
    const one = mk();
    const two = mk();
    await one.set('k', 'v');
    expect(await two.get('k')).toBe('v');
    await one.clear();
    expect(await two.get('k')).toBeUndefined();
  });

  it('with a memory L1 and the Redis bus, another instance sees a clear at once', async () => {
    const prefix = uniquePrefix('ns-bus');
    const mk = async () => {
      const client = new Redis(REDIS_URL);
      const bus = new RedisInvalidationBus({ url: REDIS_URL, prefix });
      const cache = new MultiLevelCache({
        tiers: [new MemoryTier(), new RedisTier({ client, prefix })],
        bus,
      });
      await bus.ready(10_000);
      closers.push(async () => {
        await cache.clear();
        await cache.close();
        client.disconnect();
      });
      return new Keyv({ store: new KeyvStore(cache), namespace: 'ns' });
    };
    const one = await mk();
    const two = await mk();
    await one.set('k', 'v');
    expect(await two.get('k')).toBe('v');
    expect(await two.get('k')).toBe('v');
    await one.clear();
    let reads = 0;
    while ((await two.get('k')) !== undefined) {
      reads++;
      expect(reads).toBeLessThan(2000);
      await sleep(5);
    }
    await two.set('k', 'v2');
    expect(await one.get('k')).toBe('v2');
  });
});

describe('KeyvStore: fail-safe and events', () => {
  it("a failing shared tier never fails Keyv's calls; its errors reach Keyv's 'error' listeners", async () => {
    const { cache, l2 } = memoryAndFake();
    const keyv = new Keyv({ store: new KeyvStore(cache) });
    const errors: unknown[] = [];
    keyv.on('error', (e: unknown) => errors.push(e));
    await keyv.set('k', 'v');
    l2.failWith = new Error('backend down');
    expect(await keyv.set('k2', 'v2')).toBe(true);
    expect(await keyv.get('k2')).toBe('v2'); // from L1
    expect(await keyv.get('never')).toBeUndefined();
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.some((e) => e instanceof Error && /backend down/.test(e.message))).toBe(true);
  });

  it('errors about keys of another store are not forwarded', async () => {
    const { cache, l2 } = memoryAndFake();
    const mine = new Keyv({ store: new KeyvStore(cache, { prefix: 'mine/' }) });
    const errors: unknown[] = [];
    mine.on('error', (e: unknown) => errors.push(e));
    await mine.get('warm'); // the namespace generation exists before the tier fails
    l2.failWith = new Error('backend down');
    await cache.set('other/key', 1);
    expect(errors).toEqual([]);
    await mine.set('k', 1);
    expect(errors.length).toBeGreaterThan(0);
  });

  it('a real Redis that is unreachable: get misses, set succeeds (on L1), nothing hangs', async () => {
    const client = new Redis({ port: 1, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    client.on('error', () => {});
    const cache = new MultiLevelCache({
      tiers: [new MemoryTier(), new RedisTier({ client, prefix: uniquePrefix('down') })],
      tierTimeoutMs: 500,
    });
    closers.push(async () => {
      await cache.close();
      client.disconnect();
    });
    const keyv = new Keyv({ store: new KeyvStore(cache) });
    const errors: unknown[] = [];
    keyv.on('error', (e: unknown) => errors.push(e));
    expect(await keyv.get('k')).toBeUndefined();
    expect(await keyv.set('k', 'v')).toBe(true);
    expect(await keyv.get('k')).toBe('v');
    expect(errors.length).toBeGreaterThan(0);
  });

  it('disconnect() leaves a handed-in cache open, and closes it with closeCacheOnDisconnect', async () => {
    const { cache, l2 } = memoryAndFake();
    const keyv = new Keyv({ store: new KeyvStore(cache) });
    await keyv.disconnect();
    expect(l2.closed).toBe(false);
    const owned = memoryAndFake();
    const keyv2 = new Keyv({ store: new KeyvStore(owned.cache, { closeCacheOnDisconnect: true }) });
    await keyv2.disconnect();
    expect(owned.l2.closed).toBe(true);
  });

  it('refuses bad options with a ConfigError', () => {
    const { cache } = memoryAndFake();
    expect(() => new KeyvStore(undefined as never)).toThrow(/needs a MultiLevelCache/);
    for (const bad of [
      { defaultTtlMs: 0 },
      { staleTtlMs: -1 },
      { namespaceCheckMs: Number.NaN },
      { lockOnMiss: { lock: {} as DistributedLock, leaseMs: -5 } },
    ]) {
      let error: unknown;
      try {
        new KeyvStore(cache, bad);
      } catch (e) {
        error = e;
      }
      expect(BgcCacheError.isInstance(error) && error.code).toBe('E_CONFIG');
    }
  });
});

describe('KeyvStore: cache-manager v7', () => {
  it('wrap runs the function once per key and serves the cached value after', async () => {
    const { cache } = memoryAndFake();
    const manager = createCache({ stores: [new Keyv({ store: new KeyvStore(cache), namespace: 'cm' })] });
    let calls = 0;
    const fn = async () => {
      calls++;
      return { n: calls };
    };
    const all = await Promise.all(Array.from({ length: 20 }, () => manager.wrap('w', fn, 60_000)));
    expect(new Set(all.map((v) => JSON.stringify(v))).size).toBe(1);
    expect(await manager.wrap('w', fn, 60_000)).toEqual({ n: 1 });
    expect(calls).toBe(1);
    await manager.del('w');
    expect(await manager.wrap('w', fn, 60_000)).toEqual({ n: 2 });
    expect(await manager.mget(['w', 'none'])).toEqual([{ n: 2 }, undefined]);
    await manager.clear();
    expect(await manager.get('w')).toBeUndefined();
  });
});

/** A DistributedLock that records calls, for the lock paths a real Redis cannot produce on demand. */
class RecordingLock implements DistributedLock {
  held = new Set<string>();
  calls: string[] = [];
  failAcquire: Error | undefined;
  /** Calls on data keys (the namespace-generation key, `<prefix>n/<namespace>`, is left out). */
  private record(call: string, key: string) {
    if (!key.includes('/n/')) this.calls.push(`${call} ${key}`);
  }
  async tryAcquire(key: string, _leaseMs?: number): Promise<Lease | undefined> {
    this.record('acquire', key);
    if (this.failAcquire) throw this.failAcquire;
    if (this.held.has(key)) return undefined;
    this.held.add(key);
    return {
      release: async () => {
        this.record('release', key);
        this.held.delete(key);
      },
    };
  }
  async waitForRelease(key: string, timeoutMs: number): Promise<void> {
    this.record('wait', key);
    const until = Date.now() + timeoutMs;
    while (this.held.has(key) && Date.now() < until) await sleep(5);
  }
}

describe('KeyvStore: lockOnMiss', () => {
  it("a miss takes the key's lease and the set that follows releases it (once its write landed)", async () => {
    const { cache } = memoryAndFake();
    const lock = new RecordingLock();
    const store = new KeyvStore(cache, { lockOnMiss: { lock } });
    const keyv = new Keyv({ store });
    expect(await keyv.get('k')).toBeUndefined();
    expect([...lock.held].filter((k) => !k.includes('/n/'))).toHaveLength(1);
    await keyv.set('k', 'v');
    // The set filled a miss: it answered at once; `has` waits for the write, which released the lease.
    expect(await keyv.has('k')).toBe(true);
    expect(lock.held.size).toBe(0);
    expect(lock.calls.map((c) => c.split(' ')[0])).toEqual(['acquire', 'release']);
  });

  it('other callers of the same process wait for the holder and get its value', async () => {
    const { cache } = memoryAndFake();
    const lock = new RecordingLock();
    const keyv = new Keyv({ store: new KeyvStore(cache, { lockOnMiss: { lock } }) });
    expect(await keyv.get('k')).toBeUndefined();
    const waiting = Promise.all([keyv.get('k'), keyv.get('k')]);
    await sleep(20);
    await keyv.set('k', 'loaded');
    expect(await waiting).toEqual(['loaded', 'loaded']);
    expect(lock.calls.filter((c) => c.startsWith('acquire'))).toHaveLength(1);
  });

  it('another instance waits for the release; when the holder stored nothing it takes the lease itself', async () => {
    const shared = new Map<string, never>();
    const lock = new RecordingLock();
    const a = new Keyv({
      store: new KeyvStore(memoryAndFake({ store: shared }).cache, {
        lockOnMiss: { lock, leaseMs: 100, waitMs: 10_000 },
      }),
    });
    const b = new Keyv({
      store: new KeyvStore(memoryAndFake({ store: shared }).cache, {
        lockOnMiss: { lock, leaseMs: 100, waitMs: 10_000 },
      }),
    });
    expect(await a.get('k')).toBeUndefined(); // a holds the lease and never sets: it lapses after 100 ms
    // b waits for that release (waitMs is far longer), finds nothing, and takes the lease.
    expect(await b.get('k')).toBeUndefined(); // b waited for it, found nothing, and holds a lease now
    expect(lock.calls.map((c) => c.split(' ')[0])).toEqual([
      'acquire',
      'acquire',
      'wait',
      'release',
      'acquire',
    ]);
    await b.set('k', 'from-b');
    expect(await a.get('k')).toBe('from-b');
  });

  it('a value stored between the miss and the acquire is returned, and the lease given back', async () => {
    const { cache } = memoryAndFake();
    const lock = new RecordingLock();
    const store = new KeyvStore(cache, { lockOnMiss: { lock } });
    const keyv = new Keyv({ store });
    await keyv.set('warm', 1);
    const acquire = lock.tryAcquire.bind(lock);
    // Another instance finishes its load (stores, releases) just before this one takes the lease.
    lock.tryAcquire = async (key: string, leaseMs: number) => {
      if (!key.includes('/n/')) await cache.set(key, JSON.stringify({ value: 'theirs' }));
      return acquire(key, leaseMs);
    };
    expect(await keyv.get('k')).toBe('theirs');
    expect(lock.held.size).toBe(0);
  });

  it('a lock that cannot be reached: the miss is answered (the caller loads) and the error is emitted', async () => {
    const { cache } = memoryAndFake();
    const lock = new RecordingLock();
    lock.failAcquire = new Error('lock backend down');
    const keyv = new Keyv({ store: new KeyvStore(cache, { lockOnMiss: { lock } }) });
    const errors: unknown[] = [];
    keyv.on('error', (e: unknown) => errors.push(e));
    expect(await keyv.get('k')).toBeUndefined();
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => (e as Error).message === 'lock backend down')).toBe(true);
    expect(await keyv.set('k', 'v')).toBe(true);
    expect(await keyv.get('k')).toBe('v');
  });

  it('with a real RedisLock, the lease lives in Redis until the set', async () => {
    const prefix = uniquePrefix('lock');
    const client = new Redis(REDIS_URL);
    closers.push(() => client.quit());
    const lock = new RedisLock({ client, prefix: `${prefix}lock:` });
    const { cache } = memoryAndFake();
    const store = new KeyvStore(cache, { lockOnMiss: { lock, leaseMs: 5000 } });
    const keyv = new Keyv({ store, namespace: 'r' });
    expect(await keyv.get('k')).toBeUndefined();
    expect(await client.keys(`${prefix}lock:*`)).toHaveLength(1);
    await keyv.set('k', 'v');
    for (let i = 0; i < 100 && (await client.keys(`${prefix}lock:*`)).length > 0; i++) await sleep(10);
    expect(await client.keys(`${prefix}lock:*`)).toHaveLength(0);
    expect(await keyv.get('k')).toBe('v');
    await store.disconnect();
  });
});
