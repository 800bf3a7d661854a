import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type CacheEntry,
  type CacheEvents,
  type CacheHitEvent,
  type InvalidationBus,
  type InvalidationMessage,
  MultiLevelCache,
  type MultiLevelCacheOptions,
  type TierLevel,
  TimeoutError,
} from '../src/index.js';
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

function tiers() {
  return { l1: new FakeTier({ level: 'l1', sync: true, fresh: true }), l2: new FakeTier({ level: 'l2' }) };
}

function entry<T>(value: T, ttlMs: number, staleMs = 0): CacheEntry<T> {
  const now = Date.now();
  return { value, freshUntil: now + ttlMs, staleUntil: now + ttlMs + staleMs, createdAt: now - 1000 };
}

function stale<T>(value: T): CacheEntry<T> {
  const now = Date.now();
  return { value, freshUntil: now - 1000, staleUntil: now + 600_000, createdAt: now - 2000 };
}

/** Records every event of `names` as `[name, payload]`. */
function record(cache: MultiLevelCache, names: (keyof CacheEvents)[]) {
  const seen: [string, unknown][] = [];
  for (const name of names) cache.on(name, (e: unknown) => seen.push([name, e]));
  return seen;
}

function gate<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** An in-memory bus between instances (delivery synchronous with publish). */
function memoryBus() {
  const handlers = new Set<(m: InvalidationMessage) => void>();
  return (): InvalidationBus => {
    let mine: ((m: InvalidationMessage) => void) | undefined;
    return {
      publish: async (m) => {
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
}

describe('events: hit and miss', () => {
  it('get, getSync and getMany: one hit (level, stale) or miss per key, from what was answered', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    l1.store.set('a', entry('A', 60_000));
    l2.store.set('b', entry('B', 60_000));
    l1.store.set('s', stale('S'));
    const seen = record(cache, ['hit', 'miss']);
    await cache.get('a');
    await cache.get('b');
    await cache.get('none');
    await cache.get('s', { allowStale: true });
    expect(seen).toEqual([
      ['hit', { key: 'a', level: 'l1', stale: false }],
      ['hit', { key: 'b', level: 'l2', stale: false }],
      ['miss', { key: 'none' }],
      ['hit', { key: 's', level: 'l1', stale: true }],
    ]);
    seen.length = 0;
    // getSync: a hit only (on undefined the caller's get or getOrLoad tells what it found).
    expect(cache.getSync('a')).toBe('A');
    expect(cache.getSync('none')).toBeUndefined();
    expect(seen).toEqual([['hit', { key: 'a', level: 'l1', stale: false }]]);
    seen.length = 0;
    await cache.getMany(['a', 'none', 'b']);
    expect(seen).toEqual([
      ['hit', { key: 'a', level: 'l1', stale: false }],
      ['miss', { key: 'none' }],
      ['hit', { key: 'b', level: 'l1', stale: false }], // promoted by the get above
    ]);
    seen.length = 0;
    await cache.get('b', { skip: { read: ['l1'] } });
    expect(seen).toEqual([['hit', { key: 'b', level: 'l2', stale: false }]]);
  });

  it('getSync without a getFreshValueSync L1 tells its hits too', async () => {
    const cache = make({ tiers: [new FakeTier({ level: 'l1', sync: true })] });
    await cache.set('k', 1);
    const seen = record(cache, ['hit']);
    expect(cache.getSync('k')).toBe(1);
    expect(seen).toEqual([['hit', { key: 'k', level: 'l1', stale: false }]]);
  });

  it('getOrLoad: a hit, or a miss when the loader answers, once per caller (joined callers too)', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    l1.store.set('a', entry('A', 60_000));
    l2.store.set('b', entry('B', 60_000));
    const seen = record(cache, ['hit', 'miss']);
    await cache.getOrLoad('a', () => 'unused');
    await cache.getOrLoad('b', () => 'unused');
    const release = gate<void>();
    const loader = async () => {
      await release.promise;
      return 'L';
    };
    const both = Promise.all([cache.getOrLoad('c', loader), cache.getOrLoad('c', loader)]);
    release.resolve();
    await both;
    expect(seen).toEqual([
      ['hit', { key: 'a', level: 'l1', stale: false }],
      ['hit', { key: 'b', level: 'l2', stale: false }],
      ['miss', { key: 'c' }],
      ['miss', { key: 'c' }],
    ]);
    seen.length = 0;
    // skip.read: a fresh value of the levels read is a hit.
    await cache.getOrLoad('b', () => 'unused', { skip: { read: ['l1'] } });
    expect(seen).toEqual([['hit', { key: 'b', level: 'l2', stale: false }]]);
  });
});

describe('events: writes and invalidations', () => {
  it('set, setMany and a load: set (keys, source)', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    const seen = record(cache, ['set']);
    await cache.set('a', 1);
    await cache.setMany([
      { key: 'b', value: 2 },
      { key: 'c', value: 3 },
    ]);
    await cache.getOrLoad('d', () => 4);
    // ctx.skip(): answered, not stored: no set.
    await cache.getOrLoad('e', (ctx) => {
      ctx.skip();
      return 5;
    });
    expect(seen).toEqual([
      ['set', { keys: ['a'], source: 'set' }],
      ['set', { keys: ['b', 'c'], source: 'set' }],
      ['set', { keys: ['d'], source: 'load' }],
    ]);
  });

  it('delete, deleteMany, pull, deleteByTag; expire, expireMany, expireByTag; clear and a namespace clear', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    await cache.set('a', 1);
    await cache.set('p', 2);
    const seen = record(cache, ['delete', 'expire', 'clear']);
    await cache.delete('a');
    await cache.deleteMany(['b', 'c']);
    expect(await cache.pull('p')).toBe(2);
    await cache.deleteByTag(['t1', 't2']);
    await cache.deleteByTag([]); // nothing to invalidate: no event
    await cache.expire('x');
    await cache.expireMany(['y', 'z']);
    await cache.expireByTag(['t3']);
    await cache.clear();
    await cache.namespace('users').namespace('eu').clear();
    expect(seen).toEqual([
      ['delete', { keys: ['a'] }],
      ['delete', { keys: ['b', 'c'] }],
      ['delete', { keys: ['p'] }],
      ['delete', { keys: [], tags: ['t1', 't2'] }],
      ['expire', { keys: ['x'] }],
      ['expire', { keys: ['y', 'z'] }],
      ['expire', { keys: [], tags: ['t3'] }],
      ['clear', {}],
      ['clear', { namespace: 'users:eu:' }],
    ]);
  });

  it('bus:published on the writer, bus:received on the other instance', async () => {
    const bus = memoryBus();
    const a = make({ tiers: [new FakeTier({ level: 'l1', sync: true })], bus: bus() });
    const b = make({ tiers: [new FakeTier({ level: 'l1', sync: true })], bus: bus() });
    const published = record(a, ['bus:published', 'bus:received']);
    const received = record(b, ['bus:published', 'bus:received']);
    await a.set('k', 1);
    await a.clear();
    expect(published.map(([n, e]) => [n, (e as { message: InvalidationMessage }).message.type])).toEqual([
      ['bus:published', 'delete'],
      ['bus:published', 'clear'],
    ]);
    expect(received).toEqual(published.map(([, e]) => ['bus:received', e]));
    expect(received[0]).toEqual(['bus:received', { message: expect.objectContaining({ keys: ['k'] }) }]);
  });
});

