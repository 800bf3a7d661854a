import { BgcCacheError, type CacheEntry, MultiLevelCache } from '@bgc/cache-core';
import { RedisLock, RedisTier, type RedisTierOptions } from '@bgc/cache-l2-redis';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createKeyv, type KeyvStore, type KeyvStoreOptions } from '../src/index.js';
import { REDIS_URL, sleep, uniquePrefix } from './helpers.js';

/** The real Redis tier, whose writes wait while its gate is closed (to watch a write in flight). */
class GatedRedisTier extends RedisTier {
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  constructor(options: RedisTierOptions) {
    super(options);
  }

  override close(): Promise<void> {
    this.open();
    return super.close();
  }

  /** Holds every write from now on until {@link open}. */
  hold(): void {
    this.gate = new Promise((r) => {
      this.openGate = r;
    });
  }

  open(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  override async set(key: string, entry: CacheEntry): Promise<void> {
    await this.gate;
    return super.set(key, entry);
  }
}

const clients: Redis[] = [];
const closers: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
  for (const c of clients) c.disconnect();
});

/**
 * Two instances on one real Redis (no L1: every read goes to Redis), A's writes behind a gate;
 * both on the namespace generation A created.
 */
async function twoInstances(
  options: Omit<KeyvStoreOptions, 'lockOnMiss'> & { lockOnMiss?: boolean } = {},
  tierOptions: Partial<RedisTierOptions> = {},
) {
  const prefix = uniquePrefix('fills');
  const client = new Redis(REDIS_URL);
  clients.push(client);
  const tierA = new GatedRedisTier({ client, prefix, ...tierOptions });
  const cacheA = new MultiLevelCache({ tiers: [tierA], circuitBreaker: false });
  const cacheB = new MultiLevelCache({ tiers: [new RedisTier({ client, prefix })], circuitBreaker: false });
  closers.push(
    () => cacheA.close(),
    () => cacheB.close(),
  );
  const { lockOnMiss, ...rest } = options;
  const storeOptions = (): KeyvStoreOptions => ({
    ...rest,
    ...(lockOnMiss
      ? { lockOnMiss: { lock: new RedisLock({ client, prefix: `${prefix}x:` }), leaseMs: 5000 } }
      : {}),
  });
  const keyvA = createKeyv(cacheA, { namespace: 'ns', ...storeOptions() });
  const keyvB = createKeyv(cacheB, { namespace: 'ns', ...storeOptions() });
  // A creates the namespace generation; B reads it (`has` takes no lease).
  expect(await keyvA.has('warm-up')).toBe(false);
  expect(await keyvB.has('warm-up')).toBe(false);
  return { tierA, keyvA, keyvB, storeA: keyvA.store as KeyvStore };
}

