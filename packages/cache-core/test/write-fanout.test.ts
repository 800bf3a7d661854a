import { afterEach, describe, expect, it } from 'vitest';
import {
  type CacheEntry,
  type CacheErrorEvent,
  type InvalidationBus,
  type InvalidationMessage,
  InvalidValueError,
  type MetricsAdapter,
  MultiLevelCache,
} from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';

/**
 * The write path through local tiers that write synchronously (`Tier.setSync`, the memory tier):
 * no promise per tier, the same outcomes as through `set` (metrics, failures, refusals, versions,
 * the bus), and the ordinary way for tiers without it.
 */

let caches: MultiLevelCache[] = [];
function make(options: ConstructorParameters<typeof MultiLevelCache>[0]): MultiLevelCache {
  const c = new MultiLevelCache(options);
  caches.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(caches.map((c) => c.close()));
  caches = [];
});

function metricsLog() {
  const calls: string[] = [];
  const metrics: MetricsAdapter = {
    hit: () => {},
    miss: () => {},
    latency: (level, op) => calls.push(`latency:${level}:${op}`),
    size: () => {},
    promotion: () => {},
    eviction: () => {},
    error: (level, op, type) => calls.push(`error:${level}:${op}:${type}`),
  };
  return { calls, metrics };
}

function busLog(): { bus: InvalidationBus; sent: InvalidationMessage[] } {
  const sent: InvalidationMessage[] = [];
  return {
    sent,
    bus: {
      publish: async (m) => {
        sent.push(m);
      },
      subscribe: () => {},
      close: async () => {},
    },
  };
}

