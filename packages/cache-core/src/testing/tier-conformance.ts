import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheEntry } from '../entry.js';
import type { Tier } from '../tier.js';
import { nextVersion } from '../version.js';

/** Creates a fresh tier over the real backend. Called once per suite (twice for shared tiers). */
export type TierFactory = () => Tier | Promise<Tier>;

/** Options of {@link runTierConformance}. */
export interface TierConformanceOptions {
  /**
   * Slack (ms) allowed between the expiry times written and read back: a tier may store times at a
   * coarser resolution. @default 5
   */
  timeSlackMs?: number;
  /** Runs after the suite (stop servers, drop tables). */
  teardown?: () => Promise<void> | void;
  /**
   * The tier enforces entry versions ({@link CacheEntry.version}): a write of a lower version than
   * the stored entry is dropped, an equal or higher one replaces it, and `version`/`ttlMs` survive a
   * round trip (batch members included). @default false
   */
  versions?: boolean;
  /**
   * The tier keeps tombstones: `delete(key, { version, tombstoneMs })` (and `deleteMany`) refuses
   * later writes of lower versions until `tombstoneMs` has passed, and `clear()` refuses writes of
   * versions older than the clear. Implies `versions`. @default false
   */
  tombstones?: boolean;
  /**
   * With `tombstones`: `clear({ version })` removes only entries and tombstones older than the
   * clear, so that a write or delete called after the clear but reaching the backend before it is
   * not undone (found by the core's model test; a clear that wipes a newer tombstone lets an
   * older load resurrect the key). @default false
   */
  clearKeepsNewer?: boolean;
  /** The tier implements `expire(keys, version)` (logical expiry). @default false */
  expire?: boolean;
  /**
   * `'codec'`: values go through the core's value codec, so non-JSON values (Date, Map, Set, BigInt,
   * undefined in arrays, NaN, -0, nested) come back with the same types. `'json'`: only JSON values
   * are checked. @default 'json'
   */
  values?: 'json' | 'codec';
  /**
   * The tier persists {@link CacheEntry.tags} (the cache's own tags, opened by U+0001, included)
   * through `set`/`get` and the batch members, and keys opened by U+0001 (where the orchestrator
   * keeps its tag invalidation records) stay distinct from others. @default false
   */
  tags?: boolean;
}

/** Non-JSON values that a tier using the value codec returns with the same types. */
const CODEC_VALUES: Record<string, unknown> = {
  Date: new Date('2024-03-01T12:34:56.789Z'),
  'invalid Date': new Date(Number.NaN),
  Map: new Map<unknown, unknown>([
    ['a', 1],
    [2, { b: [3] }],
  ]),
  Set: new Set(['x', 1, null]),
  BigInt: 12345678901234567890123n,
  'negative BigInt': -42n,
  'undefined in an array': [1, undefined, 3],
  NaN: Number.NaN,
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
  '-0': -0,
  'object with an undefined property': { a: 1, b: undefined },
  nested: {
    when: new Date(0),
    totals: new Map([['2024', new Set([1n, 2n])]]),
    list: [Number.NaN, -0, undefined, { at: new Date(86_400_000) }],
  },
  'object shaped like a tag': { $bgc: 'Date', v: 'not a date' },
};

/** Polls `check` until it returns true (every 20 ms, up to `timeoutMs`); false if it never does. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const JSON_VALUES: Record<string, unknown> = {
  string: 'soja em grão',
  'empty string': '',
  integer: 42,
  zero: 0,
  negative: -7.25,
  'large number': 123456789012,
  true: true,
  false: false,
  null: null,
  'empty array': [],
  array: [1, 'two', null, { three: 3 }],
  'empty object': {},
  object: {
    ano: 2024,
    mes: 3,
    rows: [{ coNcm: '12019000', metricFOB: '4312558120' }],
    nested: { deep: { deeper: [true] } },
  },
  unicode: 'São Paulo — 日本 — 🚢',
  'large string': 'x'.repeat(200_000),
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The Tier contract as a vitest suite. Every tier package runs it against its real backend:
 *
 * ```ts
 * runTierConformance('redis', () => new RedisTier({ client, prefix: `test:${process.pid}:` }));
 * ```
 *
 * It checks get/set/delete, expiry and the stale window, overwrite, binary-safe and unicode keys,
 * values of every JSON type, concurrent writers, the optional batch/clear/sync members when the tier
 * has them, the `maxTtlMs` cap, and close.
 *
 * The coherence contract is opted into per capability (see {@link TierConformanceOptions}):
 *
 * ```ts
 * runTierConformance('redis', factory, { versions: true, tombstones: true, expire: true, values: 'codec' });
 * ```
 */
