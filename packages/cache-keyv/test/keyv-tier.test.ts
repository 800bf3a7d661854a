import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgcCacheError, type CacheEntry, MultiLevelCache, type TierError } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyvTier } from '../src/index.js';
import { sleep } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'bgc-keyv-tier-unit-'));
const uri = `sqlite://${join(dir, 'cache.sqlite')}`;
const tiers: KeyvTier[] = [];
afterAll(async () => {
  for (const t of tiers) await t.close();
  rmSync(dir, { recursive: true, force: true });
});

let n = 0;
function sqliteTier(options: { maxTtlMs?: number; namespace?: string } = {}) {
  const tier = new KeyvTier({
    keyv: new Keyv({ store: new KeyvSqlite(uri), namespace: options.namespace ?? `t${n++}` }),
    ownsKeyv: true,
    ...(options.maxTtlMs ? { maxTtlMs: options.maxTtlMs } : {}),
  });
  tiers.push(tier);
  return tier;
}

const entry = (value: unknown, version?: number, ttlMs = 60_000): CacheEntry => {
  const now = Date.now();
  return {
    value,
    freshUntil: now + ttlMs,
    staleUntil: now + ttlMs + 60_000,
    createdAt: now,
    ...(version === undefined ? {} : { version }),
  };
};

describe('KeyvTier: versions', () => {
  it('a lower version never replaces a higher one; equal and higher do', async () => {
    const t = sqliteTier();
    await t.set('k', entry('v10', 10));
    await t.set('k', entry('v5', 5));
    expect((await t.get('k'))?.value).toBe('v10');
    await t.set('k', entry('v10b', 10));
    expect((await t.get('k'))?.value).toBe('v10b');
    await t.set('k', entry('v11', 11));
    expect(await t.get('k')).toMatchObject({ value: 'v11', version: 11 });
  });

  it('concurrent writes of one key in one process keep the highest version', async () => {
    const t = sqliteTier();
    const versions = Array.from({ length: 30 }, (_, i) => 100 + ((i * 17) % 30));
    await Promise.all(versions.map((v) => t.set('race', entry(`v${v}`, v))));
    expect((await t.get('race'))?.version).toBe(129);
  });

  it('version, ttlMs, createdAt and meta survive a round trip', async () => {
    const t = sqliteTier();
    const e = { ...entry({ a: 1 }, 77), ttlMs: 1234, meta: { negative: true, etag: 'x' } };
    await t.set('rt', e);
    expect(await t.get('rt')).toMatchObject({
      version: 77,
      ttlMs: 1234,
      createdAt: e.createdAt,
      meta: { negative: true, etag: 'x' },
    });
  });

  it('a versioned delete leaves a tombstone that refuses older writes until it lapses', async () => {
    const t = sqliteTier();
    await t.set('d', entry('old', 1));
    expect(await t.delete('d', { version: 10, tombstoneMs: 60_000 })).toBe(true);
    expect(await t.get('d')).toBeUndefined();
    await t.set('d', entry('late load', 5));
    expect(await t.get('d')).toBeUndefined();
    await t.set('d', entry('newer', 11));
    expect((await t.get('d'))?.value).toBe('newer');
    expect(await t.delete('d', { version: 20, tombstoneMs: 100 })).toBe(true);
    await sleep(250);
    await t.set('d', entry('after the tombstone', 5));
    expect((await t.get('d'))?.value).toBe('after the tombstone');
  });

  it('a delete older than the stored entry keeps the entry', async () => {
    const t = sqliteTier();
    await t.set('keep', entry('new', 50));
    expect(await t.delete('keep', { version: 40, tombstoneMs: 1000 })).toBe(false);
    expect((await t.get('keep'))?.value).toBe('new');
    expect(await t.deleteMany(['keep', 'none'], { version: 60 })).toBe(1);
    expect(await t.get('keep')).toBeUndefined();
  });

  it('clear() refuses later writes of versions older than the clear; newer and unversioned ones land', async () => {
    const t = sqliteTier();
    const before = Date.now() * 1024;
    await t.set('c', entry('x', before));
    await t.clear();
    expect(await t.get('c')).toBeUndefined();
    await t.set('c', entry('load started before the clear', before + 1));
    expect(await t.get('c')).toBeUndefined();
    await t.set('c', entry('after', Date.now() * 1024 + 1_000_000));
    expect((await t.get('c'))?.value).toBe('after');
    await t.set('u', entry('unversioned'));
    expect((await t.get('u'))?.value).toBe('unversioned');
  });

  it('clear() removes its own namespace only', async () => {
    const a = sqliteTier({ namespace: 'clear-a' });
    const b = sqliteTier({ namespace: 'clear-b' });
    await a.set('k', entry('a'));
    await b.set('k', entry('b'));
    await a.clear();
    expect(await a.get('k')).toBeUndefined();
    expect((await b.get('k'))?.value).toBe('b');
  });
});

