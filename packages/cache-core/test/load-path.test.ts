import { afterEach, describe, expect, it } from 'vitest';
import {
  type CacheEntry,
  ConfigError,
  type DistributedLock,
  type InvalidationBus,
  type InvalidationMessage,
  InvalidValueError,
  MultiLevelCache,
  type MultiLevelCacheOptions,
  TimeoutError,
} from '../src/index.js';
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

function gate<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

function tiers() {
  return { l1: new FakeTier({ level: 'l1', sync: true }), l2: new FakeTier({ level: 'l2' }) };
}

const staleEntry = (value: unknown, extra: Partial<CacheEntry> = {}): CacheEntry => {
  const now = Date.now();
  return { value, freshUntil: now - 1000, staleUntil: now + 600_000, createdAt: now - 2000, ...extra };
};

describe('per-call load options', () => {
  it('softTimeoutMs: this call answers stale once its own soft timeout passes', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 60_000 });
    l2.store.set('k', staleEntry('old'));
    const release = gate<void>();
    let loaded = false;
    const r = await cache.getOrLoad(
      'k',
      async () => {
        await release.promise;
        loaded = true;
        return 'new';
      },
      { softTimeoutMs: 20 },
    );
    expect(r).toMatchObject({ value: 'old', level: 'l2', stale: true });
    expect(loaded).toBe(false);
    release.resolve();
    await cache.flush();
    expect(l1.store.get('k')?.value).toBe('new');
  });

  it('hardTimeoutMs: a TimeoutError after this call’s own bound when nothing is cached', async () => {
    const cache = make({ tiers: [new FakeTier()], hardTimeoutMs: 60_000 });
    const release = gate<void>();
    const p = cache.getOrLoad(
      'k',
      async () => {
        await release.promise;
        return 1;
      },
      { hardTimeoutMs: 20 },
    );
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    await expect(p).rejects.toMatchObject({ code: 'E_TIMEOUT', timeoutMs: 20 });
    release.resolve();
  });

  it('staleTtlMs and failSafeBackoffMs: the loaded entry’s fail-safe window and the back-off after a failure', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], staleTtlMs: 0, failSafeBackoffMs: 1 });
    await cache.getOrLoad('k', () => 'v', { ttlMs: 1000, staleTtlMs: 5000 });
    const e = l1.store.get('k')!;
    expect(e.staleUntil - e.freshUntil).toBe(5000);

    l2.store.set('s', staleEntry('kept'));
    const before = Date.now();
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error('503');
    };
    const r = await cache.getOrLoad('s', failing, { failSafeBackoffMs: 120_000 });
    expect(r).toMatchObject({ value: 'kept', level: 'l2', stale: true });
    await cache.flush();
    const retryAt = l1.store.get('s')?.meta?.retryAt as number;
    expect(retryAt).toBeGreaterThanOrEqual(before + 120_000);
    expect(retryAt).toBeLessThanOrEqual(Date.now() + 120_000);
    // Within the call's back-off: served without calling the loader (the cache's own is 1 ms).
    expect(await cache.getOrLoad('s', failing)).toMatchObject({ value: 'kept', level: 'l1', stale: true });
    expect(calls).toBe(1);
  });

  it('lockWaitMs: waits at most this long for another instance’s load, then loads here', async () => {
    const waits: number[] = [];
    const busy: DistributedLock = {
      tryAcquire: async () => undefined,
      waitForRelease: async (_key, timeoutMs) => {
        waits.push(timeoutMs);
        await new Promise((r) => setTimeout(r, Math.min(timeoutMs, 50)));
      },
    };
    const cache = make({ tiers: [new FakeTier()], lock: busy, lockWaitMs: 60_000 });
    const r = await cache.getOrLoad('k', () => 'here', { lockWaitMs: 30 });
    expect(r).toMatchObject({ value: 'here', level: 'external', stale: false });
    expect(waits.length).toBeGreaterThan(0);
    expect(Math.max(...waits)).toBeLessThanOrEqual(30);
  });

  it('another instance’s load is waited for no longer than softTimeoutMs when a stale value is at hand', async () => {
    const waits: number[] = [];
    // Another instance holds the key's lease all along (its load slow: an upstream in trouble).
    const busy: DistributedLock = {
      tryAcquire: async () => undefined,
      waitForRelease: async (_key, timeoutMs) => {
        waits.push(timeoutMs);
        await new Promise((r) => setTimeout(r, timeoutMs));
      },
    };
    const { l1, l2 } = tiers();
    l2.store.set('k', staleEntry('old'));
    const cache = make({ tiers: [l1, l2], lock: busy, lockWaitMs: 5000, softTimeoutMs: 40 });
    const timeouts: unknown[] = [];
    cache.on('timeout', (e) => timeouts.push(e));
    let calls = 0;
    const t0 = performance.now();
    const r = await cache.getOrLoad('k', () => {
      calls++;
      return 'new';
    });
    const took = performance.now() - t0;
    expect(r).toMatchObject({ value: 'old', level: 'l2', stale: true });
    // Not the 5 s lock wait: the soft timeout (40 ms; the bound leaves room for a loaded machine).
    expect(took).toBeLessThan(2000);
    expect(calls).toBe(0);
    expect(Math.max(...waits)).toBeLessThanOrEqual(40);
    expect(timeouts).toEqual([{ key: 'k', kind: 'soft', ms: 40, stale: true }]);
    // softTimeoutMs 0: at once, without waiting at all.
    waits.length = 0;
    expect(await cache.getOrLoad('k', () => 'new', { softTimeoutMs: 0 })).toMatchObject({
      value: 'old',
      stale: true,
    });
    expect(waits).toEqual([]);
    // forceFresh never answers the stale value on a timeout: it waits out lockWaitMs, then loads here.
    const forced = await cache.getOrLoad('k', () => 'forced', { forceFresh: true, lockWaitMs: 60 });
    expect(forced).toMatchObject({ value: 'forced', level: 'external', stale: false });
  });

  it('a tier that failed the first read is read again at the soft timeout: its stale value is answered', async () => {
    const { l1, l2 } = tiers();
    l2.store.set('k', staleEntry('old'));
    // The first read fails (a timeout under load, say); the tier answers again by the time the
    // loader runs, and the loader is slow (an upstream in trouble).
    l2.failWith = new Error('read timed out');
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 40, hardTimeoutMs: 5000 });
    cache.on('error', () => {});
    const timeouts: unknown[] = [];
    cache.on('timeout', (e) => timeouts.push(e));
    const release = gate<void>();
    const t0 = performance.now();
    const r = await cache.getOrLoad('k', async () => {
      l2.failWith = undefined;
      await release.promise;
      return 'new';
    });
    expect(r).toMatchObject({ value: 'old', level: 'l2', stale: true });
    // Not the 5 s hard timeout.
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(timeouts).toEqual([{ key: 'k', kind: 'soft', ms: 40, stale: true }]);
    release.resolve();
    await cache.flush();
    expect(l2.store.get('k')?.value).toBe('new');
  });

  it('the second read answers what is there then: a value another instance wrote (fresh), or stale at once with softTimeoutMs 0', async () => {
    const { l1, l2 } = tiers();
    l2.store.set('k', staleEntry('old'));
    l2.failWith = new Error('read timed out');
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 40, hardTimeoutMs: 5000 });
    cache.on('error', () => {});
    const release = gate<void>();
    const r = await cache.getOrLoad('k', async () => {
      l2.failWith = undefined;
      // Another instance's load lands meanwhile.
      const now = Date.now();
      l2.store.set('k', {
        value: 'theirs',
        freshUntil: now + 60_000,
        staleUntil: now + 120_000,
        createdAt: now,
      });
      await release.promise;
      return 'mine';
    });
    expect(r).toMatchObject({ value: 'theirs', level: 'l2', stale: false });
    release.resolve();
    await cache.flush();
    l2.store.set('z', staleEntry('old z'));
    l2.failWith = new Error('read timed out');
    const zero = gate<void>();
    const t0 = performance.now();
    const z = await cache.getOrLoad(
      'z',
      async () => {
        l2.failWith = undefined;
        await zero.promise;
        return 'new z';
      },
      { softTimeoutMs: 0 },
    );
    expect(z).toMatchObject({ value: 'old z', stale: true });
    expect(performance.now() - t0).toBeLessThan(2000);
    zero.resolve();
  });

  it('a tier that failed the first read is read again when the load fails: stale, not the error', async () => {
    const { l1, l2 } = tiers();
    l2.store.set('k', staleEntry('old'));
    l2.failWith = new Error('read timed out');
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 60_000 });
    cache.on('error', () => {});
    const r = await cache.getOrLoad('k', async () => {
      l2.failWith = undefined;
      throw new Error('upstream 500');
    });
    expect(r).toMatchObject({ value: 'old', level: 'l2', stale: true });
    // Still failing when read again: the load's own error, as without a stale value.
    l2.store.set('j', staleEntry('old'));
    l2.failWith = new Error('read timed out');
    await expect(
      cache.getOrLoad('j', async () => {
        throw new Error('upstream 500');
      }),
    ).rejects.toThrow('upstream 500');
    // And a slow load with the tier still failing waits for the hard timeout, then times out.
    await expect(
      cache.getOrLoad('j', () => new Promise((res) => setTimeout(() => res('late'), 300)), {
        softTimeoutMs: 10,
        hardTimeoutMs: 60,
      }),
    ).rejects.toBeInstanceOf(TimeoutError);
  });

  it('the load’s own answer is not held by a second read that takes long', async () => {
    const { l1, l2 } = tiers();
    l2.failWith = new Error('read timed out');
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 20, hardTimeoutMs: 10_000, tierTimeoutMs: 5000 });
    cache.on('error', () => {});
    const t0 = performance.now();
    const r = await cache.getOrLoad('k', async () => {
      // The tier is still failing, and slowly: the second read takes 1.5 s.
      l2.delayMs = 1500;
      await new Promise((res) => setTimeout(res, 60));
      return 'loaded';
    });
    expect(r).toMatchObject({ value: 'loaded', level: 'external', stale: false });
    expect(performance.now() - t0).toBeLessThan(1000);
    l2.delayMs = 0;
    l2.failWith = undefined;
  });

  it('a read that answered (nothing there) is not repeated while the load runs', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 10, hardTimeoutMs: 5000 });
    const r = await cache.getOrLoad('cold', async () => {
      await new Promise((res) => setTimeout(res, 80));
      return 'loaded';
    });
    expect(r).toMatchObject({ value: 'loaded', level: 'external', stale: false });
    expect(l2.calls.get).toBe(1);
  });

  it('a call’s own hardTimeoutMs also bounds its wait for the lock', async () => {
    const waits: number[] = [];
    const busy: DistributedLock = {
      tryAcquire: async () => undefined,
      waitForRelease: async (_key, timeoutMs) => {
        waits.push(timeoutMs);
        await new Promise((r) => setTimeout(r, Math.min(timeoutMs, 50)));
      },
    };
    const cache = make({ tiers: [new FakeTier()], lock: busy });
    expect((await cache.getOrLoad('k', () => 1, { hardTimeoutMs: 25 })).value).toBe(1);
    expect(Math.max(...waits)).toBeLessThanOrEqual(25);
  });

  it('rejects a bad per-call duration with ConfigError E_CONFIG naming it', async () => {
    const cache = make({ tiers: [new FakeTier()] });
    for (const [name, bad] of [
      ['softTimeoutMs', -1],
      ['hardTimeoutMs', Number.NaN],
      ['failSafeBackoffMs', Number.POSITIVE_INFINITY],
      ['lockWaitMs', '5' as unknown as number],
    ] as const) {
      const p = cache.getOrLoad('k', () => 1, { [name]: bad });
      await expect(p).rejects.toBeInstanceOf(ConfigError);
      await expect(p).rejects.toMatchObject({ code: 'E_CONFIG', field: `getOrLoad options.${name}` });
    }
    await expect(cache.getOrLoad('k', () => 1, { staleTtlMs: -5 })).rejects.toMatchObject({
      code: 'E_INVALID_VALUE',
    });
  });
});

