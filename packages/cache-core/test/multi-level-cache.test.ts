import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type CacheEntry,
  type CacheErrorEvent,
  ConfigError,
  type DistributedLock,
  type InvalidationBus,
  type InvalidationMessage,
  InvalidKeyError,
  InvalidValueError,
  type Lease,
  Level,
  type MetricsAdapter,
  MultiLevelCache,
  TimeoutError,
} from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';

function recorder() {
  const calls: string[] = [];
  const m: MetricsAdapter = {
    hit: (l, c, e) => calls.push(`hit:${l}:${c}:${e}`),
    miss: (l) => calls.push(`miss:${l}`),
    latency: () => {},
    size: () => {},
    promotion: (f, t) => calls.push(`promo:${f}>${t}`),
    eviction: () => {},
    error: (l, o, t) => calls.push(`err:${l}:${o}:${t}`),
    circuitState: (l, s) => calls.push(`circuit:${l}:${s}`),
  };
  return { m, calls };
}

function threeTiers(opts: { sync?: boolean; batch?: boolean } = {}) {
  const l1 = new FakeTier({ level: 'l1', sync: opts.sync ?? true, batch: opts.batch, maxTtlMs: 5 * 60_000 });
  const l2 = new FakeTier({ level: 'l2', batch: opts.batch });
  const l3 = new FakeTier({ level: 'l3', batch: opts.batch });
  return { l1, l2, l3 };
}

const entry = (value: unknown, ttlMs: number, staleMs = 0): CacheEntry => {
  const now = Date.now();
  return { value, freshUntil: now + ttlMs, staleUntil: now + ttlMs + staleMs, createdAt: now };
};

let caches: MultiLevelCache[] = [];
function make(options: ConstructorParameters<typeof MultiLevelCache>[0]) {
  const c = new MultiLevelCache(options);
  caches.push(c);
  return c;
}
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(caches.map((c) => c.close()));
  caches = [];
});

describe('Level', () => {
  it("has the seed's four values as metric label strings", () => {
    expect(Level).toEqual({ L1: 'l1', L2: 'l2', L3: 'l3', External: 'external' });
  });
});

