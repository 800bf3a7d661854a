import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type CacheEntry,
  type DistributedLock,
  type InvalidationBus,
  type InvalidationMessage,
  InvalidValueError,
  type Lease,
  MultiLevelCache,
  type MultiLevelCacheOptions,
  type ReadCallbacks,
} from '../src/index.js';
import { nextVersion } from '../src/internal.js';
import { FakeTier } from '../src/testing/index.js';

let caches: MultiLevelCache[] = [];
function make(options: MultiLevelCacheOptions) {
  const c = new MultiLevelCache({ coalesceWindowMs: 0, ...options });
  caches.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(caches.map((c) => c.close()));
  caches = [];
});

/** A promise with its resolve/reject outside. */
function gate<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Polls until `check` holds (causes, not durations: the timeout is only a safety net). */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** An in-memory bus connecting several instances; delivery is synchronous with publish. */
function memoryBus() {
  const handlers = new Set<(m: InvalidationMessage) => void>();
  let failing = 0;
  const sent: InvalidationMessage[] = [];
  const make = (): InvalidationBus & { deliver(m: InvalidationMessage): void } => {
    let mine: ((m: InvalidationMessage) => void) | undefined;
    return {
      publish: async (m) => {
        if (failing > 0) {
          failing--;
          throw new Error('bus down');
        }
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
      deliver: (m) => mine?.(m),
    };
  };
  return {
    make,
    sent,
    failNext(n: number) {
      failing = n;
    },
  };
}

const fresh = (value: unknown, extra: Partial<CacheEntry> = {}): CacheEntry => {
  const now = Date.now();
  return { value, freshUntil: now + 60_000, staleUntil: now + 120_000, createdAt: now, ...extra };
};

describe('versions: no load, promotion or re-store undoes a newer write or delete', () => {
  it('a delete during a load: the load does not write its value back, later callers load again', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2] });
    const first = gate<string>();
    let calls = 0;
    const p1 = cache.getOrLoad('k', () => {
      calls++;
      return first.promise;
    });
    await until(() => calls === 1, 'the first load started');
    await cache.delete('k');
    // A caller after the delete starts a new load; it does not join the one from before.
    const p2 = cache.getOrLoad('k', () => {
      calls++;
      return 'v2';
    });
    expect((await p2).value).toBe('v2');
    expect(calls).toBe(2);
    first.resolve('v1');
    expect((await p1).value).toBe('v1');
    await cache.flush();
    expect(l1.store.get('k')?.value).toBe('v2');
    expect(l2.store.get('k')?.value).toBe('v2');
    expect(await cache.getOrLoad('k', () => 'never')).toMatchObject({ value: 'v2', level: 'l1' });
  });

  it('a delete during a load, nothing loaded since: the key stays deleted in every tier', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2] });
    const load = gate<string>();
    let started = false;
    const p = cache.getOrLoad('k', () => {
      started = true;
      return load.promise;
    });
    await until(() => started, 'the load started');
    await cache.delete('k');
    load.resolve('v1');
    await p;
    await cache.flush();
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(false);
    expect(l1.dropped + l2.dropped).toBeGreaterThanOrEqual(1);
  });

  it("another instance's set during a load wins over the load's older value, in L1 and L2", async () => {
    const bus = memoryBus();
    const store = new Map<string, CacheEntry>();
    const a = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), new FakeTier({ level: 'l2', store })],
      bus: bus.make(),
    });
    const bL1 = new FakeTier({ level: 'l1', sync: true });
    const b = make({ tiers: [bL1, new FakeTier({ level: 'l2', store })], bus: bus.make() });
    const load = gate<string>();
    let started = false;
    const p = a.getOrLoad('k', () => {
      started = true;
      return load.promise;
    });
    await until(() => started, 'the load started');
    await b.set('k', 'v3');
    load.resolve('v1');
    await p;
    await a.flush();
    expect(store.get('k')?.value).toBe('v3');
    expect((await a.get('k')).value).toBe('v3');
    expect((await b.get('k')).value).toBe('v3');
  });

  it('an L3 read that started before a delete is not promoted afterwards', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const l3 = new FakeTier({ level: 'l3' });
    const old = nextVersion();
    l3.store.set('k', fresh('old', { version: old }));
    const pending: ReadCallbacks[] = [];
    l3.getWith = (_key, cb) => pending.push(cb);
    const cache = make({ tiers: [l1, l2, l3], tierTimeoutMs: 60_000 });
    const read = cache.get('k');
    await until(() => pending.length === 1, 'L3 was asked');
    await cache.delete('k');
    pending[0]!.ok(l3.store.get('k') ?? fresh('old', { version: old }));
    expect((await read).value).toBe('old'); // it began before the delete: either answer is fine
    await cache.flush();
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(false);
  });

  it('a fail-safe re-store does not bring back a key deleted meanwhile', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2], staleTtlMs: 60_000, softTimeoutMs: 0 });
    const now = Date.now();
    l2.store.set('k', {
      value: 'stale',
      freshUntil: now - 5000,
      staleUntil: now + 60_000,
      version: nextVersion(),
    });
    const load = gate<string>();
    let started = false;
    const r = await cache.getOrLoad('k', () => {
      started = true;
      return load.promise;
    });
    expect(r).toMatchObject({ value: 'stale', stale: true });
    await until(() => started, 'the background load started');
    await cache.delete('k');
    load.reject(new Error('upstream 500'));
    await cache.flush();
    expect(l1.store.has('k')).toBe(false);
  });

  it('a clear refuses loads that started before it', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2] });
    const load = gate<string>();
    let started = false;
    const p = cache.getOrLoad('k', () => {
      started = true;
      return load.promise;
    });
    await until(() => started, 'the load started');
    await cache.clear();
    load.resolve('before clear');
    await p;
    await cache.flush();
    expect(l1.store.size + l2.store.size).toBe(0);
  });

  it('entries carry the version and the loaded ttlMs; deletes pass version and tombstoneMs', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, maxTtlMs: 1000 });
    const l2 = new FakeTier({ level: 'l2' });
    const deletes: unknown[] = [];
    const del = l2.delete.bind(l2);
    l2.delete = (key, options) => {
      deletes.push(options);
      return del(key, options);
    };
    const cache = make({ tiers: [l1, l2], tombstoneMs: 90_000 });
    const before = nextVersion();
    await cache.getOrLoad('k', () => 'v', { ttlMs: 3_600_000 });
    const e = l2.store.get('k')!;
    expect(e.version).toBeGreaterThan(before);
    expect(e.ttlMs).toBe(3_600_000);
    expect(l1.store.get('k')!.ttlMs).toBe(3_600_000);
    await cache.delete('k');
    expect(deletes).toEqual([{ version: expect.any(Number), tombstoneMs: 90_000 }]);
    expect((deletes[0] as { version: number }).version).toBeGreaterThan(e.version!);
  });

  it('the default tombstone outlives the hard timeout plus the lock lease', async () => {
    const l2 = new FakeTier({ level: 'l2' });
    const seen: unknown[] = [];
    const del = l2.delete.bind(l2);
    l2.delete = (key, options) => {
      seen.push(options?.tombstoneMs);
      return del(key, options);
    };
    const cache = make({ tiers: [l2], hardTimeoutMs: 50_000, lockLeaseMs: 20_000 });
    await cache.delete('k');
    expect(seen).toEqual([140_000]);
  });
});

