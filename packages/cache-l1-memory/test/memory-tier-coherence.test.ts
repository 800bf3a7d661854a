import type { CacheEntry } from '@bgc/cache-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryTier } from '../src/index.js';
import { sizeAndFreeze } from '../src/internal.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

const entry = <T>(value: T, now: number, ttl = 60_000, stale = 0, extra: Partial<CacheEntry> = {}) =>
  ({
    value,
    freshUntil: now + ttl,
    staleUntil: now + ttl + stale,
    createdAt: now,
    ...extra,
  }) as CacheEntry<T>;

describe('MemoryTier lifetimes (attach, ttlMs)', () => {
  it('caps to maxTtlMs while a slower tier can refill it, keeping the loaded lifetime in ttlMs', () => {
    const c = clock();
    const tier = new MemoryTier({ maxTtlMs: 5 * 60_000, now: c.now, sweepIntervalMs: 0 });
    tier.attach({ index: 0, lastTier: false });
    tier.setSync('k', entry('v', c.t, 7 * DAY, DAY, { ttlMs: 7 * DAY, version: 42 }));
    expect(tier.getSync('k')).toMatchObject({
      freshUntil: c.t + 5 * 60_000,
      staleUntil: c.t + 5 * 60_000,
      ttlMs: 7 * DAY,
      version: 42,
      createdAt: c.t,
    });
    // no ttlMs given: the loaded lifetime (freshUntil - createdAt) is kept when the cap shortens it
    tier.setSync('legacy', entry('v', c.t, 2 * HOUR));
    expect(tier.getSync('legacy')).toMatchObject({ freshUntil: c.t + 5 * 60_000, ttlMs: 2 * HOUR });
    // an entry within the cap is stored as given
    tier.setSync('short', entry('v', c.t, 1000, 1000));
    expect(tier.getSync('short')).toMatchObject({ freshUntil: c.t + 1000, staleUntil: c.t + 2000 });
    expect(tier.getSync('short')?.ttlMs).toBeUndefined();
  });

  it('keeps the entry’s own lifetime when attached as the last tier, over a day of fake time', () => {
    const c = clock();
    const tier = new MemoryTier({ maxTtlMs: 5 * 60_000, now: c.now, sweepIntervalMs: 0 });
    tier.attach({ index: 0, lastTier: true });
    tier.setSync('k', entry('v', c.t, DAY, HOUR, { ttlMs: DAY }));
    expect(tier.getSync('k')).toMatchObject({ freshUntil: c.t + DAY, staleUntil: c.t + DAY + HOUR });
    c.t += DAY - 1;
    expect(tier.getFreshValueSync('k', c.t)).toBe('v');
    c.t += 2;
    expect(tier.getFreshValueSync('k', c.t)).toBeUndefined();
    expect(tier.getSync('k')?.value).toBe('v');
    c.t += HOUR;
    expect(tier.getSync('k')).toBeUndefined();
  });
});