describe('forceFresh', () => {
  it('loads although a fresh value is cached, coalesced, and stores the new value everywhere', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    await cache.set('k', 'cached');
    let calls = 0;
    const release = gate<void>();
    const loader = async () => {
      calls++;
      await release.promise;
      return 'fresh';
    };
    const all = Promise.all([
      cache.getOrLoad('k', loader, { forceFresh: true }),
      cache.getOrLoad('k', loader, { forceFresh: true }),
      cache.getOrLoad('k', loader, { forceFresh: true }),
    ]);
    release.resolve();
    const results = await all;
    expect(calls).toBe(1);
    expect(results.map((r) => [r.value, r.level, r.stale])).toEqual([
      ['fresh', 'external', false],
      ['fresh', 'external', false],
      ['fresh', 'external', false],
    ]);
    await cache.flush();
    expect(l1.store.get('k')?.value).toBe('fresh');
    expect(l2.store.get('k')?.value).toBe('fresh');
    // Without it, the next call is an L1 hit.
    expect(await cache.getOrLoad('k', loader)).toMatchObject({ value: 'fresh', level: 'l1', stale: false });
    expect(calls).toBe(1);
  });

  it('the cached value is the fallback of a failed load, never answered on a soft timeout', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 10 });
    cache.on('error', () => {});
    await cache.set('k', 'cached');
    const failed = await cache.getOrLoad(
      'k',
      () => {
        throw new Error('upstream down');
      },
      { forceFresh: true },
    );
    expect(failed).toMatchObject({ value: 'cached', level: 'l1', stale: true });
    let done = false;
    const slow = await cache.getOrLoad(
      'k',
      async () => {
        await new Promise((r) => setTimeout(r, 60));
        done = true;
        return 'slow but fresh';
      },
      { forceFresh: true, failSafeBackoffMs: 0 },
    );
    expect(done).toBe(true); // waited past the 10 ms soft timeout
    expect(slow).toMatchObject({ value: 'slow but fresh', level: 'external', stale: false });
  });

  it('ignores a fail-safe back-off and the settled-load window', async () => {
    const t = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [t], coalesceWindowMs: 10_000, circuitBreaker: false });
    t.failWith = new Error('down');
    let calls = 0;
    await cache.getOrLoad('k', () => ++calls);
    expect((await cache.getOrLoad('k', () => ++calls)).value).toBe(1); // shared from the window
    expect((await cache.getOrLoad('k', () => ++calls, { forceFresh: true })).value).toBe(2);
  });

  it('with a lock, accepts another instance’s value only if loaded after the call', async () => {
    const shared = new Map<string, CacheEntry>();
    const l2a = new FakeTier({ level: 'l2', store: shared });
    const l2b = new FakeTier({ level: 'l2', store: shared });
    let held = true;
    const released = gate<void>();
    const lock: DistributedLock = {
      tryAcquire: async () => (held ? undefined : { release: async () => {} }),
      waitForRelease: async () => {
        await released.promise;
      },
    };
    const a = make({ tiers: [new FakeTier({ level: 'l1', sync: true }), l2a], lock });
    const b = make({ tiers: [new FakeTier({ level: 'l1', sync: true }), l2b] });
    await b.set('k', 'before the call');
    let calls = 0;
    const p = a.getOrLoad('k', () => `loaded by a ${++calls}`, { forceFresh: true });
    await new Promise((r) => setTimeout(r, 10));
    await b.set('k', 'loaded by b after the call');
    held = false;
    released.resolve();
    expect(await p).toMatchObject({ value: 'loaded by b after the call', level: 'l2', stale: false });
    expect(calls).toBe(0);
  });
});

