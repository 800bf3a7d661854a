import { describe, expect, it } from 'vitest';
import {
  type CacheEntry,
  type InvalidationBus,
  type InvalidationMessage,
  InvalidTagError,
  MultiLevelCache,
} from '../src/index.js';
import { TAG_RECORD_PREFIX, TagBook, TagVerdict, tagRecordKey } from '../src/tags.js';
import { FakeTier } from '../src/testing/index.js';

/** An in-memory bus connecting several instances; delivery is synchronous with publish. */
function memoryBus() {
  const handlers = new Set<(m: InvalidationMessage) => void>();
  const sent: InvalidationMessage[] = [];
  let down = false;
  const make = (): InvalidationBus => {
    let mine: ((m: InvalidationMessage) => void) | undefined;
    return {
      publish: async (m) => {
        if (down) throw new Error('bus down');
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
  return {
    make,
    sent,
    setDown(v: boolean) {
      down = v;
    },
  };
}

/** Two instances (L1 each, a shared L2 and L3) over one bus. */
function twoInstances(options: { bus?: boolean; tagRecordCacheMs?: number } = {}) {
  const l2Store = new Map<string, CacheEntry>();
  const l3Store = new Map<string, CacheEntry>();
  const bus = memoryBus();
  const make = () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, fresh: true, batch: true });
    const l2 = new FakeTier({ level: 'l2', store: l2Store, callbacks: true, batch: true, codec: true });
    const l3 = new FakeTier({ level: 'l3', store: l3Store, codec: true });
    const cache = new MultiLevelCache({
      tiers: [l1, l2, l3],
      bus: options.bus === false ? undefined : bus.make(),
      staleTtlMs: 60_000,
      tagRecordCacheMs: options.tagRecordCacheMs,
    } as ConstructorParameters<typeof MultiLevelCache>[0]);
    return { cache, l1, l2, l3 };
  };
  return { a: make(), b: make(), bus, l2Store, l3Store };
}