describe('set through a synchronous local tier', () => {
  it('writes through setSync (never set), with the version, TTL and tags; resolves undefined', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const { calls, metrics } = metricsLog();
    const cache = make({ tiers: [l1], metrics, staleTtlMs: 500 });
    const before = Date.now();
    await expect(cache.set('k', { a: 1 }, { ttlMs: 60_000, tags: ['t'] })).resolves.toBeUndefined();
    expect(l1.calls.setSync).toBe(1);
    expect(l1.calls.set).toBeUndefined();
    const e = l1.store.get('k')!;
    expect(e.value).toEqual({ a: 1 });
    expect(e.freshUntil).toBeGreaterThanOrEqual(before + 60_000);
    expect(e.staleUntil - e.freshUntil).toBe(500);
    expect(e.version).toBeGreaterThan(0);
    expect(e.tags).toEqual(['t']);
    expect(calls).toEqual(['latency:l1:set']);
    // A later set wins (a higher version).
    await cache.set('k', 2);
    expect(l1.store.get('k')!.value).toBe(2);
    expect(l1.store.get('k')!.version).toBeGreaterThan(e.version!);
  });

  it('hands a memory-only write its entry frozen (the tier may keep it); shared tiers get it unfrozen', async () => {
    const capture = (tier: FakeTier) => {
      const seen: CacheEntry[] = [];
      const setSync = tier.setSync!;
      tier.setSync = (key, entry) => {
        seen.push(entry);
        setSync(key, entry);
      };
      return seen;
    };
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const seen = capture(l1);
    const cache = make({ tiers: [l1] });
    await cache.set('k', { a: 1 }, { tags: ['t'] });
    expect(seen).toHaveLength(1);
    expect(Object.isFrozen(seen[0])).toBe(true);
    expect(seen[0]).toMatchObject({ value: { a: 1 }, tags: ['t'] });
    expect(seen[0]!.version).toBeGreaterThan(0);
    // With a shared tier the same entry goes to both: neither gets it frozen.
    const m1 = new FakeTier({ level: 'l1', sync: true });
    const mSeen = capture(m1);
    const m2 = new FakeTier({ level: 'l2' });
    const shared: CacheEntry[] = [];
    const set = m2.set.bind(m2);
    m2.set = (key, entry) => {
      shared.push(entry);
      return set(key, entry);
    };
    const both = make({ tiers: [m1, m2], circuitBreaker: false });
    await both.set('k', 2);
    expect(mSeen).toHaveLength(1);
    expect(shared).toEqual([mSeen[0]]);
    expect(Object.isFrozen(mSeen[0])).toBe(false);
    // skip.write of the shared level leaves only the local tier: frozen again.
    await both.set('j', 3, { skip: { write: ['l2'] } });
    expect(Object.isFrozen(mSeen[1])).toBe(true);
    expect(shared).toHaveLength(1);
  });

  it('answers with a promise already resolved when no tier does I/O and there is no bus', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const cache = make({ tiers: [l1] });
    const order: string[] = [];
    const p = cache.set('k', 1).then(() => order.push('set'));
    await Promise.resolve().then(() => order.push('tick'));
    await p;
    expect(order).toEqual(['set', 'tick']);
  });

  it('rejects (never throws) an invalid key, value, lifetime or skip option', async () => {
    const cache = make({ tiers: [new FakeTier({ level: 'l1', sync: true })] });
    const calls = [
      () => cache.set('', 1),
      () => cache.set('k', undefined),
      () => cache.set('k', 1, { ttlMs: Number.NaN }),
      () => cache.set('k', 1, { skip: { write: ['l9' as 'l1'] } }),
      () => cache.set('k', 1, { tags: [''] }),
    ];
    for (const call of calls) {
      let p: Promise<void> | undefined;
      expect(() => {
        p = call();
      }).not.toThrow();
      await expect(p).rejects.toBeInstanceOf(Error);
    }
  });

  it('publishes the invalidation on the bus after the write, unless skipBus', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const { bus, sent } = busLog();
    const cache = make({ tiers: [l1], bus });
    await cache.set('k', 1);
    expect(sent).toEqual([{ type: 'delete', keys: ['k'], version: l1.store.get('k')!.version }]);
    await cache.set('j', 1, { skipBus: true });
    expect(sent).toHaveLength(1);
    expect(l1.store.get('j')!.value).toBe(1);
  });

  it('skip.write leaves the level alone', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2] });
    await cache.set('k', 1, { skip: { write: ['l1'] } });
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.get('k')!.value).toBe(1);
    await cache.set('j', 1, { skip: { write: ['l2'] } });
    expect(l1.store.get('j')!.value).toBe(1);
    expect(l2.store.has('j')).toBe(false);
  });

  it('a failing setSync is reported and skipped: the set resolves; the next write clears the failure', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const { calls, metrics } = metricsLog();
    const cache = make({ tiers: [l1], metrics });
    const errors: CacheErrorEvent[] = [];
    cache.on('error', (e) => errors.push(e));
    const boom = new Error('boom');
    l1.failWith = boom;
    await expect(cache.set('k', 1)).resolves.toBeUndefined();
    expect(errors.map((e) => [e.level, e.operation, e.key, e.error])).toEqual([['l1', 'set', 'k', boom]]);
    expect(calls).toContain('error:l1:set:unknown');
    expect(cache.tierStatus()).toEqual({ l1: 'degraded' });
    l1.failWith = undefined;
    await cache.set('k', 2);
    expect(cache.tierStatus()).toEqual({ l1: 'up' });
    expect(l1.store.get('k')!.value).toBe(2);
  });

  it('a value setSync refuses as invalid is the caller error: counted, removed from every tier, thrown', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l1b = new FakeTier({ level: 'l2', scope: 'local', sync: true });
    const { calls, metrics } = metricsLog();
    const cache = make({ tiers: [l1, l1b], metrics });
    await cache.set('k', 'old');
    const refuse = new InvalidValueError('too large');
    const realSetSync = l1b.setSync!;
    l1b.setSync = (key, e) => {
      if (e.value === 'huge') throw refuse;
      realSetSync(key, e);
    };
    const errors: CacheErrorEvent[] = [];
    cache.on('error', (e) => errors.push(e));
    await expect(cache.set('k', 'huge')).rejects.toBe(refuse);
    expect(l1.store.has('k')).toBe(false);
    expect(l1b.store.has('k')).toBe(false);
    expect(calls).toContain('error:l2:set:invalid_value');
    // Not a tier failure.
    expect(errors).toEqual([]);
    expect(cache.tierStatus()).toEqual({ l1: 'up', l2: 'up' });
  });

  it('with a shared tier: the local write is synchronous, the shared one awaited; a local refusal still rolls back', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2], circuitBreaker: false });
    await cache.set('k', 1);
    expect(l1.calls.setSync).toBe(1);
    expect(l2.calls.set).toBe(1);
    expect(l2.store.get('k')!.version).toBe(l1.store.get('k')!.version);
    const refuse = new InvalidValueError('not here');
    l1.setSync = () => {
      throw refuse;
    };
    await expect(cache.set('k', 2)).rejects.toBe(refuse);
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(false);
    l1.setSync = () => {
      throw new Error('down');
    };
    await expect(cache.set('j', 3)).resolves.toBeUndefined();
    expect(l2.store.get('j')!.value).toBe(3);
  });

  it('an entry superseded by a newer write is not written by a load that started before', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const cache = make({ tiers: [l1] });
    let release!: (v: string) => void;
    let called!: () => void;
    const loaderCalled = new Promise<void>((resolve) => (called = resolve));
    const loading = cache.getOrLoad('k', () => {
      called();
      return new Promise<string>((resolve) => (release = resolve));
    });
    await loaderCalled;
    await cache.set('k', 'new');
    release('old');
    await loading;
    await cache.flush();
    expect(l1.store.get('k')!.value).toBe('new');
    expect((await cache.get('k')).value).toBe('new');
    // A delete meanwhile: the local tier keeps no tombstone, the orchestrator's versions refuse the write.
    const deleting = cache.getOrLoad('j', () => {
      called();
      return new Promise<string>((resolve) => (release = resolve));
    });
    await new Promise((r) => setTimeout(r, 5));
    await cache.delete('j');
    release('old');
    await expect(deleting).resolves.toMatchObject({ value: 'old' });
    await cache.flush();
    expect(l1.store.has('j')).toBe(false);
  });

  it('local tiers without setSync go the ordinary way', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: false });
    const cache = make({ tiers: [l1] });
    await cache.set('k', 1);
    expect(l1.calls.set).toBe(1);
    expect(l1.calls.setSync).toBeUndefined();
  });

  it('async tiers (no setSync, no deadline): a failure is reported and remembered, a refusal rolls back', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: false });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2], tierTimeoutMs: 0, circuitBreaker: false });
    const errors: CacheErrorEvent[] = [];
    cache.on('error', (e) => errors.push(e));
    l2.failWith = new Error('l2 down');
    await expect(cache.set('k', 1)).resolves.toBeUndefined();
    expect(l1.store.get('k')!.value).toBe(1);
    expect(errors.map((e) => [e.level, e.operation])).toEqual([['l2', 'set']]);
    expect(cache.tierStatus()).toEqual({ l1: 'up', l2: 'degraded' });
    l2.failWith = undefined;
    const refuse = new InvalidValueError('no');
    const realSet = l1.set.bind(l1);
    l1.set = async (key, e) => {
      if (e.value === 'bad') throw refuse;
      return realSet(key, e);
    };
    await expect(cache.set('k', 'bad')).rejects.toBe(refuse);
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(false);
  });

  it('a single async local tier gets no superseded entry from a load', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: false });
    const cache = make({ tiers: [l1] });
    let release!: (v: string) => void;
    let called!: () => void;
    const loaderCalled = new Promise<void>((resolve) => (called = resolve));
    const loading = cache.getOrLoad('k', () => {
      called();
      return new Promise<string>((resolve) => (release = resolve));
    });
    await loaderCalled;
    await cache.delete('k');
    release('old');
    await expect(loading).resolves.toMatchObject({ value: 'old' });
    await cache.flush();
    expect(l1.store.has('k')).toBe(false);
    expect(l1.calls.set).toBeUndefined();
  });
});