describe('MultiLevelCache.get', () => {
  it('returns every Level: l1, l2, l3 and external on a miss', async () => {
    const { l1, l2, l3 } = threeTiers();
    const cache = make({ tiers: [l1, l2, l3] });
    l1.store.set('a', entry('A', 60_000));
    l2.store.set('b', entry('B', 60_000));
    l3.store.set('c', entry('C', 60_000));
    expect(await cache.get('a')).toMatchObject({ value: 'A', level: Level.L1, stale: false });
    expect(await cache.get('b')).toMatchObject({ value: 'B', level: Level.L2, stale: false });
    expect(await cache.get('c')).toMatchObject({ value: 'C', level: Level.L3, stale: false });
    expect(await cache.get('d')).toEqual({ value: undefined, level: Level.External, stale: false });
  });

  it('getSync answers fresh L1 hits synchronously and nothing else', async () => {
    const { l1, l2 } = threeTiers();
    const { m, calls } = recorder();
    const cache = make({ tiers: [l1, l2], metrics: m });
    l1.store.set('a', entry('A', 60_000));
    l2.store.set('b', entry('B', 60_000));
    const now = Date.now();
    l1.store.set('s', { value: 'S', freshUntil: now - 1000, staleUntil: now + 60_000 });
    expect(cache.getSync('a')).toBe('A');
    expect(cache.getSync('b')).toBeUndefined();
    expect(cache.getSync('s')).toBeUndefined();
    expect(calls.filter((c) => c.startsWith('hit:l1'))).toHaveLength(1);
    const noSync = make({ tiers: [new FakeTier()] });
    await noSync.set('a', 1);
    expect(noSync.getSync('a')).toBeUndefined();
  });

  it('getSync answers fresh L1 hits through getFreshValueSync when the L1 offers it; get reads the entry (its times)', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, fresh: true });
    const l2 = new FakeTier({ level: 'l2' });
    const { m, calls } = recorder();
    const cache = make({ tiers: [l1, l2], metrics: m });
    const now = Date.now();
    l1.store.set('a', entry('A', 60_000));
    l1.store.set('s', { value: 'S', freshUntil: now - 1000, staleUntil: now + 60_000 });
    l2.store.set('b', entry('B', 60_000));
    expect(cache.getSync('a')).toBe('A');
    expect(cache.getSync('s')).toBeUndefined();
    expect(await cache.get('a')).toMatchObject({ value: 'A', level: Level.L1, stale: false });
    expect(await cache.get('b')).toMatchObject({ value: 'B', level: Level.L2, stale: false });
    // A stale L1 entry is served when stale is allowed.
    expect(await cache.get('s', { allowStale: true })).toMatchObject({
      value: 'S',
      level: Level.L1,
      stale: true,
    });
    // getSync: the value only; get: the entry, whose times its result carries.
    expect(l1.calls.getFreshValueSync).toBe(2);
    expect(l1.calls.getSync).toBe(3);
    expect(calls.filter((c) => c.startsWith('hit:l1'))).toHaveLength(2);
    // A throwing L1 is reported and skipped.
    l1.failWith = new Error('l1 broken');
    expect(cache.getSync('a')).toBeUndefined();
    expect(calls.at(-1)).toBe('err:l1:get:unknown');
  });

  it('cascades in order and stops at the first hit', async () => {
    const { l1, l2, l3 } = threeTiers({ sync: false });
    const cache = make({ tiers: [l1, l2, l3] });
    l2.store.set('k', entry('v', 60_000));
    await cache.get('k');
    expect(l1.calls.get).toBe(1);
    expect(l2.calls.get).toBe(1);
    expect(l3.calls.get).toBeUndefined();
  });

  it('promotes an L3 hit to L2 and L1 keeping the remaining lifetime, not a fresh TTL', async () => {
    const { l1, l2, l3 } = threeTiers();
    const { m, calls } = recorder();
    const cache = make({ tiers: [l1, l2, l3], metrics: m, defaultTtlMs: 3_600_000 });
    const e = entry('deep', 90_000, 30_000);
    l3.store.set('k', e);
    expect((await cache.get('k')).level).toBe(Level.L3);
    await cache.flush();
    expect(l2.store.get('k')?.freshUntil).toBe(e.freshUntil);
    expect(l2.store.get('k')?.staleUntil).toBe(e.staleUntil);
    expect(l1.store.get('k')?.freshUntil).toBe(e.freshUntil);
    expect(calls).toContain('promo:l3>l2');
    expect(calls).toContain('promo:l3>l1');
    expect((await cache.get('k')).level).toBe(Level.L1);
  });

  it("caps a promoted entry to the faster tier's maximum TTL (L1 5 min)", async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2] });
    l2.store.set('k', entry('v', 7 * 86_400_000));
    await cache.get('k');
    const promoted = l1.store.get('k')!;
    expect(promoted.staleUntil).toBeLessThanOrEqual(Date.now() + 5 * 60_000);
    expect(promoted.staleUntil).toBeGreaterThan(Date.now() + 5 * 60_000 - 1000);
  });

  it('treats a stale entry as a miss unless allowStale', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2] });
    const now = Date.now();
    l2.store.set('s', { value: 'old', freshUntil: now - 1, staleUntil: now + 60_000 });
    expect((await cache.get('s')).level).toBe(Level.External);
    expect(await cache.get('s', { allowStale: true })).toMatchObject({
      value: 'old',
      level: Level.L2,
      stale: true,
    });
  });

  it('labels hits and misses with connector and endpoint', async () => {
    const { l1, l2 } = threeTiers();
    const { m, calls } = recorder();
    const cache = make({ tiers: [l1, l2], metrics: m, connector: 'comexstat', endpoint: 'exportacao_mes' });
    await cache.set('k', 1);
    await cache.get('k');
    await cache.get('nope', { endpoint: 'importacao_mes' });
    expect(calls).toContain('hit:l1:comexstat:exportacao_mes');
    expect(calls).toEqual(expect.arrayContaining(['miss:l1', 'miss:l2', 'miss:external']));
  });

  it('rejects invalid keys with a typed error', async () => {
    const cache = make({ tiers: [new FakeTier()] });
    await expect(cache.get('')).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(cache.get('a\r\nb')).rejects.toMatchObject({ code: 'E_INVALID_KEY' });
    await expect(cache.set('x'.repeat(2000), 1)).rejects.toMatchObject({ code: 'E_INVALID_KEY' });
  });
});