export function runTierConformance(
  name: string,
  factory: TierFactory,
  options: TierConformanceOptions = {},
): void {
  const slack = options.timeSlackMs ?? 5;

  describe(`Tier conformance: ${name}`, () => {
    let tier: Tier;
    const ns = `conf:${randomUUID().slice(0, 8)}:`;
    const k = (s: string) => `${ns}${s}`;
    const entry = <T>(value: T, ttlMs = 60_000, staleMs = 60_000): CacheEntry<T> => {
      const now = Date.now();
      return { value, freshUntil: now + ttlMs, staleUntil: now + ttlMs + staleMs, createdAt: now };
    };
    const expectTimes = (got: CacheEntry | undefined, want: CacheEntry) => {
      expect(got).toBeDefined();
      expect(Math.abs((got as CacheEntry).freshUntil - want.freshUntil)).toBeLessThanOrEqual(slack);
      expect(Math.abs((got as CacheEntry).staleUntil - want.staleUntil)).toBeLessThanOrEqual(slack);
    };

    beforeAll(async () => {
      tier = await factory();
    });
    afterAll(async () => {
      await tier?.close();
      await options.teardown?.();
    });

    it('declares a name, a level and a scope', () => {
      expect(tier.name).toMatch(/\S/);
      expect(['l1', 'l2', 'l3']).toContain(tier.level);
      expect(['local', 'shared']).toContain(tier.scope);
    });

    it('misses on an unknown key', async () => {
      expect(await tier.get(k('missing'))).toBeUndefined();
    });

    it('returns what was set, with its absolute times', async () => {
      const e = entry({ a: 1 });
      await tier.set(k('basic'), e);
      const got = await tier.get(k('basic'));
      expect(got?.value).toEqual({ a: 1 });
      expectTimes(got, e);
    });

    it('overwrites an existing key', async () => {
      await tier.set(k('over'), entry('first'));
      const second = entry('second', 120_000);
      await tier.set(k('over'), second);
      const got = await tier.get(k('over'));
      expect(got?.value).toBe('second');
      expectTimes(got, second);
    });

    it('deletes a key and says whether it existed', async () => {
      await tier.set(k('del'), entry('x'));
      expect(await tier.delete(k('del'))).toBe(true);
      expect(await tier.get(k('del'))).toBeUndefined();
      expect(await tier.delete(k('del'))).toBe(false);
    });

    it('never returns an entry past its stale-until time', async () => {
      const now = Date.now();
      await tier.set(k('expired'), { value: 'old', freshUntil: now - 2000, staleUntil: now - 1000 });
      expect(await tier.get(k('expired'))).toBeUndefined();
      await tier.set(k('short'), {
        value: 'brief',
        freshUntil: Date.now() + 100,
        staleUntil: Date.now() + 150,
      });
      expect((await tier.get(k('short')))?.value).toBe('brief');
      await sleep(400);
      expect(await tier.get(k('short'))).toBeUndefined();
    });

    it('returns a stale entry (past fresh-until, within stale-until) with its times unchanged', async () => {
      const now = Date.now();
      const e: CacheEntry = {
        value: 'stale-but-servable',
        freshUntil: now - 1000,
        staleUntil: now + 60_000,
        createdAt: now - 5000,
      };
      await tier.set(k('stale'), e);
      const got = await tier.get(k('stale'));
      expect(got?.value).toBe('stale-but-servable');
      expect(got!.freshUntil).toBeLessThan(Date.now());
      if (tier.maxTtlMs === undefined || tier.maxTtlMs >= 60_000) expectTimes(got, e);
    });

    it('keeps distinct unicode, binary-looking and pattern-like keys distinct', async () => {
      const keys = [
        'ключ:日本:🚢',
        'a b',
        'a*b',
        'a?b',
        'a[b]',
        'percent%20',
        'tab\\t',
        'comexstat:exp:2024:03:12019000:160',
        'x'.repeat(1000),
        'x'.repeat(999),
      ];
      await Promise.all(keys.map((key, i) => tier.set(k(key), entry(i))));
      const got = await Promise.all(keys.map((key) => tier.get(k(key))));
      expect(got.map((g) => g?.value)).toEqual(keys.map((_, i) => i));
      expect(await tier.get(k('a'))).toBeUndefined();
    });

    for (const [label, value] of Object.entries(JSON_VALUES)) {
      it(`stores a JSON ${label} faithfully`, async () => {
        await tier.set(k(`json:${label}`), entry(value));
        const got = await tier.get(k(`json:${label}`));
        expect(got).toBeDefined();
        expect(got!.value).toEqual(value);
      });
    }

    it('survives concurrent writers: last write of one key wins whole, many keys all land', async () => {
      const writes = Array.from({ length: 50 }, (_, i) =>
        tier.set(k('race'), entry({ writer: i, payload: 'p'.repeat(i * 10) })),
      );
      await Promise.all(writes);
      const got = (await tier.get(k('race')))?.value as { writer: number; payload: string };
      expect(got.writer).toBeGreaterThanOrEqual(0);
      expect(got.payload).toBe('p'.repeat(got.writer * 10));
      await Promise.all(Array.from({ length: 200 }, (_, i) => tier.set(k(`many:${i}`), entry(i))));
      const all = await Promise.all(Array.from({ length: 200 }, (_, i) => tier.get(k(`many:${i}`))));
      expect(all.map((g) => g?.value)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    });

    it('caps lifetimes to maxTtlMs when it declares one', async () => {
      const e = entry('long', 365 * 86_400_000, 86_400_000);
      await tier.set(k('capped'), e);
      const got = await tier.get(k('capped'));
      expect(got?.value).toBe('long');
      if (tier.maxTtlMs !== undefined) {
        expect(got!.staleUntil).toBeLessThanOrEqual(Date.now() + tier.maxTtlMs + slack);
      } else {
        expectTimes(got, e);
      }
    });

    it('getSync (when offered) agrees with get', async () => {
      if (!tier.getSync) return;
      await tier.set(k('sync'), entry('sync-value'));
      expect(tier.getSync(k('sync'))?.value).toBe('sync-value');
      expect(tier.getSync(k('sync-missing'))).toBeUndefined();
    });

    it('setSync (when offered) stores as set does (a lower version is dropped where versions are kept)', async () => {
      if (!tier.setSync) return;
      tier.setSync(k('sync-set'), { ...entry('sync-set'), version: 5 });
      const got = await tier.get(k('sync-set'));
      expect(got?.value).toBe('sync-set');
      expect(got?.version).toBe(5);
      if (!(options.versions || options.tombstones)) return;
      tier.setSync(k('sync-set'), { ...entry('older'), version: 4 });
      expect((await tier.get(k('sync-set')))?.value).toBe('sync-set');
    });

    it('getWith (when offered) calls back what get resolves', async () => {
      const getWith = tier.getWith?.bind(tier);
      if (!getWith) return;
      const read = (key: string) =>
        new Promise<CacheEntry | undefined>((resolve, reject) =>
          getWith(key, { ok: resolve, failed: reject }),
        );
      await tier.set(k('with'), entry({ v: 'with' }));
      expect((await read(k('with')))?.value).toEqual({ v: 'with' });
      expect(await read(k('with-missing'))).toBeUndefined();
      expect(await read(k('with'))).toEqual(await tier.get(k('with')));
    });

    it('getFreshValueSync (when offered) returns the values of fresh entries only', async () => {
      if (!tier.getFreshValueSync) return;
      const now = Date.now();
      await tier.set(k('fresh'), entry({ v: 1 }));
      await tier.set(k('stale'), { value: 'old', freshUntil: now - 1000, staleUntil: now + 60_000 });
      expect(tier.getFreshValueSync(k('fresh'), now)).toEqual({ v: 1 });
      expect(tier.getFreshValueSync(k('stale'), now)).toBeUndefined();
      expect(tier.getFreshValueSync(k('fresh-missing'), now)).toBeUndefined();
      expect((await tier.get(k('stale')))?.value).toBe('old');
    });

    it('getMany/setMany (when offered) are aligned with the keys', async () => {
      if (!tier.getMany || !tier.setMany) return;
      const writes = Array.from({ length: 20 }, (_, i) => ({ key: k(`batch:${i}`), entry: entry({ i }) }));
      await tier.setMany(writes);
      const keys = [k('batch:missing'), ...writes.map((w) => w.key), k('batch:missing2')];
      const got = await tier.getMany(keys);
      expect(got).toHaveLength(keys.length);
      expect(got[0]).toBeUndefined();
      expect(got[21]).toBeUndefined();
      expect(got.slice(1, 21).map((g) => (g?.value as { i: number } | undefined)?.i)).toEqual(
        Array.from({ length: 20 }, (_, i) => i),
      );
      expect(await tier.getMany([])).toEqual([]);
    });

    it('deleteMany (when offered) removes the keys and counts them', async () => {
      if (!tier.deleteMany) return;
      await tier.set(k('dm:1'), entry(1));
      await tier.set(k('dm:2'), entry(2));
      expect(await tier.deleteMany([k('dm:1'), k('dm:2'), k('dm:none')])).toBe(2);
      expect(await tier.get(k('dm:1'))).toBeUndefined();
    });

    it('clear (when offered) empties the tier', async () => {
      if (!tier.clear) return;
      await tier.set(k('clear:1'), entry(1));
      await tier.clear();
      expect(await tier.get(k('clear:1'))).toBeUndefined();
      await tier.set(k('clear:2'), entry(2));
      expect((await tier.get(k('clear:2')))?.value).toBe(2);
    });

    it('ping (when offered) resolves on a healthy backend', async () => {
      if (!tier.ping) return;
      await expect(tier.ping()).resolves.toBeUndefined();
    });

    it("shared tiers: a second instance sees the first one's writes", async () => {
      if (tier.scope !== 'shared') return;
      const other = await factory();
      try {
        await tier.set(k('shared'), entry('from-first'));
        expect((await other.get(k('shared')))?.value).toBe('from-first');
        await other.delete(k('shared'));
        expect(await tier.get(k('shared'))).toBeUndefined();
      } finally {
        await other.close();
      }
    });

    const versioned = <T>(value: T, version: number, ttlMs = 60_000, staleMs = 60_000): CacheEntry<T> => ({
      ...entry(value, ttlMs, staleMs),
      version,
      ttlMs,
    });
    const storedValue = async (key: string) => (await tier.get(key))?.value;

    if (options.versions || options.tombstones) {
      describe('versions', () => {
        it('drops a write of a lower version than the stored entry', async () => {
          const low = nextVersion();
          const high = nextVersion();
          await tier.set(k('v:lower'), versioned('new', high));
          await tier.set(k('v:lower'), versioned('old', low));
          expect(await storedValue(k('v:lower'))).toBe('new');
          await tier.set(k('v:unversioned'), versioned('new', nextVersion()));
          await tier.set(k('v:unversioned'), entry('no version counts as 0'));
          expect(await storedValue(k('v:unversioned'))).toBe('new');
        });

        it('lets a write of an equal or higher version replace the entry', async () => {
          const v = nextVersion();
          await tier.set(k('v:equal'), versioned('first', v));
          await tier.set(k('v:equal'), versioned('same version', v));
          expect(await storedValue(k('v:equal'))).toBe('same version');
          await tier.set(k('v:equal'), versioned('higher', nextVersion()));
          expect(await storedValue(k('v:equal'))).toBe('higher');
        });

        it('keeps version and ttlMs through a round trip', async () => {
          const v = nextVersion();
          await tier.set(k('v:round'), versioned({ a: 1 }, v, 45_000));
          const got = await tier.get(k('v:round'));
          expect(got?.version).toBe(v);
          expect(got?.ttlMs).toBe(45_000);
        });

        it('keeps a big version exactly (hybrid clock values near 2^53)', async () => {
          const v = Number.MAX_SAFE_INTEGER - 7;
          await tier.set(k('v:big'), versioned('big', v));
          expect((await tier.get(k('v:big')))?.version).toBe(v);
          await tier.set(k('v:big'), versioned('lower', v - 1));
          expect(await storedValue(k('v:big'))).toBe('big');
        });

        it('setMany/getMany (when offered): versions compared per key, version and ttlMs kept', async () => {
          if (!tier.setMany || !tier.getMany) return;
          const low = nextVersion();
          const high = nextVersion();
          await tier.set(k('vm:1'), versioned('stored-high', high));
          await tier.set(k('vm:2'), versioned('stored-low', low));
          const later = nextVersion();
          await tier.setMany([
            { key: k('vm:1'), entry: versioned('batch-low', low) },
            { key: k('vm:2'), entry: versioned('batch-later', later, 30_000) },
            { key: k('vm:3'), entry: versioned('batch-new', later, 30_000) },
          ]);
          const got = await tier.getMany([k('vm:1'), k('vm:2'), k('vm:3')]);
          expect(got.map((g) => g?.value)).toEqual(['stored-high', 'batch-later', 'batch-new']);
          expect(got.map((g) => g?.version)).toEqual([high, later, later]);
          expect(got[2]?.ttlMs).toBe(30_000);
        });
      });
    }

    if (options.tags) {
      describe('tags', () => {
        const tags = ['comexstat:ncm:12019000', 'year:2025', 'unicode: São Paulo 🚢', '\u0001ns:tenant:'];
        it('keeps tags through a round trip (get, getWith, getSync)', async () => {
          await tier.set(k('tags:round'), { ...entry({ a: 1 }), tags });
          expect((await tier.get(k('tags:round')))?.tags).toEqual(tags);
          if (tier.getSync) expect(tier.getSync(k('tags:round'))?.tags).toEqual(tags);
          if (tier.getWith) {
            const got = await new Promise<CacheEntry | undefined>((ok, failed) =>
              tier.getWith?.(k('tags:round'), { ok, failed }),
            );
            expect(got?.tags).toEqual(tags);
          }
          await tier.set(k('tags:none'), entry('untagged'));
          expect((await tier.get(k('tags:none')))?.tags).toBeUndefined();
        });

        it('a write without tags replaces a tagged entry whole (no tags left behind)', async () => {
          await tier.set(k('tags:replace'), { ...entry('tagged'), tags: ['a'] });
          await tier.set(k('tags:replace'), entry('plain'));
          const got = await tier.get(k('tags:replace'));
          expect(got?.value).toBe('plain');
          expect(got?.tags).toBeUndefined();
        });

        it('setMany/getMany (when offered) keep each entry its own tags', async () => {
          if (!tier.setMany || !tier.getMany) return;
          await tier.setMany([
            { key: k('tags:m1'), entry: { ...entry(1), tags: ['one'] } },
            { key: k('tags:m2'), entry: entry(2) },
            { key: k('tags:m3'), entry: { ...entry(3), tags: ['three', 'shared'] } },
          ]);
          const got = await tier.getMany([k('tags:m1'), k('tags:m2'), k('tags:m3')]);
          expect(got.map((g) => g?.tags)).toEqual([['one'], undefined, ['three', 'shared']]);
        });

        it('keys opened by U+0001 (tag records) stay distinct from the same text without it', async () => {
          await tier.set(`\u0001${k('rec')}`, entry('record'));
          await tier.set(k('rec'), entry('entry'));
          expect((await tier.get(`\u0001${k('rec')}`))?.value).toBe('record');
          expect((await tier.get(k('rec')))?.value).toBe('entry');
        });
      });
    }

    if (options.tombstones) {
      describe('tombstones', () => {
        it('a versioned delete refuses a later lower-version write and accepts a higher one', async () => {
          const before = nextVersion();
          await tier.set(k('t:1'), versioned('value', before));
          const del = nextVersion();
          expect(await tier.delete(k('t:1'), { version: del, tombstoneMs: 60_000 })).toBe(true);
          expect(await tier.get(k('t:1'))).toBeUndefined();
          await tier.set(k('t:1'), versioned('resurrected by a slow load', before));
          expect(await tier.get(k('t:1'))).toBeUndefined();
          await tier.set(k('t:1'), entry('unversioned'));
          expect(await tier.get(k('t:1'))).toBeUndefined();
          await tier.set(k('t:1'), versioned('newer write', nextVersion()));
          expect(await storedValue(k('t:1'))).toBe('newer write');
        });

        it('a tombstone is a miss for getMany, getWith and getSync too', async () => {
          await tier.set(k('t:read'), versioned('x', nextVersion()));
          await tier.delete(k('t:read'), { version: nextVersion(), tombstoneMs: 60_000 });
          if (tier.getMany) expect(await tier.getMany([k('t:read')])).toEqual([undefined]);
          if (tier.getSync) expect(tier.getSync(k('t:read'))).toBeUndefined();
          const getWith = tier.getWith?.bind(tier);
          if (getWith) {
            const got = await new Promise<CacheEntry | undefined>((resolve, reject) =>
              getWith(k('t:read'), { ok: resolve, failed: reject }),
            );
            expect(got).toBeUndefined();
          }
        });

        it('a versioned delete of an absent key still leaves a tombstone', async () => {
          const old = nextVersion();
          const del = nextVersion();
          await tier.delete(k('t:absent'), { version: del, tombstoneMs: 60_000 });
          await tier.set(k('t:absent'), versioned('late load', old));
          expect(await tier.get(k('t:absent'))).toBeUndefined();
        });

        it('a delete of a lower version than the stored entry leaves the newer entry', async () => {
          const del = nextVersion();
          const newer = nextVersion();
          await tier.set(k('t:newer'), versioned('newer', newer));
          await tier.delete(k('t:newer'), { version: del, tombstoneMs: 60_000 });
          expect(await storedValue(k('t:newer'))).toBe('newer');
        });

        it('the tombstone stops refusing writes once tombstoneMs has passed', async () => {
          const old = nextVersion();
          await tier.set(k('t:lapse'), versioned('v', old));
          await tier.delete(k('t:lapse'), { version: nextVersion(), tombstoneMs: 50 });
          const accepted = await eventually(async () => {
            await tier.set(k('t:lapse'), versioned('after the tombstone', old));
            return (await storedValue(k('t:lapse'))) === 'after the tombstone';
          });
          expect(accepted).toBe(true);
        });

        it('deleteMany (when offered) leaves a tombstone per key', async () => {
          if (!tier.deleteMany) return;
          const old = nextVersion();
          await tier.set(k('tm:1'), versioned(1, old));
          await tier.set(k('tm:2'), versioned(2, old));
          const del = nextVersion();
          expect(
            await tier.deleteMany([k('tm:1'), k('tm:2'), k('tm:3')], { version: del, tombstoneMs: 60_000 }),
          ).toBe(2);
          for (const key of ['tm:1', 'tm:2', 'tm:3']) await tier.set(k(key), versioned('late', old));
          expect(await Promise.all(['tm:1', 'tm:2', 'tm:3'].map((key) => tier.get(k(key))))).toEqual([
            undefined,
            undefined,
            undefined,
          ]);
          await tier.set(k('tm:2'), versioned('newer', nextVersion()));
          expect(await storedValue(k('tm:2'))).toBe('newer');
        });

        it('setMany (when offered) respects tombstones per key', async () => {
          if (!tier.setMany) return;
          const old = nextVersion();
          await tier.delete(k('ts:1'), { version: nextVersion(), tombstoneMs: 60_000 });
          await tier.setMany([
            { key: k('ts:1'), entry: versioned('late', old) },
            { key: k('ts:2'), entry: versioned('fine', old) },
          ]);
          expect(await tier.get(k('ts:1'))).toBeUndefined();
          expect(await storedValue(k('ts:2'))).toBe('fine');
        });

        it('clear (when offered) refuses later writes of versions older than the clear', async () => {
          if (!tier.clear) return;
          const before = nextVersion();
          await tier.set(k('tc:1'), versioned('before clear', before));
          await tier.clear();
          expect(await tier.get(k('tc:1'))).toBeUndefined();
          await tier.set(k('tc:1'), versioned('load started before the clear', before));
          expect(await tier.get(k('tc:1'))).toBeUndefined();
          if (tier.setMany) {
            await tier.setMany([{ key: k('tc:2'), entry: versioned('batch before the clear', before) }]);
            expect(await tier.get(k('tc:2'))).toBeUndefined();
          }
          await tier.set(k('tc:1'), versioned('after clear', nextVersion()));
          expect(await storedValue(k('tc:1'))).toBe('after clear');
        });

        if (options.clearKeepsNewer) {
          it('clear({ version }) keeps entries and tombstones of higher versions (called after it, landed first)', async () => {
            if (!tier.clear) throw new Error(`${tier.name} declares clearKeepsNewer but has no clear()`);
            const clearAt = nextVersion();
            const older = nextVersion();
            const newer = nextVersion();
            await tier.set(k('tck:entry'), versioned('newer entry', newer));
            await tier.delete(k('tck:tomb'), { version: newer, tombstoneMs: 60_000 });
            await tier.set(k('tck:old'), versioned('older than the clear', clearAt - 1));
            await tier.clear({ version: clearAt });
            expect(await storedValue(k('tck:entry'))).toBe('newer entry');
            expect(await tier.get(k('tck:old'))).toBeUndefined();
            await tier.set(k('tck:tomb'), versioned('between the clear and the delete', older));
            expect(await tier.get(k('tck:tomb'))).toBeUndefined();
          });
        }

        it('clear({ version }) (when offered) refuses writes below the given version', async () => {
          if (!tier.clear) return;
          const old = nextVersion();
          const clearAt = nextVersion();
          await tier.clear({ version: clearAt });
          await tier.set(k('tcv:1'), versioned('older than the clear', old));
          expect(await tier.get(k('tcv:1'))).toBeUndefined();
          await tier.set(k('tcv:1'), versioned('newer', nextVersion()));
          expect(await storedValue(k('tcv:1'))).toBe('newer');
        });
      });
    }

    if (options.expire) {
      describe('expire', () => {
        it('expire(keys, version): fresh-until now, stale-until and value kept; newer entries untouched', async () => {
          if (!tier.expire) throw new Error(`${tier.name} declares expire but has no expire()`);
          const v1 = nextVersion();
          await tier.set(k('e:1'), versioned({ kept: true }, v1, 60_000, 120_000));
          const stored = await tier.get(k('e:1'));
          const at = nextVersion();
          const newer = nextVersion();
          await tier.set(k('e:2'), versioned('newer', newer, 60_000, 120_000));
          const before = Date.now();
          expect(await tier.expire([k('e:1'), k('e:2'), k('e:missing')], at)).toBe(1);
          const after = Date.now();
          const got = await tier.get(k('e:1'));
          expect(got?.value).toEqual({ kept: true });
          expect(got!.freshUntil).toBeLessThanOrEqual(after + slack);
          expect(got!.freshUntil).toBeGreaterThanOrEqual(before - slack);
          expect(Math.abs(got!.staleUntil - stored!.staleUntil)).toBeLessThanOrEqual(slack);
          const untouched = await tier.get(k('e:2'));
          expect(untouched?.value).toBe('newer');
          expect(untouched!.freshUntil).toBeGreaterThan(Date.now() + 30_000);
          if (tier.getFreshValueSync) expect(tier.getFreshValueSync(k('e:1'), Date.now())).toBeUndefined();
        });

        it('expire without a version expires whatever is stored; an already stale entry is not counted', async () => {
          if (!tier.expire) return;
          await tier.set(k('e:nov'), versioned('x', nextVersion(), 60_000, 60_000));
          expect(await tier.expire([k('e:nov')])).toBe(1);
          expect((await tier.get(k('e:nov')))!.freshUntil).toBeLessThanOrEqual(Date.now() + slack);
          expect(await tier.expire([k('e:nov')])).toBe(0);
          expect(await storedValue(k('e:nov'))).toBe('x');
          expect(await tier.expire([])).toBe(0);
        });
      });
    }

    if (options.values === 'codec') {
      describe('values through the value codec', () => {
        for (const [label, value] of Object.entries(CODEC_VALUES)) {
          it(`returns a ${label} with the same type`, async () => {
            await tier.set(k(`codec:${label}`), entry(value));
            const got = await tier.get(k(`codec:${label}`));
            expect(got).toBeDefined();
            expect(got!.value).toStrictEqual(value);
            if (Object.is(value, -0)) expect(Object.is(got!.value, -0)).toBe(true);
          });
        }

        it('refuses a value with an own __proto__ key (typed error), and pollutes nothing', async () => {
          const hostile = JSON.parse('{"x": 1, "nested": {"__proto__": {"polluted": true}}}');
          await expect(tier.set(k('codec:proto'), entry(hostile))).rejects.toMatchObject({
            code: 'E_INVALID_VALUE',
          });
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          const got = (await tier.get(k('codec:object')))?.value;
          if (got !== undefined) expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
        });

        it('getMany/setMany (when offered) keep the types as well', async () => {
          if (!tier.getMany || !tier.setMany) return;
          const entries = Object.entries(CODEC_VALUES);
          await tier.setMany(
            entries.map(([label, value]) => ({ key: k(`codecm:${label}`), entry: entry(value) })),
          );
          const got = await tier.getMany(entries.map(([label]) => k(`codecm:${label}`)));
          expect(got.map((g) => g?.value)).toStrictEqual(entries.map(([, value]) => value));
          if (tier.deleteMany) {
            expect(await tier.deleteMany(entries.map(([label]) => k(`codecm:${label}`)))).toBe(
              entries.length,
            );
          }
        });
      });
    }

    it('closes cleanly, once', async () => {
      const extra = await factory();
      await extra.set(k('close'), entry(1));
      await expect(extra.close()).resolves.toBeUndefined();
    });
  });
}