describe('tags: deleteByTag', () => {
  it('invalidates the tagged entries on every tier and instance, leaves the others', async () => {
    const { a, b, bus } = twoInstances();
    await a.cache.set('k1', 'one', { tags: ['ncm:1', 'year:2024'] });
    await a.cache.set('k2', 'two', { tags: ['ncm:2'] });
    await a.cache.set('k3', 'three');
    // B has every key in its L1.
    for (const k of ['k1', 'k2', 'k3']) expect((await b.cache.get(k)).value).toBeDefined();
    expect(b.l1.getSync?.('k1')).toBeDefined();

    await a.cache.deleteByTag(['year:2024']);
    // One record per tag in each shared tier, one bus message.
    expect(bus.sent.at(-1)).toMatchObject({ type: 'delete', keys: [tagRecordKey('year:2024', 'delete')] });
    expect((await a.l2.get(tagRecordKey('year:2024', 'delete')))?.value).toBeTypeOf('number');
    expect((await a.l3.get(tagRecordKey('year:2024', 'delete')))?.value).toBeTypeOf('number');

    for (const { cache } of [a, b]) {
      expect(await cache.get('k1')).toEqual({ value: undefined, level: 'external', stale: false });
      expect(cache.getSync('k1')).toBeUndefined();
      expect((await cache.get('k2')).value).toBe('two');
      expect((await cache.get('k3')).value).toBe('three');
    }
    // Evicted from B's L1 at once (the hot path checks nothing).
    expect(b.l1.getSync?.('k1')).toBeUndefined();
    // Still in L2/L3 as stored, but read as a miss through the cache (the record wins).
    expect((await a.l2.get('k1'))?.value).toBe('one');
    expect((await a.cache.getMany(['k1', 'k2'])).map((r) => r.value)).toEqual([undefined, 'two']);
  });

  it('a new instance (no bus message received) learns the invalidation from the shared tiers', async () => {
    const { a, l2Store, l3Store } = twoInstances();
    await a.cache.set('k', 'v', { tags: ['t'] });
    await a.cache.deleteByTag(['t']);
    const late = new MultiLevelCache({
      tiers: [
        new FakeTier({ level: 'l1', sync: true, fresh: true }),
        new FakeTier({ level: 'l2', store: l2Store, callbacks: true, codec: true }),
        new FakeTier({ level: 'l3', store: l3Store, codec: true }),
      ],
    });
    expect((await late.get('k')).value).toBeUndefined();
    expect((await late.getOrLoad('k', () => 'reloaded')).level).toBe('external');
  });

  it('an entry written after the invalidation is valid again', async () => {
    const { a, b } = twoInstances();
    await a.cache.set('k', 'old', { tags: ['t'] });
    await a.cache.deleteByTag(['t']);
    await b.cache.set('k', 'new', { tags: ['t'] });
    expect((await a.cache.get('k')).value).toBe('new');
    expect((await b.cache.get('k')).value).toBe('new');
  });

  it("a load in flight across a deleteByTag does not resurrect the value (tag version newer than the load's start)", async () => {
    const { a, b } = twoInstances();
    let release!: (v: string) => void;
    const slow = a.cache.getOrLoad('k', () => new Promise<string>((r) => (release = r)), { tags: ['t'] });
    await new Promise((r) => setTimeout(r, 5));
    await b.cache.deleteByTag(['t']);
    release('read-before-the-invalidation');
    // Its caller gets the value it asked for ...
    expect((await slow).value).toBe('read-before-the-invalidation');
    await a.cache.flush();
    // ... but no later read serves it, on either instance, from any level.
    expect(a.l1.getSync?.('k')).toBeUndefined();
    for (const { cache } of [a, b]) expect((await cache.get('k')).value).toBeUndefined();
    expect((await a.l2.get('k'))?.value).toBe('read-before-the-invalidation'); // stored, but read as deleted
    // A load started after the invalidation is kept.
    expect((await b.cache.getOrLoad('k', () => 'new', { tags: ['t'] })).value).toBe('new');
    await b.cache.flush();
    expect((await a.cache.get('k')).value).toBe('new');
  });

  it("ctx.setTags() sets the loaded entry's tags (replacing the call's), checked at once", async () => {
    const { a, b } = twoInstances();
    await a.cache.getOrLoad(
      'k',
      (ctx) => {
        ctx.setTags(['from-value']);
        return 'v';
      },
      { tags: ['from-call'] },
    );
    await a.cache.flush();
    expect((await a.l2.get('k'))?.tags).toEqual(['from-value']);
    await b.cache.deleteByTag(['from-call']);
    expect((await a.cache.get('k')).value).toBe('v');
    await b.cache.deleteByTag(['from-value']);
    expect((await a.cache.get('k')).value).toBeUndefined();
    await expect(
      a.cache.getOrLoad('bad', (ctx) => {
        ctx.setTags(['bad\u0000']);
        return 1;
      }),
    ).rejects.toBeInstanceOf(InvalidTagError);
    await expect(a.cache.getOrLoad('bad', () => 1, { tags: [''] })).rejects.toBeInstanceOf(InvalidTagError);
  });

  it('refuses invalid tags with InvalidTagError, and an empty list is a no-op', async () => {
    const { a, bus } = twoInstances();
    await expect(a.cache.set('k', 1, { tags: ['bad\ntag'] })).rejects.toBeInstanceOf(InvalidTagError);
    await expect(a.cache.deleteByTag(['\u0001ns:x:'])).rejects.toBeInstanceOf(InvalidTagError);
    const before = bus.sent.length;
    await a.cache.deleteByTag([]);
    expect(bus.sent.length).toBe(before);
  });

  it('skipBus: the record is written but no message is published; others learn it when their knowledge lapses', async () => {
    const { a, b, bus } = twoInstances({ tagRecordCacheMs: 30 });
    await a.cache.set('k', 'v', { tags: ['t'] });
    expect((await b.cache.get('k')).value).toBe('v'); // B checked 't' (no record) and cached that
    await b.cache.delete('k', { skip: { write: ['l2', 'l3'] }, skipBus: true }); // B's L1 only
    const before = bus.sent.length;
    await a.cache.deleteByTag(['t'], { skipBus: true });
    expect(bus.sent.length).toBe(before);
    expect((await a.cache.get('k')).value).toBeUndefined();
    await new Promise((r) => setTimeout(r, 40));
    expect((await b.cache.get('k')).value).toBeUndefined();
  });

  it('learns invalidations queued while the bus was down once it is back', async () => {
    const { a, b, bus } = twoInstances({ tagRecordCacheMs: 60_000 });
    await a.cache.set('k', 'v', { tags: ['t'] });
    expect((await b.cache.get('k')).value).toBe('v');
    bus.setDown(true);
    await a.cache.deleteByTag(['t']);
    // B's L1 still holds it (the bus lost the message) ...
    expect(b.cache.getSync('k')).toBe('v');
    bus.setDown(false);
    // ... until the queued message is re-sent.
    const deadline = Date.now() + 5000;
    while (b.cache.getSync('k') !== undefined && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(b.cache.getSync('k')).toBeUndefined();
    await a.cache.close();
    await b.cache.close();
  }, 10_000);
});

describe('tags: expireByTag', () => {
  it('turns tagged entries stale everywhere, kept as fail-safe fallbacks', async () => {
    const { a, b } = twoInstances();
    await a.cache.set('k', 'v', { tags: ['t'] });
    await a.cache.set('u', 'untagged');
    expect((await b.cache.get('k')).value).toBe('v');
    await a.cache.expireByTag(['t']);
    for (const { cache } of [a, b]) {
      expect((await cache.get('k')).value).toBeUndefined();
      expect(await cache.get('k', { allowStale: true })).toMatchObject({ value: 'v', stale: true });
      expect((await cache.get('u')).value).toBe('untagged');
    }
    // A failing loader falls back on the expired value.
    const r = await b.cache.getOrLoad('k', () => {
      throw new Error('upstream down');
    });
    expect(r).toMatchObject({ value: 'v', stale: true });
    // A succeeding one replaces it.
    expect((await a.cache.getOrLoad('k', () => 'fresh')).value).toBe('fresh');
    expect((await a.cache.get('k')).value).toBe('fresh');
  });
});

describe('tags: index overflow', () => {
  it('past maxIndexedTagKeys, an invalidation empties the local tiers (delete) or turns them stale (expire)', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, fresh: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = new MultiLevelCache({ tiers: [l1, l2], maxIndexedTagKeys: 1, staleTtlMs: 60_000 });
    await cache.set('a', 1, { tags: ['x'] });
    await cache.set('b', 2, { tags: ['y'] }); // not indexed: overflow
    await cache.set('c', 3);
    await cache.expireByTag(['unrelated']);
    await cache.flush();
    expect(l1.getSync?.('c')?.freshUntil).toBeLessThanOrEqual(Date.now()); // every local entry stale
    expect((await cache.get('c')).value).toBe(3); // fresh from L2, untagged
    await cache.set('d', 4, { tags: ['z'] });
    await cache.set('e', 5, { tags: ['w'] }); // overflow again
    await cache.deleteByTag(['unrelated-2']);
    await cache.flush();
    expect(l1.getSync?.('d')).toBeUndefined(); // the local tier was emptied
    expect((await cache.get('d')).value).toBe(4); // still valid in L2
  });
});