describe('events: fail-safe and timeouts', () => {
  it('failsafe: a failed load keeps the stale value (level, error); its callers get it', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], failSafeBackoffMs: 60_000 });
    l2.store.set('k', stale('old'));
    const seen = record(cache, ['failsafe', 'error']);
    const boom = new Error('upstream down');
    const r = await cache.getOrLoad('k', () => {
      throw boom;
    });
    expect(r).toMatchObject({ value: 'old', level: 'l2', stale: true });
    expect(seen).toEqual([
      ['failsafe', { key: 'k', level: 'l2', error: boom }],
      ['error', expect.objectContaining({ level: 'external', operation: 'load', key: 'k', error: boom })],
    ]);
    // Without a stale value there is no fallback: the error only.
    seen.length = 0;
    await expect(
      cache.getOrLoad('none', () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(seen.map(([n]) => n)).toEqual(['error']);
  });

  it('timeout: soft (stale answered, the load goes on), hard with and without a stale value', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 20, hardTimeoutMs: 60_000 });
    l2.store.set('s', stale('old'));
    const seen = record(cache, ['timeout', 'hit', 'miss']);
    const release = gate<void>();
    const slow = async () => {
      await release.promise;
      return 'new';
    };
    expect(await cache.getOrLoad('s', slow)).toMatchObject({ value: 'old', stale: true });
    await expect(cache.getOrLoad('h', slow, { hardTimeoutMs: 20 })).rejects.toBeInstanceOf(TimeoutError);
    l2.store.set('f', entry('cached', 60_000));
    // forceFresh: the cached value is only the fallback of a hard timeout.
    expect(await cache.getOrLoad('f', slow, { forceFresh: true, hardTimeoutMs: 20 })).toMatchObject({
      value: 'cached',
      stale: true,
    });
    // softTimeoutMs 0: the stale value at once.
    l2.store.set('z', stale('zero'));
    expect(await cache.getOrLoad('z', slow, { softTimeoutMs: 0 })).toMatchObject({ value: 'zero' });
    release.resolve();
    await cache.flush();
    expect(seen).toEqual([
      ['timeout', { key: 's', kind: 'soft', ms: 20, stale: true }],
      ['hit', { key: 's', level: 'l2', stale: true }],
      ['timeout', { key: 'h', kind: 'hard', ms: 20, stale: false }],
      ['timeout', { key: 'f', kind: 'hard', ms: 20, stale: true }],
      ['hit', { key: 'f', level: 'l2', stale: true }],
      ['timeout', { key: 'z', kind: 'soft', ms: 0, stale: true }],
      ['hit', { key: 'z', level: 'l2', stale: true }],
    ]);
  });
});