describe('per-tier read state', () => {
  it("a late L2 reply is not taken as L3's answer, and L3's breaker is not charged", async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const l3 = new FakeTier({ level: 'l3' });
    const l2Calls: ReadCallbacks[] = [];
    const l3Calls: ReadCallbacks[] = [];
    l2.getWith = (_k, cb) => l2Calls.push(cb);
    l3.getWith = (_k, cb) => l3Calls.push(cb);
    const circuits: string[] = [];
    const cache = make({
      tiers: [l1, l2, l3],
      tierTimeoutMs: 30,
      circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 },
    });
    cache.on('circuit', (e: { level: string; state: string }) => circuits.push(`${e.level}:${e.state}`));
    cache.on('error', () => {});
    const read = cache.get('k');
    await until(() => l3Calls.length === 1, 'L2 timed out and L3 was asked');
    l2Calls[0]!.ok(undefined); // late miss from L2
    l2Calls[0]!.failed(new Error('late L2 failure'));
    l3Calls[0]!.ok(fresh('in-l3'));
    expect(await read).toMatchObject({ value: 'in-l3', level: 'l3', stale: false });
    expect(circuits).toEqual(['l2:open']);
    expect(cache.tierStatus()).toMatchObject({ l2: 'down', l3: 'up' });
  });
});

