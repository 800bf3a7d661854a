// The cold start under load (issue 15, done-when #2): 3 gateway processes on an EMPTY real Redis
// (their own redis-server) and an empty PostgreSQL schema, the shipped connector YAML, the simulator
// with its strict rate limit; 6,000 requests of the demo's day (Zipf over the warm set, 1% cold
// countries: ~2,800 distinct keys) offered OPEN-LOOP at 1,000 req/s from 50 client addresses
// (127.0.0.x: each its own per-client budget), round-robin over the instances. Latency is counted
// from each request's scheduled instant (queueing included).
//
// At the DEFAULT spacing (20 s between upstream calls, no COMEXSTAT_MIN_INTERVAL_MS) against the
// simulator's 15 s window: the load lasts 6 s, so its ratio to the spacing is the real one (a
// scaled-down spacing would turn the same 6 s into many intervals). About 90 s: both flows and the
// leftovers of the first call need 3-5 spaced calls.
//
// Upstream calls are counted from the gateways' start (metadata included). A "cached answer" is
// one to a request sent after its key's first answer arrived (the value was in some tier): its
// latency must not suffer from the cold path around it. Requests sent earlier waited for an
// upstream call (their own, or another instance's through the load lock: those read as 'l2').
// During the burst nearly every request is of the second kind (the load is over before the first
// call lands). So the day's traffic goes on after it at a steady 200 req/s until the burst's last
// request is answered (~45-70 s: the leftovers' calls land, their cells are written, their waiters
// answered meanwhile; its own answers are waited for 5 s more), and the cached answers of that phase
// are the figure: printed here, and checked against the issue's p95 < 50 ms by the benchmark suite's
// `gateway-cold-start` scenario (a timing target, so not asserted by a test: on a VM about twice as
// slow as usual, Redis at ~28 us per script call instead of ~13, it read 58-330 ms, and 82 ms with
// the code of the run that first measured 9-28 ms). The client runs in worker
// threads (load-client.mjs): in this process's event loop, reading the thousands of answers a
// landing releases at once delayed the requests due meanwhile by up to 500 ms.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import path from 'node:path';
import {
  type ComexStatSimulator,
  SIM_COUNTRIES,
  SIM_NCMS,
  startComexStatSimulator,
} from '@bgc/connector-comexstat/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import { buildTraffic } from '../src/demo/traffic.js';
import { type GatewayProcess, here, PG_URL, startGatewayProcess, tempSchema } from './helpers.js';

const WINDOW_MS = 15_000;
const REQUESTS = 6000;
const RATE = 1000; // requests per second, open loop
const CLIENTS = 50;
/** Requests per second after the burst, until its last request is answered. */
const STEADY_RATE = 200;
/** How long the steady phase's answers are waited for after the burst was answered, ms. */
const STEADY_GRACE_MS = 5000;

let sim: ComexStatSimulator;
let redis: RedisServer;
let schema: { name: string; drop(): Promise<void> };
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  sim = await startComexStatSimulator({
    rateLimit: { max: 1, windowMs: WINDOW_MS, strict: true },
    latency: { baseMs: 300, perRowMs: 0.3 },
  });
  redis = await startRedis();
  schema = await tempSchema();
});

afterAll(async () => {
  for (const g of gateways) await g.stop('SIGKILL');
  await sim?.close();
  await redis?.stop();
  await schema?.drop();
});

interface Answer {
  status: number;
  level: string | null;
  ms: number;
  /** When the answer arrived (performance.now()). */
  at: number;
  code?: string;
}

/**
 * The load client: worker threads (test/load-client.mjs), each sending the requests of its client
 * addresses open-loop. In this process's own event loop, reading the thousands of answers a landing
 * releases at once stalled it for 150-500 ms: the requests due meanwhile left late, and the
 * gateways were charged with the client's delay. The workers post their news every 20 ms.
 */
const WORKERS = 5; // CLIENTS % WORKERS === 0: each client address belongs to one worker

interface Phase {
  /** Indexes of the requests sent so far. */
  sent: Set<number>;
  answers: Map<number, Answer>;
  /** When the phase's last request was sent (performance.now()), once it was. */
  allSentAt?: number;
  total: number;
  /** Stopped before all were sent (see LoadClient.stop). */
  stopped?: boolean;
  changed: () => void;
}