describe('loader context', () => {
  it('ctx.setTtl sets the fresh lifetime of the loaded value (also of null)', async () => {
    const { l1 } = tiers();
    const cache = make({ tiers: [l1], negativeTtlMs: 1000 });
    await cache.getOrLoad('k', (ctx) => {
      ctx.setTtl(4321);
      return 'v';
    });
    await cache.getOrLoad('n', (ctx) => {
      ctx.setTtl(7000);
      return null;
    });
    const k = l1.store.get('k')!;
    const n = l1.store.get('n')!;
    expect(k.freshUntil - (k.createdAt as number)).toBe(4321);
    expect(n.freshUntil - (n.createdAt as number)).toBe(7000);
  });

  it('ctx.setTtl with a bad value fails the load with InvalidValueError', async () => {
    const cache = make({ tiers: [new FakeTier()] });
    cache.on('error', () => {});
    await expect(
      cache.getOrLoad('k', (ctx) => {
        ctx.setTtl(-1);
        return 'v';
      }),
    ).rejects.toMatchObject({ code: 'E_INVALID_VALUE', message: expect.stringContaining('ctx.setTtl') });
  });

  it('ctx.setOptions sets ttlMs, staleTtlMs and meta; the next load sees the meta in ctx.stale', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    await cache.getOrLoad('k', (ctx) => {
      ctx.setOptions({ ttlMs: 50, staleTtlMs: 60_000, meta: { etag: '"v1"' } });
      return { rows: 1 };
    });
    await cache.flush();
    const e = l2.store.get('k')!;
    expect(e.freshUntil - (e.createdAt as number)).toBe(50);
    expect(e.staleUntil - e.freshUntil).toBe(60_000);
    expect(e.meta).toEqual({ etag: '"v1"' });
    await new Promise((r) => setTimeout(r, 60));
    let seen: unknown;
    await cache.getOrLoad('k', (ctx) => {
      seen = ctx.stale?.meta?.etag;
      return { rows: 2 };
    });
    expect(seen).toBe('"v1"');
  });

  it('ctx.setOptions refuses bad meta and the reserved fail-safe keys', async () => {
    const cache = make({ tiers: [new FakeTier()] });
    cache.on('error', () => {});
    for (const meta of [{ retryAt: 5 }, { failSafe: true }, { nested: {} }, { ['x'.repeat(65)]: 1 }]) {
      await expect(
        cache.getOrLoad('k', (ctx) => {
          ctx.setOptions({ meta: meta as unknown as Record<string, string> });
          return 1;
        }),
      ).rejects.toBeInstanceOf(InvalidValueError);
    }
  });

  it('ctx.skip(): the value is answered to every joined caller but not cached', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    let calls = 0;
    const loader = async (ctx: { skip(): void }) => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      ctx.skip();
      return `partial ${calls}`;
    };
    const [a, b] = await Promise.all([cache.getOrLoad('k', loader), cache.getOrLoad('k', loader)]);
    expect([a.value, b.value]).toEqual(['partial 1', 'partial 1']);
    await cache.flush();
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(false);
    expect((await cache.getOrLoad('k', loader)).value).toBe('partial 2');
  });

  it('ctx.fail(error): the stale value is served and kept with the back-off; without one the error is thrown', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2], failSafeBackoffMs: 60_000 });
    cache.on('error', () => {});
    l2.store.set('k', staleEntry('stale rows'));
    const boom = new Error('upstream answered 503');
    let calls = 0;
    const loader = (ctx: { fail(e: unknown): never }) => {
      calls++;
      return ctx.fail(boom);
    };
    expect(await cache.getOrLoad('k', loader)).toMatchObject({
      value: 'stale rows',
      level: 'l2',
      stale: true,
    });
    await cache.flush();
    expect(l1.store.get('k')?.meta?.failSafe).toBe(true);
    expect(await cache.getOrLoad('k', loader)).toMatchObject({
      value: 'stale rows',
      level: 'l1',
      stale: true,
    });
    expect(calls).toBe(1);
    await expect(cache.getOrLoad('none', loader)).rejects.toBe(boom);
  });

  it('ctx.notModified(): the stale value is stored again with a new lifetime, a new version and its meta', async () => {
    const { l1, l2 } = tiers();
    const cache = make({ tiers: [l1, l2] });
    const old = staleEntry({ rows: [1, 2] }, { version: 1000, meta: { etag: '"abc"' } });
    l2.store.set('k', old);
    let etag: unknown;
    const r = await cache.getOrLoad(
      'k',
      (ctx) => {
        etag = ctx.stale?.meta?.etag;
        return ctx.notModified();
      },
      { ttlMs: 30_000 },
    );
    expect(etag).toBe('"abc"');
    expect(r).toMatchObject({ value: { rows: [1, 2] }, level: 'external', stale: false });
    await cache.flush();
    for (const t of [l1, l2]) {
      const e = t.store.get('k')!;
      expect(e.value).toEqual({ rows: [1, 2] });
      expect(e.freshUntil - (e.createdAt as number)).toBe(30_000);
      expect(e.version).toBeGreaterThan(1000);
      expect(e.meta).toEqual({ etag: '"abc"' });
    }
    expect(await cache.getOrLoad('k', () => 'unused')).toMatchObject({
      value: { rows: [1, 2] },
      level: 'l1',
      stale: false,
    });
  });

  it('ctx.notModified() without a cached value fails the load with InvalidValueError', async () => {
    const cache = make({ tiers: [new FakeTier()] });
    cache.on('error', () => {});
    await expect(cache.getOrLoad('k', (ctx) => ctx.notModified())).rejects.toMatchObject({
      code: 'E_INVALID_VALUE',
      message: expect.stringContaining('ctx.notModified()'),
    });
  });

  it('a conditional eager refresh: notModified extends the entry without a new value', async () => {
    const { l1 } = tiers();
    const cache = make({ tiers: [l1], eagerRefreshThreshold: 0.5 });
    const now = Date.now();
    l1.store.set('k', {
      value: 'same',
      freshUntil: now + 1000,
      staleUntil: now + 1000,
      createdAt: now - 2000,
      ttlMs: 3000,
      meta: { etag: '"e"' },
    });
    let sawFresh: unknown;
    expect(
      (
        await cache.getOrLoad('k', (ctx) => {
          sawFresh = ctx.stale?.value;
          return ctx.notModified();
        })
      ).value,
    ).toBe('same');
    await cache.flush();
    expect(sawFresh).toBe('same');
    const e = l1.store.get('k')!;
    expect(e.freshUntil).toBeGreaterThan(now + 1000);
    expect(e.meta).toEqual({ etag: '"e"' });
  });

  it('the signal is only created when asked for, and still aborted on close', async () => {
    const cache = new MultiLevelCache({ tiers: [new FakeTier()] });
    const started = gate<void>();
    const asked = gate<void>();
    let reason: unknown;
    const p = cache.getOrLoad('k', async (ctx) => {
      started.resolve();
      await asked.promise;
      const signal = ctx.signal; // asked for after close(): already aborted
      reason = signal.reason;
      throw signal.reason;
    });
    await started.promise;
    const closing = cache.close();
    asked.resolve();
    await expect(p).rejects.toThrow(/closed/);
    await closing;
    expect(String(reason)).toMatch(/closed/);
  });
});