describe('MultiLevelCache writes', () => {
  it('set writes to every tier with the TTL and stale window', async () => {
    const { l1, l2, l3 } = threeTiers();
    const cache = make({ tiers: [l1, l2, l3], staleTtlMs: 1000 });
    const before = Date.now();
    await cache.set('k', { a: 1 }, { ttlMs: 60_000 });
    for (const t of [l1, l2, l3]) {
      const e = t.store.get('k')!;
      expect(e.value).toEqual({ a: 1 });
      expect(e.freshUntil).toBeGreaterThanOrEqual(before + 60_000);
      expect(e.staleUntil - e.freshUntil).toBe(1000);
    }
  });

  it('delete removes from every tier', async () => {
    const { l1, l2, l3 } = threeTiers();
    const cache = make({ tiers: [l1, l2, l3] });
    await cache.set('k', 1);
    await cache.delete('k');
    for (const t of [l1, l2, l3]) expect(t.store.has('k')).toBe(false);
    expect((await cache.get('k')).level).toBe(Level.External);
  });

  it('refuses undefined and functions with InvalidValueError', async () => {
    const cache = make({ tiers: [new FakeTier()] });
    await expect(cache.set('k', undefined)).rejects.toBeInstanceOf(InvalidValueError);
    await expect(cache.set('k', () => 1)).rejects.toMatchObject({ code: 'E_INVALID_VALUE' });
    await expect(cache.set('k', 1, { ttlMs: -5 })).rejects.toMatchObject({ code: 'E_INVALID_VALUE' });
  });

  it('a value a tier refuses as invalid is thrown to the caller and removed from every tier', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2], circuitBreaker: false });
    await cache.set('k', 'old');
    const refuse = new InvalidValueError('cyclic value');
    const realSet = l2.set.bind(l2);
    l2.set = async (key, e) => {
      if (typeof e.value === 'object') throw refuse;
      return realSet(key, e);
    };
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(cache.set('k', cyclic)).rejects.toBe(refuse);
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(false);
    // A load answers once L1 holds the value (backgroundWrites, the default): L2's refusal comes
    // after the answer, and removes the key from every tier again.
    const errors: CacheErrorEvent[] = [];
    cache.on('error', (e) => errors.push(e));
    await expect(cache.getOrLoad('j', async () => cyclic)).resolves.toMatchObject({ value: cyclic });
    await cache.flush();
    expect(l1.store.has('j')).toBe(false);
    expect(l2.store.has('j')).toBe(false);
    expect(errors.map((e) => [e.level, e.operation, e.error])).toEqual([['external', 'load', refuse]]);
    expect(cache.tierStatus()).toEqual({ l1: 'up', l2: 'up' });
    // Without background writes the load waits for L2, and the refusal is the caller's error.
    const waiting = make({ tiers: [l1, l2], circuitBreaker: false, backgroundWrites: false });
    await expect(waiting.getOrLoad('i', async () => cyclic)).rejects.toBe(refuse);
    expect(l1.store.has('i')).toBe(false);
  });

  it('setMany / getMany / deleteMany use batch operations', async () => {
    const { l1, l2, l3 } = threeTiers({ batch: true });
    const cache = make({ tiers: [l1, l2, l3] });
    await cache.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2, ttlMs: 1000 },
    ]);
    expect(l2.calls.setMany).toBe(1);
    l1.store.delete('b');
    l2.store.delete('b');
    l3.store.set('c', entry(3, 60_000));
    const got = await cache.getMany(['a', 'b', 'c', 'z']);
    expect(got.map((g) => [g.value, g.level])).toEqual([
      [1, 'l1'],
      [2, 'l3'],
      [3, 'l3'],
      [undefined, 'external'],
    ]);
    await cache.flush();
    expect(l1.store.get('c')?.value).toBe(3);
    expect(await cache.deleteMany(['a', 'b', 'c'])).toBe(3);
    expect(l3.store.size).toBe(0);
  });

  it('getMany works on tiers without batch operations', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2] });
    l2.store.set('x', entry('X', 60_000));
    const got = await cache.getMany(['x', 'y']);
    expect(got.map((g) => g.value)).toEqual(['X', undefined]);
    await cache.setMany([{ key: 'y', value: 'Y' }]);
    expect(l2.store.get('y')?.value).toBe('Y');
    expect(await cache.deleteMany(['x', 'y'])).toBe(2);
  });

  it('clear empties tiers and tells the bus', async () => {
    const { l1, l2 } = threeTiers();
    const bus = fakeBus();
    const cache = make({ tiers: [l1, l2], bus });
    await cache.set('k', 1);
    await cache.clear();
    expect(l1.store.size + l2.store.size).toBe(0);
    expect(bus.sent.at(-1)).toEqual({ type: 'clear', version: expect.any(Number) });
  });
});