describe('MemoryTier versions', () => {
  it('drops a write older than the stored entry, silently; equal and newer versions replace it', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    tier.setSync('k', entry('v2', c.t, 60_000, 0, { version: 200 }));
    tier.setSync('k', entry('v1', c.t, 60_000, 0, { version: 100 }));
    expect(tier.getSync('k')?.value).toBe('v2');
    tier.setSync('k', entry('old-unversioned', c.t));
    expect(tier.getSync('k')?.value).toBe('v2');
    // a losing write never removes the newer entry, even when it is already expired
    tier.setSync('k', { value: 'dead', freshUntil: c.t - 2, staleUntil: c.t - 1, version: 1 });
    expect(tier.getSync('k')?.value).toBe('v2');
    tier.setSync('k', entry('v2bis', c.t, 60_000, 0, { version: 200 }));
    expect(tier.getSync('k')).toMatchObject({ value: 'v2bis', version: 200 });
    tier.setSync('k', entry('v3', c.t, 60_000, 0, { version: 300 }));
    expect(tier.getSync('k')?.value).toBe('v3');
  });

  it('forgets the version once the key is deleted (the core keeps per-key versions)', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    tier.setSync('k', entry('new', c.t, 60_000, 0, { version: 200 }));
    expect(tier.deleteSync('k')).toBe(true);
    tier.setSync('k', entry('older', c.t, 60_000, 0, { version: 100 }));
    expect(tier.getSync('k')?.value).toBe('older');
  });

  it('checks versions once the first versioned write came, after unversioned ones', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    // unversioned writes replace each other (every version is 0)
    tier.setSync('k', entry('a', c.t));
    tier.setSync('k', entry('b', c.t));
    expect(tier.getSync('k')?.value).toBe('b');
    // a negative version is lower than the stored 0: dropped
    tier.setSync('k', entry('negative', c.t, 60_000, 0, { version: -1 }));
    expect(tier.getSync('k')?.value).toBe('b');
    tier.setSync('k', entry('v5', c.t, 60_000, 0, { version: 5 }));
    tier.setSync('k', entry('v3', c.t, 60_000, 0, { version: 3 }));
    tier.setSync('k', entry('unversioned', c.t));
    expect(tier.getSync('k')).toMatchObject({ value: 'v5', version: 5 });
    // another key written unversioned before any version came keeps 0 and accepts 0 again
    const other = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    other.setSync('x', entry('first', c.t, 60_000, 0, { version: -2 }));
    other.setSync('x', entry('lower', c.t, 60_000, 0, { version: -3 }));
    expect(other.getSync('x')?.value).toBe('first');
  });

  it('never lets a lower version replace a higher one, whatever the order of writes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: fc.integer({ min: 0, max: 3 }), version: fc.nat(20) }), {
          maxLength: 40,
        }),
        (writes) => {
          const tier = new MemoryTier({ sweepIntervalMs: 0 });
          const best = new Map<number, number>();
          const now = Date.now();
          for (const [i, w] of writes.entries()) {
            tier.setSync(String(w.key), entry(`${w.version}:${i}`, now, HOUR, 0, { version: w.version }));
            best.set(w.key, Math.max(best.get(w.key) ?? 0, w.version));
          }
          for (const [key, version] of best) expect(tier.getSync(String(key))?.version).toBe(version);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('MemoryTier logical expiry', () => {
  it('expire(keys) makes fresh entries stale now, keeps staleUntil, and spares newer versions', async () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0 });
    tier.setSync('a', entry('A', c.t, 60_000, 60_000, { version: 10 }));
    tier.setSync('b', entry('B', c.t, 60_000, 60_000, { version: 30 }));
    tier.setSync('c', entry('C', c.t, 60_000, 60_000));
    c.t += 5;
    expect(await tier.expire(['a', 'b', 'c', 'missing'], 20)).toBe(2);
    expect(tier.getSync('a')).toMatchObject({ value: 'A', freshUntil: c.t, staleUntil: c.t - 5 + 120_000 });
    expect(tier.getFreshValueSync('a', c.t)).toBeUndefined();
    expect(tier.getFreshValueSync('b', c.t)).toBe('B');
    expect(tier.getSync('c')?.freshUntil).toBe(c.t);
    expect(Object.isFrozen(tier.getSync('a'))).toBe(true);
    // already stale: not counted again; without a version every entry is expired
    expect(await tier.expire(['a', 'b'])).toBe(1);
    expect(tier.getFreshValueSync('b', c.t)).toBeUndefined();
    // a stale entry is still served until its staleUntil, then never
    c.t += 120_000;
    expect(tier.getSync('a')).toBeUndefined();
  });

  it('expireAll turns every entry stale at once and a later write is fresh again', () => {
    const c = clock();
    const tier = new MemoryTier({ now: c.now, sweepIntervalMs: 0, freeze: false });
    for (let i = 0; i < 100; i++) tier.setSync(`k${i}`, entry(i, c.t, 60_000, 60_000));
    c.t += 1;
    tier.expireAll();
    for (let i = 0; i < 100; i++) {
      expect(tier.getFreshValueSync(`k${i}`, c.t)).toBeUndefined();
      expect(tier.getSync(`k${i}`)).toMatchObject({ value: i, freshUntil: c.t });
    }
    tier.setSync('k0', entry('new', c.t));
    expect(tier.getFreshValueSync('k0', c.t)).toBe('new');
    expect(tier.stats().entries).toBe(100);
  });
});

