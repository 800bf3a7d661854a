import { Writable } from 'node:stream';
import { type CacheEntry, ConfigError, MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ComexStatConnector,
  type ComexStatMonthQuery,
  type ComexStatMonthValue,
  comexstatTags,
  createWarmReporter,
  DEFAULT_CONNECTOR_CONFIG,
  type WarmProgress,
  warmComexStat,
} from '../src/index.js';
import { makeStack, minGap, type Stack, TOP_COUNTRIES, TOP_NCMS } from './helpers.js';

let stack: Stack | undefined;
let closeTiered: (() => Promise<void>) | undefined;
afterEach(async () => {
  await closeTiered?.();
  closeTiered = undefined;
  await stack?.close();
  stack = undefined;
});

/**
 * The simulator and spaced client of {@link makeStack}, with a connector over an L1 and the given
 * shared tiers (a job or gateway process: the local tier is the one a restart empties).
 */
async function tieredStack(shared: ('l2' | 'l3')[], prepare?: (tiers: FakeTier[]) => void) {
  stack = await makeStack();
  const l1 = new FakeTier({ level: 'l1', sync: true });
  const tiers = shared.map((level) => new FakeTier({ level, batch: level === 'l2' }));
  prepare?.(tiers);
  const cache = new MultiLevelCache({ tiers: [l1, ...tiers], hardTimeoutMs: 120_000, softTimeoutMs: 1000 });
  const connector = new ComexStatConnector({
    client: stack.client,
    cache,
    config: {
      ...DEFAULT_CONNECTOR_CONFIG,
      warming: { ...DEFAULT_CONNECTOR_CONFIG.warming, topNcms: TOP_NCMS, topCountries: TOP_COUNTRIES },
    },
  });
  closeTiered = async () => {
    await connector.drain();
    await cache.close();
  };
  return { sim: stack.sim, cache, connector, l1, tiers };
}

/** A small run: 4 NCMs × 2 countries × 3 months (2026-06..08) of exports, one calendar year. */
const SMALL = {
  ncms: TOP_NCMS.slice(0, 4),
  countries: ['160', '249'],
  months: 3,
  flows: ['export' as const],
};
const CELL: ComexStatMonthQuery = {
  flow: 'export',
  ano: 2026,
  mes: 7,
  ncm: TOP_NCMS[0] as string,
  pais: '160',
};

function sink(isTTY = false) {
  let text = '';
  const stream = Object.assign(
    new Writable({
      write(chunk, _enc, cb) {
        text += String(chunk);
        cb();
      },
    }),
    { isTTY },
  );
  return { stream, text: () => text };
}