describe('events: error, circuit and recovered keep their names and payloads', () => {
  it('error on a failing tier, circuit open/half_open/closed, recovered after the outage', async () => {
    const { l1, l2 } = tiers();
    const cache = make({
      tiers: [l1, l2],
      circuitBreaker: { failureThreshold: 1, cooldownMs: 20 },
      recoveryIntervalMs: 20,
    });
    const seen = record(cache, ['error', 'circuit', 'recovered']);
    l2.failWith = new Error('down');
    await cache.set('k', 'v');
    const recovered = new Promise((r) => cache.once('recovered', r));
    l2.failWith = undefined;
    await recovered;
    expect(seen).toContainEqual([
      'error',
      expect.objectContaining({ level: 'l2', tier: 'fake-l2', operation: 'set', key: 'k' }),
    ]);
    expect(seen).toContainEqual(['circuit', { level: 'l2', tier: 'fake-l2', state: 'open' }]);
    expect(seen).toContainEqual(['circuit', { level: 'l2', tier: 'fake-l2', state: 'closed' }]);
    expect(seen).toContainEqual(['recovered', { level: 'l2', tier: 'fake-l2', keys: 1 }]);
  });
});

describe('events: a throwing listener changes nothing the cache does', () => {
  it('invalidations are applied, loads stored and published, callers answered; the exception is logged', async () => {
    const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      child: () => logger,
      debug: () => {},
      info: () => {},
      warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', fields, msg }),
      error: () => {},
    };
    const bus = memoryBus();
    const shared = new FakeTier({ level: 'l2' });
    const a = make({ tiers: [new FakeTier({ level: 'l1', sync: true }), shared], bus: bus(), logger });
    const b = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), new FakeTier({ level: 'l2', store: shared.store })],
      bus: bus(),
    });
    const boom = new Error('listener bug');
    for (const c of [a, b])
      for (const name of ['hit', 'miss', 'set', 'delete', 'bus:published', 'bus:received'] as const)
        c.on(name, () => {
          throw boom;
        });
    await b.set('k', 'old');
    expect((await b.get('k')).value).toBe('old');
    // A's load is answered, stored, and its invalidation reaches B despite every listener throwing.
    expect(await a.getOrLoad('k', () => 'new', { forceFresh: true })).toMatchObject({ value: 'new' });
    await a.flush();
    expect(shared.store.get('k')?.value).toBe('new');
    expect((await b.get('k')).value).toBe('new');
    await a.delete('k');
    expect((await b.get('k')).value).toBeUndefined();
    expect(cacheWarnings(lines)).toContain('set');
    expect(cacheWarnings(lines)).toContain('bus:published');
    expect(lines.every((l) => l.fields.err !== undefined)).toBe(true);
  });
});