describe('MultiLevelCache.getOrLoad', () => {
  it('coalesces 1,000 concurrent callers into 1 loader call', async () => {
    const { l1, l2, l3 } = threeTiers();
    const cache = make({ tiers: [l1, l2, l3] });
    let calls = 0;
    const loader = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 20));
      return { rows: [1, 2, 3] };
    };
    const results = await Promise.all(Array.from({ length: 1000 }, () => cache.getOrLoad('hot', loader)));
    expect(calls).toBe(1);
    expect(results.every((r) => (r.value as { rows: number[] }).rows.length === 3)).toBe(true);
    expect(results[0]!.level).toBe(Level.External);
    for (const t of [l1, l2, l3]) expect(t.store.get('hot')?.value).toEqual({ rows: [1, 2, 3] });
    expect((await cache.getOrLoad('hot', loader)).level).toBe(Level.L1);
    expect(calls).toBe(1);
  });

  it('keeps a settled load shareable for the coalescing window when no tier could store it', async () => {
    const t = new FakeTier({ level: 'l2' });
    const cache = make({ tiers: [t], coalesceWindowMs: 10_000, circuitBreaker: false });
    let calls = 0;
    t.failWith = new Error('down');
    await cache.getOrLoad('k', async () => ++calls);
    expect((await cache.getOrLoad('k', async () => ++calls)).value).toBe(1);
    expect(calls).toBe(1);
    t.failWith = undefined;
    await cache.delete('k');
    expect((await cache.getOrLoad('k', async () => ++calls)).value).toBe(2);
    expect(await cache.getOrLoad('k', async () => ++calls)).toMatchObject({
      value: 2,
      level: 'l2',
      stale: false,
    });
    expect(calls).toBe(2);
  });

  it('stores null results for negativeTtlMs and rejects undefined', async () => {
    const { l1 } = threeTiers();
    const cache = make({ tiers: [l1], negativeTtlMs: 1234, coalesceWindowMs: 0 });
    const r = await cache.getOrLoad('nf', async () => null);
    expect(r).toMatchObject({ value: null, level: 'external', stale: false });
    const e = l1.store.get('nf')!;
    expect(e.freshUntil - e.createdAt!).toBe(1234);
    await expect(cache.getOrLoad('u', async () => undefined as unknown as number)).rejects.toBeInstanceOf(
      InvalidValueError,
    );
  });

  it('computes the TTL from the loaded value', async () => {
    const { l1 } = threeTiers();
    const cache = make({ tiers: [l1] });
    await cache.getOrLoad('t', async () => 7, { ttlMs: (v) => v * 1000 });
    const e = l1.store.get('t')!;
    expect(e.freshUntil - e.createdAt!).toBe(7000);
  });

  it('propagates the loader error when nothing is cached, and a later call retries', async () => {
    const cache = make({ tiers: [new FakeTier()], coalesceWindowMs: 0 });
    const boom = new Error('upstream down');
    await expect(cache.getOrLoad('k', async () => Promise.reject(boom))).rejects.toBe(boom);
    expect((await cache.getOrLoad('k', async () => 'ok')).value).toBe('ok');
  });

  it('fail-safe: serves the stale entry when the loader fails, keeps it and backs off', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2], failSafeBackoffMs: 60_000, coalesceWindowMs: 0 });
    const now = Date.now();
    l2.store.set('k', {
      value: 'good',
      freshUntil: now - 5_000,
      staleUntil: now + 3_600_000,
      createdAt: now - 1000,
    });
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error('500');
    };
    expect(await cache.getOrLoad('k', failing)).toMatchObject({ value: 'good', level: 'l2', stale: true });
    await cache.flush();
    expect(l1.store.get('k')?.meta?.failSafe).toBe(true);
    expect(await cache.getOrLoad('k', failing)).toMatchObject({ value: 'good', level: 'l1', stale: true });
    expect(calls).toBe(1);
    expect(l2.store.get('k')?.value).toBe('good');
  });

  it('soft timeout: answers stale, then the background load refreshes every tier', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2], softTimeoutMs: 20, coalesceWindowMs: 0 });
    const now = Date.now();
    l2.store.set('k', { value: 'old', freshUntil: now - 1, staleUntil: now + 60_000 });
    let loaded = false;
    const r = await cache.getOrLoad(
      'k',
      () =>
        new Promise((res) =>
          setTimeout(() => {
            loaded = true;
            res('new');
          }, 200),
        ),
    );
    expect(r).toMatchObject({ value: 'old', level: 'l2', stale: true });
    expect(loaded).toBe(false); // answered before the loader finished, not by waiting for it
    await cache.flush();
    expect(l1.store.get('k')?.value).toBe('new');
    expect(l2.store.get('k')?.value).toBe('new');
  });

  it('hard timeout: a TimeoutError when there is no stale value; the load goes on and fills the tiers', async () => {
    const t = new FakeTier();
    const cache = make({ tiers: [t], hardTimeoutMs: 30 });
    let aborted = false;
    const p = cache.getOrLoad('k', ({ signal }) => {
      signal.addEventListener('abort', () => {
        aborted = true;
      });
      return new Promise((res) => setTimeout(() => res(1), 150));
    });
    await expect(p).rejects.toBeInstanceOf(TimeoutError);
    await cache.flush();
    expect(aborted).toBe(false);
    expect(t.store.get('k')?.value).toBe(1);
    expect((await cache.get('k')).value).toBe(1);
  });

  it('close aborts loads still running', async () => {
    const cache = new MultiLevelCache({ tiers: [new FakeTier()] });
    let aborted = false;
    const p = cache.getOrLoad(
      'k',
      ({ signal }) =>
        new Promise((_res, rej) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            rej(signal.reason);
          }),
        ),
    );
    await new Promise((r) => setTimeout(r, 10));
    await cache.close();
    await expect(p).rejects.toThrow(/closed/);
    expect(aborted).toBe(true);
  });

  it('eager refresh: a read past the threshold refreshes in the background', async () => {
    const { l1 } = threeTiers();
    const cache = make({ tiers: [l1], eagerRefreshThreshold: 0.5 });
    const now = Date.now();
    l1.store.set('k', { value: 1, freshUntil: now + 1000, staleUntil: now + 1000, createdAt: now - 2000 });
    const r = await cache.getOrLoad('k', async () => 2);
    expect(r).toMatchObject({ value: 1, level: 'l1', stale: false });
    await cache.flush();
    expect(l1.store.get('k')?.value).toBe(2);
  });

  it('isStale turns a fresh entry into a refresh', async () => {
    const { l1 } = threeTiers();
    const cache = make({ tiers: [l1], coalesceWindowMs: 0 });
    await cache.set('k', 'v1');
    const r = await cache.getOrLoad('k', async () => 'v2', { isStale: (e) => e.value === 'v1' });
    expect(r.value).toBe('v2');
  });

  it('applies TTL jitter within bounds', async () => {
    const t = new FakeTier();
    const cache = make({ tiers: [t], ttlJitter: 0.2 });
    const ttls: number[] = [];
    for (let i = 0; i < 50; i++) {
      await cache.set(`k${i}`, i, { ttlMs: 100_000 });
      const e = t.store.get(`k${i}`)!;
      ttls.push(e.freshUntil - e.createdAt!);
    }
    expect(Math.max(...ttls)).toBeLessThanOrEqual(100_000);
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(80_000);
    expect(new Set(ttls).size).toBeGreaterThan(10);
  });
});

