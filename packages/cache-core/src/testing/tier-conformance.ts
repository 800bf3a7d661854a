import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheEntry } from '../entry.js';
import type { Tier } from '../tier.js';

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

    it('closes cleanly, once', async () => {
      const extra = await factory();
      await extra.set(k('close'), entry(1));
      await expect(extra.close()).resolves.toBeUndefined();
    });
  });
}
