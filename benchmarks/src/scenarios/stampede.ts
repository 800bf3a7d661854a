import { type ChildProcess, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_REDIS_URL as REDIS_URL, connectAdmin, deleteKeysContaining } from '../bench-redis.js';
import { type BenchResult, checkTarget, result, type ScenarioReport } from '../report.js';
import type { Scenario, ScenarioContext } from '../scenario.js';
import { latencySummary, spread } from '../stats.js';
import {
  type BurstResult,
  buildStampedeStack,
  burst,
  STAMPEDE_LIBS,
  type StampedeLib,
} from './stampede-stacks.js';
import type { WorkerCommand, WorkerReply } from './stampede-worker.js';

/** Concurrent callers per process. */
const CALLERS = 100;
/** How long the loader takes, in ms. */
const LOADER_MS = 100;
const NAMES: Record<StampedeLib, string> = {
  bgc: 'bgc orchestrator getOrLoad (+ RedisLock)',
  bentocache: 'bentocache (memory+redis) getOrSet',
  'cache-manager': 'cache-manager (memory+redis) wrap',
};

class Worker {
  private readonly child: ChildProcess;
  private pending: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;

  constructor(file: string) {
    // fork inherits process.execArgv, i.e. tsx's loader when the CLI runs under tsx.
    this.child = fork(file, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    this.child.on('message', (reply: WorkerReply) => {
      const p = this.pending;
      this.pending = undefined;
      p?.resolve(reply);
    });
    this.child.on('exit', (code) => {
      const p = this.pending;
      this.pending = undefined;
      p?.reject(new Error(`stampede worker exited with code ${code}`));
    });
  }

  ask(command: WorkerCommand): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      if (this.child.exitCode !== null) return reject(new Error('stampede worker has exited'));
      this.pending = { resolve, reject };
      this.child.send(command);
    });
  }

  async burst(command: WorkerCommand): Promise<BurstResult> {
    const reply = await this.ask(command);
    if (!reply.ok) throw new Error(`stampede worker: ${reply.error}`);
    return reply.burst as BurstResult;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill();
  }
}

function figures(impl: string, group: string, bursts: BurstResult[][]): BenchResult {
  // One entry per round; each round's entry lists every process's burst.
  const calls = bursts.map((procs) => procs.reduce((n, b) => n + b.loaderCalls, 0));
  const rates = bursts.map((procs) => {
    const callers = procs.reduce((n, b) => n + b.latenciesMs.length, 0);
    return (callers / Math.max(...procs.map((b) => b.elapsedMs))) * 1000;
  });
  const lat = latencySummary(bursts.flatMap((procs) => procs.flatMap((b) => b.latenciesMs)));
  const sp = spread(rates);
  return result(impl, group, {
    opsPerSec: sp.median,
    spreadPct: sp.spreadPct,
    rounds: bursts.length,
    ...lat,
    loaderCalls: Math.max(...calls),
  });
}

/** `stampede`: N concurrent misses of one key, in 1 and in 3 processes. */
export const stampede: Scenario = {
  name: 'stampede',
  async run(ctx: ScenarioContext): Promise<ScenarioReport> {
    const marker = `bgcbench:${ctx.runId}:stampede`;
    const connected = await connectAdmin();
    if ('unreachable' in connected) {
      return {
        scenario: 'stampede',
        title: 'Stampede',
        baselines: {},
        results: [],
        targets: [],
        notes: [],
        skipped: connected.unreachable,
      };
    }
    const { admin } = connected;
    const rounds = ctx.quick ? 2 : 5;
    const results: BenchResult[] = [];
    const here = dirname(fileURLToPath(import.meta.url));
    const workerFile = join(here, `stampede-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`);
    const workers: Worker[] = [];
    try {
      const one = '1 process';
      for (const lib of STAMPEDE_LIBS) {
        ctx.log(`stampede: ${lib}, 1 process, ${rounds} rounds of ${CALLERS} callers`);
        const stack = buildStampedeStack(lib, REDIS_URL, marker);
        const bursts: BurstResult[][] = [];
        try {
          for (let r = 0; r <= rounds; r++) {
            const b = await burst(stack, `${lib}:p1:${r}`, CALLERS, LOADER_MS, Date.now());
            if (r > 0) bursts.push([b]);
          }
        } finally {
          await stack.close();
        }
        results.push(figures(NAMES[lib], one, bursts));
      }
      const three = '3 processes';
      ctx.log('stampede: starting 3 worker processes');
      for (let i = 0; i < 3; i++) workers.push(new Worker(workerFile));
      for (const lib of STAMPEDE_LIBS) {
        ctx.log(`stampede: ${lib}, 3 processes x ${CALLERS} callers, ${rounds} rounds`);
        await Promise.all(workers.map((w) => w.ask({ cmd: 'prepare', lib, redisUrl: REDIS_URL, marker })));
        const bursts: BurstResult[][] = [];
        for (let r = 0; r <= rounds; r++) {
          const startAt = Date.now() + 150;
          const key = `${lib}:p3:${r}`;
          const b = await Promise.all(
            workers.map((w) =>
              w.burst({ cmd: 'burst', lib, key, callers: CALLERS, loaderMs: LOADER_MS, startAt }),
            ),
          );
          if (r > 0) bursts.push(b);
        }
        results.push(figures(NAMES[lib], three, bursts));
      }
      const calls = (group: string) =>
        results.find((r) => r.group === group && r.impl === NAMES.bgc)?.loaderCalls;
      return {
        scenario: 'stampede',
        title: `${CALLERS} concurrent get-or-loads of one missing key per process, loader ${LOADER_MS} ms, memory + Redis`,
        baselines: { [one]: NAMES.bentocache, [three]: NAMES.bentocache },
        results,
        targets: [
          checkTarget('loader calls, 1 process', calls(one), { max: 1 }, (x) => String(x)),
          checkTarget('loader calls, 3 processes', calls(three), { max: 1 }, (x) => String(x)),
        ],
        notes: [
          `loader calls: the worst round of ${rounds} (a fresh key each round); ops/s = callers / time until the last caller is answered; latencies over every caller of every round.`,
          'In 3 processes ours coalesces through RedisLock (a Redis lease): the other processes wait for the value in Redis. bentocache and cache-manager coalesce within a process only.',
        ],
      };
    } finally {
      await Promise.allSettled(workers.map((w) => w.ask({ cmd: 'exit' })));
      for (const w of workers) w.kill();
      try {
        const removed = await deleteKeysContaining(admin, marker);
        ctx.log(`stampede: removed ${removed} keys of this run from Redis`);
      } finally {
        admin.disconnect();
      }
    }
  },
};