describe('background writes and the bus', () => {
  it('a delete on another instance delivered while the load ends keeps the older value out of L1', async () => {
    // A bus whose messages arrive as I/O does: after publish resolved, on a later turn of the loop.
    const handlers = new Set<(m: InvalidationMessage) => void>();
    const bus = (): InvalidationBus => {
      let mine: ((m: InvalidationMessage) => void) | undefined;
      return {
        publish: async (m) => {
          for (const h of handlers) if (h !== mine) setImmediate(() => h(m));
        },
        subscribe: (h) => {
          mine = h;
          handlers.add(h);
        },
        close: async () => {},
      };
    };
    const shared = new Map<string, CacheEntry>();
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const one = make({ tiers: [l1, new FakeTier({ level: 'l2', store: shared })], bus: bus() });
    const two = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), new FakeTier({ level: 'l2', store: shared })],
      bus: bus(),
    });
    let source = 'v1';
    const release = gate<void>();
    const slow = one.getOrLoad('row', async () => {
      const read = source;
      await release.promise;
      return read;
    });
    await new Promise((r) => setTimeout(r, 5));
    source = 'v2';
    await two.delete('row');
    release.resolve();
    expect((await slow).value).toBe('v1'); // its own caller started before the delete
    expect(l1.store.has('row')).toBe(false);
    expect((await one.getOrLoad('row', async () => source)).value).toBe('v2');
  });
});