describe('warmComexStat', () => {
  it("warms the seed's 50 × 10 × 12 set per flow with one call per flow per calendar year", async () => {
    stack = await makeStack();
    const progress: WarmProgress[] = [];
    const summary = await warmComexStat({ connector: stack.connector, onProgress: (p) => progress.push(p) });
    // Release: data through 2026-08 → the last 12 months are 2025-09..2026-08: two calendar years.
    expect(summary.keysTotal).toBe(2 * 50 * 10 * 12);
    expect(summary.keysWarmed).toBe(12_000);
    expect(summary.keysSkipped).toBe(0);
    expect(summary.generalCalls).toBe(4);
    expect(stack.sim.stats.byPath['/general']).toBe(4);
    // + /general/dates/updated once; the countries table is the bundled snapshot (no call).
    expect(summary.upstreamCalls).toBe(5);
    expect(summary.callsByKind).toEqual({ data: 4, dates: 1, countries: 0, other: 0 });
    expect(summary.tiers).toEqual([{ name: 'fake-l2', level: 'l2', held: 12_000 }]);
    expect(stack.sim.stats.calls).toBe(5);
    expect(stack.sim.stats.rateLimited).toBe(0);
    expect(minGap(stack.sentAt)).toBeGreaterThanOrEqual(100);
    expect(progress.map((p) => `${p.flow}:${p.ano}:${p.done}`)).toEqual([
      'export:2025:2000',
      'export:2026:6000',
      'import:2025:8000',
      'import:2026:12000',
    ]);

    // Every one of those keys is answerable from the cache, no-trade combinations included.
    const keys: string[] = [];
    for (const flow of ['export', 'import'] as const) {
      for (let i = 0; i < 12; i++) {
        const ano = i < 4 ? 2025 : 2026;
        const mes = i < 4 ? 9 + i : i - 3;
        for (const ncm of TOP_NCMS)
          for (const pais of TOP_COUNTRIES) keys.push(stack.connector.keyFor({ flow, ano, mes, ncm, pais }));
      }
    }
    const cached = await stack.cache.getMany<ComexStatMonthValue>(keys);
    expect(cached.every((c) => c.value !== undefined && c.value.status === 'ok')).toBe(true);
    const empty = cached.filter((c) => c.value?.rows.length === 0).length;
    expect(empty).toBeGreaterThan(1000);
    expect(empty).toBeLessThan(keys.length);
    const probe = await stack.connector.getMonth({
      flow: 'import',
      ano: 2025,
      mes: 10,
      ncm: '29291010',
      pais: '023',
    });
    expect(probe.level).toBe('l2');
    expect(stack.sim.stats.byPath['/general']).toBe(4);
  });

  it('resumes: a second run skips what is cached and makes no call', async () => {
    stack = await makeStack();
    const opts = {
      connector: stack.connector,
      ncms: TOP_NCMS.slice(0, 5),
      countries: TOP_COUNTRIES.slice(0, 3),
      months: 3,
    };
    const first = await warmComexStat(opts);
    expect(first.keysWarmed).toBe(2 * 5 * 3 * 3);
    expect(first.generalCalls).toBe(2);
    // Interrupted run: some keys lost (evicted / never written).
    await stack.cache.delete(
      stack.connector.keyFor({ flow: 'import', ano: 2026, mes: 7, ncm: TOP_NCMS[0] as string, pais: '160' }),
    );
    const progress: WarmProgress[] = [];
    const second = await warmComexStat({ ...opts, onProgress: (p) => progress.push(p) });
    expect(second.keysSkipped).toBe(89);
    expect(second.keysWarmed).toBe(1);
    expect(second.generalCalls).toBe(1);
    expect(progress.map((p) => p.skipped)).toEqual([true, false]);
    const third = await warmComexStat(opts);
    expect(third).toMatchObject({ keysWarmed: 0, generalCalls: 0, upstreamCalls: 0 });
  });

  it('takes the top lists from a provider when it has them, else from the YAML', async () => {
    stack = await makeStack();
    const asked: number[] = [];
    const summary = await warmComexStat({
      connector: stack.connector,
      months: 1,
      flows: ['export'],
      provider: {
        topNcms: async (n) => {
          asked.push(n);
          return ['12019000', '09011110'];
        },
        topCountries: async () => {
          throw new Error('L3 down');
        },
      },
    });
    expect(asked).toEqual([50]);
    expect(summary.keysTotal).toBe(2 * 10);
    const empty = await makeStack({
      config: (c) => ({ ...c, warming: { ...c.warming, topNcms: [], topCountries: [] } }),
    });
    try {
      await expect(warmComexStat({ connector: empty.connector })).rejects.toThrow(ConfigError);
      await expect(warmComexStat({ connector: empty.connector, ncms: ['12019000'] })).rejects.toThrow(
        'warming.top_countries',
      );
    } finally {
      await empty.close();
    }
  });

  it('uses the clock when the release is unknown', async () => {
    stack = await makeStack({
      config: (c) => ({ ...c, releaseAware: { enabled: false, checkIntervalMs: 1 } }),
    });
    const progress: WarmProgress[] = [];
    await warmComexStat({
      connector: stack.connector,
      ncms: ['12019000'],
      countries: ['160'],
      months: 2,
      flows: ['export'],
      now: new Date('2026-01-15T00:00:00Z'),
      onProgress: (p) => progress.push(p),
    });
    expect(progress.map((p) => p.ano)).toEqual([2025]);
  });
});

