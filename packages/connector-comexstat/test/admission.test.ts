// Merge across years, admission control (bounded calls, cells and waits; per-client budget),
// shutdown and abort. Every test holds the spacer with a manual clock and asserts causes (which
// calls left, who was refused and why), never wall-clock luck.
import { afterEach, describe, expect, it } from 'vitest';
import {
  ClientBudgetError,
  type ComexStatMonthQuery,
  type ComexStatFlow,
  UpstreamBacklogError,
} from '../src/index.js';
import { generateCell, SIM_COUNTRIES, SIM_NCMS } from '../src/simulator/index.js';
import { ManualClock, makeStack, minGap, type Stack, until } from './helpers.js';

const release = { updated: '2026-09-05', year: 2026, month: 8 };
const cellOf = (q: ComexStatMonthQuery) =>
  generateCell(
    q.flow,
    q.ano,
    q.mes,
    SIM_NCMS.find((n) => n.coNcm === q.ncm)!,
    SIM_COUNTRIES.find((c) => c.id === q.pais)!,
    release,
  );

let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

/** A stack whose spacer is held (one slot taken at t0) until the test advances the clock. */
async function held(options: Parameters<typeof makeStack>[0] = {}) {
  const clock = new ManualClock();
  // The spacing is the manual clock's (asserted on the grant times); the simulator's own rate
  // limit runs on real time, which this test does not spend, so it is off here.
  stack = await makeStack({ clock, ...options, sim: { rateLimit: false, ...options.sim } });
  await stack.connector.releaseInfo();
  // The release check took a slot: move past the interval, then take the slot the test holds.
  await clock.advance(1000);
  await stack.client.spacer?.acquire();
  return { s: stack, clock };
}

describe('merge across years', () => {
  it('a chart of one NCM × country over 2018-2024, both flows (168 cold requests), costs 2 calls', async () => {
    // Each answer is ~3.7 MB (the fan-out's 50 NCMs x 10 countries x 84 months): the body of one can
    // wait while this process fans out and stores the other's 42,000 cells, so the client's timeout
    // must outlast that (a timed-out attempt's retry would wait for this test's manual clock).
    const { s, clock } = await held({ client: { timeoutMs: 30_000 } });
    const qs: ComexStatMonthQuery[] = [];
    for (const flow of ['export', 'import'] as ComexStatFlow[])
      for (let ano = 2018; ano <= 2024; ano++)
        for (let mes = 1; mes <= 12; mes++) qs.push({ flow, ano, mes, ncm: '12019000', pais: '160' });
    expect(qs).toHaveLength(168);
    const all = Promise.all(qs.map((q) => s.connector.getMonth(q, { clientId: 'chart' })));
    await until(() => expect(s.connector.pendingCells).toBe(168));
    expect(s.connector.pendingCalls).toBe(2);
    await clock.advanceUntil(() => s.sim.stats.byPath['/general'] === 2);
    const results = await all;
    expect(s.sim.stats.byPath['/general']).toBe(2);
    expect(minGap(s.sentAt)).toBeGreaterThanOrEqual(100);
    results.forEach((r, i) => {
      const q = qs[i] as ComexStatMonthQuery;
      const c = cellOf(q);
      expect(r.status).toBe('ok');
      expect(r.rows.map((x) => [x.ano, x.mes, x.fob])).toEqual(c ? [[q.ano, q.mes, c.fob]] : []);
    });
  }, 60_000);
});

