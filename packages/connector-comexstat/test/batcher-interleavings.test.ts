// The batcher's merging under every interleaving fast-check finds: misses joining while a call is
// being sealed (its shared drain and read in flight), a sealed call adopting this instance's
// waiters from the flow's other open batches, the open batch left empty given up, and the
// ordering the spacer reads (leftovers, age). Property: every miss is answered with its own cell
// by a call that covers it, no call is made for cells another call answered, and nothing hangs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type BatcherHost, type BatchCell, CallBatcher } from '../src/call-batcher.js';
import type { ComexStatClient } from '../src/comexstat-client.js';
import type { GeneralQuery } from '../src/comexstat-types.js';
import type { CountryTable } from '../src/country-table.js';
import type { SpacerPriority } from '../src/request-spacer.js';
import type { FlowState, PendingCell, SharedMerge } from '../src/shared-merge.js';

interface Acquire {
  priority: () => SpacerPriority;
  leftover: () => boolean;
  age: () => number;
}

function harness(s: fc.Scheduler, limits: { maxWaitMs?: number } = {}) {
  const queries: GeneralQuery[] = [];
  const asked: Acquire[] = [];
  const pending = new Map<string, Set<string>>();
  const marks = { sealed: 0, stored: 0 };
  let now = 1_000_000;
  const shared = {
    async add(flow: string, cells: readonly PendingCell[]) {
      await s.schedule(Promise.resolve(), 'add');
      const set = pending.get(flow) ?? new Set<string>();
      for (const c of cells) set.add(`${c.ano}|${c.mes}|${c.ncm}|${c.pais}`);
      pending.set(flow, set);
    },
    async drain(flow: string): Promise<PendingCell[]> {
      await s.schedule(Promise.resolve(), 'drain');
      const set = pending.get(flow) ?? new Set<string>();
      pending.delete(flow);
      return [...set].map((m) => {
        const [ano, mes, ncm, pais] = m.split('|');
        return { ano: Number(ano), mes: Number(mes), ncm: ncm as string, pais: pais as string };
      });
    },
    async mark(_flow: string, what: 'sealed' | 'stored') {
      marks[what]++;
    },
    async state(): Promise<FlowState> {
      return { sealedAgoMs: undefined, storedAgoMs: undefined };
    },
  } as unknown as SharedMerge;
  // Like the spacer: one grant at a time (the next only once the previous call is built and
  // sent), in an order the scheduler picks; a withdrawn (aborted) caller is never granted.
  let turn: Promise<unknown> = Promise.resolve();
  const client = {
    spacer: undefined,
    async generalWhenDue(
      build: () => Promise<GeneralQuery | null>,
      options: Acquire & { signal?: AbortSignal },
    ) {
      asked.push(options);
      let built!: () => void;
      const mine = turn.then(() => s.schedule(Promise.resolve(), 'grant'));
      turn = mine.then(() => new Promise<void>((r) => (built = r)));
      await mine;
      try {
        if (options.signal?.aborted) throw options.signal.reason;
        const q = await build();
        if (q === null) return null;
        queries.push(q);
      } finally {
        built();
      }
      await s.schedule(Promise.resolve(), 'answer');
      return [];
    },
  } as unknown as ComexStatClient;
  const countries = {
    codes: () => ['160', '249'],
    codesByName: () => new Map([['China', '160']]),
    unknownName: () => {},
  } as unknown as CountryTable;
  const stored: string[] = [];
  const host: BatcherHost = {
    client,
    countries,
    shared,
    limits: {
      maxWaitMs: limits.maxWaitMs ?? 50_000,
      maxPendingCalls: 100,
      maxPendingCells: 100_000,
      clientBudget: 0,
      callTimeMs: 0,
    },
    gatherMs: 0,
    gatherMaxMs: 0,
    sharedCheckMs: 3_600_000,
    maxCellsPerCall: 100_000,
    fanOut: { enabled: true, wholeYear: true, allCountries: false, topNcms: [], topCountries: [] },
    release: () => ({ updated: '2026-09-05', updatedAt: 0, year: 2026, month: 8 }),
    now: () => now,
    keyFor: (c) => `${c.flow}:${c.ano}:${c.mes}:${c.ncm}:${c.pais}`,
    read: async (keys) => {
      await s.schedule(Promise.resolve(), 'read');
      return keys.map(() => undefined);
    },
    store: async (cells) => {
      for (const c of cells) stored.push(c.key);
    },
    onRows: undefined,
    onError: (e) => {
      throw e;
    },
    stats: {
      generalCalls: 0,
      mergedMisses: 0,
      keysStored: 0,
      unmappedRows: 0,
      backlogRefused: 0,
      budgetRefused: 0,
      slotsGivenUp: 0,
    },
  };
  const tick = (ms: number) => {
    now += ms;
  };
  return { batcher: new CallBatcher(host), host, queries, asked, marks, stored, tick };
}