function cacheWarnings(lines: { fields: Record<string, unknown>; msg: string }[]): unknown[] {
  return lines.filter((l) => l.msg === 'cache event listener failed').map((l) => l.fields.event);
}

describe('events: nothing is built or emitted without a listener', () => {
  async function everything(cache: MultiLevelCache, l2: FakeTier) {
    l2.store.set('s', stale('old'));
    await cache.set('a', 1);
    await cache.setMany([{ key: 'b', value: 2 }]);
    cache.getSync('a');
    await cache.get('a');
    await cache.get('none');
    await cache.getMany(['a', 'none']);
    await cache.getOrLoad('a', () => 0);
    await cache.getOrLoad('c', () => 3);
    await cache.getOrLoad('s', () => {
      throw new Error('x');
    });
    await cache.getOrLoad('s2', () => 4, { softTimeoutMs: 0 });
    await cache.delete('a');
    await cache.expire('b');
    await cache.deleteByTag(['t']);
    await cache.expireByTag(['t']);
    await cache.namespace('n').clear();
    await cache.clear();
    await cache.flush();
  }

  it('emit is never called while nobody listens', async () => {
    const { l1, l2 } = tiers();
    const cache = make({
      tiers: [l1, l2],
      bus: memoryBus()(),
      circuitBreaker: { failureThreshold: 1, cooldownMs: 10 },
      recoveryIntervalMs: 10,
    });
    const emit = vi.spyOn(cache, 'emit');
    await everything(cache, l2);
    // A tier outage: failures, the circuit opening and closing, the recovery.
    l2.failWith = new Error('down');
    await cache.set('o', 1);
    await cache.get('o2');
    l2.failWith = undefined;
    const deadline = Date.now() + 5000;
    // Until the circuit closed and the recovery wrote 'o' there again.
    while (l2.store.get('o')?.value !== 1 || cache.tierStatus().l2 !== 'up') {
      if (Date.now() > deadline) throw new Error('the L2 never recovered');
      await new Promise((r) => setTimeout(r, 5));
      await cache.get('probe');
    }
    expect(emit).not.toHaveBeenCalled();
    // A listener of one kind: only that kind is emitted.
    cache.on('set', () => {});
    emit.mockClear();
    await everything(cache, l2);
    expect(new Set(emit.mock.calls.map((c) => c[0]))).toEqual(new Set(['set']));
  });

  it('the switches follow on, off, once and removeAllListeners', () => {
    const cache = make({ tiers: [new FakeTier({ level: 'l1', sync: true })] });
    const sw = cache.listening;
    expect(Object.values(sw).every((v) => v === false)).toBe(true);
    const f = (_e: CacheHitEvent) => {};
    cache.on('hit', f);
    cache.on('hit', f);
    expect(sw.hit).toBe(true);
    cache.off('hit', f);
    expect(sw.hit).toBe(true); // one listener left
    cache.off('hit', f);
    expect(sw.hit).toBe(false);
    cache.once('bus:received', () => {});
    expect(sw.busReceived).toBe(true);
    cache.emit('bus:received', { message: { type: 'resync' } });
    expect(sw.busReceived).toBe(false);
    cache.prependListener('miss', () => {});
    cache.addListener('timeout', () => {});
    expect(sw.miss && sw.timeout).toBe(true);
    cache.removeAllListeners('miss');
    expect(sw.miss).toBe(false);
    expect(sw.timeout).toBe(true);
    // Every listener removed, the cache's own watchers too: they come back.
    cache.removeAllListeners();
    expect(sw.timeout).toBe(false);
    cache.on('clear', () => {});
    expect(sw.clear).toBe(true);
    expect(cache.listenerCount('newListener')).toBe(1);
  });

  it('listeners are typed by the event map', () => {
    const cache = make({ tiers: [new FakeTier({ level: 'l1', sync: true })] });
    cache.on('hit', (e) => {
      const level: TierLevel = e.level;
      const stale: boolean = e.stale;
      void [level, stale];
    });
    cache.on('timeout', (e) => {
      const kind: 'soft' | 'hard' = e.kind;
      void kind;
    });
    // @ts-expect-error: not an event of the cache
    cache.on('hits', () => {});
    // @ts-expect-error: a 'miss' carries no level
    cache.on('miss', (e) => e.level);
    expect(cache.listenerCount('hit')).toBe(1);
  });
});
