import { Writable } from 'node:stream';
import { ConfigError } from '@bgc/cache-core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type ComexStatMonthValue,
  createWarmReporter,
  type WarmProgress,
  warmComexStat,
} from '../src/index.js';
import { makeStack, minGap, type Stack, TOP_COUNTRIES, TOP_NCMS } from './helpers.js';

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

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