const cell = (mes: number, ncm: string, pais = '160'): BatchCell => ({
  flow: 'export',
  ano: 2025,
  mes,
  ncm,
  pais,
  key: `export:2025:${mes}:${ncm}:${pais}`,
});

function covered(q: GeneralQuery, c: BatchCell): boolean {
  const [from, to] = [q.period.from, q.period.to];
  const at = `${c.ano}-${String(c.mes).padStart(2, '0')}`;
  const ncms = q.filters.find((f) => f.filter === 'ncm')?.values ?? [];
  const countries = q.filters.find((f) => f.filter === 'country')?.values ?? [];
  return at >= from && at <= to && ncms.includes(c.ncm) && countries.includes(c.pais);
}

describe('CallBatcher interleavings', () => {
  it('misses arriving while a call seals are answered by a call covering them; adopted batches give up; nothing hangs', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        // Misses: (month, NCM index, country index), in arrival order; the first seeds the first call.
        fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.nat(2), fc.nat(1)), {
          minLength: 2,
          maxLength: 8,
        }),
        async (s, misses) => {
          const h = harness(s);
          const cells = misses.map(([m, n, p]) => cell(m, `1201900${n}`, p === 0 ? '160' : '249'));
          const answers: Promise<unknown>[] = [];
          const want = (c: BatchCell) =>
            answers.push(h.batcher.want(c, { loader: true, priority: 'user', admit: true }));
          want(cells[0] as BatchCell);
          // The others arrive at points fast-check chooses (before, during or after the seal).
          for (const c of cells.slice(1)) s.schedule(Promise.resolve(), `want ${c.key}`).then(() => want(c));
          await s.waitFor(Promise.allSettled(answers).then(() => Promise.all(h.batcher.settling())));
          // Any misses that arrived last are settled as well.
          while (answers.length < cells.length || h.batcher.pendingCalls > 0) await s.waitAll();
          const results = await Promise.allSettled(answers);
          expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
          for (const r of results)
            expect((r as PromiseFulfilledResult<{ status: string }>).value.status).toBe('ok');
          // Every miss is covered by some call sent; no call without a reason.
          for (const c of cells) expect(h.queries.some((q) => covered(q, c))).toBe(true);
          expect(h.queries.length).toBeLessThanOrEqual(cells.length);
          expect(h.batcher.pendingCells).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a sealed call adopts the waiters its query covers from an open batch (no second call), and the empty batch gives its slot up', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const h = harness(s);
        const a = h.batcher.want(cell(3, '12019000'), { loader: true, priority: 'user', admit: true });
        // While the first call's drain is in flight, a miss of another month of the same NCM ×
        // country: the sealing call is no longer open, so it starts a batch of its own.
        const sealing = s.schedule(Promise.resolve(), 'meanwhile');
        let b: Promise<unknown> | undefined;
        let answered = false;
        void a.then(() => (answered = true));
        let early = false;
        sealing.then(() => {
          early = !answered;
          b = h.batcher.want(cell(7, '12019000'), { loader: true, priority: 'user', admit: true });
        });
        await s.waitFor(a);
        while (b === undefined || h.batcher.pendingCalls > 0) await s.waitAll();
        await expect(b).resolves.toMatchObject({ status: 'ok' });
        // Asked before the first call answered: one call whatever the order (whole-year fan-out
        // covers month 7: joined, adopted from its own batch, or taken from the answer).
        if (early) expect(h.queries).toHaveLength(1);
        else expect(h.queries.length).toBeLessThanOrEqual(2);
      }),
      { numRuns: 100 },
    );
  });
});

