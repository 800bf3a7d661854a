import { afterEach, describe, expect, it } from 'vitest';
import { type CacheEntry, MultiLevelCache, type MultiLevelCacheOptions } from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';

let caches: MultiLevelCache[] = [];
afterEach(async () => {
  await Promise.all(caches.map((c) => c.close()));
  caches = [];
});

function make(options: MultiLevelCacheOptions): MultiLevelCache {
  const c = new MultiLevelCache(options);
  caches.push(c);
  return c;
}

const MIN = 60_000;

function tiers() {
  return {
    l1: new FakeTier({ level: 'l1', sync: true, fresh: true, maxTtlMs: 5 * MIN }),
    l2: new FakeTier({ level: 'l2' }),
  };
}

describe('results carry createdAt, freshUntil and staleUntil', () => {
  it('get: the times of the entry that answered (L1 after set, L2, L1 capped after a promotion), none on a miss', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], defaultTtlMs: MIN, staleTtlMs: 10 * MIN });
    const before = Date.now();
    await cache.set('a', 'A');
    const after = Date.now();
    const a = await cache.get('a');
    expect(a.level).toBe('l1');
    expect(a.createdAt).toBeGreaterThanOrEqual(before);
    expect(a.createdAt).toBeLessThanOrEqual(after);
    expect(a.freshUntil).toBe((a.createdAt as number) + MIN);
    // The L1 keeps at most 5 minutes (from its own write): its copy's stale window is cut there.
    expect(a.staleUntil).toBeGreaterThanOrEqual((a.createdAt as number) + 5 * MIN);
    expect(a.staleUntil).toBeLessThanOrEqual(after + 5 * MIN);
    expect(l2.store.get('a')?.staleUntil).toBe((a.createdAt as number) + 11 * MIN);

    const created = Date.now() - 30_000;
    const e: CacheEntry<string> = {
      value: 'B',
      createdAt: created,
      freshUntil: created + 60 * MIN,
      staleUntil: created + 120 * MIN,
    };
    l2.store.set('b', e);
    expect(await cache.get('b')).toEqual({
      value: 'B',
      level: 'l2',
      stale: false,
      createdAt: created,
      freshUntil: created + 60 * MIN,
      staleUntil: created + 120 * MIN,
    });
    // Promoted into the L1 with its remaining lifetime, capped to the L1's 5 minutes.
    const b = await cache.get('b');
    expect(b).toMatchObject({ level: 'l1', createdAt: created });
    expect(b.freshUntil).toBeLessThanOrEqual(Date.now() + 5 * MIN);
    expect(b.staleUntil).toBe(b.freshUntil);

    expect(await cache.get('none')).toStrictEqual({
      value: undefined,
      level: 'external',
      stale: false,
      createdAt: undefined,
      freshUntil: undefined,
      staleUntil: undefined,
    });
  });

  it('a stale answer carries the stale entry’s times (freshUntil in the past)', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    const now = Date.now();
    l2.store.set('s', { value: 'S', createdAt: now - 5000, freshUntil: now - 1000, staleUntil: now + MIN });
    const r = await cache.get('s', { allowStale: true });
    expect(r).toEqual({
      value: 'S',
      level: 'l2',
      stale: true,
      createdAt: now - 5000,
      freshUntil: now - 1000,
      staleUntil: now + MIN,
    });
    const failed = await cache.getOrLoad('s', () => {
      throw new Error('upstream down');
    });
    expect(failed).toEqual(r);
  });

  it('getMany: each result its entry’s times; a miss none', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    const now = Date.now();
    l2.store.set('x', { value: 1, createdAt: now - 10, freshUntil: now + MIN, staleUntil: now + 2 * MIN });
    const [x, none] = await cache.getMany(['x', 'none']);
    expect(x).toEqual({
      value: 1,
      level: 'l2',
      stale: false,
      createdAt: now - 10,
      freshUntil: now + MIN,
      staleUntil: now + 2 * MIN,
    });
    expect(none).toMatchObject({ createdAt: undefined, freshUntil: undefined, staleUntil: undefined });
  });

  it('getOrLoad: a loaded value’s lifetimes (the call’s, the loader’s ctx.setTtl), then the same from L1', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    const before = Date.now();
    const r = await cache.getOrLoad('k', () => 'v', { ttlMs: 2 * MIN, staleTtlMs: 3 * MIN });
    expect(r.level).toBe('external');
    expect(r.createdAt).toBeGreaterThanOrEqual(before);
    expect(r.freshUntil).toBe(r.createdAt + 2 * MIN);
    expect(r.staleUntil).toBe(r.createdAt + 5 * MIN);
    const hit = await cache.getOrLoad('k', () => 'unused');
    expect(hit).toMatchObject({ level: 'l1', createdAt: r.createdAt, freshUntil: r.freshUntil });
    // Within the L1's 5-minute cap.
    expect(hit.staleUntil).toBe(r.staleUntil);

    const adaptive = await cache.getOrLoad('t', (ctx) => {
      ctx.setTtl(1234);
      return 'v';
    });
    expect(adaptive.freshUntil - adaptive.createdAt).toBe(1234);
  });

  it('a value answered but not cached (ctx.skip) is fresh for no time', async () => {
    const cache = make({ tiers: [new FakeTier({ level: 'l1', sync: true })] });
    const before = Date.now();
    const r = await cache.getOrLoad('k', (ctx) => {
      ctx.skip();
      return 'partial';
    });
    expect(r.value).toBe('partial');
    expect(r.createdAt).toBeGreaterThanOrEqual(before);
    expect(r.freshUntil).toBe(r.createdAt);
    expect(r.staleUntil).toBe(r.createdAt);
  });

  it('an entry stored without createdAt answers freshUntil less its ttlMs (or freshUntil)', async () => {
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l2] });
    const now = Date.now();
    l2.store.set('t', { value: 1, freshUntil: now + MIN, staleUntil: now + MIN, ttlMs: MIN });
    l2.store.set('u', { value: 2, freshUntil: now + MIN, staleUntil: now + MIN });
    expect((await cache.get('t')).createdAt).toBe(now);
    expect((await cache.get('u')).createdAt).toBe(now + MIN);
  });

  it('a settled load shared in the coalescing window (no tier kept it) carries its times', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const cache = make({ tiers: [l1], coalesceWindowMs: 10_000 });
    l1.failWith = new Error('l1 down');
    let calls = 0;
    const first = await cache.getOrLoad('k', () => ++calls, { ttlMs: MIN });
    const second = await cache.getOrLoad('k', () => ++calls, { ttlMs: MIN });
    expect(calls).toBe(1);
    expect(second).toEqual(first);
    expect(first.freshUntil - first.createdAt).toBe(MIN);
  });
});