describe('a lock that reads while it takes the lease (tryAcquireAndRead)', () => {
  function combinedLock(_l2: FakeTier, holder: { held: boolean }) {
    const calls = { combined: 0, acquire: 0, released: 0 };
    const lease = { release: async () => void calls.released++ };
    const lock: DistributedLock = {
      tryAcquire: async () => {
        calls.acquire++;
        return holder.held ? undefined : lease;
      },
      waitForRelease: async () => {
        holder.held = false;
      },
      tryAcquireAndRead: async (key, _ms, tier) => {
        calls.combined++;
        const entry = await tier.get(key);
        if (holder.held) return { lease: undefined, entry };
        if (entry && entry.freshUntil > Date.now()) return { lease: undefined, entry };
        return { lease, entry };
      },
    };
    return { lock, calls };
  }

  it('a miss reads L2 once, takes the lease in the same step and loads', async () => {
    const { l1, l2 } = tiers();
    const { lock, calls } = combinedLock(l2, { held: false });
    const cache = make({ tiers: [l1, l2], lock });
    expect(await cache.getOrLoad('k', () => 'v')).toMatchObject({
      value: 'v',
      level: 'external',
      stale: false,
    });
    await cache.flush();
    expect(calls).toEqual({ combined: 1, acquire: 0, released: 1 });
    expect(l2.calls.get).toBe(1);
    expect(l2.store.get('k')?.value).toBe('v');
  });

  it('a fresh L2 entry is answered and promoted; a stale one is the fallback of the load', async () => {
    const { l1, l2 } = tiers();
    const { lock, calls } = combinedLock(l2, { held: false });
    const cache = make({ tiers: [l1, l2], lock, softTimeoutMs: 10 });
    await l2.set('hit', {
      value: 'cached',
      freshUntil: Date.now() + 60_000,
      staleUntil: Date.now() + 60_000,
    });
    expect(await cache.getOrLoad('hit', () => 'unused')).toMatchObject({
      value: 'cached',
      level: 'l2',
      stale: false,
    });
    await cache.flush();
    expect(l1.store.get('hit')?.value).toBe('cached');
    l2.store.set('old', staleEntry('stale value'));
    cache.on('error', () => {});
    expect(
      await cache.getOrLoad('old', () => {
        throw new Error('down');
      }),
    ).toMatchObject({ value: 'stale value', level: 'l2', stale: true });
    expect(calls.acquire).toBe(0);
  });

  it('another holder: waits for its release, then reads again', async () => {
    const { l1, l2 } = tiers();
    const holder = { held: true };
    const { lock, calls } = combinedLock(l2, holder);
    const cache = make({ tiers: [l1, l2], lock });
    let loads = 0;
    expect((await cache.getOrLoad('k', () => ++loads)).value).toBe(1);
    expect(calls.combined).toBe(1);
    expect(calls.acquire).toBe(1); // after the wait, the ordinary way
    expect(loads).toBe(1);
  });
});

