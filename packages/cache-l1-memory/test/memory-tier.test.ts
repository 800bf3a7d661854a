import {
  type CacheEntry,
  ConfigError,
  InvalidValueError,
  type MetricsAdapter,
  MultiLevelCache,
  NOOP_METRICS,
} from '@bgc/cache-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryTier, memoryTierFromEnv } from '../src/index.js';

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

function recordingMetrics() {
  const calls = { eviction: 0, size: [] as number[], errors: [] as string[], hits: 0, misses: 0 };
  const metrics: MetricsAdapter = {
    ...NOOP_METRICS,
    eviction: (_l, n = 1) => {
      calls.eviction += n;
    },
    size: (_l, bytes) => {
      calls.size.push(bytes);
    },
    error: (_l, op, type) => {
      calls.errors.push(`${op}:${type}`);
    },
    hit: () => {
      calls.hits++;
    },
    miss: () => {
      calls.misses++;
    },
  };
  return { calls, metrics };
}

const entry = <T>(value: T, now: number, ttl = 60_000, stale = 0): CacheEntry<T> => ({
  value,
  freshUntil: now + ttl,
  staleUntil: now + ttl + stale,
});

describe('MemoryTier', () => {
  it('declares itself as a local l1 tier with a 5 min cap by default', () => {
    const tier = new MemoryTier();
    expect(tier.level).toBe('l1');
    expect(tier.scope).toBe('local');
    expect(tier.maxTtlMs).toBe(300_000);
    expect(tier.maxSizeBytes).toBe(100 * 1024 * 1024);
    expect(tier.maxEntryBytes).toBe(10 * 1024 * 1024);
  });

  it('makes a write visible to the very next synchronous read', () => {
    const tier = new MemoryTier();
    const now = Date.now();
    tier.setSync('k', entry({ a: 1 }, now));
    expect(tier.getSync('k')?.value).toEqual({ a: 1 });
  });

  it('stays within its byte bound and reports evictions and size', () => {
    const { calls, metrics } = recordingMetrics();
    const c = clock();
    const tier = new MemoryTier({ maxSizeBytes: 100_000, metrics, now: c.now, sweepIntervalMs: 0 });
    for (let i = 0; i < 2000; i++) tier.setSync(`key:${i}`, entry('x'.repeat(500), c.t));
    const s = tier.stats();
    expect(s.sizeBytes).toBeLessThanOrEqual(100_000);
    expect(s.sizeBytes).toBeGreaterThan(80_000);
    expect(s.evictions).toBeGreaterThan(1500);
    expect(calls.eviction).toBe(s.evictions);
    expect(calls.size.at(-1)).toBe(s.sizeBytes);
    expect(Math.max(...calls.size)).toBeLessThanOrEqual(100_000);
  });

  it('uses entry.size or a custom cost function as the cost', () => {
    const c = clock();
    const tier = new MemoryTier({ maxSizeBytes: 1_000_000, now: c.now, sweepIntervalMs: 0 });
    tier.setSync('sized', { ...entry('small', c.t), size: 50_000 });
    expect(tier.stats().sizeBytes).toBeGreaterThanOrEqual(50_000);
    const custom = new MemoryTier({
      maxSizeBytes: 1_000_000,
      cost: () => 1000,
      now: c.now,
      sweepIntervalMs: 0,
    });
    custom.setSync('k', entry('x'.repeat(10_000), c.t));
    expect(custom.stats().sizeBytes).toBe(1000 + 2 + 120);
  });

  it('refuses an entry larger than maxEntryFraction, with a metric, and drops the old value', () => {
    const { calls, metrics } = recordingMetrics();
    const c = clock();
    const tier = new MemoryTier({
      maxSizeBytes: 100_000,
      maxEntryFraction: 0.1,
      metrics,
      now: c.now,
      sweepIntervalMs: 0,
    });
    for (let i = 0; i < 50; i++) tier.setSync(`small:${i}`, entry(i, c.t));
    tier.setSync('big', entry('old', c.t));
    tier.setSync('big', entry('y'.repeat(20_000), c.t));
    expect(tier.getSync('big')).toBeUndefined();
    expect(calls.errors).toEqual(['set:too_large']);
    expect(tier.stats().refused).toBe(1);
    // nothing else was evicted to make room for it
    for (let i = 0; i < 50; i++) expect(tier.getSync(`small:${i}`)?.value).toBe(i);
  });

  it('deep-freezes stored values so readers cannot corrupt them, without copying on read', () => {
    const tier = new MemoryTier();
    const value = { rows: [{ ncm: '12019000', fob: 1 }], meta: { ano: 2024 } };
    tier.setSync('v', entry(value, Date.now()));
    const a = tier.getSync('v')!;
    const b = tier.getSync('v')!;
    expect(a.value).toBe(b.value);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen((a.value as typeof value).rows[0])).toBe(true);
    expect(() => {
      (a.value as typeof value).rows[0]!.fob = 2;
    }).toThrow(TypeError);
    expect((tier.getSync('v')!.value as typeof value).rows[0]!.fob).toBe(1);
  });

  it('leaves values mutable with freeze: false', () => {
    const tier = new MemoryTier({ freeze: false });
    const value = { a: 1 };
    tier.setSync('v', entry(value, Date.now()));
    expect(Object.isFrozen(tier.getSync('v')!.value)).toBe(false);
  });

  it('handles cycles, typed arrays, maps and sets when freezing', () => {
    const tier = new MemoryTier();
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const value = {
      cyclic,
      buf: Buffer.from('abc'),
      map: new Map([['k', { v: 1 }]]),
      set: new Set([1n, true]),
      f: () => 1,
    };
    tier.setSync('odd', { ...entry(value, Date.now()), meta: { negative: false } });
    const got = tier.getSync('odd')!;
    expect(got.value).toBe(value);
    expect(Object.isFrozen(cyclic)).toBe(true);
    expect(Object.isFrozen(got.meta)).toBe(true);
  });

  it('serves fresh, then stale, then nothing, following the entry times (fake clock)', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    tier.setSync('k', entry('v', c.t, 1000, 2000));
    c.t += 999;
    expect(tier.getSync('k')?.freshUntil).toBeGreaterThan(c.t);
    c.t += 1500;
    const stale = tier.getSync('k');
    expect(stale?.value).toBe('v');
    expect(stale!.freshUntil).toBeLessThan(c.t);
    c.t += 501;
    expect(tier.getSync('k')).toBeUndefined();
    expect(tier.stats()).toMatchObject({ entries: 0, expirations: 1 });
  });

  it('answers getFreshValueSync with the value of fresh entries only, recording just those reads', () => {
    const c = clock();
    const { calls, metrics } = recordingMetrics();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0, metrics, reportHits: true });
    // Past the initial 64 slots, so the per-slot arrays have grown.
    for (let i = 0; i < 300; i++) tier.setSync(`k${i}`, entry({ i }, c.t, 1000 + i, 5000));
    for (let i = 0; i < 300; i++) expect(tier.getFreshValueSync(`k${i}`, c.t)).toEqual({ i });
    expect(tier.stats()).toMatchObject({ hits: 300, misses: 0 });
    expect(calls.hits).toBe(300);
    c.t += 1150; // k0..k150 are stale now, k151.. still fresh
    expect(tier.getFreshValueSync('k150', c.t)).toBeUndefined();
    expect(tier.getFreshValueSync('k151', c.t)).toEqual({ i: 151 });
    expect(tier.getFreshValueSync('absent', c.t)).toBeUndefined();
    // Neither the stale read nor the absent key was recorded: the caller reads them again with getSync.
    expect(tier.stats()).toMatchObject({ hits: 301, misses: 0, entries: 300 });
    expect(calls).toMatchObject({ hits: 301, misses: 0 });
    expect(tier.getSync('k150')?.value).toEqual({ i: 150 });
    tier.deleteSync('k151');
    expect(tier.getFreshValueSync('k151', c.t)).toBeUndefined();
    tier.setSync('k151', entry('again', c.t));
    expect(tier.getFreshValueSync('k151', c.t)).toBe('again');
    // An entry claiming to be fresh past its stale-until is served only until stale-until.
    tier.setSync('odd', { value: 'odd', freshUntil: c.t + 5000, staleUntil: c.t + 100 });
    expect(tier.getFreshValueSync('odd', c.t + 50)).toBe('odd');
    expect(tier.getFreshValueSync('odd', c.t + 100)).toBeUndefined();
  });

  it('keeps a frozen entry as it is; copies (and freezes) others and every capped one', () => {
    const c = clock();
    const tier = new MemoryTier({ maxTtlMs: 10_000, now: c.now, sweepIntervalMs: 0 });
    // Frozen and within the cap: the very object, its meta frozen too.
    const meta = { source: 'x' };
    const frozen = Object.freeze({ ...entry({ a: 1 }, c.t, 5000), meta, version: 7, tags: ['t'] });
    tier.setSync('frozen', frozen);
    expect(tier.getSync('frozen')).toBe(frozen);
    expect(Object.isFrozen(meta)).toBe(true);
    expect(Object.isFrozen(frozen.value)).toBe(true);
    // Not frozen: a frozen copy; what the caller does with its object afterwards changes nothing.
    const open = { ...entry({ b: 2 }, c.t, 5000), version: 8 };
    tier.setSync('open', open);
    const kept = tier.getSync('open')!;
    expect(kept).not.toBe(open);
    expect(Object.isFrozen(kept)).toBe(true);
    open.freshUntil = c.t + 1;
    open.version = 1;
    expect(tier.getSync('open')).toMatchObject({ freshUntil: c.t + 5000, version: 8 });
    // Frozen but longer than the cap: a capped copy, the loaded lifetime kept as ttlMs.
    const long = Object.freeze({ ...entry('long', c.t, 60_000), createdAt: c.t });
    tier.setSync('long', long);
    expect(tier.getSync('long')).not.toBe(long);
    expect(tier.getSync('long')).toMatchObject({
      freshUntil: c.t + 10_000,
      staleUntil: c.t + 10_000,
      ttlMs: 60_000,
    });
    // Versions of kept objects are checked as those of copies.
    tier.setSync('frozen', Object.freeze({ ...entry('older', c.t, 5000), version: 6 }));
    expect(tier.getSync('frozen')).toBe(frozen);
  });

  it('hands out a plain entry (written without an object) exactly as the copy a write used to make', () => {
    // The copy every write made before plain entries were built on first read: the reference.
    const reference = (e: CacheEntry, now: number, maxTtlMs: number, last: boolean): CacheEntry => {
      if (!last && e.staleUntil > now + maxTtlMs) {
        const limit = now + maxTtlMs;
        const ttlMs = e.ttlMs ?? (e.createdAt !== undefined ? e.freshUntil - e.createdAt : undefined);
        return {
          value: e.value,
          freshUntil: Math.min(e.freshUntil, limit),
          staleUntil: limit,
          createdAt: e.createdAt,
          size: e.size,
          meta: e.meta,
          version: e.version,
          ttlMs,
        };
      }
      return {
        value: e.value,
        freshUntil: e.freshUntil,
        staleUntil: e.staleUntil,
        createdAt: e.createdAt,
        size: e.size,
        meta: e.meta,
        version: e.version,
        ttlMs: e.ttlMs,
      };
    };
    const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    fc.assert(
      fc.property(
        fc.record({
          value: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.record({ a: fc.integer() })),
          fresh: fc.integer({ min: -5, max: 20_000 }),
          stale: fc.integer({ min: -10, max: 20_000 }),
          createdAt: optional(fc.integer({ min: -50_000, max: 10 })),
          ttlMs: optional(fc.integer({ min: 0, max: 50_000 })),
          version: optional(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 52 }))),
          meta: optional(fc.constant({ source: 'x' })),
          size: optional(fc.integer({ min: 1, max: 1000 })),
          frozen: fc.boolean(),
          last: fc.boolean(),
          expireFirst: fc.boolean(),
        }),
        (g) => {
          const c = clock();
          const tier = new MemoryTier({ maxTtlMs: 10_000, now: c.now, sweepIntervalMs: 0 });
          tier.attach({ index: 0, lastTier: g.last });
          const e: CacheEntry = {
            value: g.value,
            freshUntil: c.t + g.fresh,
            staleUntil: c.t + g.fresh + g.stale,
          };
          if (g.createdAt !== undefined) e.createdAt = c.t + g.createdAt;
          if (g.ttlMs !== undefined) e.ttlMs = g.ttlMs;
          if (g.version !== undefined) e.version = g.version;
          if (g.meta !== undefined) e.meta = { ...g.meta };
          if (g.size !== undefined) e.size = g.size;
          if (g.frozen) Object.freeze(e);
          const want = e.staleUntil > c.t ? reference(e, c.t, 10_000, g.last) : undefined;
          tier.setSync('k', e);
          if (!g.frozen) {
            // What the caller does with its object afterwards changes nothing.
            e.freshUntil = 1;
            e.staleUntil = c.t + 1;
            e.version = 3;
            e.createdAt = 4;
            e.ttlMs = 5;
          }
          if (g.expireFirst) {
            c.t += 1;
            tier.expireSync(['k']);
            if (want !== undefined && want.freshUntil > c.t && want.staleUntil > c.t) want.freshUntil = c.t;
          }
          const got = tier.getSync('k');
          if (want === undefined || !(want.staleUntil > c.t)) {
            expect(got).toBeUndefined();
            return;
          }
          expect(Object.isFrozen(got)).toBe(true);
          // The caller's own frozen object, kept as it is, or a copy equal to the reference (a
          // kept object turned stale is a copy of the caller's fields, without the undefined ones).
          if (got !== e) expect(got).toEqual(want);
          else expect(g.frozen && (g.last || e.staleUntil <= c.t + 10_000)).toBe(true);
          // Built once: the next read hands out the same object.
          expect(tier.getSync('k')).toBe(got);
          expect(tier.getFreshValueSync('k', c.t)).toBe(want.freshUntil > c.t ? g.value : undefined);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("keeps every entry's times and version across the growth of its slots", async () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    const n = 1000;
    for (let i = 0; i < n; i++)
      tier.setSync(`k${i}`, {
        value: i,
        freshUntil: c.t + 1000 + i,
        staleUntil: c.t + 2000 + i,
        version: 10 + i,
      });
    expect(tier.stats().entries).toBe(n);
    c.t += 1500;
    for (let i = 0; i < n; i++) {
      // fresh until +1000+i: up to k500 stale now, the others fresh; all servable
      expect(tier.getFreshValueSync(`k${i}`, c.t)).toBe(i > 500 ? i : undefined);
      expect(tier.getSync(`k${i}`)).toMatchObject({ value: i, version: 10 + i });
      // an older version is refused, the same one accepted
      tier.setSync(`k${i}`, { value: -i, freshUntil: c.t + 5000, staleUntil: c.t + 5000, version: 9 + i });
      expect(tier.getSync(`k${i}`)!.value).toBe(i);
    }
    // expire(keys, version) leaves entries newer than the version alone
    expect(await tier.expire(['k600', 'k700'], 10 + 650)).toBe(1);
    expect(tier.getFreshValueSync('k600', c.t)).toBeUndefined();
    expect(tier.getFreshValueSync('k700', c.t)).toBe(700);
    c.t += 1000;
    // stale-until +2000+i: up to k500 gone
    for (let i = 0; i < n; i++) expect(tier.getSync(`k${i}`)?.value).toBe(i > 500 ? i : undefined);
  });

  it("keeps the orchestrator's own entry on a memory-only set (no copy), frozen, value included", async () => {
    const tier = new MemoryTier({ sweepIntervalMs: 0 });
    const cache = new MultiLevelCache({ tiers: [tier], defaultTtlMs: 60_000 });
    const seen: CacheEntry[] = [];
    const setSync = tier.setSync.bind(tier);
    tier.setSync = (key, e) => {
      seen.push(e);
      setSync(key, e);
    };
    const value = { rows: [{ a: 1 }] };
    await cache.set('k', value, { tags: ['t'] });
    expect(tier.getSync('k')).toBe(seen[0]);
    expect(Object.isFrozen(value.rows[0])).toBe(true);
    expect(cache.getSync('k')).toBe(value);
    await cache.deleteByTag(['t']);
    expect(tier.getSync('k')).toBeUndefined();
    await cache.close();
  });

  it('caps lifetimes to maxTtlMs, never extending them', () => {
    const c = clock();
    const tier = new MemoryTier({ maxTtlMs: 10_000, now: c.now, sweepIntervalMs: 0 });
    tier.setSync('long', entry('v', c.t, 3_600_000, 3_600_000));
    expect(tier.getSync('long')).toMatchObject({ freshUntil: c.t + 10_000, staleUntil: c.t + 10_000 });
    tier.setSync('short', entry('v', c.t, 1000, 1000));
    expect(tier.getSync('short')).toMatchObject({ freshUntil: c.t + 1000, staleUntil: c.t + 2000 });
  });

  it('does not store an already expired entry and drops the previous value', async () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    await tier.set('k', entry('v', c.t));
    await tier.set('k', { value: 'dead', freshUntil: c.t - 10, staleUntil: c.t - 5 });
    expect(await tier.get('k')).toBeUndefined();
    await tier.set('never', { value: 'dead', freshUntil: c.t - 10, staleUntil: c.t - 5 });
    expect(tier.stats().entries).toBe(0);
  });

  it('sweeps expired entries on writes without reading them', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    for (let i = 0; i < 100; i++) tier.setSync(`old:${i}`, entry(i, c.t, 100));
    c.t += 1000;
    for (let i = 0; i < 100; i++) tier.setSync(`new:${i}`, entry(i, c.t));
    const s = tier.stats();
    expect(s.expirations).toBeGreaterThanOrEqual(90);
    expect(s.entries).toBeLessThanOrEqual(110);
  });

  it('sweeps expired entries in the background', async () => {
    const tier = new MemoryTier({ sweepIntervalMs: 20 });
    const now = Date.now();
    for (let i = 0; i < 50; i++)
      tier.setSync(`k:${i}`, { value: i, freshUntil: now + 30, staleUntil: now + 30 });
    await new Promise((r) => setTimeout(r, 120));
    expect(tier.stats()).toMatchObject({ entries: 0, expirations: 50 });
    await tier.close();
    await tier.close();
  });

  it('rejects undefined values with a typed error', () => {
    const tier = new MemoryTier();
    expect(() => tier.setSync('k', entry(undefined, Date.now()))).toThrow(InvalidValueError);
  });

  it('overwrites in place, re-costing the entry', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    tier.setSync('k', entry('a'.repeat(1000), c.t));
    const before = tier.stats().sizeBytes;
    tier.setSync('k', entry('b', c.t));
    // 1000 characters cost a 16-byte header plus 1000 rounded to 8-byte words; 'b' is a short string (12).
    expect(tier.stats().sizeBytes).toBe(before - (16 + 1000) + 12);
    expect(tier.getSync('k')?.value).toBe('b');
    expect(tier.stats().entries).toBe(1);
  });

  it('reports hits and misses when asked, and counts them in stats', () => {
    const { calls, metrics } = recordingMetrics();
    const tier = new MemoryTier({ metrics, reportHits: true });
    tier.setSync('k', entry(1, Date.now()));
    tier.getSync('k');
    tier.getSync('nope');
    expect(calls).toMatchObject({ hits: 1, misses: 1 });
    expect(tier.stats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it('deletes, batches, clears and pings', async () => {
    const tier = new MemoryTier();
    const now = Date.now();
    await tier.setMany([
      { key: 'a', entry: entry(1, now) },
      { key: 'b', entry: entry(2, now) },
    ]);
    expect((await tier.getMany(['a', 'x', 'b'])).map((e) => e?.value)).toEqual([1, undefined, 2]);
    expect(await tier.delete('a')).toBe(true);
    expect(await tier.delete('a')).toBe(false);
    expect(await tier.deleteMany(['a', 'b'])).toBe(1);
    await tier.set('c', entry(3, now));
    await tier.clear();
    expect(tier.stats()).toMatchObject({ entries: 0, sizeBytes: 0 });
    await expect(tier.ping()).resolves.toBeUndefined();
  });

  it('says an expired key did not exist on delete', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    tier.setSync('k', entry(1, c.t, 10));
    c.t += 100;
    expect(tier.deleteSync('k')).toBe(false);
  });

  it('validates its options with ConfigError', () => {
    expect(() => new MemoryTier({ maxSizeBytes: 0 })).toThrow(ConfigError);
    expect(() => new MemoryTier({ maxTtlMs: -1 })).toThrow(ConfigError);
    expect(() => new MemoryTier({ maxEntryFraction: 2 })).toThrow(ConfigError);
  });

  it('builds from CACHE_L1_MAX_SIZE_MB and CACHE_L1_DEFAULT_TTL', async () => {
    const tier = memoryTierFromEnv({ CACHE_L1_MAX_SIZE_MB: '8', CACHE_L1_DEFAULT_TTL: '2m' });
    expect(tier.maxSizeBytes).toBe(8 * 1024 * 1024);
    expect(tier.maxTtlMs).toBe(120_000);
    await tier.close();
    const dflt = memoryTierFromEnv({}, { sweepIntervalMs: 0 });
    expect(dflt.maxSizeBytes).toBe(100 * 1024 * 1024);
    expect(() => memoryTierFromEnv({ CACHE_L1_MAX_SIZE_MB: 'lots' })).toThrow(ConfigError);
  });

  it('keeps a frequently read working set against a one-off scan (scan resistance)', () => {
    const c = clock();
    const tier = new MemoryTier({ maxSizeBytes: 200 * 300, now: c.now, sweepIntervalMs: 0 });
    const hot = Array.from({ length: 50 }, (_, i) => `hot:${i}`);
    for (let round = 0; round < 20; round++) {
      for (const k of hot) if (!tier.getSync(k)) tier.setSync(k, entry(k, c.t));
    }
    for (let i = 0; i < 5000; i++) {
      const k = `scan:${i}`;
      if (!tier.getSync(k)) tier.setSync(k, entry(k, c.t));
    }
    const kept = hot.filter((k) => tier.getSync(k) !== undefined).length;
    expect(kept).toBeGreaterThanOrEqual(45);
  });
});