/** A worker's news (see load-client.mjs). */
interface LoadNews {
  phase: string;
  sent: number[];
  answers: [number, Answer][];
  resetsRetried: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

class LoadClient {
  /** The workers' event-loop delay, worst of them: p99 and max, ms. */
  lagP99Ms = 0;
  lagMaxMs = 0;
  private readonly workers: Worker[];
  private readonly phases = new Map<string, Phase>();
  private readonly resets = new Map<string, number>();
  constructor() {
    this.workers = Array.from({ length: WORKERS }, (_, w) => {
      const worker = new Worker(new URL('./load-client.mjs', import.meta.url));
      worker.on('message', (m: LoadNews) => {
        const phase = this.phases.get(m.phase) as Phase;
        for (const i of m.sent) phase.sent.add(i);
        if (phase.allSentAt === undefined && phase.sent.size === phase.total)
          phase.allSentAt = performance.now();
        // Epoch ms to this thread's performance.now().
        for (const [i, a] of m.answers) phase.answers.set(i, { ...a, at: a.at - performance.timeOrigin });
        this.resets.set(`${w} ${m.phase}`, m.resetsRetried);
        this.lagP99Ms = Math.max(this.lagP99Ms, m.lagP99Ms);
        this.lagMaxMs = Math.max(this.lagMaxMs, m.lagMaxMs);
        phase.changed();
      });
      return worker;
    });
  }

  /** Connection resets retried (see load-client.mjs). */
  get resetsRetried(): number {
    return [...this.resets.values()].reduce((a, b) => a + b, 0);
  }

  /**
   * Sends `sequence` open-loop: request i is due at `start` + i / rate (performance.now() frame),
   * round-robin over the instances and the client addresses.
   */
  offer(id: string, sequence: readonly { path: string }[], rate: number, start: number): Phase {
    const phase: Phase = { sent: new Set(), answers: new Map(), total: sequence.length, changed: () => {} };
    this.phases.set(id, phase);
    const perWorker: [number, string, string, number][][] = this.workers.map(() => []);
    sequence.forEach((t, i) => {
      const c = i % CLIENTS;
      const g = gateways[i % 3] as GatewayProcess;
      (perWorker[c % WORKERS] as [number, string, string, number][]).push([
        i,
        `${g.url}${t.path}`,
        `127.0.0.${c + 2}`,
        performance.timeOrigin + start + (i * 1000) / rate,
      ]);
    });
    this.workers.forEach((w, k) => {
      w.postMessage({ type: 'send', phase: id, requests: perWorker[k] });
    });
    return phase;
  }

  /** Sends no more of the phase; resolves once the workers' last news of it has come. */
  async stop(phase: Phase, id: string): Promise<void> {
    for (const w of this.workers) w.postMessage({ type: 'stop', phase: id });
    await new Promise((r) => setTimeout(r, 100));
    phase.stopped = true;
  }

