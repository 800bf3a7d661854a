import { InvalidKeyError } from '@bgc/cache-core';
import { afterEach, describe, expect, it } from 'vitest';
import { ComexStatApiError, type ComexStatMonthQuery, DEFAULT_CONNECTOR_CONFIG } from '../src/index.js';
import { generateCell, SIM_COUNTRIES, SIM_NCMS } from '../src/simulator/index.js';
import { ManualClock, makeStack, minGap, type Stack, TOP_COUNTRIES, TOP_NCMS, until } from './helpers.js';

const release = { updated: '2026-09-05', year: 2026, month: 8 };
const ncm = (code: string) => SIM_NCMS.find((n) => n.coNcm === code)!;
const country = (id: string) => SIM_COUNTRIES.find((c) => c.id === id)!;
const expected = (q: ComexStatMonthQuery) =>
  generateCell(q.flow, q.ano, q.mes, ncm(q.ncm), country(q.pais), release);

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('ComexStatConnector: coalescing', () => {
  it('merges a burst of cold misses of one flow and year into one upstream call', async () => {
    // Issue 22: the spacer's slot is held by a manual clock until every miss has joined the call,
    // so the test asserts the cause (all 30 cells in one call) rather than hoping they arrive in time.
    const clock = new ManualClock();
    stack = await makeStack({ clock });
    await stack.client.spacer?.acquire();
    const queries: ComexStatMonthQuery[] = [];
    for (let i = 0; i < 30; i++) {
      queries.push({
        flow: 'export',
        ano: 2025,
        mes: (i % 12) + 1,
        ncm: TOP_NCMS[i % 7] as string,
        pais: TOP_COUNTRIES[i % 5] as string,
      });
    }
    const pending = Promise.all(queries.map((q) => stack!.connector.getMonth(q)));
    await until(() => expect(stack!.connector.pendingCells).toBe(30));
    expect(stack.sim.stats.byPath['/general']).toBeUndefined();
    await clock.advance(100);
    const results = await pending;
    expect(stack.sim.stats.byPath['/general']).toBe(1);
    expect(stack.connector.stats.generalCalls).toBe(1);
    expect(stack.connector.stats.mergedMisses).toBeGreaterThanOrEqual(29);
    results.forEach((r, i) => {
      const q = queries[i] as ComexStatMonthQuery;
      const cell = expected(q);
      expect(r.level).toBe('external');
      expect(r.status).toBe('ok');
      expect(r.rows).toEqual(
        cell
          ? [{ flow: 'export', ano: 2025, mes: q.mes, ncm: q.ncm, pais: q.pais, fob: cell.fob, kg: cell.kg }]
          : [],
      );
    });
    expect(stack.sim.stats.rateLimited).toBe(0);
  });

  it('hands every fetched row to onRows (the L3 aggregates feed), not awaited by the request', async () => {
    const seen: { ncm: string; pais: string; fob: number }[] = [];
    const clock = new ManualClock();
    stack = await makeStack({ onRows: (rows) => void seen.push(...rows), clock });
    await stack.client.spacer?.acquire();
    const both = Promise.all([
      stack.connector.getMonth({ flow: 'export', ano: 2025, mes: 3, ncm: '12019000', pais: '160' }),
      stack.connector.getMonth({ flow: 'export', ano: 2025, mes: 4, ncm: '09011110', pais: '249' }),
    ]);
    await until(() => expect(stack!.connector.pendingCells).toBe(2));
    await clock.advance(100);
    const [a, b] = await both;
    await new Promise((res) => setTimeout(res, 10));
    expect(a!.rows.length + b!.rows.length).toBeGreaterThan(0);
    expect(seen).toEqual(expect.arrayContaining([...a!.rows, ...b!.rows]));
    expect(stack.sim.stats.byPath['/general']).toBe(1);
  });

  it('a rejection of what onRows returns (the aggregates store down) goes to onError, not unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const failure = new Error('aggregates down');
      stack = await makeStack({ onRows: () => Promise.reject(failure) });
      const r = await stack.connector.getMonth({
        flow: 'export',
        ano: 2025,
        mes: 3,
        ncm: '12019000',
        pais: '160',
      });
      expect(r.level).toBe('external');
      await new Promise((res) => setTimeout(res, 20));
      expect(stack.errors).toContain(failure);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('merges the years of a flow into one call and stores the siblings each call covered', async () => {
    stack = await makeStack();
    const c = stack.connector;
    await Promise.all([
      c.getMonth({ flow: 'export', ano: 2025, mes: 3, ncm: '12019000', pais: '160' }),
      c.getMonth({ flow: 'export', ano: 2025, mes: 5, ncm: '09011110', pais: '063' }),
      c.getMonth({ flow: 'import', ano: 2025, mes: 3, ncm: '12019000', pais: '160' }),
      c.getMonth({ flow: 'export', ano: 2024, mes: 3, ncm: '12019000', pais: '160' }),
    ]);
    // One call per flow: exports of 2024 and 2025 share one (years × whole-year window).
    expect(stack.sim.stats.byPath['/general']).toBe(2);
    // The answers go to their waiters first; the cells no one waited for are written after (a
    // read before that is answered from the call's results, as 'external', without a call).
    await c.drain();
    // The export 2025 call covered months 3..5 × {soy, coffee} × {China, Argentina}.
    const sibling = await c.getMonth({ flow: 'export', ano: 2025, mes: 4, ncm: '09011110', pais: '160' });
    expect(sibling.level).toBe('l2');
    expect(stack.sim.stats.byPath['/general']).toBe(2);
    const again = await c.getMonth({ flow: 'export', ano: 2025, mes: 3, ncm: '12019000', pais: '160' });
    expect(again.level).toBe('l2');
    expect(again.stale).toBe(false);
    expect(minGap(stack.sentAt)).toBeGreaterThanOrEqual(100);
  });

  it('joins a call already in flight that covers the key', async () => {
    stack = await makeStack({ intervalMs: 30, sim: { latency: { baseMs: 150, perRowMs: 0 } } });
    const c = stack.connector;
    await c.releaseInfo();
    const warming = c.fetchYear({
      flow: 'export',
      ano: 2025,
      months: [1, 2, 3, 4, 5, 6],
      ncms: ['12019000'],
      countries: ['160'],
    });
    await new Promise((r) => setTimeout(r, 80));
    const merged = c.stats.mergedMisses;
    const r = await c.getMonth({ flow: 'export', ano: 2025, mes: 6, ncm: '12019000', pais: '160' });
    expect(await warming).toBe(12 * TOP_NCMS.length * TOP_COUNTRIES.length);
    expect(c.stats.mergedMisses).toBe(merged + 1);
    expect(r.rows.map((x) => x.fob)).toEqual([
      expected({ flow: 'export', ano: 2025, mes: 6, ncm: '12019000', pais: '160' })?.fob,
    ]);
    expect(stack.sim.stats.byPath['/general']).toBe(1);
  });
});

describe('ComexStatConnector: call size', () => {
  it('splits coalesced misses that would exceed api.max_cells_per_call', async () => {
    stack = await makeStack({
      config: (c) => ({
        ...c,
        api: { ...c.api, maxCellsPerCall: 4 },
        fanOut: { ...c.fanOut, enabled: false },
      }),
    });
    const qs: ComexStatMonthQuery[] = TOP_NCMS.slice(0, 6).map((n) => ({
      flow: 'export',
      ano: 2025,
      mes: 1,
      ncm: n,
      pais: '160',
    }));
    const results = await Promise.all(qs.map((q) => stack!.connector.getMonth(q)));
    expect(stack.sim.stats.byPath['/general']).toBe(2);
    results.forEach((r, i) => {
      const cell = expected(qs[i] as ComexStatMonthQuery);
      expect(r.rows.map((x) => x.fob)).toEqual(cell ? [cell.fob] : []);
    });
  });

  it('splits a warming group by NCM when it alone is too big', async () => {
    stack = await makeStack({
      config: (c) => ({
        ...c,
        api: { ...c.api, maxCellsPerCall: 48 },
        fanOut: { ...c.fanOut, topLists: false },
      }),
    });
    const n = await stack.connector.fetchYear({
      flow: 'import',
      ano: 2025,
      months: [1, 2],
      ncms: TOP_NCMS.slice(0, 5),
      countries: ['160', '063'],
    });
    expect(stack.sim.stats.byPath['/general']).toBe(3);
    expect(n).toBe(5 * 2 * 12);
  });
});

describe('ComexStatConnector: fan-out and negative caching', () => {
  it('with fan-out, one miss fetches the whole year for the top lists and stores every cell', async () => {
    stack = await makeStack({
      config: (c) => ({
        ...c,
        fanOut: { enabled: true, wholeYear: true, topLists: true, allCountries: false },
      }),
    });
    const c = stack.connector;
    await c.getMonth({ flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' });
    expect(stack.sim.stats.byPath['/general']).toBe(1);
    // The siblings are written after the waiter was answered.
    await c.drain();
    expect(c.stats.keysStored).toBe(12 * TOP_NCMS.length * TOP_COUNTRIES.length - 1);
    let noTrade = 0;
    for (const mes of [2, 7, 12]) {
      for (const n of TOP_NCMS.slice(0, 20)) {
        const q: ComexStatMonthQuery = { flow: 'export', ano: 2025, mes, ncm: n, pais: '741' };
        const r = await c.getMonth(q);
        expect(r.level).toBe('l2');
        const cell = expected(q);
        if (!cell) noTrade++;
        expect(r.rows.map((x) => x.fob)).toEqual(cell ? [cell.fob] : []);
      }
    }
    expect(noTrade).toBeGreaterThan(0);
    expect(stack.sim.stats.byPath['/general']).toBe(1);
  });

  it('all_countries (default): a one-year miss asks every country of its NCMs, so other countries cost no call', async () => {
    stack = await makeStack();
    const c = stack.connector;
    const top = new Set(TOP_COUNTRIES);
    const others = SIM_COUNTRIES.filter((x) => x.weight > 0 && !top.has(x.id)).slice(0, 15);
    await c.getMonth({ flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: others[0]!.id });
    expect(stack.sim.stats.byPath['/general']).toBe(1);
    await c.drain();
    // The call had no country filter: every country that traded a top NCM is cached, no-trade months included.
    const traded = new Set<string>();
    for (const x of SIM_COUNTRIES)
      for (const n of TOP_NCMS)
        for (let mes = 1; mes <= 12; mes++)
          if (expected({ flow: 'export', ano: 2025, mes, ncm: n, pais: x.id })) traded.add(x.id);
    for (const t of TOP_COUNTRIES) traded.add(t);
    traded.add(others[0]!.id);
    expect(traded.size).toBeGreaterThan(TOP_COUNTRIES.length + 10);
    expect(c.stats.keysStored).toBe(12 * TOP_NCMS.length * traded.size - 1);
    let noTrade = 0;
    for (const x of others) {
      for (const mes of [3, 11]) {
        const q: ComexStatMonthQuery = { flow: 'export', ano: 2025, mes, ncm: TOP_NCMS[3]!, pais: x.id };
        const r = await c.getMonth(q);
        const cell = expected(q);
        if (!cell) noTrade++;
        expect(r.level).toBe('l2');
        expect(r.rows.map((row) => row.fob)).toEqual(cell ? [cell.fob] : []);
      }
    }
    expect(noTrade).toBeGreaterThan(0);
    expect(stack.sim.stats.byPath['/general']).toBe(1);
  });

  it('caches combinations without trade as rows: [] and answers them without the upstream', async () => {
    stack = await makeStack();
    let q: ComexStatMonthQuery | undefined;
    for (const n of TOP_NCMS) {
      const candidate: ComexStatMonthQuery = { flow: 'import', ano: 2025, mes: 2, ncm: n, pais: '149' };
      if (!expected(candidate)) {
        q = candidate;
        break;
      }
    }
    expect(q).toBeDefined();
    const first = await stack.connector.getMonth(q!);
    expect(first).toMatchObject({ rows: [], status: 'ok', level: 'external' });
    const second = await stack.connector.getMonth(q!);
    expect(second).toMatchObject({ rows: [], status: 'ok', level: 'l2' });
    expect(stack.sim.stats.byPath['/general']).toBe(1);
  });

  it('maps country names back to codes, leading-space names included', async () => {
    stack = await makeStack({
      config: (c) => ({
        ...c,
        fanOut: { enabled: true, wholeYear: true, topLists: false, allCountries: false },
      }),
    });
    const quirky = SIM_COUNTRIES.find((x) => x.text.startsWith(' ') && x.weight > 0)!;
    let hits = 0;
    for (const n of TOP_NCMS.slice(0, 10)) {
      for (const mes of [1, 6]) {
        const q: ComexStatMonthQuery = { flow: 'export', ano: 2025, mes, ncm: n, pais: quirky.id };
        const r = await stack.connector.getMonth(q);
        const cell = expected(q);
        if (cell) hits++;
        expect(r.rows.map((x) => x.pais)).toEqual(cell ? [quirky.id] : []);
      }
    }
    expect(hits).toBeGreaterThan(0);
    expect(stack.connector.stats.unmappedRows).toBe(0);
    expect(stack.connector.countries.nameOf(quirky.id)).toBe(quirky.text.trim());
  });

  it('a row naming an unknown country is an error, never cached as "no trade", and refreshes the table', async () => {
    stack = await makeStack({ config: (c) => ({ ...c, fanOut: { ...c.fanOut, topLists: false } }) });
    // A shared table that renamed China: the row's "China" matches no asked-for code.
    await stack.cache.setMany([
      {
        key: 'comexstat:meta:countries:pt',
        value: [{ id: '160', text: 'República Popular da China' }],
        ttlMs: 60_000,
      },
    ]);
    stack.connector.countries.poke();
    await stack.connector.countries.settled();
    const q = { flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' } as const;
    const e = await stack.connector.getMonth(q).catch((x) => x);
    expect(e).toMatchObject({ code: 'E_COMEXSTAT_UNMAPPED' });
    expect(stack.connector.stats.unmappedRows).toBeGreaterThan(0);
    // Not negative-cached: the cell is absent from the tier.
    expect(stack.tier.store.has(stack.connector.keyFor(q))).toBe(false);
    // The table was reloaded from the upstream (metadata priority) and the retry maps the row.
    await stack.connector.countries.settled();
    expect(stack.client.stats.byKind.countries).toBe(1);
    const r = await stack.connector.getMonth(q);
    expect(r.rows.map((x) => x.pais)).toEqual(expected(q) ? ['160'] : []);
  });
});

describe('ComexStatConnector: release awareness', () => {
  it('answers unpublished months "not_published" without a call, then fetches them once released', async () => {
    stack = await makeStack({
      config: (c) => ({ ...c, releaseAware: { enabled: true, checkIntervalMs: 40 } }),
    });
    const c = stack.connector;
    await c.releaseInfo();
    const q: ComexStatMonthQuery = { flow: 'export', ano: 2026, mes: 10, ncm: '12019000', pais: '160' };
    const first = await c.getMonth(q);
    expect(first).toMatchObject({ status: 'not_published', rows: [], level: 'external' });
    expect(stack.sim.stats.byPath['/general']).toBeUndefined();
    expect(c.stats.notPublished).toBe(1);
    expect(c.ttlFor(2026, 10, { status: 'not_published', rows: [], fetchedAt: 0 })).toBe(40);
    expect((await c.getMonth(q)).level).toBe('l2');
    stack.sim.setUpdated({ year: 2026, month: 10 });
    await new Promise((r) => setTimeout(r, 60));
    // The background check learns the release (requests never wait for it).
    await c.releaseInfo();
    const released = await c.getMonth(q);
    expect(released.status).toBe('ok');
    expect(released.level).toBe('external');
    expect(stack.sim.stats.byPath['/general']).toBe(1);
  });

  it('serves values fetched before a newer release as stale and refreshes them in the background', async () => {
    let clock = Date.parse('2026-09-10T12:00:00Z');
    stack = await makeStack({
      now: () => clock,
      config: (c) => ({ ...c, releaseAware: { enabled: true, checkIntervalMs: 1000 } }),
    });
    const c = stack.connector;
    await c.releaseInfo();
    const q: ComexStatMonthQuery = { flow: 'export', ano: 2026, mes: 3, ncm: '12019000', pais: '160' };
    const before = await c.getMonth(q);
    // Stamped when the request was sent (finding 12), on the connector's clock.
    expect(before.fetchedAt).toBe(clock);
    // Next release (September data, out on Oct 6) revises the whole current year.
    stack.sim.setUpdated(new Date('2026-10-06T00:00:00Z'));
    clock = Date.parse('2026-10-07T00:00:00Z');
    // Expire the cached release in the tier; the background check learns the new one.
    await stack.cache.delete('comexstat:meta:dates-updated');
    expect((await c.releaseInfo())?.month).toBe(9);
    // First seen at `clock`, before the end of the release day (Brasília): that is its instant.
    expect(c.release?.updatedAt).toBe(clock);
    // The orchestrator sees the entry as outdated (isStale) and reloads it at the spacer's
    // refresh priority; its soft timeout (1 s) would serve the old value if the reload were slow.
    const served = await c.getMonth(q);
    expect(served.stale || served.fetchedAt === clock).toBe(true);
    await c.drain();
    const after = await c.getMonth(q);
    expect(after.stale).toBe(false);
    expect(after.level).toBe('l2');
    expect(after.fetchedAt).toBe(clock);
    expect(after.rows[0]?.fob).not.toBe(before.rows[0]?.fob);
    // Frozen years are not refreshed, and live long.
    const old = await c.getMonth({ flow: 'export', ano: 2024, mes: 3, ncm: '12019000', pais: '160' });
    expect(old.stale).toBe(false);
    expect(c.ttlFor(2024, 3, { status: 'ok', rows: [], fetchedAt: clock })).toBe(
      DEFAULT_CONNECTOR_CONFIG.cache.frozenTtlMs,
    );
  });

  it('without release awareness uses the seed TTLs (past years = cache.ttl)', async () => {
    stack = await makeStack({
      now: () => Date.parse('2026-06-15T00:00:00Z'),
      config: (c) => ({
        ...c,
        cache: { ...c.cache, ttlMs: 1234 },
        releaseAware: { enabled: false, checkIntervalMs: 1 },
      }),
    });
    const ok = { status: 'ok' as const, rows: [], fetchedAt: 0 };
    expect(stack.connector.ttlFor(2024, 1, ok)).toBe(1234);
    expect(stack.connector.ttlFor(2026, 5, ok)).toBe(24 * 3_600_000);
    expect(stack.connector.ttlFor(2026, 6, ok)).toBe(6 * 3_600_000);
    expect(await stack.connector.releaseInfo()).toBeUndefined();
    const r = await stack.connector.getMonth({
      flow: 'export',
      ano: 2025,
      mes: 1,
      ncm: '12019000',
      pais: '160',
    });
    expect(r.status).toBe('ok');
    expect(stack.sim.stats.byPath['/general/dates/updated']).toBeUndefined();
  });

  it('keeps working when the release cannot be read', async () => {
    stack = await makeStack({ client: { retries: 0 } });
    stack.sim.faults.inject({ type: 'http-500', path: '/general/dates', count: 5 });
    const r = await stack.connector.getMonth({
      flow: 'export',
      ano: 2025,
      mes: 1,
      ncm: '12019000',
      pais: '160',
    });
    expect(r.status).toBe('ok');
    // No request waits for the check (due two spacer intervals after start); a job asking for the
    // release gets undefined when it cannot be read, and the failure is reported.
    expect(await stack.connector.releaseInfo()).toBeUndefined();
    await stack.connector.drain();
    expect(stack.errors.some((e) => ComexStatApiError.isComexStatApiError(e))).toBe(true);
  });
});

describe('ComexStatConnector: errors and options', () => {
  it('rejects malformed queries with InvalidKeyError before any call', async () => {
    stack = await makeStack();
    const c = stack.connector;
    const base: ComexStatMonthQuery = { flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' };
    const bad: Partial<ComexStatMonthQuery>[] = [
      { flow: 'both' as never },
      { ano: 1990 },
      { mes: 13 },
      { ncm: '9011110' },
      { ncm: 9011110 as never },
      { pais: '63' },
    ];
    for (const b of bad) await expect(c.getMonth({ ...base, ...b })).rejects.toBeInstanceOf(InvalidKeyError);
    expect(stack.sim.stats.calls).toBe(0);
  });

  it('rejects every waiter with the typed error when the upstream fails for good, then recovers', async () => {
    stack = await makeStack({ client: { retries: 1 } });
    await stack.connector.releaseInfo();
    stack.sim.faults.inject({ type: 'http-503', count: 2, path: '/general' });
    const qs: ComexStatMonthQuery[] = [
      { flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' },
      { flow: 'export', ano: 2025, mes: 2, ncm: '12019000', pais: '160' },
    ];
    const errors = await Promise.all(qs.map((q) => stack!.connector.getMonth(q).catch((e) => e)));
    for (const e of errors) {
      expect(e).toBeInstanceOf(ComexStatApiError);
      expect(e.status).toBe(503);
    }
    const ok = await stack.connector.getMonth(qs[0] as ComexStatMonthQuery);
    expect(ok.status).toBe('ok');
    await expect(
      stack.connector
        .fetchYear({ flow: 'export', ano: 2025, months: [1], ncms: ['12019000'], countries: ['160'] })
        .then(() => {
          stack!.sim.faults.inject({ type: 'http-503', count: 2, path: '/general' });
          return stack!.connector.fetchYear({
            flow: 'import',
            ano: 2025,
            months: [1],
            ncms: ['12019000'],
            countries: ['160'],
          });
        }),
    ).rejects.toBeInstanceOf(ComexStatApiError);
  });

  it('goes upstream every time when cache.enabled is false', async () => {
    stack = await makeStack({ config: (c) => ({ ...c, cache: { ...c.cache, enabled: false } }) });
    const q: ComexStatMonthQuery = { flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' };
    const a = await stack.connector.getMonth(q);
    const b = await stack.connector.getMonth(q);
    expect([a.level, b.level]).toEqual(['external', 'external']);
    expect(stack.sim.stats.byPath['/general']).toBe(2);
  });

  it('builds keys from the YAML patterns, {flow} included', async () => {
    stack = await makeStack({
      config: (c) => ({
        ...c,
        cache: {
          ...c.cache,
          keyPattern: 'cx:{flow}:{ano}:{mes}:{ncm}:{pais}',
          importKeyPattern: 'cx:{flow}:{ano}:{mes}:{ncm}:{pais}',
        },
      }),
    });
    expect(stack.connector.keyFor({ flow: 'import', ano: 2025, mes: 3, ncm: '12019000', pais: '063' })).toBe(
      'cx:imp:2025:03:12019000:063',
    );
    const seed = await makeStack();
    try {
      expect(seed.connector.keyFor({ flow: 'export', ano: 2025, mes: 3, ncm: '12019000', pais: '063' })).toBe(
        'comexstat:exp:2025:03:12019000:063',
      );
      expect(
        seed.connector.keyFor({ flow: 'import', ano: 2025, mes: 12, ncm: '12019000', pais: '063' }),
      ).toBe('comexstat:imp:2025:12:12019000:063');
    } finally {
      await seed.close();
    }
  });

  it('stores "not_published" markers for a warming group with no published month', async () => {
    stack = await makeStack();
    await stack.connector.releaseInfo();
    const n = await stack.connector.fetchYear({
      flow: 'export',
      ano: 2027,
      months: [1, 2],
      ncms: ['12019000'],
      countries: ['160', '063'],
    });
    expect(n).toBe(4);
    const r = await stack.connector.getMonth({
      flow: 'export',
      ano: 2027,
      mes: 2,
      ncm: '12019000',
      pais: '063',
    });
    expect(r).toMatchObject({ status: 'not_published', level: 'l2' });
    expect(stack.sim.stats.byPath['/general']).toBeUndefined();
  });
});