describe('warmComexStat over several tiers: resuming never undoes an invalidation', () => {
  it('a restarted process (empty L1) skips what L2 holds: no copy, no call', async () => {
    const t = await tieredStack(['l2']);
    const first = await warmComexStat({ connector: t.connector, ...SMALL });
    expect(first).toMatchObject({ keysWarmed: 24, keysSkipped: 0, keysLeftOut: 0, keysCopied: 0 });
    t.l1.store.clear();
    const second = await warmComexStat({ connector: t.connector, ...SMALL });
    expect(second).toMatchObject({ keysWarmed: 0, keysSkipped: 24, keysCopied: 0, generalCalls: 0 });
    expect(second.tiers.map((x) => `${x.level}:${x.held}`)).toEqual(['l1:0', 'l2:24']);
  });

  it('deleteByTag, then a resumed run: the invalidated cells are fetched again, never copied back', async () => {
    const t = await tieredStack(['l2']);
    await warmComexStat({ connector: t.connector, ...SMALL });
    const key = t.connector.keyFor(CELL);
    const before = (await t.cache.get<ComexStatMonthValue>(key)).value as ComexStatMonthValue;
    // The L2 still stores the entry; only the tag record says it is gone.
    await t.cache.deleteByTag([`comexstat:ncm:${CELL.ncm}`]);
    const invalidatedAt = Date.now();
    expect(t.tiers[0]?.store.has(key)).toBe(true);
    expect((await t.cache.get(key)).value).toBeUndefined();
    await new Promise((r) => setTimeout(r, 5));
    const calls = t.sim.stats.byPath['/general'] ?? 0;
    const resumed = await warmComexStat({ connector: t.connector, ...SMALL });
    // The 6 cells of that NCM (2 countries × 3 months) went upstream; the 18 others were skipped.
    expect(resumed).toMatchObject({ keysWarmed: 6, keysSkipped: 18, keysCopied: 0, generalCalls: 1 });
    expect(t.sim.stats.byPath['/general']).toBe(calls + 1);
    const after = (await t.cache.get<ComexStatMonthValue>(key)).value as ComexStatMonthValue;
    expect(after.fetchedAt).toBeGreaterThan(before.fetchedAt);
    expect(after.fetchedAt).toBeGreaterThanOrEqual(invalidatedAt);
  });

  it('copies what one shared tier lacks from the other, with its tags and without an upstream call', async () => {
    const t = await tieredStack(['l2', 'l3']);
    await warmComexStat({ connector: t.connector, ...SMALL });
    const [l2, l3] = t.tiers as [FakeTier, FakeTier];
    // An interrupted first run: L3 lost 2 cells (never written), L2 lost another.
    const lostInL3 = [CELL, { ...CELL, pais: '249' }].map((c) => t.connector.keyFor(c));
    const lostInL2 = t.connector.keyFor({ ...CELL, mes: 8 });
    for (const k of lostInL3) l3.store.delete(k);
    l2.store.delete(lostInL2);
    t.l1.store.clear();
    const inL2 = l2.store.get(lostInL3[0] as string) as CacheEntry<ComexStatMonthValue>;
    const calls = t.sim.stats.byPath['/general'] ?? 0;
    const resumed = await warmComexStat({ connector: t.connector, ...SMALL });
    expect(resumed).toMatchObject({ keysWarmed: 0, keysSkipped: 24, keysCopied: 3, generalCalls: 0 });
    expect(t.sim.stats.byPath['/general']).toBe(calls);
    expect(resumed.tiers.map((x) => `${x.level}:${x.held}`)).toEqual(['l1:3', 'l2:24', 'l3:24']);
    const copy = l3.store.get(lostInL3[0] as string) as CacheEntry<ComexStatMonthValue>;
    expect(copy.value).toEqual(inL2.value);
    expect(copy.tags).toEqual(comexstatTags(CELL));
    // Never fresher than its source: the policy's lifetime from the value's fetch time.
    expect(copy.freshUntil).toBeLessThanOrEqual(inL2.freshUntil + 50);
    // The copies are tagged like the originals: one deleteByTag reaches them.
    await t.cache.deleteByTag([`comexstat:country:160`]);
    expect((await t.cache.get(lostInL3[0] as string)).value).toBeUndefined();
  });

  it("deleteByTag while one shared tier lacks the cell: the other tier's invalidated copy is not copied over", async () => {
    const t = await tieredStack(['l2', 'l3']);
    await warmComexStat({ connector: t.connector, ...SMALL });
    const [l2, l3] = t.tiers as [FakeTier, FakeTier];
    const key = t.connector.keyFor(CELL);
    const old = l2.store.get(key) as CacheEntry<ComexStatMonthValue>;
    l3.store.delete(key);
    await t.cache.deleteByTag([`comexstat:year:2026`]);
    await new Promise((r) => setTimeout(r, 5));
    const resumed = await warmComexStat({ connector: t.connector, ...SMALL });
    expect(resumed).toMatchObject({ keysWarmed: 24, keysSkipped: 0, keysCopied: 0, keysLeftOut: 0 });
    const now = (await t.cache.get<ComexStatMonthValue>(key)).value as ComexStatMonthValue;
    expect(now.fetchedAt).toBeGreaterThan(old.value.fetchedAt);
    expect((l3.store.get(key) as CacheEntry<ComexStatMonthValue>).value.fetchedAt).toBe(now.fetchedAt);
  });

  it('an invalidation landing during a copy (after its read) keeps the copy out of every tier; the cell is fetched instead', async () => {
    const t = await tieredStack(['l2', 'l3']);
    await warmComexStat({ connector: t.connector, ...SMALL });
    const [l2, l3] = t.tiers as [FakeTier, FakeTier];
    const key = t.connector.keyFor(CELL);
    const old = l2.store.get(key) as CacheEntry<ComexStatMonthValue>;
    l3.store.delete(key);
    t.l1.store.clear();
    // The copy's loader reads the holding tiers (L1, L2) for this one key; the invalidation is
    // published right after that read answered the old value, before anything is written.
    const getMany = t.cache.getMany.bind(t.cache);
    let raced = 0;
    t.cache.getMany = (async (keys: readonly string[], options?: Parameters<typeof getMany>[1]) => {
      const got = await getMany(keys, options);
      if (keys.length === 1 && keys[0] === key && options?.skip && raced === 0) {
        raced++;
        expect(got[0]?.value).toMatchObject({ fetchedAt: old.value.fetchedAt });
        await t.cache.deleteByTag([`comexstat:ncm:${CELL.ncm}`]);
      }
      return got;
    }) as typeof t.cache.getMany;
    const resumed = await warmComexStat({ connector: t.connector, ...SMALL });
    expect(raced).toBe(1);
    expect(resumed.keysCopied).toBe(0);
    // The cell came from upstream (its siblings were judged cached before the invalidation).
    expect(resumed.keysWarmed).toBe(1);
    expect(resumed.generalCalls).toBe(1);
    // Each shared tier, read alone, serves the new value.
    for (const [level, skip] of [
      ['l2', ['l1', 'l3']],
      ['l3', ['l1', 'l2']],
    ] as const) {
      const r = await t.cache.get<ComexStatMonthValue>(key, { skip: { read: [...skip] } });
      expect(r.level).toBe(level);
      expect(r.value?.fetchedAt).toBeGreaterThan(old.value.fetchedAt);
    }
    const now = (await t.cache.get<ComexStatMonthValue>(key)).value as ComexStatMonthValue;
    expect(now.fetchedAt).toBeGreaterThan(old.value.fetchedAt);
  });

  it('counts as warmed only the cells that landed: a refused write is left out', async () => {
    // The L2 drops the writes of one NCM without a word (as a tier losing them would).
    const t = await tieredStack(['l2'], ([l2]) => {
      const tier = l2 as FakeTier;
      const setMany = (tier.setMany as NonNullable<FakeTier['setMany']>).bind(tier);
      tier.setMany = (writes) => setMany(writes.filter((w) => !w.key.includes(`:${CELL.ncm}:`)));
    });
    const summary = await warmComexStat({ connector: t.connector, ...SMALL });
    expect(summary).toMatchObject({ keysWarmed: 18, keysLeftOut: 6, keysSkipped: 0, keysTotal: 24 });
    expect(summary.tiers.find((x) => x.level === 'l2')?.held).toBe(18);
  });
});