describe('tags: setMany', () => {
  it('each item keeps its own tags', async () => {
    const { a, b } = twoInstances();
    await a.cache.setMany([
      { key: 'x', value: 1, tags: ['odd'] },
      { key: 'y', value: 2, tags: ['even'] },
      { key: 'z', value: 3 },
    ]);
    expect((await b.cache.getMany(['x', 'y', 'z'])).map((r) => r.value)).toEqual([1, 2, 3]);
    await b.cache.deleteByTag(['odd']);
    expect((await a.cache.getMany(['x', 'y', 'z'])).map((r) => r.value)).toEqual([undefined, 2, 3]);
  });
});

describe('TagBook', () => {
  const book = () =>
    new TagBook({ recordTtlMs: 60_000, cacheMs: 1000, keepMs: 60_000, timeoutMs: 100, maxIndexedKeys: 3 });

  it('verdicts: deleted beats expired; untagged and unknown tags are valid', () => {
    const b = book();
    const e = (version: number, tags?: string[]): CacheEntry => ({
      value: 1,
      freshUntil: Date.now() + 1000,
      staleUntil: Date.now() + 2000,
      version,
      tags,
    });
    expect(b.verdict(e(5, ['a']))).toBe(TagVerdict.Valid);
    b.learn(['a'], 'expire', 10);
    b.learn(['b'], 'delete', 10);
    expect(b.verdict(e(5))).toBe(TagVerdict.Valid);
    expect(b.verdict(e(5, ['a']))).toBe(TagVerdict.Expired);
    expect(b.verdict(e(5, ['a', 'b']))).toBe(TagVerdict.Deleted);
    expect(b.verdict(e(11, ['a', 'b']))).toBe(TagVerdict.Valid);
    expect(b.verdict(e(5, ['c']))).toBe(TagVerdict.Valid);
  });

  it('indexes local tagged keys up to maxIndexedKeys, then asks for the local tiers to be emptied', () => {
    const b = book();
    const e = (tags: string[]): CacheEntry => ({
      value: 1,
      freshUntil: 1,
      staleUntil: 2,
      version: 100,
      tags,
    });
    expect(b.invalidated('k1', e(['a']))).toBe(false);
    expect(b.invalidated('k2', e(['a', 'b']))).toBe(false);
    expect(b.learn(['a'], 'delete', 200)?.sort()).toEqual(['k1', 'k2']);
    expect(b.invalidated('k1', e(['a']))).toBe(true); // older than the record
    for (const k of ['k3', 'k4', 'k5', 'k6']) b.invalidated(k, e(['c']));
    expect(b.learn(['c'], 'delete', 300)).toBeUndefined(); // overflowed: empty the local tiers
    b.invalidated('k7', e(['d']));
    expect(b.learn(['d'], 'delete', 400)).toEqual(['k7']);
  });

  it('finds tag record keys in a bus message, apart from ordinary keys', () => {
    expect(TagBook.recordsIn(['a', 'b'])).toBeUndefined();
    expect(TagBook.recordsIn([tagRecordKey('t', 'delete'), 'a', tagRecordKey('u', 'expire')])).toEqual({
      tags: ['t', 'u'],
      rest: ['a'],
    });
    expect(TagBook.recordsIn([`${TAG_RECORD_PREFIX}x:weird`])).toEqual({ tags: [], rest: [] });
  });

  it('a failed record fetch leaves a tagged entry stale, never fresh', async () => {
    const b = book();
    b.sources = [
      {
        name: 'down',
        level: 'l2',
        scope: 'shared',
        get: () => Promise.reject(new Error('down')),
        set: async () => undefined,
        delete: async () => false,
        close: async () => undefined,
      },
    ];
    const entry: CacheEntry = {
      value: 1,
      freshUntil: Date.now() + 1000,
      staleUntil: Date.now() + 2000,
      tags: ['t'],
    };
    expect(await b.check(entry)).toBe(TagVerdict.Expired);
  });
});