describe('eager refresh', () => {
  it('is judged on createdAt + ttlMs, not on the L1-capped freshUntil', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2], eagerRefreshThreshold: 0.9 });
    const now = Date.now();
    // Loaded 10 minutes ago for 1 h; the L1 cap cut its freshUntil to 1 s from now.
    l1.store.set('k', {
      value: 'v',
      createdAt: now - 600_000,
      ttlMs: 3_600_000,
      freshUntil: now + 1000,
      staleUntil: now + 1000,
      version: nextVersion(),
    });
    let calls = 0;
    for (let i = 0; i < 50; i++) await cache.getOrLoad('k', () => ++calls);
    await cache.flush();
    expect(calls).toBe(0);
    // 55 minutes into its hour: past 90%, one refresh.
    l1.store.set('j', {
      value: 'v',
      createdAt: now - 3_300_000,
      ttlMs: 3_600_000,
      freshUntil: now + 1000,
      staleUntil: now + 1000,
      version: nextVersion(),
    });
    for (let i = 0; i < 50; i++) await cache.getOrLoad('j', () => ++calls);
    await cache.flush();
    expect(calls).toBe(1);
  });

  it('goes through the distributed lock: an instance without the lease does not refresh', async () => {
    const held = new Set<string>(['j']);
    const acquired: string[] = [];
    const lock: DistributedLock = {
      tryAcquire: async (key) => {
        acquired.push(key);
        if (held.has(key)) return undefined;
        held.add(key);
        return { release: async () => void held.delete(key) } satisfies Lease;
      },
      waitForRelease: async () => {},
    };
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [l1, l2], eagerRefreshThreshold: 0.5, lock });
    const now = Date.now();
    const old = {
      createdAt: now - 3_000_000,
      ttlMs: 3_600_000,
      freshUntil: now + 600_000,
      staleUntil: now + 600_000,
    };
    l1.store.set('j', { value: 'v', ...old, version: nextVersion() });
    let calls = 0;
    await cache.getOrLoad('j', () => ++calls);
    await cache.flush();
    expect(acquired).toEqual(['j']);
    expect(calls).toBe(0);
    // Another instance refreshed already: the lease holder finds the newer entry and skips.
    l1.store.set('k', { value: 'v', ...old, version: nextVersion() });
    l2.store.set('k', fresh('newer', { version: nextVersion() }));
    await cache.getOrLoad('k', () => ++calls);
    await cache.flush();
    expect(calls).toBe(0);
    expect(held.has('k')).toBe(false);
    // Nobody refreshed: the holder loads.
    l1.store.set('m', { value: 'v', ...old, version: nextVersion() });
    await cache.getOrLoad('m', () => ++calls);
    await cache.flush();
    expect(calls).toBe(1);
    expect(l2.store.get('m')?.value).toBe(1);
  });
});

