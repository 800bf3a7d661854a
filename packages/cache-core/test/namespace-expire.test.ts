import { describe, expect, it } from 'vitest';
import {
  type CacheEntry,
  ConfigError,
  type InvalidationBus,
  type InvalidationMessage,
  InvalidKeyError,
  MultiLevelCache,
} from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';

function memoryBus() {
  const handlers = new Set<(m: InvalidationMessage) => void>();
  const sent: InvalidationMessage[] = [];
  const make = (): InvalidationBus => {
    let mine: ((m: InvalidationMessage) => void) | undefined;
    return {
      publish: async (m) => {
        sent.push(m);
        for (const h of handlers) if (h !== mine) h(m);
      },
      subscribe: (h) => {
        mine = h;
        handlers.add(h);
      },
      close: async () => {
        if (mine) handlers.delete(mine);
      },
    };
  };
  return { make, sent };
}

function twoInstances() {
  const l2Store = new Map<string, CacheEntry>();
  const bus = memoryBus();
  const make = () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, fresh: true });
    const l2 = new FakeTier({ level: 'l2', store: l2Store, callbacks: true, codec: true });
    return { cache: new MultiLevelCache({ tiers: [l1, l2], bus: bus.make(), staleTtlMs: 60_000 }), l1, l2 };
  };
  return { a: make(), b: make(), bus, l2Store };
}

describe('namespaces', () => {
  it('scope keys under name: (nestable), and clear() removes that namespace only, everywhere', async () => {
    const { a, b } = twoInstances();
    const users = a.cache.namespace('users');
    const eu = users.namespace('eu');
    await users.set('1', 'alice');
    await eu.set('2', 'bob');
    await a.cache.namespace('orders').set('1', 'order');
    await a.cache.set('users', 'top-level');
    expect((await b.cache.get('users:1')).value).toBe('alice');
    expect((await b.cache.get('users:eu:2')).value).toBe('bob');
    expect(users.prefix).toBe('users:');
    expect(eu.prefix).toBe('users:eu:');

    // Clearing the nested namespace leaves its parent.
    await b.cache.namespace('users').namespace('eu').clear();
    expect((await eu.get('2')).value).toBeUndefined();
    expect((await users.get('1')).value).toBe('alice');

    await eu.set('3', 'carol');
    await b.cache.namespace('users').clear(); // the parent and everything nested in it
    for (const { cache } of [a, b]) {
      expect((await cache.get('users:1')).value).toBeUndefined();
      expect((await cache.get('users:eu:3')).value).toBeUndefined();
      expect(cache.getSync('users:1')).toBeUndefined();
      expect((await cache.get('orders:1')).value).toBe('order');
      expect((await cache.get('users')).value).toBe('top-level');
    }
    // Written again after the clear: there again.
    await users.set('1', 'alice-2');
    expect((await b.cache.namespace('users').get('1')).value).toBe('alice-2');
  });

  it('the whole API works on namespaced keys (getOrLoad, getMany, setMany, has, pull, expire, tags)', async () => {
    const { a, b } = twoInstances();
    const ns = a.cache.namespace('t');
    expect((await ns.getOrLoad('x', (ctx) => ctx.key)).value).toBe('t:x');
    await ns.setMany([
      { key: 'y', value: 2, tags: ['mine'] },
      { key: 'z', value: 3 },
    ]);
    expect((await ns.getMany(['x', 'y', 'z'])).map((r) => r.value)).toEqual(['t:x', 2, 3]);
    expect(ns.getSync('y')).toBe(2);
    expect(await ns.has('y')).toBe(true);
    await ns.deleteByTag(['mine']);
    expect(await ns.has('y')).toBe(false);
    expect(await ns.pull('z')).toBe(3);
    expect(await ns.has('z')).toBe(false);
    await ns.set('w', 'w', { ttlMs: 60_000 });
    await ns.expire('w');
    expect((await ns.get('w', { allowStale: true })).stale).toBe(true);
    expect(await ns.expireMany(['w'])).toBe(0);
    expect(await ns.deleteMany(['w'])).toBeGreaterThan(0);
    await ns.delete('x');
    await ns.expireByTag(['none']);
    // getOrLoad entries carry the namespace's tag too.
    await b.cache.namespace('t').clear();
    await a.cache.flush();
    expect((await a.cache.get('t:x')).value).toBeUndefined();
    await ns.getOrLoad('x', () => 'again');
    await a.cache.flush();
    await b.cache.namespace('t').clear();
    expect((await b.cache.get('t:x')).value).toBeUndefined();
  });

  it('refuses invalid names with InvalidKeyError (E_INVALID_KEY)', () => {
    const { a } = twoInstances();
    for (const bad of ['', 'a:b', 'x\n', 'n'.repeat(129), 42 as unknown as string]) {
      expect(() => a.cache.namespace(bad)).toThrow(InvalidKeyError);
    }
    expect(() => a.cache.namespace('ok').namespace('a:b')).toThrow(/nest namespaces instead/);
  });
});