describe('tier failures', () => {
  it('skips a throwing tier, reports it, and still serves from the next tier or the loader', async () => {
    const { l1, l2, l3 } = threeTiers();
    const { m, calls } = recorder();
    const cache = make({ tiers: [l1, l2, l3], metrics: m, circuitBreaker: false });
    const events: CacheErrorEvent[] = [];
    cache.on('error', (e) => events.push(e));
    l2.failWith = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    l3.store.set('k', entry('from-l3', 60_000));
    expect(await cache.get('k')).toMatchObject({ value: 'from-l3', level: 'l3', stale: false });
    expect((await cache.getOrLoad('z', async () => 'loaded')).value).toBe('loaded');
    await cache.set('w', 1);
    expect(calls).toContain('err:l2:get:connection_error');
    expect(events.some((e) => e.level === 'l2' && e.operation === 'set')).toBe(true);
  });

  it('bounds a hanging shared tier by tierTimeoutMs', async () => {
    const { l1, l2 } = threeTiers();
    l2.delayMs = 5000;
    const { m, calls } = recorder();
    const cache = make({ tiers: [l1, l2], metrics: m, tierTimeoutMs: 30, circuitBreaker: false });
    const t0 = Date.now();
    expect((await cache.get('k')).level).toBe('external');
    // Answered by the 30 ms deadline, not by the tier's 5 s reply: the bound only tells the two apart.
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(calls).toContain('err:l2:get:timeout');
  });

  it("reads through a tier's getWith callbacks when it has them: hit, failure and timeout", async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true, fresh: true });
    const l2 = new FakeTier({ level: 'l2', callbacks: true });
    const { m, calls } = recorder();
    const cache = make({ tiers: [l1, l2], metrics: m, tierTimeoutMs: 30, circuitBreaker: false });
    l2.store.set('k', entry({ v: 1 }, 60_000));
    expect(await cache.get('k')).toMatchObject({ value: { v: 1 }, level: Level.L2, stale: false });
    expect(l2.calls.getWith).toBe(1);
    expect(l2.calls.get).toBeUndefined();
    expect(cache.getSync('k')).toEqual({ v: 1 }); // promoted to L1
    l2.failWith = new Error('l2 down');
    expect((await cache.get('other')).level).toBe(Level.External);
    expect(calls).toContain('err:l2:get:unknown');
    l2.failWith = undefined;
    l2.delayMs = 5000;
    const t0 = Date.now();
    expect((await cache.get('slow')).level).toBe(Level.External);
    expect(Date.now() - t0).toBeLessThan(4000); // the 30 ms deadline, not the 5 s reply
    expect(calls).toContain('err:l2:get:timeout');
  });

  it('counts a tier rejecting without a reason (or throwing synchronously) as a failure and reads on', async () => {
    const l2 = new FakeTier({ level: 'l2' });
    const l3 = new FakeTier({ level: 'l3' });
    l3.store.set('k', entry('from l3', 60_000));
    const { m, calls } = recorder();
    const cache = make({ tiers: [l2, l3], metrics: m, circuitBreaker: false });
    l2.get = () => Promise.reject(undefined);
    expect(await cache.get('k')).toMatchObject({ value: 'from l3', level: Level.L3, stale: false });
    l2.get = () => {
      throw new Error('sync throw');
    };
    expect((await cache.get('k')).level).toBe(Level.L3);
    expect(calls.filter((c) => c.startsWith('err:l2:get'))).toHaveLength(2);
  });

  it('gives batch operations a timeout that grows with their size', async () => {
    const { l1, l2 } = threeTiers({ batch: true });
    // 3,000 keys get 3 x 400 ms, 10 keys 400 ms: the 800 ms call fits the first, not the second,
    // with hundreds of ms of margin either way on a loaded machine.
    l2.delayMs = 800;
    const cache = make({ tiers: [l1, l2], tierTimeoutMs: 400, circuitBreaker: false });
    const items = Array.from({ length: 3000 }, (_, i) => ({ key: `b${i}`, value: i }));
    await cache.setMany(items);
    expect(l2.store.size).toBe(3000);
    expect(cache.tierStatus().l2).toBe('up');
    await cache.setMany(items.slice(0, 10));
    expect(cache.tierStatus().l2).toBe('degraded');
  });

  it('opens the circuit after repeated failures, skips the tier, then probes and closes', async () => {
    const { l1, l2 } = threeTiers();
    const { m, calls } = recorder();
    const cache = make({
      tiers: [l1, l2],
      metrics: m,
      circuitBreaker: { failureThreshold: 2, cooldownMs: 50 },
    });
    l2.failWith = new Error('down');
    await cache.get('a');
    await cache.get('b');
    expect(cache.tierStatus().l2).toBe('down');
    expect(calls).toContain('circuit:l2:open');
    const before = l2.calls.get;
    await cache.get('c');
    expect(l2.calls.get).toBe(before);
    expect(calls).toContain('err:l2:get:circuit_open');
    l2.failWith = undefined;
    await new Promise((r) => setTimeout(r, 60));
    await cache.get('d');
    expect(calls).toContain('circuit:l2:half_open');
    expect(calls).toContain('circuit:l2:closed');
    expect(cache.tierStatus()).toEqual({ l1: 'up', l2: 'up' });
  });

  it('auto-recovery: a write that failed while a tier was down is written there again when it returns', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({
      tiers: [l1, l2],
      circuitBreaker: { failureThreshold: 1, cooldownMs: 20 },
      recoveryIntervalMs: 20,
    });
    l2.store.set('k', entry('old', 60_000));
    l2.failWith = new Error('down');
    await cache.set('k', 'new');
    expect(l2.store.get('k')?.value).toBe('old');
    const recovered = new Promise((r) => cache.once('recovered', r));
    l2.failWith = undefined;
    await recovered;
    expect(l2.store.get('k')?.value).toBe('new');
    expect((await cache.get('k')).value).toBe('new');
  });

  it('auto-recovery: a failed write older than the tombstone lifetime is invalidated, not written again', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({
      tiers: [l1, l2],
      circuitBreaker: { failureThreshold: 1, cooldownMs: 20 },
      recoveryIntervalMs: 20,
      // Invalidations are remembered for 5 ms here.
      tombstoneMs: 5,
    });
    l2.store.set('aged', entry('old', 60_000));
    l2.failWith = new Error('down');
    // Older than the tombstone lifetime when the tier returns: what superseded it may be
    // forgotten by then, so it is deleted there rather than written again.
    await cache.set('aged', 'older than the tombstones');
    await new Promise((r) => setTimeout(r, 10));
    const recovered = new Promise((r) => cache.once('recovered', r));
    l2.failWith = undefined;
    await recovered;
    expect(l2.store.has('aged')).toBe(false);
  });

  it('timeouts of a tier that answered another operation within the last second do not open its circuit (it is slow, not down); a tier that answers nothing opens it', async () => {
    const { l1, l2 } = threeTiers();
    l2.store.set('fast', entry('v', 60_000));
    // Reads of 'slow*' keys never answer; the others do.
    const get = l2.get.bind(l2);
    l2.get = (key: string) => (key.startsWith('slow') ? new Promise<never>(() => {}) : get(key));
    const cache = make({
      tiers: [l1, l2],
      tierTimeoutMs: 20,
      circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 },
    });
    cache.on('error', () => {});
    l1.failWith = new Error('no L1: every read goes to the L2');
    expect((await cache.get('fast')).value).toBe('v');
    for (const k of ['slow1', 'slow2', 'slow3', 'slow4']) expect((await cache.get(k)).value).toBeUndefined();
    expect(cache.tierStatus().l2).not.toBe('down');
    const reads = l2.calls.get ?? 0;
    expect((await cache.get('fast')).value).toBe('v');
    expect(l2.calls.get).toBe(reads + 1);

    // A tier that never answered: its timeouts count, and the circuit opens at the threshold.
    const dead = new FakeTier({ level: 'l2' });
    dead.get = () => new Promise<never>(() => {});
    const other = make({
      tiers: [new FakeTier({ level: 'l1', sync: true }), dead],
      tierTimeoutMs: 20,
      circuitBreaker: { failureThreshold: 2, cooldownMs: 60_000 },
    });
    other.on('error', () => {});
    await other.get('slow1');
    await other.get('slow2');
    expect(other.tierStatus().l2).toBe('down');
  });

  it('checkTiers pings the tiers and reports health', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2], circuitBreaker: false });
    expect(await cache.checkTiers()).toEqual({ l1: 'up', l2: 'up' });
    l2.failWith = new Error('x');
    expect(await cache.checkTiers()).toEqual({ l1: 'up', l2: 'degraded' });
  });

  it('an L1 whose getSync throws is reported and skipped', async () => {
    const { l1, l2 } = threeTiers();
    const cache = make({ tiers: [l1, l2] });
    l2.store.set('k', entry('v', 60_000));
    l1.failWith = new Error('l1 broken');
    expect((await cache.get('k')).value).toBe('v');
  });
});