describe('lifecycle', () => {
  it('attaches every tier with its index and whether it is the last one', () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    make({ tiers: [l1, l2] });
    expect(l1.attachment).toEqual({ index: 0, lastTier: false });
    expect(l2.attachment).toEqual({ index: 1, lastTier: true });
  });

  it('an L1 that is the last tier keeps the entry lifetime past its cap', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, maxTtlMs: 1000 });
    const cache = make({ tiers: [l1] });
    await cache.set('k', 'v', { ttlMs: 3_600_000 });
    expect(l1.store.get('k')!.freshUntil).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it('connect() connects tiers and the lock; close() closes an owned lock', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const events: string[] = [];
    const lock: DistributedLock = {
      tryAcquire: async () => undefined,
      waitForRelease: async () => {},
      connect: async () => void events.push('lock:connect'),
      close: async () => void events.push('lock:close'),
    };
    const cache = new MultiLevelCache({ tiers: [l1, l2], lock });
    await cache.connect();
    expect(l1.calls.connect).toBe(1);
    expect(l2.calls.connect).toBe(1);
    expect(events).toEqual(['lock:connect']);
    await cache.close();
    expect(events).toEqual(['lock:connect', 'lock:close']);
  });

  it('connect() rejects with the failure of a tier, after reporting it', async () => {
    const l2 = new FakeTier({ level: 'l2' });
    l2.failWith = new Error('no route');
    const cache = make({ tiers: [new FakeTier({ level: 'l1', sync: true }), l2] });
    const errors: unknown[] = [];
    cache.on('error', (e: { error: unknown }) => errors.push(e.error));
    await expect(cache.connect()).rejects.toThrow('no route');
    expect(errors).toHaveLength(1);
  });
});

describe('invalidation bus', () => {
  it('messages that failed to publish are re-sent, deduplicated, once the bus is back', async () => {
    const bus = memoryBus();
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true })],
      bus: bus.make(),
      recoveryIntervalMs: 10,
    });
    cache.on('error', () => {});
    bus.failNext(3);
    await cache.delete('a');
    await cache.delete('a');
    await cache.set('b', 1);
    expect(bus.sent).toEqual([]);
    await until(() => bus.sent.length > 0, 'the queue was re-sent');
    await cache.flush();
    const keys = bus.sent.flatMap((m) => (m.type === 'delete' ? m.keys : []));
    expect(keys.sort()).toEqual(['a', 'b']);
  });

  it('a queued clear replaces the key invalidations before it', async () => {
    const bus = memoryBus();
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true })],
      bus: bus.make(),
      recoveryIntervalMs: 10,
    });
    cache.on('error', () => {});
    bus.failNext(2);
    await cache.delete('a');
    await cache.clear();
    await until(() => bus.sent.length > 0, 'the queue was re-sent');
    await cache.flush();
    expect(bus.sent).toEqual([{ type: 'clear', version: expect.any(Number) }]);
  });

  it('the queue is bounded (oldest keys dropped)', async () => {
    const bus = memoryBus();
    const cache = make({
      tiers: [new FakeTier({ level: 'l1', sync: true })],
      bus: bus.make(),
      recoveryIntervalMs: 10,
      publishQueueMax: 2,
    });
    cache.on('error', () => {});
    bus.failNext(3);
    await cache.deleteMany(['a']);
    await cache.deleteMany(['b']);
    await cache.deleteMany(['c']);
    await until(() => bus.sent.length > 0, 'the queue was re-sent');
    await cache.flush();
    expect(bus.sent.flatMap((m) => (m.type === 'delete' ? m.keys : [])).sort()).toEqual(['b', 'c']);
  });

  it('resync turns local entries stale, not deleted: they still serve as fail-safe fallbacks', async () => {
    const bus = memoryBus();
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const b = bus.make();
    const cache = make({ tiers: [l1, l2], bus: b, staleTtlMs: 60_000 });
    await cache.set('k', 'cached');
    l2.failWith = new Error('redis restarted');
    cache.on('error', () => {});
    b.deliver({ type: 'resync' });
    // Let the coarse clock of the read path move past the expiry instant.
    await new Promise((r) => setTimeout(r, 5));
    expect(await cache.get('k')).toMatchObject({ value: undefined });
    expect(await cache.get('k', { allowStale: true })).toMatchObject({
      value: 'cached',
      level: 'l1',
      stale: true,
    });
    const r = await cache.getOrLoad('k', () => {
      throw new Error('upstream down');
    });
    expect(r).toMatchObject({ value: 'cached', level: 'l1', stale: true });
  });

  it('a received delete drops the local copy and the load in flight; a received expire turns it stale', async () => {
    const bus = memoryBus();
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const b = bus.make();
    const cache = make({ tiers: [l1, new FakeTier({ level: 'l2' })], bus: b, staleTtlMs: 60_000 });
    const load = gate<string>();
    let calls = 0;
    void cache.getOrLoad('k', () => {
      calls++;
      return load.promise;
    });
    await until(() => calls === 1, 'the load started');
    b.deliver({ type: 'delete', keys: ['k'], version: nextVersion() });
    expect((await cache.getOrLoad('k', () => ++calls + '')).value).toBe('2');
    load.resolve('old');
    await cache.flush();
    expect(l1.store.get('k')?.value).toBe('2');
    b.deliver({ type: 'expire', keys: ['k'], version: nextVersion() });
    await cache.flush();
    expect(l1.store.get('k')!.freshUntil).toBeLessThanOrEqual(Date.now());
    expect(l1.store.get('k')?.value).toBe('2');
  });
});