describe('a lease granted after the lock deadline', () => {
  /** A lock whose grants arrive `lateMs` after the request (a loaded Redis), recording releases. */
  function lateLock(lateMs: number) {
    const log: string[] = [];
    const lock: DistributedLock = {
      tryAcquire: (key) =>
        new Promise((resolve) =>
          setTimeout(() => {
            log.push(`granted ${key}`);
            resolve({
              release: async () => {
                log.push(`released ${key}`);
              },
            });
          }, lateMs),
        ),
      waitForRelease: async () => {},
    };
    return { lock, log };
  }

  it('is given back as soon as it arrives: the miss loaded without it, no lease is left held', async () => {
    const { lock, log } = lateLock(60);
    const cache = make({ tiers: [new FakeTier()], lock, tierTimeoutMs: 10 });
    let calls = 0;
    const r = await cache.getOrLoad('k', () => {
      calls++;
      return 'v';
    });
    expect(r).toMatchObject({ value: 'v', level: 'external' });
    expect(calls).toBe(1);
    expect(log).toEqual([]);
    await new Promise((res) => setTimeout(res, 100));
    expect(log).toEqual(['granted k', 'released k']);
  });

  it('an eager refresh that missed the deadline gives its late lease back too', async () => {
    const { lock, log } = lateLock(60);
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const cache = make({ tiers: [l1], lock, tierTimeoutMs: 10, eagerRefreshThreshold: 0.5 });
    const now = Date.now();
    l1.store.set('k', {
      value: 'old',
      createdAt: now - 8000,
      freshUntil: now + 2000,
      staleUntil: now + 60_000,
    });
    let calls = 0;
    const r = await cache.getOrLoad('k', () => {
      calls++;
      return 'new';
    });
    expect(r).toMatchObject({ value: 'old', stale: false });
    await cache.flush();
    await new Promise((res) => setTimeout(res, 100));
    expect(log).toEqual(['granted k', 'released k']);
    expect(calls).toBe(0);
  });
});