function fakeBus() {
  const handlers: ((m: InvalidationMessage) => void)[] = [];
  const sent: InvalidationMessage[] = [];
  const bus: InvalidationBus & { sent: InvalidationMessage[]; deliver: (m: InvalidationMessage) => void } = {
    sent,
    publish: async (m) => {
      sent.push(m);
    },
    subscribe: (h) => handlers.push(h),
    close: async () => {},
    deliver: (m) => {
      for (const h of handlers) h(m);
    },
  };
  return bus;
}

describe('coherence', () => {
  it('publishes keys on set/delete and drops local copies on messages from others', async () => {
    const { l1, l2 } = threeTiers();
    const bus = fakeBus();
    const cache = make({ tiers: [l1, l2], bus });
    await cache.set('k', 1);
    expect(bus.sent).toEqual([{ type: 'delete', keys: ['k'], version: expect.any(Number) }]);
    bus.deliver({ type: 'delete', keys: ['k'] });
    await cache.flush();
    expect(l1.store.has('k')).toBe(false);
    expect(l2.store.has('k')).toBe(true);
    await cache.set('j', 2);
    bus.deliver({ type: 'clear' });
    await cache.flush();
    expect(l1.store.size).toBe(0);
  });

  it('a distributed lock makes two instances share one load', async () => {
    const sharedStore = new Map<string, CacheEntry>();
    const held = new Map<string, () => void>();
    const waiters = new Map<string, (() => void)[]>();
    const lock: DistributedLock = {
      tryAcquire: async (key) => {
        if (held.has(key)) return undefined;
        const lease: Lease = {
          release: async () => {
            held.delete(key);
            for (const w of waiters.get(key) ?? []) w();
            waiters.delete(key);
          },
        };
        held.set(key, () => {});
        return lease;
      },
      waitForRelease: (key) => new Promise<void>((r) => waiters.set(key, [...(waiters.get(key) ?? []), r])),
    };
    const a = make({
      tiers: [new FakeTier({ sync: true }), new FakeTier({ level: 'l2', store: sharedStore })],
      lock,
    });
    const b = make({
      tiers: [new FakeTier({ sync: true }), new FakeTier({ level: 'l2', store: sharedStore })],
      lock,
    });
    let calls = 0;
    const loader = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 30));
      return 'once';
    };
    const results = await Promise.all([
      ...Array.from({ length: 50 }, () => a.getOrLoad('k', loader)),
      ...Array.from({ length: 50 }, () => b.getOrLoad('k', loader)),
    ]);
    expect(calls).toBe(1);
    expect(new Set(results.map((r) => r.value))).toEqual(new Set(['once']));
    expect(results.some((r) => r.level === 'l2')).toBe(true);
  });

  it('loads locally when the lock service fails', async () => {
    const lock: DistributedLock = {
      tryAcquire: async () => {
        throw new Error('redis down');
      },
      waitForRelease: async () => {},
    };
    const cache = make({ tiers: [new FakeTier()], lock });
    expect((await cache.getOrLoad('k', async () => 'v')).value).toBe('v');
  });
});

