import { performance } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { latencySummary, spread } from './stats.js';

/** One operation under test; `i` is its sequence number (pick the key from it). May return a promise. */
export type Op = (i: number) => unknown;

/** What one timed round measured. */
export interface RoundSample {
  /** Operations completed. */
  ops: number;
  /** Wall time of the round, in ms. */
  elapsedMs: number;
  /** Latency of each operation in ms, when recorded. */
  latenciesMs?: number[];
}

// Each implementation gets its own freshly compiled loop, so that V8's inline caches stay
// monomorphic per implementation: a loop shared by all of them would slow down the fastest ones.
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (
  ...args: string[]
) => (...a: unknown[]) => Promise<unknown>;

type SyncLoop = (op: Op, from: number, to: number) => number;
type AsyncLoop = (op: Op, from: number, to: number) => Promise<number>;

function compileSyncLoop(): SyncLoop {
  return new Function(
    'op',
    'from',
    'to',
    'let sink = 0; for (let i = from; i < to; i++) { if (op(i) !== undefined) sink++; } return sink;',
  ) as SyncLoop;
}

function compileAsyncLoop(): AsyncLoop {
  return new AsyncFunction(
    'op',
    'from',
    'to',
    "let sink = 0; for (let i = from; i < to; i++) { let r = op(i); if (r !== null && typeof r === 'object' && typeof r.then === 'function') r = await r; if (r !== undefined) sink++; } return sink;",
  ) as AsyncLoop;
}

/** How an implementation is driven: a tight synchronous loop, or awaiting each result that is a promise. */
export type LoopKind = 'sync' | 'async';

/** A compiled loop of one implementation: timed rounds, and its allocations per operation. */
export interface Loop {
  /** Calls `op` back to back for about `durationMs`. */
  round(op: Op, durationMs: number): Promise<RoundSample>;
  /** Bytes allocated on the heap per call of `op`, over `count` calls (see {@link allocatedBytes}). */
  bytesPerOp(op: Op, count?: number): Promise<number>;
}

/**
 * Bytes allocated on the V8 heap while `run` runs: the growth of the used heap plus what every
 * garbage collection in between freed (recorded by `v8.GCProfiler`). Allocation-free code reads
 * about 0; the figure is approximate (a major GC may also free older garbage).
 */
export async function allocatedBytes(run: () => unknown): Promise<number> {
  const profiler = new GCProfiler();
  profiler.start();
  const before = getHeapStatistics().used_heap_size;
  await run();
  const after = getHeapStatistics().used_heap_size;
  const { statistics } = profiler.stop();
  let freed = 0;
  for (const gc of statistics)
    freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  return Math.max(0, after - before + freed);
}

/**
 * A timed loop for one implementation: calls `op` back to back (one at a time) in chunks until
 * `durationMs` has passed. `'async'` awaits results that are promises (so a synchronous fast path
 * that answers without a promise is not charged one).
 */
export function createLoop(kind: LoopKind): Loop {
  const sync = kind === 'sync' ? compileSyncLoop() : undefined;
  const async = kind === 'async' ? compileAsyncLoop() : undefined;
  const loop = (op: Op, from: number, to: number) =>
    sync ? sync(op, from, to) : (async as AsyncLoop)(op, from, to);
  let next = 0;
  const bytesPerOp = async (op: Op, count = 100_000) => {
    const from = next;
    next += count;
    return (await allocatedBytes(() => loop(op, from, from + count))) / count;
  };
  const round = async (op: Op, durationMs: number): Promise<RoundSample> => {
    const chunk = sync ? 8192 : 1024;
    const t0 = performance.now();
    let ops = 0;
    let elapsed = 0;
    do {
      if (sync) sync(op, next, next + chunk);
      else await (async as AsyncLoop)(op, next, next + chunk);
      next += chunk;
      ops += chunk;
      elapsed = performance.now() - t0;
    } while (elapsed < durationMs);
    return { ops, elapsedMs: elapsed };
  };
  return { round, bytesPerOp };
}

/** Options of {@link runConcurrent}. */
export interface ConcurrentOptions {
  /** Operations in flight at once. */
  concurrency: number;
  /** Length of the round, in ms. */
  durationMs: number;
  /** First sequence number (so consecutive rounds use fresh keys when they need to). @default 0 */
  start?: number;
}

/**
 * Runs `concurrency` workers that each await `op` back to back until `durationMs` has passed, and
 * records every operation's latency. Resolves when the last in-flight operation settles.
 */