  /** Resolves once every request of the phase sent so far is answered, or after `ms` (then false). */
  settled(phase: Phase, ms = Number.POSITIVE_INFINITY): Promise<boolean> {
    return new Promise((resolve) => {
      const done = () =>
        phase.answers.size === phase.sent.size && (phase.total === phase.sent.size || phase.stopped === true);
      if (done()) return resolve(true);
      const timer = Number.isFinite(ms) ? setTimeout(() => resolve(false), ms) : undefined;
      phase.changed = () => {
        if (!done()) return;
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map((w) => {
        const exited = new Promise((r) => w.once('exit', r));
        w.postMessage({ type: 'close' });
        return exited;
      }),
    );
  }
}

const p = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;

describe('cold start under load', () => {
  it('3 fresh instances, 6,000 requests at 1,000 req/s open loop then 200 req/s, default spacing: 0 errors, 0 refused, <= 20 upstream calls, > 1,000 cached answers (their p95: see the gateway-cold-start benchmark)', async () => {
    const env = {
      COMEXSTAT_BASE_URL: sim.url,
      COMEXSTAT_CONFIG: path.resolve(here, '../config/comexstat.yaml'),
      CACHE_L2_ENABLED: 'true',
      CACHE_L3_ENABLED: 'true',
      REDIS_ADDR: `127.0.0.1:${redis.port}`,
      CACHE_L2_PREFIX: 'load:c:',
      CACHE_COORD_PREFIX: 'load:x:',
      DATABASE_URL: PG_URL,
      L3_SCHEMA: schema.name,
      LOG_LEVEL: 'warn',
    };
    for (const name of ['a', 'b', 'c'])
      gateways.push(await startGatewayProcess({ ...env, INSTANCE_ID: `load-${name}` }));

    const ranked = SIM_COUNTRIES.filter((c) => /^\d{3}$/.test(c.id) && c.id !== '105');
    const trafficOptions = {
      ncms: SIM_NCMS.slice(0, 50).map((n) => n.coNcm),
      countries: ranked.slice(0, 10).map((c) => c.id),
      coldCountries: ranked.slice(10, 30).map((c) => c.id),
      latest: { year: sim.release.year, month: sim.release.month },
    };
    const traffic = buildTraffic({ ...trafficOptions, requests: REQUESTS, seed: 20240301 });
    const distinct = new Set(traffic.map((t) => t.key)).size;
    const client = new LoadClient();
    // A moment for the workers to receive their requests.
    const t0 = performance.now() + 200;
    const burstPhase = client.offer('burst', traffic, RATE, t0);
    // Phase 2: the same day's traffic goes on at a steady rate from the burst's end until its last
    // request is answered (its leftovers' calls landing, their cells written, their waiters woken
    // meanwhile). Its requests for keys answered before they were sent are the cached answers whose
    // latency the cold path around them must not spoil.
    const steady = buildTraffic({ ...trafficOptions, requests: STEADY_RATE * 120, seed: 20240302 });
    const t1 = t0 + (REQUESTS * 1000) / RATE;
    const steadyPhase = client.offer('steady', steady, STEADY_RATE, t1);
    await client.settled(burstPhase);
    const offeredMs = (burstPhase.allSentAt ?? Number.NaN) - t0;
    const totalMs = performance.now() - t0;
    await client.stop(steadyPhase, 'steady');
    // Then the steady phase's answers as they stand
    // STEADY_GRACE_MS after the burst was answered: its own cold keys may wait for calls long after
    // (they are not what this phase measures), and a request still unanswered then counts with the
    // time it has waited so far (a cached one is then a slow cached answer, not left out).
    await client.settled(steadyPhase, STEADY_GRACE_MS);
    const cutAt = performance.now();
    const all: Answer[] = traffic.map((_, i) => burstPhase.answers.get(i) as Answer);
    const sentSteady = Math.max(-1, ...steadyPhase.sent) + 1;
    const after: Answer[] = steady.slice(0, sentSteady).map(
      (_, i) =>
        steadyPhase.answers.get(i) ?? {
          status: -1,
          level: null,
          ms: cutAt - (t1 + (i * 1000) / STEADY_RATE),
          at: Number.POSITIVE_INFINITY,
        },
    );
    const pendingAtCut = after.filter((a) => a.status === -1).length;
    const resetsRetried = client.resetsRetried;
    await client.close();

    const errors = [...all, ...after].filter((a) => a.status !== 200 && a.status !== -1);
    // When each key's value was first answered (some tier held it from then on).
    const firstAnswer = new Map<string, number>();
    const noteFirst = (a: Answer, key: string) => {
      if (a.status === 200 && a.at < (firstAnswer.get(key) ?? Number.POSITIVE_INFINITY))
        firstAnswer.set(key, a.at);
    };
    for (const [i, a] of all.entries()) noteFirst(a, (traffic[i] as { key: string }).key);
    for (const [i, a] of after.entries()) noteFirst(a, (steady[i] as { key: string }).key);
    // A phase's answers (answered, or in the steady phase still waiting at the cut: -1) whose key
    // has a first answer: cached when sent after it, else they waited for an upstream call.
    const split = (phase: Answer[], sequence: readonly { key: string }[], sentAt: (i: number) => number) => {
      const out = { cached: [] as Answer[], waited: [] as Answer[] };
      phase.forEach((a, i) => {
        if (a.status !== 200 && a.status !== -1) return;
        const first = firstAnswer.get((sequence[i] as { key: string }).key);
        if (first !== undefined) (sentAt(i) > first ? out.cached : out.waited).push(a);
      });
      return out;
    };
    const sortedMs = (answers: Answer[]) => answers.map((a) => a.ms).sort((x, y) => x - y);
    const burstSplit = split(all, traffic, (i) => t0 + (i * 1000) / RATE);
    const steadySplit = split(after, steady, (i) => t1 + (i * 1000) / STEADY_RATE);
    const hits = sortedMs(burstSplit.cached);
    const waited = sortedMs(burstSplit.waited);
    const steadyHits = sortedMs(steadySplit.cached);
    const steadyWaited = sortedMs(steadySplit.waited);
    // The slow ones (> 50 ms) by the level that answered them: 'external' and 'l2' past 1 s are
    // keys answered before yet missing from the tiers when asked (a write that failed, a lock
    // held by a load that waits for a call).
    const slow: Record<string, number> = {};
    for (const a of steadySplit.cached) {
      if (a.ms <= 50) continue;
      const k = `${a.status === -1 ? 'unanswered' : a.level} ${a.ms > 1000 ? '> 1 s' : '> 50 ms'}`;
      slow[k] = (slow[k] ?? 0) + 1;
    }
    // By the level header alone (lock waiters of another instance's load read as 'l2').
    const byLevel = all
      .filter((a) => a.status === 200 && a.level !== 'external')
      .map((a) => a.ms)
      .sort((x, y) => x - y);
    const levels: Record<string, number> = {};
    for (const a of all) levels[a.level ?? String(a.status)] = (levels[a.level ?? String(a.status)] ?? 0) + 1;
    const codes: Record<string, number> = {};
    for (const e of errors)
      codes[`${e.status} ${e.code ?? ''}`] = (codes[`${e.status} ${e.code ?? ''}`] ?? 0) + 1;
    const byPath = sim.stats.byPath;
    const wall = Date.now() - performance.now();
    const calls = sim.stats.log.map(
      (r) =>
        `  ${((r.at - (wall + t0)) / 1000).toFixed(1)} s ${r.method} ${r.path} ${r.status}${r.query ? ` ${r.query.flow} ${r.query.from}..${r.query.to} ${r.query.ncms} NCMs x ${r.query.countries} countries: ${r.rows} rows in ${r.ms} ms` : ''}`,
    );
    console.log(
      [
        `cold start under load (3 instances, default spacing 20 s, simulator window ${WINDOW_MS / 1000} s): ${REQUESTS} requests over ${distinct} keys offered in ${(offeredMs / 1000).toFixed(1)} s, all answered in ${(totalMs / 1000).toFixed(1)} s`,
        `  errors ${errors.length} ${JSON.stringify(codes)}; levels ${JSON.stringify(levels)}; new connections reset and retried ${resetsRetried}`,
        `  then ${after.length} requests at ${STEADY_RATE} req/s until the burst was answered: cached answers (sent after their key's first answer) p50 ${p(steadyHits, 0.5).toFixed(1)} ms, p95 ${p(steadyHits, 0.95).toFixed(1)} ms, p99 ${p(steadyHits, 0.99).toFixed(1)} ms, max ${(steadyHits[steadyHits.length - 1] ?? 0).toFixed(0)} ms (${steadyHits.length}); ${steadyWaited.length} waited for a call; ${pendingAtCut} unanswered ${STEADY_GRACE_MS / 1000} s after the burst`,
        `  slow cached answers by level: ${JSON.stringify(slow)}; load client's event-loop delay (worst worker) p99 ${client.lagP99Ms.toFixed(0)} ms, max ${client.lagMaxMs.toFixed(0)} ms`,
        `  burst's cached answers (sent after their key's first answer): p50 ${p(hits, 0.5).toFixed(1)} ms, p95 ${p(hits, 0.95).toFixed(1)} ms, p99 ${p(hits, 0.99).toFixed(1)} ms (${hits.length})`,
        `  answers that waited for an upstream call: p50 ${(p(waited, 0.5) / 1000).toFixed(1)} s, max ${((waited[waited.length - 1] ?? 0) / 1000).toFixed(1)} s (${waited.length}); by level header, non-external p95 ${p(byLevel, 0.95).toFixed(0)} ms (${byLevel.length})`,
        `  upstream calls ${sim.stats.calls} (data ${byPath['/general'] ?? 0}, dates ${byPath['/general/dates/updated'] ?? 0}, countries ${byPath['/tables/countries'] ?? 0}), refused ${sim.stats.rateLimited}; seconds from the first request:`,
        ...calls,
      ].join('\n'),
    );
    // What the gateways logged at warn and above, by message (tier timeouts, circuits, 503s).
    const logged: Record<string, number> = {};
    for (const g of gateways)
      for (const line of g.output().split('\n')) {
        const m = /"msg":"([^"]*)"/.exec(line);
        const op = /"operation":"([^"]*)"/.exec(line);
        if (m)
          logged[`${m[1]}${op ? ` (${op[1]})` : ''}`] =
            (logged[`${m[1]}${op ? ` (${op[1]})` : ''}`] ?? 0) + 1;
      }
    console.log(`  gateway warnings: ${JSON.stringify(logged)}`);
    for (const g of gateways)
      for (const line of g.output().split('\n'))
        if (/unhandled|uncaught/.test(line)) console.log(`  ${line.slice(0, 600)}`);
    // Redis commands of the whole run (the test's own redis-server), and the gateways' cache errors
    // by level, operation and type (timeouts and open circuits of the shared tiers).
    const stats = execFileSync('redis-cli', ['-p', String(redis.port), 'info', 'commandstats'], {
      encoding: 'utf8',
    });
    // Calls and Redis' own CPU time (commands run by scripts are counted apart as well).
    const commands = [...stats.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g)]
      .map((m) => [m[1] as string, Number(m[2]), Number(m[3]) / 1000] as const)
      .sort((x, y) => y[1] - x[1]);
    console.log(
      `  redis commands (calls, ms of Redis CPU): ${commands.map(([c, n, ms]) => `${c} ${n} ${ms.toFixed(0)} ms`).join(', ')}`,
    );
    const tierErrors: Record<string, number> = {};
    for (const g of gateways) {
      const text = await (await fetch(g.metricsUrl)).text();
      for (const m of text.matchAll(
        /^\w*cache_errors_total\{level="(\w+)",operation="(\w+)",error_type="(\w+)"\} (\d+)/gm,
      )) {
        const k = `${m[1]} ${m[2]} ${m[3]}`;
        tierErrors[k] = (tierErrors[k] ?? 0) + Number(m[4]);
      }
    }
    console.log(`  cache errors (3 instances, /metrics): ${JSON.stringify(tierErrors)}`);
    expect(distinct).toBeGreaterThan(2500);
    // The steady phase's cached answers: plenty of them, and typically served from the cache
    // without waiting behind the cold path around them.
    expect(steadyHits.length).toBeGreaterThan(1000);
    // The figures for the benchmark suite (gateway-cold-start), which checks the p95 target.
    if (process.env.BGC_COLD_START_FIGURES)
      writeFileSync(
        process.env.BGC_COLD_START_FIGURES,
        JSON.stringify({
          steadyRate: STEADY_RATE,
          cachedAnswers: steadyHits.length,
          p50Ms: p(steadyHits, 0.5),
          p95Ms: p(steadyHits, 0.95),
          p99Ms: p(steadyHits, 0.99),
          waitedForCall: steadyWaited.length,
          errors: errors.length,
          upstreamCalls: sim.stats.calls,
          refused: sim.stats.rateLimited,
        }),
      );
    // Never refused by the upstream's rate limit, and few calls for ~2,800 cold keys.
    expect(sim.stats.rateLimited).toBe(0);
    expect(sim.stats.calls).toBeLessThanOrEqual(20);
    // The second flow's first call goes before the first flow's leftovers (which keep gathering
    // meanwhile): the first two data calls are one per flow.
    const flows = sim.stats.log.filter((r) => r.query).map((r) => r.query?.flow);
    expect(new Set(flows.slice(0, 2)).size).toBe(2);
    // Every request answered 200 (the issue's 0 errors): no reset, no bare timeout, no 500, and no
    // typed 503 E_UPSTREAM_BACKLOG of a waiter past the connector's wait bound (0 in every run of
    // this round; earlier, 5-3,270 on a loaded machine: see the gateway README, "Cold start").
    expect(errors).toEqual([]);
  }, 600_000);
});