describe('configuration', () => {
  it('rejects bad options with ConfigError naming the option', () => {
    expect(() => new MultiLevelCache({ tiers: [new FakeTier()], hardTimeoutMs: -1 })).toThrow(ConfigError);
    expect(() => new MultiLevelCache({ tiers: [new FakeTier()], ttlJitter: 2 })).toThrow(/ttlJitter/);
    expect(() => new MultiLevelCache({ tiers: [new FakeTier()], eagerRefreshThreshold: 1.5 })).toThrow(
      /eagerRefreshThreshold/,
    );
    expect(() => new MultiLevelCache({ tiers: [new FakeTier(), new FakeTier()] })).toThrow(/two tiers/);
    expect(() => new MultiLevelCache({ tiers: [{} as never] })).toThrow(/tiers\[0\]/);
    expect(() => new MultiLevelCache(undefined as never)).toThrow(ConfigError);
  });

  it('close closes owned tiers once', async () => {
    const t = new FakeTier();
    const cache = new MultiLevelCache({ tiers: [t] });
    await cache.close();
    await cache.close();
    expect(t.calls.close).toBe(1);
    const kept = new FakeTier();
    await new MultiLevelCache({ tiers: [kept], ownsTiers: false }).close();
    expect(kept.closed).toBe(false);
  });
});
