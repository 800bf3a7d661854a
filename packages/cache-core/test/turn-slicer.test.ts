import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, MultiLevelCache } from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';
import { nextSlice, slicesWaiting } from '../src/turn-slicer.js';

/** Keeps the thread busy for `ms` (the work of a caller going on with its answer). */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}

/** Resolves after the event loop's next check phase (a fresh turn: no slice under way). */
const nextTurn = () => new Promise<void>((r) => setImmediate(() => setImmediate(r)));

describe('nextSlice (cooperative slicing of one event-loop turn)', () => {
  afterEach(async () => {
    // Nothing left in line for the next test.
    while (slicesWaiting() > 0) await nextTurn();
    await nextTurn();
  });

  it('lets callers go on at once while the turn is within its budget, up to 64 of them, the next ones in line; never holds any with budget 0', async () => {
    await nextTurn();
    // Counts the check phases (queued first: it runs before the line in each).
    let immediates = 0;
    const count = () => {
      immediates++;
      if (slicesWaiting() > 0) setImmediate(count);
    };
    setImmediate(count);
    const now = Array.from({ length: 64 }, () => nextSlice(50));
    expect(now.every((p) => p === undefined)).toBe(true);
    const next = [nextSlice(50), nextSlice(50)];
    expect(next[0]).toBeInstanceOf(Promise);
    expect(slicesWaiting()).toBe(2);
    await Promise.all(next);
    // Within the budget: both went on in the very next check phase.
    expect(immediates).toBe(1);
    busy(3);
    expect(nextSlice(0)).toBeUndefined();
    expect(slicesWaiting()).toBe(0);
  });

  it('past the budget, callers wait in line and go on in later turns, in order, a budget per turn', async () => {
    await nextTurn();
    expect(nextSlice(2)).toBeUndefined(); // starts the turn's slice
    busy(3);
    const order: number[] = [];
    // Each of them, once let go, works 1.5 ms: at most two fit in a 2 ms slice.
    const turnOf: number[] = [];
    let turn = 0;
    const ticker = setInterval(() => {}, 1000);
    const countTurns = () => {
      turn++;
      if (slicesWaiting() > 0) setImmediate(countTurns);
    };
    const waits = Array.from({ length: 8 }, (_, i) => {
      const p = nextSlice(2);
      expect(p).toBeInstanceOf(Promise);
      return (p as Promise<void>).then(() => {
        order.push(i);
        turnOf.push(turn);
        busy(1.5);
      });
    });
    expect(slicesWaiting()).toBe(8);
    setImmediate(countTurns);
    await Promise.all(waits);
    clearInterval(ticker);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Spread over several turns, never more than two in one.
    const perTurn = new Map<number, number>();
    for (const t of turnOf) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
    expect(perTurn.size).toBeGreaterThanOrEqual(4);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(2);
    expect(slicesWaiting()).toBe(0);
  });

  it('a caller that comes while others wait goes behind them, even in a fresh turn (no starvation)', async () => {
    await nextTurn();
    nextSlice(1);
    busy(2);
    const order: string[] = [];
    let late: Promise<void> | undefined;
    // Each works 3 ms: one per turn. After the first, a timer (a fresh turn) brings a newcomer.
    const queued = Array.from({ length: 3 }, (_, i) =>
      (nextSlice(1) as Promise<void>).then(() => {
        order.push(String(i));
        busy(3);
        if (i === 0)
          setTimeout(() => {
            late = nextSlice(1);
          }, 0);
      }),
    );
    await Promise.all(queued);
    expect(late).toBeInstanceOf(Promise);
    await (late as Promise<void>).then(() => order.push('late'));
    expect(order).toEqual(['0', '1', '2', 'late']);
  });

  it('a turn always lets its first caller go on: progress whatever each one costs', async () => {
    await nextTurn();
    nextSlice(1);
    busy(2);
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        (nextSlice(1) as Promise<void>).then(() => {
          busy(5); // far past the budget by itself
          done.push(i);
        }),
      ),
    );
    expect(done).toEqual([0, 1, 2]);
  });
});

describe('turnBudgetMs (the orchestrator)', () => {
  let caches: MultiLevelCache[] = [];
  afterEach(async () => {
    await Promise.all(caches.map((c) => c.close()));
    caches = [];
  });

  /**
   * 150 misses whose loads one event answers at once, each caller then working 0.5 ms on its answer
   * (a response to build): how many of them went on before a probe queued at that instant (the
   * next request a process would read) got its turn.
   */
  async function beforeProbe(turnBudgetMs: number): Promise<number> {
    const cache = new MultiLevelCache({
      tiers: [new FakeTier({ level: 'l1', sync: true })],
      turnBudgetMs,
      coalesceWindowMs: 0,
    });
    caches.push(cache);
    let release!: () => void;
    const landed = new Promise<void>((r) => {
      release = r;
    });
    let answered = 0;
    let atProbe = -1;
    const callers = Array.from({ length: 150 }, (_, i) =>
      cache
        .getOrLoad(`k${i}`, async () => {
          await landed;
          return i;
        })
        .then((r) => {
          expect(r.value).toBe(i);
          busy(0.5);
          answered++;
        }),
    );
    await nextTurn();
    const probed = new Promise<void>((r) =>
      setImmediate(() => {
        release();
        setImmediate(() => {
          atProbe = answered;
          r();
        });
      }),
    );
    await Promise.all([...callers, probed]);
    return atProbe;
  }

  it('answers a burst of misses over several turns, so that a request arriving meanwhile is read within about the budget', async () => {
    const sliced = await beforeProbe(5);
    // 64 go on at once (their work runs after they were let go), then about 5 ms' worth (10).
    expect(sliced).toBeGreaterThanOrEqual(64);
    expect(sliced).toBeLessThan(100);
    // Off: all 150 went on before the probe.
    expect(await beforeProbe(0)).toBe(150);
  });

  it('holds only answers that waited: a hit read from a shared tier meanwhile goes on at once', async () => {
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2' });
    const cache = new MultiLevelCache({ tiers: [l1, l2], turnBudgetMs: 5, coalesceWindowMs: 0 });
    caches.push(cache);
    await l2.set('hot', {
      value: 'cached',
      freshUntil: Date.now() + 60_000,
      staleUntil: Date.now() + 60_000,
      createdAt: Date.now(),
    });
    let release!: () => void;
    const landed = new Promise<void>((r) => {
      release = r;
    });
    let answered = 0;
    const callers = Array.from({ length: 150 }, (_, i) =>
      cache
        .getOrLoad(`k${i}`, async () => {
          await landed;
          return i;
        })
        .then(() => {
          busy(0.5);
          answered++;
        }),
    );
    await nextTurn();
    let atHit = -1;
    const hit = new Promise<void>((r) =>
      setImmediate(() => {
        release();
        // A request that arrives just after the loads landed (64 answered, the rest in line): its
        // L1 misses, its L2 hits.
        setImmediate(() => {
          expect(slicesWaiting()).toBeGreaterThan(50);
          void cache
            .getOrLoad('hot', async () => 'loaded')
            .then((res) => {
              expect(res.value).toBe('cached');
              atHit = answered;
              r();
            });
        });
      }),
    );
    await Promise.all([...callers, hit]);
    expect(atHit).toBeLessThan(90);
  });

  it('is validated', () => {
    expect(() => new MultiLevelCache({ tiers: [], turnBudgetMs: -1 })).toThrow(ConfigError);
  });
});