describe('expire, has, pull', () => {
  it('expire: stale at once on every instance, kept as the fail-safe fallback', async () => {
    const { a, b, bus } = twoInstances();
    await a.cache.set('k', 'v');
    expect((await b.cache.get('k')).value).toBe('v');
    await a.cache.expire('k');
    expect(bus.sent.at(-1)).toMatchObject({ type: 'expire', keys: ['k'] });
    // B's L1 turned it stale at its own "now": past it on the next turn of the (1 ms) coarse clock.
    await new Promise((r) => setTimeout(r, 3));
    for (const { cache } of [a, b]) {
      expect(await cache.has('k')).toBe(false);
      expect(await cache.has('k', { allowStale: true })).toBe(true);
    }
    const r = await b.cache.getOrLoad('k', () => {
      throw new Error('upstream down');
    });
    expect(r).toMatchObject({ value: 'v', stale: true });
    expect((await a.cache.getOrLoad('k', () => 'fresh')).value).toBe('fresh');
  });

  it('expire on a cache with only a local tier turns the entry stale there', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const cache = new MultiLevelCache({ tiers: [l1], staleTtlMs: 60_000 });
    await cache.set('k', 'v');
    expect(await cache.expireMany(['k', 'absent'])).toBe(1);
    expect(l1.getSync?.('k')?.value).toBe('v');
    expect(l1.getSync?.('k')?.freshUntil).toBeLessThanOrEqual(Date.now());
  });

  it('a tier without logical expiry removes the key instead', async () => {
    const l2 = new FakeTier({ level: 'l2' });
    (l2 as { expire?: unknown }).expire = undefined;
    const cache = new MultiLevelCache({ tiers: [l2] });
    await cache.set('k', 'v');
    await cache.expire('k');
    expect(await l2.get('k')).toBeUndefined();
  });

  it('has: true for null (a cached "not found"), false on a miss', async () => {
    const { a } = twoInstances();
    await a.cache.set('nothing', null);
    expect(await a.cache.has('nothing')).toBe(true);
    expect(await a.cache.has('absent')).toBe(false);
  });

  it('pull: the value, then gone on every instance; undefined on a miss', async () => {
    const { a, b } = twoInstances();
    await a.cache.set('k', { n: 1 });
    expect((await b.cache.get('k')).value).toEqual({ n: 1 });
    expect(await b.cache.pull('k')).toEqual({ n: 1 });
    expect((await a.cache.get('k')).value).toBeUndefined();
    expect(a.cache.getSync('k')).toBeUndefined();
    expect(await b.cache.pull('k')).toBeUndefined();
  });
});