describe('admission control', () => {
  it('refuses a new call beyond the pending-call bound with E_UPSTREAM_BACKLOG and a Retry-After', async () => {
    const { s, clock } = await held({ admission: { maxPendingCalls: 1 } });
    const ok = s.connector.getMonth({ flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' });
    await until(() => expect(s.connector.pendingCalls).toBe(1));
    const e = await s.connector
      .getMonth({ flow: 'import', ano: 2025, mes: 1, ncm: '12019000', pais: '160' })
      .catch((x) => x);
    expect(e).toBeInstanceOf(UpstreamBacklogError);
    expect(e).toMatchObject({ code: 'E_UPSTREAM_BACKLOG', queued: false });
    expect(e.retryAfterMs).toBeGreaterThanOrEqual(1000);
    // A miss joining the queued call is still admitted (it costs no call).
    const joined = s.connector.getMonth({ flow: 'export', ano: 2024, mes: 5, ncm: '09011110', pais: '063' });
    await until(() => expect(s.connector.pendingCells).toBe(2));
    await clock.advance(100);
    await expect(Promise.all([ok, joined])).resolves.toHaveLength(2);
    expect(s.sim.stats.byPath['/general']).toBe(1);
    expect(s.connector.stats.backlogRefused).toBe(1);
  });

  it('refuses a call the spacer would not grant within the wait bound, before queueing it', async () => {
    const { s, clock } = await held({
      config: (c) => ({
        ...c,
        api: { ...c.api, maxCellsPerCall: 1 },
        fanOut: { ...c.fanOut, enabled: false },
      }),
      admission: { maxWaitMs: 250, callTimeMs: 0 },
    });
    const q = (mes: number): ComexStatMonthQuery => ({
      flow: 'export',
      ano: 2025,
      mes,
      ncm: '12019000',
      pais: '160',
    });
    // One cell per call: due in 100, 200 ms; the third would leave in 300 ms > 250.
    const a = s.connector.getMonth(q(1));
    await until(() => expect(s.client.spacer?.waiting).toBeGreaterThanOrEqual(1));
    const b = s.connector.getMonth(q(2));
    await until(() => expect(s.connector.pendingCalls).toBe(2));
    await until(() => expect(s.client.spacer?.expectedWaitMs('user')).toBe(300));
    const e = await s.connector.getMonth(q(3)).catch((x) => x);
    expect(e).toMatchObject({ code: 'E_UPSTREAM_BACKLOG', queued: false, retryAfterMs: 1000 });
    await clock.advance(100);
    await clock.advance(100);
    await expect(Promise.all([a, b])).resolves.toHaveLength(2);
    expect(s.sim.stats.byPath['/general']).toBe(2);
  });

  it('a waiter past the bound gets E_UPSTREAM_BACKLOG (queued) and the call goes on: the retry is a hit', async () => {
    // A slow upstream (400 ms of real time) while the test moves the spacer's clock past the bound.
    const { s, clock } = await held({
      admission: { maxWaitMs: 150 },
      sim: { latency: { baseMs: 400, perRowMs: 0 } },
    });
    const q: ComexStatMonthQuery = { flow: 'export', ano: 2025, mes: 4, ncm: '12019000', pais: '160' };
    const pending = s.connector.getMonth(q).catch((x) => x);
    await until(() => expect(s.connector.pendingCells).toBe(1));
    await clock.advance(100);
    await until(() => expect(s.connector.stats.generalCalls).toBe(1));
    await clock.advance(60);
    const e = await pending;
    expect(e).toBeInstanceOf(UpstreamBacklogError);
    expect(e.queued).toBe(true);
    await until(() => expect(s.connector.pendingCalls).toBe(0));
    expect(s.sim.stats.byPath['/general']).toBe(1);
    const retry = await s.connector.getMonth(q);
    expect(retry.level).toBe('l2');
    expect(s.sim.stats.byPath['/general']).toBe(1);
  });

  it('budgets cold misses per client (E_CLIENT_BUDGET) and bounds the cells waited for', async () => {
    const { s, clock } = await held({ admission: { clientBudget: 2, maxPendingCells: 3 } });
    const q = (mes: number, pais = '160'): ComexStatMonthQuery => ({
      flow: 'export',
      ano: 2025,
      mes,
      ncm: '12019000',
      pais,
    });
    const a1 = s.connector.getMonth(q(1), { clientId: 'a' });
    const a2 = s.connector.getMonth(q(2), { clientId: 'a' });
    await until(() => expect(s.connector.pendingCells).toBe(2));
    const e = await s.connector.getMonth(q(3), { clientId: 'a' }).catch((x) => x);
    expect(e).toBeInstanceOf(ClientBudgetError);
    expect(e).toMatchObject({ code: 'E_CLIENT_BUDGET' });
    expect(e.retryAfterMs).toBeGreaterThanOrEqual(1000);
    const b1 = s.connector.getMonth(q(3), { clientId: 'b' });
    await until(() => expect(s.connector.pendingCells).toBe(3));
    const full = await s.connector.getMonth(q(4), { clientId: 'c' }).catch((x) => x);
    expect(full).toMatchObject({ code: 'E_UPSTREAM_BACKLOG', queued: false });
    await clock.advance(100);
    await expect(Promise.all([a1, a2, b1])).resolves.toHaveLength(3);
    // Answered: the budget is free again, and the cell is a hit now.
    expect((await s.connector.getMonth(q(3), { clientId: 'a' })).level).toBe('l2');
    expect(s.connector.stats).toMatchObject({ budgetRefused: 1, backlogRefused: 1 });
    expect(s.sim.stats.byPath['/general']).toBe(1);
  });
});

describe('shutdown and abort (finding 21)', () => {
  it('close() rejects queries whose call was not sent (E_SHUTTING_DOWN), sends nothing, and later misses fail fast', async () => {
    const { s } = await held();
    const q: ComexStatMonthQuery = { flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' };
    const p = s.connector.getMonth(q).catch((x) => x);
    await until(() => expect(s.connector.pendingCalls).toBe(1));
    const closing = s.connector.close();
    expect(await p).toMatchObject({ code: 'E_SHUTTING_DOWN' });
    s.client.spacer?.rejectAll(new Error('stop'));
    await closing;
    expect(s.sim.stats.byPath['/general']).toBeUndefined();
    await expect(s.connector.getMonth({ ...q, mes: 2 })).rejects.toMatchObject({ code: 'E_SHUTTING_DOWN' });
  });

  it('an aborted query leaves its call; a call left with no waiter is never sent', async () => {
    const { s, clock } = await held();
    const ac = new AbortController();
    const p = s.connector
      .getMonth({ flow: 'export', ano: 2025, mes: 1, ncm: '12019000', pais: '160' }, { signal: ac.signal })
      .catch((x) => x);
    await until(() => expect(s.connector.pendingCells).toBe(1));
    ac.abort(new Error('client went away'));
    expect(String(await p)).toContain('client went away');
    expect(s.connector.pendingCells).toBe(0);
    await clock.advance(100);
    await until(() => expect(s.connector.pendingCalls).toBe(0));
    expect(s.sim.stats.byPath['/general']).toBeUndefined();
  });
});

describe('unknown release (finding 13)', () => {
  it('months that may be unpublished are answered not_published and never negative-cached', async () => {
    const clock = new ManualClock();
    // The release check fails: the release stays unknown.
    stack = await makeStack({ clock, client: { retries: 0 } });
    stack.sim.faults.inject({ type: 'http-500', path: '/general/dates', count: 5 });
    const s = stack;
    const now = new Date();
    const ano = now.getUTCFullYear();
    const mes = now.getUTCMonth() + 1;
    const p = s.connector.getMonth({ flow: 'export', ano, mes, ncm: '12019000', pais: '160' });
    await until(() => expect(s.connector.pendingCells).toBe(1));
    for (let i = 0; i < 5 && s.sim.stats.byPath['/general'] === undefined; i++) {
      await clock.advance(100);
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await p;
    expect(s.connector.release).toBeUndefined();
    expect(r).toMatchObject({ status: 'not_published', rows: [] });
    // Its whole-year siblings of possibly-unpublished months were not stored; published ones were.
    const sibling = s.connector.keyFor({ flow: 'export', ano, mes, ncm: '12019000', pais: '249' });
    expect(s.tier.store.has(sibling)).toBe(false);
    const early = s.connector.keyFor({ flow: 'export', ano, mes: 1, ncm: '12019000', pais: '249' });
    expect(mes > 2 ? s.tier.store.has(early) : true).toBe(true);
  });
});