describe('KeyvTier: logical expiry', () => {
  it('expire() ends freshness now, keeps staleUntil and the value; newer versions are untouched', async () => {
    const t = sqliteTier();
    const e = entry('v', 10);
    await t.set('e1', e);
    await t.set('e2', entry('newer', 30));
    expect(await t.expire(['e1', 'e2', 'missing'], 20)).toBe(1);
    const got = (await t.get('e1'))!;
    expect(got.value).toBe('v');
    expect(got.freshUntil).toBeLessThanOrEqual(Date.now());
    expect(got.staleUntil).toBe(e.staleUntil);
    expect((await t.get('e2'))!.freshUntil).toBeGreaterThan(Date.now());
    expect(await t.expire(['e2'])).toBe(1);
  });

  it('a cache over [memory, KeyvTier] serves the stale entry when the loader fails (fail-safe)', async () => {
    const t = sqliteTier();
    const cache = new MultiLevelCache({
      tiers: [new MemoryTier(), t],
      staleTtlMs: 60_000,
      failSafeBackoffMs: 0,
    });
    try {
      await cache.getOrLoad('fs', () => 'good', { ttlMs: 50 });
      await sleep(120);
      const r = await cache.getOrLoad('fs', () => {
        throw new Error('upstream down');
      });
      expect(r).toMatchObject({ value: 'good', stale: true });
    } finally {
      await cache.close();
    }
  });
});