describe('createWarmReporter', () => {
  const summary = {
    keysWarmed: 10,
    keysSkipped: 2,
    keysTotal: 12,
    upstreamCalls: 3,
    generalCalls: 1,
    ms: 1500,
  };

  it('prints plain lines when not on a terminal', () => {
    const out = sink(false);
    const r = createWarmReporter({ stream: out.stream });
    r.onProgress({ flow: 'export', ano: 2025, done: 6, total: 12, skipped: false });
    r.onProgress({ flow: 'import', ano: 2025, done: 12, total: 12, skipped: true });
    r.finish(summary);
    expect(out.text()).toBe(
      'warming export 2025: 6/12 keys\n' +
        'warming import 2025: 12/12 keys (already cached, skipped)\n' +
        'warmed 10 keys (2 already cached) with 3 upstream calls (1 POST /general) in 1.5 s\n',
    );
  });

  it('says what was copied between tiers and what could not be stored', () => {
    const out = sink(false);
    createWarmReporter({ stream: out.stream }).finish({ ...summary, keysCopied: 3, keysLeftOut: 4 });
    expect(out.text()).toBe(
      'warmed 10 keys (2 already cached, 3 copied between tiers, 4 not stored: the next run asks again) with 3 upstream calls (1 POST /general) in 1.5 s\n',
    );
  });

  it('draws a progress bar on a terminal', () => {
    const out = sink(true);
    const r = createWarmReporter({ stream: out.stream, tty: true });
    r.onProgress({ flow: 'export', ano: 2025, done: 6, total: 12, skipped: false });
    r.onProgress({ flow: 'export', ano: 2026, done: 12, total: 12, skipped: false });
    r.finish(summary);
    expect(out.text()).toContain('warming [');
    expect(out.text()).toContain('12/12 keys');
    expect(out.text()).toContain('warmed 10 keys');
  });
});
