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
import { COALESCED_MAX, DIRECT_WRITES_PER_TURN } from '../src/write-fanout.js';

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

  it('hands a memory-only write its tagged entry frozen (the tier may keep it); untagged ones and shared tiers get it unfrozen', async () => {
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
    // Without tags the memory tier keeps no entry object (it builds one when asked): no freeze.
    await cache.set('u', { b: 2 });
    expect(seen).toHaveLength(2);
    expect(Object.isFrozen(seen[1])).toBe(false);
    expect(seen[1]).toMatchObject({ value: { b: 2 } });
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
    // skip.write of the shared level leaves only the local tier: frozen again (tagged).
    await both.set('j', 3, { skip: { write: ['l2'] }, tags: ['t'] });
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

describe('single writes to a shared tier in one turn go as batches', () => {
  const values = (n: number) => Array.from({ length: n }, (_, i) => i);

  it('a lone write goes at once; a burst in one turn reaches the shared tier as setMany batches, each key at its own version', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', batch: true });
    const cache = make({ tiers: [l1, l2] });
    await cache.set('lone', 'x');
    expect(l2.calls.set).toBe(1);
    expect(l2.calls.setMany).toBeUndefined();
    await Promise.all(values(300).map((i) => cache.set(`k${i}`, i)));
    // A few go at once, the rest as one batch (without batching: 301 single writes).
    expect(l2.calls.set).toBeLessThanOrEqual(1 + DIRECT_WRITES_PER_TURN);
    expect(l2.calls.setMany).toBe(1);
    for (const i of values(300)) {
      expect(l2.store.get(`k${i}`)?.value).toBe(i);
      expect(l2.store.get(`k${i}`)?.version).toBe(l1.store.get(`k${i}`)?.version);
    }
  });

  it('the loads a merged answer settles in one turn write their keys in batches (background writes)', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', batch: true });
    const l3 = new FakeTier({ level: 'l3', batch: true });
    const cache = make({ tiers: [l1, l2, l3] });
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const loads = values(2500).map((i) =>
      cache.getOrLoad(`k${i}`, async () => {
        await answered;
        return i;
      }),
    );
    answer();
    await Promise.all(loads);
    await cache.flush();
    for (const tier of [l2, l3]) {
      expect(tier.calls.set ?? 0).toBeLessThanOrEqual(2 * DIRECT_WRITES_PER_TURN);
      // At most COALESCED_MAX keys per batch.
      expect(tier.calls.setMany).toBeGreaterThanOrEqual(
        Math.ceil((2500 - 2 * DIRECT_WRITES_PER_TURN) / COALESCED_MAX),
      );
      for (const i of values(2500)) expect(tier.store.get(`k${i}`)?.value).toBe(i);
    }
  });

  it('a delete that reaches the tier before a queued write keeps the key deleted (the tombstone refuses the older write)', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', batch: true });
    const cache = make({ tiers: [l1, l2] });
    const writes = values(100).map((i) => cache.set(`k${i}`, i));
    // k99's write is queued (past the direct writes of this turn); the delete goes at once.
    const deleted = cache.delete('k99');
    await Promise.all([...writes, deleted]);
    expect(l2.calls.setMany).toBe(1);
    expect(l2.store.get('k99')).toBeUndefined();
    await expect(cache.get('k99')).resolves.toMatchObject({ value: undefined });
  });

  it('without tombstones (tombstoneMs 0) every write goes alone, in order with deletes', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', batch: true });
    const cache = make({ tiers: [l1, l2], tombstoneMs: 0 });
    await Promise.all(values(100).map((i) => cache.set(`k${i}`, i)));
    expect(l2.calls.set).toBe(100);
    expect(l2.calls.setMany).toBeUndefined();
  });

  it('a value the tier refuses in a batch fails its own write only; the batch is written key by key', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', batch: true, codec: true });
    const cache = make({ tiers: [l1, l2] });
    const bad = JSON.parse('{"__proto__": 1}') as object;
    const writes = values(50).map((i) => cache.set(`k${i}`, i === 40 ? bad : i));
    const outcomes = await Promise.allSettled(writes);
    expect(l2.calls.setMany).toBe(1);
    for (const [i, o] of outcomes.entries()) expect(o.status).toBe(i === 40 ? 'rejected' : 'fulfilled');
    expect((outcomes[40] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidValueError);
    for (const i of values(50)) {
      if (i === 40) {
        expect(l1.store.has('k40')).toBe(false);
        expect(l2.store.has('k40')).toBe(false);
      } else expect(l2.store.get(`k${i}`)?.value).toBe(i);
    }
  });

  it('a failed batch is one failure of the tier: every key skipped and remembered, the others answered', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', batch: true });
    const { calls, metrics } = metricsLog();
    const cache = make({ tiers: [l1, l2], metrics, circuitBreaker: { failureThreshold: 3 } });
    await cache.set('warm', 0);
    l2.failWith = new Error('down');
    const direct = DIRECT_WRITES_PER_TURN;
    await Promise.all(values(direct + 100).map((i) => cache.set(`k${i}`, i)));
    // The direct writes fail one by one (3 open the circuit), the batch is refused by the open circuit.
    expect(calls.filter((c) => c === 'error:l2:set_many:circuit_open')).toHaveLength(1);
    for (const i of values(direct + 100)) expect(l1.store.get(`k${i}`)?.value).toBe(i);
  });
});