describe('skip.read', () => {
  it('get/getMany/has read past the skipped levels, without promoting into them', async () => {
    const { a, b } = twoInstances();
    await a.cache.set('k', 'v1');
    expect((await b.cache.get('k')).value).toBe('v1'); // in B's L1
    await a.cache.set('k', 'v2', { skipBus: true }); // B's L1 not told
    expect((await b.cache.get('k')).value).toBe('v1');
    expect(await b.cache.get('k', { skip: { read: ['l1'] } })).toMatchObject({
      value: 'v2',
      level: 'l2',
      stale: false,
    });
    expect(b.cache.getSync('k')).toBe('v1'); // not promoted
    expect((await b.cache.getMany(['k', 'none'], { skip: { read: ['l1'] } })).map((r) => r.value)).toEqual([
      'v2',
      undefined,
    ]);
    expect(await b.cache.get('k', { skip: { read: ['l1', 'l2'] } })).toMatchObject({
      value: undefined,
      level: 'external',
      stale: false,
    });
    await a.cache.set('only-l1', 1, { skip: { write: ['l2'] } });
    expect(await a.cache.has('only-l1', { skip: { read: ['l2'] } })).toBe(true);
    expect(await a.cache.has('only-l1', { skip: { read: ['l1'] } })).toBe(false);
    await expect(a.cache.get('k', { skip: { read: ['nope' as 'l1'] } })).rejects.toBeInstanceOf(ConfigError);
  });

  it('allowStale with skip.read answers the freshest stale entry of the levels read', async () => {
    const { a } = twoInstances();
    await a.cache.set('s', 'old', { ttlMs: 60_000 });
    await a.cache.expire('s');
    expect(await a.cache.get('s', { skip: { read: ['l1'] }, allowStale: true })).toMatchObject({
      value: 'old',
      level: 'l2',
      stale: true,
    });
  });

  it('getOrLoad with skip.read: a fresh value of the levels read answers, else a load (the skipped value is not used)', async () => {
    const { a, b } = twoInstances();
    await a.cache.set('k', 'v1');
    expect((await b.cache.get('k')).value).toBe('v1');
    await a.cache.set('k', 'v2', { skipBus: true });
    expect((await b.cache.getOrLoad('k', () => 'loaded', { skip: { read: ['l1'] } })).value).toBe('v2');
    let calls = 0;
    const r = await b.cache.getOrLoad(
      'k',
      () => {
        calls++;
        return 'loaded';
      },
      { skip: { read: ['l1', 'l2'] } },
    );
    expect(r).toMatchObject({ value: 'loaded', level: 'external' });
    expect(calls).toBe(1);
    await b.cache.flush();
    expect((await a.cache.get('k', { skip: { read: ['l1'] } })).value).toBe('loaded');
  });
});

describe('skipBus and skip.write', () => {
  it('skipBus: other instances keep their local copy; the shared tiers change', async () => {
    const { a, b, bus } = twoInstances();
    await a.cache.set('k', 'v1');
    expect((await b.cache.get('k')).value).toBe('v1');
    const before = bus.sent.length;
    await a.cache.set('k', 'v2', { skipBus: true });
    await a.cache.setMany([{ key: 'm', value: 1 }], { skipBus: true });
    await a.cache.expire('m', { skipBus: true });
    await a.cache.delete('gone', { skipBus: true });
    expect(bus.sent.length).toBe(before);
    expect(b.cache.getSync('k')).toBe('v1'); // B's L1 was not told
    expect((await b.l2.get('k'))?.value).toBe('v2');
  });

  it('skip.write leaves the listed levels alone; an unknown level is a ConfigError', async () => {
    const { a } = twoInstances();
    await a.cache.set('local-only', 1, { skip: { write: ['l2'] } });
    expect(a.l1.getSync?.('local-only')?.value).toBe(1);
    expect(await a.l2.get('local-only')).toBeUndefined();
    await a.cache.setMany([{ key: 'shared-only', value: 2 }], { skip: { write: ['l1'] } });
    expect(a.l1.getSync?.('shared-only')).toBeUndefined();
    expect((await a.l2.get('shared-only'))?.value).toBe(2);
    await a.cache.deleteMany(['shared-only'], { skip: { write: ['l2'] } });
    expect((await a.l2.get('shared-only'))?.value).toBe(2);
    await expect(a.cache.set('k', 1, { skip: { write: ['l4' as 'l1'] } })).rejects.toBeInstanceOf(
      ConfigError,
    );
    await expect(a.cache.set('k', 1, { skip: { write: 'l1' as unknown as ['l1'] } })).rejects.toThrow(
      /array of levels/,
    );
  });
});