describe('KeyvTier: limits, bad records and failures', () => {
  it('caps lifetimes to maxTtlMs, except as the last tier', async () => {
    const t = sqliteTier({ maxTtlMs: 10_000 });
    await t.set('cap', entry('x', undefined, 3_600_000));
    expect((await t.get('cap'))!.staleUntil).toBeLessThanOrEqual(Date.now() + 10_000);
    t.attach({ index: 1, lastTier: true });
    await t.set('cap', entry('x', undefined, 3_600_000));
    expect((await t.get('cap'))!.staleUntil).toBeGreaterThan(Date.now() + 3_000_000);
  });

  it('an entry already past its stale-until is not written (and removes the key)', async () => {
    const t = sqliteTier();
    await t.set('gone', entry('x'));
    const now = Date.now();
    await t.set('gone', { value: 'old', freshUntil: now - 2000, staleUntil: now - 1000 });
    expect(await t.get('gone')).toBeUndefined();
  });

  it('reads an unreadable or foreign record as a miss', async () => {
    const t = sqliteTier();
    await t.keyv.set('junk1', 'not a record');
    await t.keyv.set('junk2', { v: '{bad json', f: Date.now() + 1000, s: Date.now() + 2000 });
    await t.keyv.set('junk3', { v: '1', f: 'soon', s: Date.now() + 2000 });
    await t.keyv.set('junk4', { v: '{"a":1}', f: Date.now() + 1000, s: Date.now() + 2000, m: { x: {} } });
    expect(await t.getMany(['junk1', 'junk2', 'junk3'])).toEqual([undefined, undefined, undefined]);
    expect((await t.get('junk4'))?.meta).toBeUndefined();
  });

  it('a record with untrustworthy tags is a miss (never an untagged entry); invalid tags are refused on write', async () => {
    const t = sqliteTier();
    const times = { f: Date.now() + 1000, s: Date.now() + 2000 };
    await t.keyv.set('tags1', { v: '1', ...times, g: 'not-a-list' });
    await t.keyv.set('tags2', { v: '1', ...times, g: ['a\nb'] });
    await t.keyv.set('tags3', { v: '1', ...times, g: [] });
    expect(await t.getMany(['tags1', 'tags2'])).toEqual([undefined, undefined]);
    const untagged = await t.get('tags3');
    expect(untagged?.value).toBe(1);
    expect(untagged?.tags).toBeUndefined();
    const error = await t.set('tags4', { ...entry('x'), tags: [''] }).catch((e: unknown) => e);
    expect(BgcCacheError.isInstance(error) && error.code).toBe('E_INVALID_VALUE');
    expect(String((error as Error).message)).toContain('"tags4"');
  });

  it('refuses values without a stored form with an InvalidValueError', async () => {
    const t = sqliteTier();
    const error = await t
      .set(
        'fn',
        entry(() => 1),
      )
      .catch((e: unknown) => e);
    expect(BgcCacheError.isInstance(error) && error.code).toBe('E_INVALID_VALUE');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const cycle = await t.set('cycle', entry(cyclic)).catch((e: unknown) => e);
    expect(BgcCacheError.isInstance(cycle) && cycle.code).toBe('E_INVALID_VALUE');
    expect(String((cycle as Error).message)).toContain('"cycle"');
  });

  it("keeps non-JSON values' types (the core's value codec)", async () => {
    const t = sqliteTier();
    const value = {
      when: new Date('2024-03-01T00:00:00Z'),
      map: new Map<string, unknown>([['a', 1]]),
      set: new Set([1, 2]),
      big: 12345678901234567890n,
      holes: [1, undefined, 3],
      nan: Number.NaN,
      negZero: -0,
      nested: { inner: new Date(0) },
    };
    await t.set('types', entry(value));
    const got = (await t.get('types'))!.value as typeof value;
    expect(got).toEqual(value);
    expect(Object.is(got.negZero, -0)).toBe(true);
    expect(got.map).toBeInstanceOf(Map);
  });

  it('reads a record whose value text is over maxValueBytes as a miss', async () => {
    const t = new KeyvTier({
      keyv: new Keyv({ store: new KeyvSqlite(uri), namespace: 'small' }),
      maxValueBytes: 100,
      ownsKeyv: true,
    });
    tiers.push(t);
    await t.set('big', entry('x'.repeat(500)));
    expect(await t.get('big')).toBeUndefined();
    await t.set('small', entry('x'));
    expect((await t.get('small'))?.value).toBe('x');
  });

  it('a failing store rejects with a TierError (E_KEYV) without the credentials in its message', async () => {
    const failing = new Map();
    const boom = async () => {
      throw new Error('connect ECONNREFUSED mongodb://admin:s3cret@db.internal:27017');
    };
    Object.assign(failing, { get: boom, set: boom, delete: boom, clear: boom });
    const t = new KeyvTier({ keyv: new Keyv({ store: failing }), name: 'mongo' });
    for (const op of [() => t.get('k'), () => t.set('k', entry(1)), () => t.clear(), () => t.ping()]) {
      const error = await op().catch((e: unknown) => e);
      expect(BgcCacheError.isInstance(error) && error.code).toBe('E_KEYV');
      expect(String((error as Error).message)).not.toContain('s3cret');
      expect(String((error as Error).message)).toContain('mongodb://***@db.internal');
      expect((error as TierError).errorType).toBe('connection_error');
    }
    const slow = new Map();
    const timeout = async () => {
      throw Object.assign(new Error('operation timed out'), { code: 'ETIMEDOUT' });
    };
    Object.assign(slow, { get: timeout, set: timeout, delete: timeout, clear: timeout });
    const t2 = new KeyvTier({ keyv: new Keyv({ store: slow }) });
    expect(((await t2.get('k').catch((e: unknown) => e)) as TierError).errorType).toBe('timeout');
    const odd = new Map();
    const fails = async () => {
      throw new Error('constraint failed');
    };
    Object.assign(odd, { get: fails, set: fails, delete: fails, clear: fails });
    const t3 = new KeyvTier({ keyv: new Keyv({ store: odd }) });
    expect(((await t3.get('k').catch((e: unknown) => e)) as TierError).errorType).toBe('unknown');
  });

  it('refuses bad options with a ConfigError', () => {
    expect(() => new KeyvTier(undefined as never)).toThrow(/needs a Keyv instance/);
    expect(() => new KeyvTier({ keyv: new Keyv(), maxTtlMs: 0 })).toThrow(/maxTtlMs/);
  });

  it('describes itself and does not disconnect a Keyv it was handed', async () => {
    const keyv = new Keyv({ store: new KeyvSqlite(uri), namespace: 'handed' });
    const t = new KeyvTier({ keyv, name: 'sqlite', level: 'l3', scope: 'shared' });
    expect([t.name, t.level, t.scope, t.maxTtlMs]).toEqual(['sqlite', 'l3', 'shared', undefined]);
    await t.ping();
    await t.close();
    await t.set('still', entry('open'));
    expect((await t.get('still'))?.value).toBe('open');
    await keyv.disconnect();
  });
});