/** A stand-in for fc.Scheduler that holds the 'grant' steps until the test releases them. */
function heldGrants() {
  const held: (() => void)[] = [];
  const s = {
    schedule<T>(p: Promise<T>, label?: string): Promise<T> {
      if (label !== 'grant') return p;
      return new Promise<T>((resolve) => held.push(() => resolve(p)));
    },
  } as unknown as fc.Scheduler;
  return { s, grantNext: () => held.shift()?.() };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('CallBatcher priorities', () => {
  it('a batch of a flow whose call was sealed within the wait bound is leftovers, aged from its oldest waiter after that call', async () => {
    const { s, grantNext } = heldGrants();
    const h = harness(s, { maxWaitMs: 50_000 });
    const opts = { loader: true, priority: 'user', admit: true } as const;
    const first = h.batcher.want(cell(3, '12019000'), opts);
    await settle();
    h.tick(1000);
    const imp = h.batcher.want(
      { ...cell(3, '12019000'), flow: 'import', key: 'import:2025:3:12019000:160' },
      opts,
    );
    await settle();
    expect(h.asked).toHaveLength(2);
    const [exp1, imp1] = h.asked as [Acquire, Acquire];
    expect(exp1.leftover()).toBe(false);
    expect(imp1.leftover()).toBe(false);
    expect(exp1.age()).toBe(1000);
    expect(imp1.age()).toBe(0);
    // The export call is granted and sealed.
    grantNext();
    await settle();
    expect(h.queries).toHaveLength(1);
    h.tick(2000);
    // A new NCM of the flow: not covered, a batch of its own, leftovers of the export flow.
    const late = h.batcher.want(cell(5, '26011100'), opts);
    await settle();
    const exp2 = h.asked[2] as Acquire;
    h.tick(500);
    expect(exp2.leftover()).toBe(true);
    expect(exp2.age()).toBe(500);
    // The import batch has had no call: it goes first (rank), and is older.
    expect(imp1.leftover()).toBe(false);
    expect(imp1.age()).toBe(2500);
    expect(exp2.priority()).toBe('user');
    // Past the wait bound after the sealed call, a batch is no longer leftovers.
    h.tick(50_000);
    expect(exp2.leftover()).toBe(false);
    for (let i = 0; i < 2; i++) {
      grantNext();
      await settle();
      await settle();
    }
    await Promise.all([first, imp, late]);
    expect(h.queries).toHaveLength(3);
  });
});

/** 250 cold cells of one call (5 NCMs x 50 countries of one month), each with its own loader. */
function bigCall(h: ReturnType<typeof harness>) {
  const cells = Array.from({ length: 250 }, (_, i) =>
    cell(3, String(12_019_000 + (i % 5)), String(100 + Math.floor(i / 5))),
  );
  return cells.map((c) => h.batcher.want(c, { loader: true, priority: 'user', admit: true }));
}

/**
 * Counts the answers of `waits`, and how many there were when a callback the first answer queued
 * for the event loop's next turn ran (-1 until then).
 */
function turns(waits: readonly Promise<unknown>[]) {
  const seen = { answered: 0, byNextTurn: -1 };
  for (const p of waits)
    p.then(() => {
      if (seen.answered === 0) setImmediate(() => (seen.byNextTurn = seen.answered));
      seen.answered++;
    });
  return seen;
}

describe('CallBatcher: answering a big call', () => {
  it('answers its waiters 25 per turn of the event loop (I/O and timers run between), all of them', async () => {
    const { s, grantNext } = heldGrants();
    const h = harness(s);
    h.tick(Date.UTC(2027, 0, 1) - 1_000_000); // 2025 is published: the cells are storable
    const waits = bigCall(h);
    const seen = turns(waits);
    while (h.asked.length === 0) await settle();
    grantNext();
    await Promise.all(waits);
    expect(h.queries).toHaveLength(1);
    expect(seen.answered).toBe(250);
    // A callback queued for the loop's next turn by the first answer ran before all 250 were
    // answered (after the first turn of 25, or the second: both are queued for the check phase).
    expect([25, 50]).toContain(seen.byNextTurn);
  });

  it('a waiter whose wait bound passes while its answer waits for its turn gets the answer, not a backlog error', async () => {
    const { s, grantNext } = heldGrants();
    const h = harness(s, { maxWaitMs: 150 });
    h.tick(Date.UTC(2027, 0, 1) - 1_000_000);
    // The cells are written for a second after the answer (the call stays 'storing').
    h.host.store = () => new Promise((r) => setTimeout(r, 1000));
    const waits = bigCall(h);
    // Each answer takes 1 ms of CPU (its request's response): a turn of 25 takes ~25 ms, and the
    // bound (150 ms after the want) passes before the last of the ten turns.
    for (const p of waits)
      p.then(() => {
        const until = performance.now() + 1;
        while (performance.now() < until);
      });
    while (h.asked.length === 0) await settle();
    grantNext();
    const results = await Promise.allSettled(waits);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(h.host.stats.backlogRefused).toBe(0);
  });
});

describe('CallBatcher: waiters answered by the shared cache at grant time', () => {
  it('are answered 25 per turn of the event loop, and the call is given up', async () => {
    const { s, grantNext } = heldGrants();
    const h = harness(s);
    h.tick(Date.UTC(2027, 0, 1) - 1_000_000);
    // A call of the flow was stored since they began waiting: their keys are read at the grant,
    // and the cache holds every one (another instance's call wrote them).
    const shared = h.host.shared as unknown as Record<string, unknown>;
    shared.state = async () => ({ sealedAgoMs: undefined, storedAgoMs: 0 });
    shared.getAnswers = async (_flow: string, keys: readonly string[]) => keys.map(() => undefined);
    h.host.read = async (keys) =>
      keys.map(() => ({ status: 'ok' as const, rows: [], fetchedAt: Date.now() }));
    const waits = bigCall(h);
    const seen = turns(waits);
    while (h.asked.length === 0) await settle();
    grantNext();
    await Promise.all(waits);
    expect(seen.answered).toBe(250);
    expect(h.queries).toHaveLength(0);
    expect([25, 50]).toContain(seen.byNextTurn);
  });
});

describe('CallBatcher: rechecks of the cache while a call waits for its slot', () => {
  it('reads a waiter again at 1 s and 4 s of waiting, no store of its flow since, and gives the slot up once the cache answered every waiter', async () => {
    const { s } = heldGrants(); // the slot is never granted: the next call is a spacing away
    const h = harness(s);
    h.tick(Date.UTC(2027, 0, 1) - 1_000_000);
    h.host.sharedCheckMs = 5;
    const shared = h.host.shared as unknown as Record<string, unknown>;
    shared.getAnswers = async (_flow: string, keys: readonly string[]) => keys.map(() => undefined);
    // The cache: written late, with no mark (another instance's load writing its own key, a write
    // replayed by recovery, or a read before the load that timed out).
    const cache = new Map<string, { status: 'ok'; rows: []; fetchedAt: number }>();
    const reads: string[][] = [];
    h.host.read = async (keys) => {
      reads.push([...keys]);
      return keys.map((k) => cache.get(k));
    };
    const opts = { loader: true, priority: 'user', admit: true } as const;
    const a = cell(3, '12019000');
    const b = cell(4, '12019000');
    const answered: string[] = [];
    const waits = [a, b].map((c) => h.batcher.want(c, opts).then(() => answered.push(c.key)));
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await wait(50);
    expect(h.asked).toHaveLength(1);
    // No store of the flow, not yet a second of waiting: no read.
    expect(reads).toEqual([]);
    cache.set(a.key, { status: 'ok', rows: [], fetchedAt: Date.UTC(2027, 0, 1) - 2_000_000 });
    h.tick(1000);
    await wait(50);
    // At 1 s: both read once; the one the cache holds is answered.
    expect(reads).toEqual([[a.key, b.key]]);
    expect(answered).toEqual([a.key]);
    cache.set(b.key, { status: 'ok', rows: [], fetchedAt: Date.UTC(2027, 0, 1) - 2_000_000 });
    h.tick(2000);
    await wait(50);
    expect(reads).toHaveLength(1);
    h.tick(1000);
    await Promise.all(waits);
    // At 4 s: the other one, and the slot is given up (no call for cells the cache answered).
    expect(reads).toEqual([[a.key, b.key], [b.key]]);
    expect(answered).toEqual([a.key, b.key]);
    expect(h.host.stats.slotsGivenUp).toBe(1);
    expect(h.queries).toHaveLength(0);
  });

  it('reads a waiter at most twice without a store: one the cache never answers waits for its call', async () => {
    const { s, grantNext } = heldGrants();
    const h = harness(s);
    h.tick(Date.UTC(2027, 0, 1) - 1_000_000);
    h.host.sharedCheckMs = 5;
    const shared = h.host.shared as unknown as Record<string, unknown>;
    shared.getAnswers = async (_flow: string, keys: readonly string[]) => keys.map(() => undefined);
    let reads = 0;
    h.host.read = async (keys) => {
      reads++;
      return keys.map(() => undefined);
    };
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const w = h.batcher.want(cell(3, '12019000'), { loader: true, priority: 'user', admit: true });
    for (let i = 0; i < 12; i++) {
      h.tick(1000);
      await wait(20);
    }
    expect(reads).toBe(2);
    grantNext();
    await w;
    expect(h.queries).toHaveLength(1);
  });
});