describe('MemoryTier cost of frozen values (review finding 17)', () => {
  it('counts a re-stored frozen value at its full cost, not 8 bytes', () => {
    const c = clock();
    const tier = new MemoryTier({ maxSizeBytes: 100 * 1024 * 1024, now: c.now, sweepIntervalMs: 0 });
    const big = {
      rows: Array.from({ length: 20_000 }, (_, i) => ({ fob: i * 1.5, ncm: 'x'.repeat(20) + i })),
    };
    tier.setSync('a', entry(big, c.t, 60_000, 60_000));
    const first = tier.stats().sizeBytes;
    expect(first).toBeGreaterThan(1_000_000);
    // what the orchestrator's keepStale does: the same frozen value with new tags
    tier.setSync('a', { ...(tier.getSync('a') as CacheEntry), meta: { failSafe: true } });
    expect(tier.stats().sizeBytes).toBe(first);
    // the same value under a second key costs as much again
    tier.setSync('b', entry(big, c.t));
    expect(tier.stats().sizeBytes).toBe(2 * first - 2 * 'a'.length + 2 * 'b'.length);
  });

  it('remembers a cost from the second store of a value on: walked twice, then never again', () => {
    const c = clock();
    const tier = new MemoryTier({ maxSizeBytes: 100 * 1024 * 1024, now: c.now, sweepIntervalMs: 0 });
    let reads = 0;
    const value = new Proxy(
      { rows: ['a'.repeat(40), 'b'.repeat(40)], n: 1.5 },
      {
        get(target, key, receiver) {
          reads++;
          return Reflect.get(target, key, receiver);
        },
      },
    );
    const walks: number[] = [];
    const sizes: number[] = [];
    for (const key of ['k1', 'k2', 'k3', 'k4']) {
      reads = 0;
      tier.setSync(key, entry(value, c.t));
      walks.push(reads);
      sizes.push(tier.stats().sizeBytes);
    }
    // first store: walked and frozen; second: walked again (frozen, not yet remembered); then remembered
    expect(walks[0]).toBeGreaterThan(0);
    expect(walks[1]).toBe(walks[0]);
    expect(walks.slice(2)).toEqual([0, 0]);
    // every key pays the same full cost
    const per = sizes.map((s, i) => s - (i === 0 ? 0 : (sizes[i - 1] as number)));
    expect(new Set(per).size).toBe(1);
    expect(per[0]).toBeGreaterThan(2 * 56);
  });

  it('walks values frozen by the caller, and bounds the tier with them', () => {
    const c = clock();
    const tier = new MemoryTier({ maxSizeBytes: 1024 * 1024, now: c.now, sweepIntervalMs: 0 });
    const frozen = Object.freeze(Array.from({ length: 200_000 }, (_, i) => `${'y'.repeat(30)}${i}`));
    tier.setSync('b', entry(frozen, c.t));
    // 200k strings of ~36 chars: several MB, far above the 100 KB entry limit: refused
    expect(tier.stats()).toMatchObject({ entries: 0, refused: 1 });
    const nested = {
      inner: Object.freeze({ rows: Array.from({ length: 100 }, (_, i) => `${'z'.repeat(40)}${i}`) }),
    };
    expect(sizeAndFreeze(nested, true)).toBeGreaterThan(100 * 56);
  });

  it('terminates on cycles with and without freezing, counting each cycle edge once', () => {
    const a: Record<string, unknown> = { name: 'a' };
    const b: Record<string, unknown> = { name: 'b', a };
    a.b = b;
    expect(sizeAndFreeze({ a }, false)).toBeGreaterThan(0);
    const cost = sizeAndFreeze({ a }, true);
    expect(cost).toBeGreaterThan(0);
    expect(Object.isFrozen(b)).toBe(true);
    // a value deeper than 64 levels, unfrozen: the walk stops counting there
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 1000; i++) deep = { deep };
    expect(sizeAndFreeze(deep, false)).toBeLessThan(70 * 40);
  });
});