describe('refused values are not breaker failures', () => {
  it('setMany: a tier refusing the batch as invalid throws it, removes the keys, keeps the breaker closed', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, batch: true });
    const l2 = new FakeTier({ level: 'l2', batch: true });
    l2.setMany = async () => {
      throw new InvalidValueError('too deep');
    };
    const cache = make({ tiers: [l1, l2], circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } });
    await expect(cache.setMany([{ key: 'a', value: 1 }])).rejects.toBeInstanceOf(InvalidValueError);
    expect(l1.store.has('a')).toBe(false);
    expect(cache.tierStatus()).toEqual({ l1: 'up', l2: 'up' });
  });

  it('promotion: a tier refusing the value as invalid is not a breaker failure', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const l3 = new FakeTier({ level: 'l3' });
    l3.store.set('k', fresh('v'));
    l2.set = async () => {
      throw new InvalidValueError('refused');
    };
    const cache = make({ tiers: [l1, l2, l3], circuitBreaker: { failureThreshold: 1, cooldownMs: 60_000 } });
    expect((await cache.get('k')).value).toBe('v');
    await cache.flush();
    expect(cache.tierStatus()).toEqual({ l1: 'up', l2: 'up', l3: 'up' });
  });
});

describe('backgroundWrites', () => {
  it('a load answers once L1 holds the value; the L2 write, invalidation and lease release follow', async () => {
    const bus = memoryBus();
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const l2Write = gate<void>();
    const order: string[] = [];
    const set = l2.set.bind(l2);
    l2.set = async (key, entry) => {
      await l2Write.promise;
      await set(key, entry);
      order.push('l2 set');
    };
    const lock: DistributedLock = {
      tryAcquire: async () => ({ release: async () => void order.push('lease released') }),
      waitForRelease: async () => {},
    };
    const other = bus.make();
    const received: InvalidationMessage[] = [];
    other.subscribe((m) => {
      received.push(m);
      order.push('published');
    });
    const cache = make({ tiers: [l1, l2], bus: bus.make(), lock, backgroundWrites: true });
    const r = await cache.getOrLoad('k', () => 'v');
    expect(r).toMatchObject({ value: 'v', level: 'external', stale: false });
    expect(l1.store.get('k')?.value).toBe('v');
    expect(l2.store.has('k')).toBe(false);
    expect(order).toEqual([]);
    l2Write.resolve();
    await cache.flush();
    expect(l2.store.get('k')?.value).toBe('v');
    expect(order).toEqual(['l2 set', 'published', 'lease released']);
    expect(received).toEqual([{ type: 'delete', keys: ['k'], version: l2.store.get('k')!.version }]);
  });

  it('a failed background write goes to auto-recovery; the load still answered', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    l2.store.set('k', fresh('old value in L2'));
    l2.store.set('k', { ...l2.store.get('k')!, freshUntil: Date.now() - 1000 });
    l2.failWith = new Error('down');
    const cache = make({
      tiers: [l1, l2],
      backgroundWrites: true,
      recoveryIntervalMs: 10,
      circuitBreaker: false,
    });
    cache.on('error', () => {});
    expect((await cache.getOrLoad('k', () => 'new')).value).toBe('new');
    await cache.flush();
    const recovered = new Promise((r) => cache.once('recovered', r));
    l2.failWith = undefined;
    await recovered;
    // Written again (nothing superseded it): the old value is gone from the L2.
    expect(l2.store.get('k')?.value).toBe('new');
  });

  it("a failed write that another instance's delete superseded meanwhile is invalidated by the recovery, never written again", async () => {
    const bus = memoryBus();
    const store = new Map<string, CacheEntry>();
    // No tombstones in the shared tier: the recovery's own check is what keeps the value out.
    const l2a = new FakeTier({ level: 'l2', store, tombstones: false });
    const a = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), l2a],
      bus: bus.make(),
      recoveryIntervalMs: 10,
      circuitBreaker: false,
    });
    const b = make({
      tiers: [
        new FakeTier({ level: 'l1', sync: true }),
        new FakeTier({ level: 'l2', store, tombstones: false }),
      ],
      bus: bus.make(),
    });
    a.on('error', () => {});
    store.set('k', fresh('old'));
    l2a.failWith = new Error('down for a');
    await a.set('k', 'new');
    await a.flush();
    await b.delete('k');
    const recovered = new Promise((r) => a.once('recovered', r));
    l2a.failWith = undefined;
    await recovered;
    expect(store.has('k')).toBe(false);
    expect((await b.get('k')).value).toBeUndefined();
  });

  it('expire on a shared tier without expire() that is down: the removal goes to auto-recovery', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    // A shared tier with no logical expiry: expire falls back to removing the key there.
    Object.defineProperty(l2, 'expire', { value: undefined });
    l2.store.set('k', fresh('fresh in L2'));
    const cache = make({ tiers: [l1, l2], recoveryIntervalMs: 10, circuitBreaker: false });
    cache.on('error', () => {});
    l2.failWith = new Error('down');
    await cache.expire('k');
    const recovered = new Promise((r) => cache.once('recovered', r));
    l2.failWith = undefined;
    // Without recovery the tier would keep serving the entry as fresh once it is back.
    await vi.waitFor(() => expect(l2.store.has('k')).toBe(false), { timeout: 2000, interval: 10 });
    await recovered;
  });

  it('a value the shared tier refuses in the background is removed from L1 too', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', codec: true });
    const cache = make({ tiers: [l1, l2], backgroundWrites: true });
    const errors: unknown[] = [];
    cache.on('error', (e) => errors.push(e.error));
    const hostile = JSON.parse('{"nested": {"__proto__": {"x": 1}}}');
    expect((await cache.getOrLoad('k', () => hostile)).value).toBe(hostile);
    await cache.flush();
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(false);
    expect(errors).toHaveLength(1);
    expect(cache.tierStatus()).toEqual({ l1: 'up', l2: 'up' });
  });

  it('on by default; with backgroundWrites: false the load waits for every tier', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const l2Write = gate<void>();
    const set = l2.set.bind(l2);
    l2.set = async (key, entry) => {
      await l2Write.promise;
      await set(key, entry);
    };
    const byDefault = make({ tiers: [l1, l2] });
    expect((await byDefault.getOrLoad('k', () => 'v')).value).toBe('v');
    expect(l2.store.has('k')).toBe(false); // answered while the L2 write is still held
    const waiting = make({ tiers: [l1, l2], backgroundWrites: false });
    let answered = false;
    const p = waiting
      .getOrLoad('j', () => 'w')
      .then((r) => {
        answered = true;
        return r;
      });
    await until(() => l1.store.has('j'), 'the L1 write of j');
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false); // L1 holds j, but the load waits for L2
    l2Write.resolve();
    expect((await p).value).toBe('w');
    expect(l2.store.get('j')?.value).toBe('w');
    await byDefault.flush();
    expect(l2.store.get('k')?.value).toBe('v');
  });
});