export async function runConcurrent(op: Op, options: ConcurrentOptions): Promise<RoundSample> {
  const latencies: number[] = [];
  let next = options.start ?? 0;
  const t0 = performance.now();
  const deadline = t0 + options.durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const i = next++;
      const s = performance.now();
      await op(i);
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { ops: latencies.length, elapsedMs: performance.now() - t0, latenciesMs: latencies };
}

/** One implementation of a case: how to run one timed round of it. */
export interface Contender {
  /** Implementation name (ours start with `bgc`). */
  impl: string;
  /** Runs one round of about `durationMs`. */
  round(durationMs: number, roundIndex: number): Promise<RoundSample>;
  /** Heap bytes allocated per operation, measured after the rounds when given. */
  bytesPerOp?(): Promise<number>;
}

/** Options of {@link runRounds}. */
/**
 * A contender that runs `op` at `concurrency` for each round. With `fresh`, every round continues
 * the index sequence where the previous one stopped, so miss cases never see a key twice.
 */
export function concurrentContender(impl: string, concurrency: number, op: Op, fresh = false): Contender {
  let start = 0;
  return {
    impl,
    async round(durationMs) {
      const sample = await runConcurrent(op, { concurrency, durationMs, start: fresh ? start : 0 });
      start += sample.ops + concurrency;
      return sample;
    },
  };
}

export interface RoundsOptions {
  /** Unmeasured rounds first (JIT, connections, caches). @default 1 */
  warmup?: number;
  /** Measured rounds. @default 5 */
  rounds?: number;
  /** Length of each round, in ms. */
  durationMs: number;
}

/** The aggregated figures of one contender. */
export interface ContenderFigures {
  impl: string;
  opsPerSec: number;
  spreadPct: number;
  rounds: number;
  p50Ms?: number;
  p95Ms?: number;
  p99Ms?: number;
  bytesPerOp?: number;
  /** Throughput of each measured round, in run order (for paired comparisons, see {@link pairedRatio}). */
  roundRates: number[];
}

/**
 * Runs the contenders' rounds interleaved (round 1 of each, then round 2 of each, ...) so that
 * machine noise and thermal drift hit them all alike; reports the median throughput, its spread
 * and latency percentiles over every measured operation.
 */
export async function runRounds(
  contenders: readonly Contender[],
  options: RoundsOptions,
): Promise<ContenderFigures[]> {
  const warmup = options.warmup ?? 1;
  const rounds = options.rounds ?? 5;
  const samples = contenders.map(() => [] as RoundSample[]);
  for (let r = 0; r < warmup + rounds; r++) {
    for (const [i, c] of contenders.entries()) {
      const sample = await c.round(options.durationMs, r);
      if (r >= warmup) samples[i]?.push(sample);
    }
  }
  const figures = contenders.map((c, i) => summarizeRounds(c.impl, samples[i] ?? []));
  for (const [i, c] of contenders.entries()) {
    const f = figures[i];
    if (c.bytesPerOp && f) f.bytesPerOp = await c.bytesPerOp();
  }
  return figures;
}

/**
 * The median over rounds of `a`'s throughput divided by `b`'s in the same round. Rounds of the
 * contenders run back to back, so each ratio compares figures taken under the same machine load;
 * on a noisy machine its median is steadier than the ratio of the two medians.
 */
export function pairedRatio(a: ContenderFigures, b: ContenderFigures): number {
  const n = Math.min(a.roundRates.length, b.roundRates.length);
  if (n === 0) throw new RangeError('paired ratio of contenders without measured rounds');
  const ratios = Array.from(
    { length: n },
    (_, i) => (a.roundRates[i] as number) / (b.roundRates[i] as number),
  );
  return spread(ratios).median;
}

/** Aggregates rounds: median and spread of ops/s, percentiles over all recorded latencies. */
export function summarizeRounds(impl: string, samples: readonly RoundSample[]): ContenderFigures {
  const rates = samples.map((s) => (s.ops / s.elapsedMs) * 1000);
  const sp = spread(rates);
  const figures: ContenderFigures = {
    impl,
    opsPerSec: sp.median,
    spreadPct: sp.spreadPct,
    rounds: samples.length,
    roundRates: rates,
  };
  const all = samples.flatMap((s) => s.latenciesMs ?? []);
  if (all.length > 0) Object.assign(figures, latencySummary(all));
  return figures;
}