/** Whether `p` has settled after the writes and replies in flight had time to land. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await sleep(30);
  return done;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('KeyvStore backgroundFills: a set that fills a miss answers before its write lands', () => {
  it("cache-manager's wrap answers while its write is in flight; this instance waits for it, another sees a miss then the value", async () => {
    const { tierA, keyvA, keyvB } = await twoInstances();
    const manager = createCache({ stores: [keyvA] });
    tierA.hold();
    let calls = 0;
    const value = await manager.wrap('k', async () => ({ n: ++calls }));
    expect(value).toEqual({ n: 1 });
    // Not in Redis yet: the other instance misses (it never sees an older value: there was none).
    expect(await keyvB.get('k')).toBeUndefined();
    const mine = keyvA.get('k');
    expect(await settled(mine)).toBe(false); // read-your-writes: waits for the fill
    tierA.open();
    expect(await mine).toEqual({ n: 1 });
    expect(await keyvB.get('k')).toEqual({ n: 1 });
    expect(await manager.wrap('k', async () => ({ n: ++calls }))).toEqual({ n: 1 });
    expect(calls).toBe(1);
  });

  it('a delete on another instance while the fill is in flight wins: the fill lands on its tombstone and is refused', async () => {
    const { tierA, keyvA, keyvB } = await twoInstances();
    expect(await keyvA.get('k')).toBeUndefined();
    tierA.hold();
    expect(await keyvA.set('k', 'loaded')).toBe(true); // the fill's version is taken now
    await sleep(2); // B's delete comes later (a later version)
    await keyvB.delete('k');
    tierA.open();
    expect(await keyvA.get('k')).toBeUndefined(); // waits for the fill, which the tombstone refused
    expect(await keyvB.get('k')).toBeUndefined();
  });

  it('a set on another instance while the fill is in flight wins over the fill', async () => {
    const { tierA, keyvA, keyvB } = await twoInstances();
    expect(await keyvA.get('k')).toBeUndefined();
    tierA.hold();
    expect(await keyvA.set('k', 'older')).toBe(true);
    await sleep(2);
    expect(await keyvB.set('k', 'newer')).toBe(true);
    tierA.open();
    expect(await keyvA.get('k')).toBe('newer');
    expect(await keyvB.get('k')).toBe('newer');
  });

  it('a value the cache refuses before any I/O is not filled in the background: the set rejects, as an awaited one does (Keyv answers false)', async () => {
    const { storeA } = await twoInstances();
    const errors: unknown[] = [];
    storeA.on('error', (e: unknown) => errors.push(e));
    expect(await storeA.get('u')).toBeUndefined();
    await expect(storeA.set('u', undefined)).rejects.toSatisfy(
      (e) => BgcCacheError.isInstance(e) && e.code === 'E_INVALID_VALUE',
    );
    await sleep(10);
    expect(errors).toEqual([]); // the rejection is the report: no second one on 'error'
    expect(await storeA.get('u')).toBeUndefined();
    expect(await storeA.set('u', 'v')).toBe(true); // the miss above: a fill again
    expect(await storeA.get('u')).toBe('v');
  });

  it('a set that replaces a value (no miss before it) waits for every tier', async () => {
    const { tierA, keyvA, keyvB } = await twoInstances();
    await keyvA.set('k', 'old');
    tierA.hold();
    const replacing = keyvA.set('k', 'new');
    expect(await settled(replacing)).toBe(false);
    expect(await keyvB.get('k')).toBe('old');
    tierA.open();
    expect(await replacing).toBe(true);
    expect(await keyvB.get('k')).toBe('new');
  });

  it('backgroundFills: false makes every set wait', async () => {
    const { tierA, keyvA, keyvB } = await twoInstances({ backgroundFills: false });
    expect(await keyvA.get('k')).toBeUndefined();
    tierA.hold();
    const filling = keyvA.set('k', 'v');
    expect(await settled(filling)).toBe(false);
    tierA.open();
    expect(await filling).toBe(true);
    expect(await keyvB.get('k')).toBe('v');
  });

  it('a miss more than a minute before the set does not count: the set waits', async () => {
    const { tierA, keyvA } = await twoInstances();
    // The miss is dated 61 s ago (the store times misses with the monotonic clock).
    const now = performance.now.bind(performance);
    const back = vi.spyOn(performance, 'now').mockImplementation(() => now() - 61_000);
    expect(await keyvA.get('k')).toBeUndefined();
    back.mockRestore();
    tierA.hold();
    const late = keyvA.set('k', 'v');
    expect(await settled(late)).toBe(false);
    tierA.open();
    expect(await late).toBe(true);
  });

  it('getMany, has, hasMany, setMany, delete and deleteMany of a key being filled wait for the fill', async () => {
    const { tierA, keyvA, keyvB } = await twoInstances();
    for (const k of ['a', 'b', 'c', 'd', 'e', 'f']) expect(await keyvA.get(k)).toBeUndefined();
    tierA.hold();
    for (const k of ['a', 'b', 'c', 'd', 'e', 'f']) expect(await keyvA.set(k, `${k}1`)).toBe(true);
    const many = keyvA.getMany(['a', 'x']);
    const has = keyvA.has('b');
    const hasMany = keyvA.hasMany(['c', 'x']);
    const store = keyvA.store as KeyvStore;
    const setMany = store.setMany([{ key: 'ns:d', value: { value: 'd2', expires: undefined } }]);
    const del = keyvA.delete('e');
    const delMany = keyvA.deleteMany(['f']);
    for (const p of [many, has, hasMany, del, delMany]) expect(await settled(p)).toBe(false);
    tierA.open();
    expect(await many).toEqual(['a1', undefined]);
    expect(await has).toBe(true);
    expect(await hasMany).toEqual([true, false]);
    await setMany;
    expect(await del).toBe(true);
    expect(await delMany).toBe(true);
    // The deletes landed after the fills: gone on both instances; d holds the later write.
    expect(await keyvB.get('e')).toBeUndefined();
    expect(await keyvB.get('f')).toBeUndefined();
    expect(await keyvA.get('e')).toBeUndefined();
    expect(await keyvB.get('d')).toBe('d2');
  });

  it('disconnect waits for the fills in flight', async () => {
    const { tierA, keyvA, keyvB, storeA } = await twoInstances();
    expect(await keyvA.get('k')).toBeUndefined();
    tierA.hold();
    await keyvA.set('k', 'v');
    const closing = storeA.disconnect();
    expect(await settled(closing)).toBe(false);
    tierA.open();
    await closing;
    expect(await keyvB.get('k')).toBe('v');
  });

  it("a fill the tiers refuse is reported on Keyv's 'error' and leaves nothing behind", async () => {
    const { keyvA, keyvB } = await twoInstances({}, { maxValueBytes: 300 });
    const errors: unknown[] = [];
    keyvA.on('error', (e: unknown) => errors.push(e));
    expect(await keyvA.get('big')).toBeUndefined();
    expect(await keyvA.set('big', 'x'.repeat(1000))).toBe(true);
    expect(await keyvA.get('big')).toBeUndefined();
    expect(await keyvB.get('big')).toBeUndefined();
    expect(errors.some((e) => BgcCacheError.isInstance(e) && e.code === 'E_INVALID_VALUE')).toBe(true);
  });

  it("with lockOnMiss, the lease is released only once the fill landed: another instance's get waits and reads the value", async () => {
    const { tierA, keyvA, keyvB } = await twoInstances({ lockOnMiss: true });
    expect(await keyvA.get('k')).toBeUndefined(); // A holds the lease
    tierA.hold();
    expect(await keyvA.set('k', 'loaded')).toBe(true);
    const other = keyvB.get('k');
    expect(await settled(other)).toBe(false);
    tierA.open();
    expect(await other).toBe('loaded');
  });
});

describe('KeyvStore backgroundFills: the remembered misses are bounded', () => {
  it('keeps the 5,000 to 10,000 latest misses: a set of an older one waits', async () => {
    // The namespace generation kept for the whole test: 10,050 reads can outlast the default 1 s
    // memo on a loaded machine, and its re-read would wait behind the held tier.
    const { tierA, keyvA } = await twoInstances({ namespaceCheckMs: 60_000 });
    for (let i = 0; i < 50; i++) expect(await keyvA.get(`m${i}`)).toBeUndefined();
    const later = await Promise.all(Array.from({ length: 10_000 }, (_, i) => keyvA.get(`z${i}`)));
    expect(later.every((r) => r === undefined)).toBe(true);
    tierA.hold();
    // m49 was dropped too (10,050 misses, 5,050 kept: two generations of 5,000, the older dropped
    // whole); the latest miss still counts.
    const latest = keyvA.set('z9999', 'v');
    expect(await settled(latest)).toBe(true);
    const oldest = keyvA.set('m0', 'v');
    expect(await settled(oldest)).toBe(false);
    tierA.open();
    await oldest;
  });

  it('remembering a million misses takes linear time (no per-eviction walk)', async () => {
    const { storeA } = await twoInstances();
    const store = storeA as unknown as { missed(key: string): void };
    const t0 = performance.now();
    for (let i = 0; i < 1_000_000; i++) store.missed(`k${i}`);
    // ~0.3 s here; evicting a Map's first entry one at a time took ~15 s for as many.
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});
