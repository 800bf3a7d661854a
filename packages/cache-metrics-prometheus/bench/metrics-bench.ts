/**
 * Cost of recording metrics on the hot path: PrometheusMetrics vs the core's NOOP_METRICS (what an
 * uninstrumented cache pays) and vs using prom-client directly (labels object per call, and
 * pre-bound `counter.labels(...)` children). Run: `npx -y pnpm@10 exec tsx bench/metrics-bench.ts`.
 * Absolute numbers move between machines; compare the columns of one run.
 */
import { type Level, type MetricsAdapter, NOOP_METRICS } from '@bgc/cache-core';
import { Counter, Registry } from 'prom-client';
import { PrometheusMetrics } from '../src/index.js';

const N = 2_000_000;
const ROUNDS = 7;
const LEVELS: Level[] = ['l1', 'l2', 'l3'];
const ENDPOINTS = ['exportacao_mes', 'importacao_mes', 'paises'];

/** Best-of-rounds ns per call of `op(i)`. */
function measure(op: (i: number) => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) op(i);
    const ns = Number(process.hrtime.bigint() - start) / N;
    if (ns < best) best = ns;
  }
  return best;
}

function adapterHit(adapter: MetricsAdapter): (i: number) => void {
  return (i) => adapter.hit(LEVELS[i % 3]!, 'comexstat', ENDPOINTS[i % 3]!);
}

const prom = new PrometheusMetrics({ registry: new Registry() });
const rawRegistry = new Registry();
const rawCounter = new Counter({
  name: 'raw_hits_total',
  help: 'raw',
  labelNames: ['level', 'connector', 'endpoint'],
  registers: [rawRegistry],
});
const children = new Map<string, { inc(v?: number): void }>();
for (const l of LEVELS)
  for (const e of ENDPOINTS) children.set(`${l}|comexstat|${e}`, rawCounter.labels(l, 'comexstat', e));

const noopHit = measure(adapterHit(NOOP_METRICS));
const noopLatency = measure((i) => NOOP_METRICS.latency(LEVELS[i % 3]!, 'get', 1e-6 * (i & 1023)));
const rows: [string, number, number][] = [
  ['NOOP_METRICS.hit', noopHit, noopHit],
  ['PrometheusMetrics.hit', measure(adapterHit(prom)), noopHit],
  [
    'prom-client counter.inc({labels})',
    measure((i) =>
      rawCounter.inc({ level: LEVELS[i % 3]!, connector: 'comexstat', endpoint: ENDPOINTS[i % 3]! }),
    ),
    noopHit,
  ],
  [
    'prom-client pre-bound child Map',
    measure((i) => children.get(`${LEVELS[i % 3]!}|comexstat|${ENDPOINTS[i % 3]!}`)!.inc()),
    noopHit,
  ],
  ['NOOP_METRICS.latency', noopLatency, noopLatency],
  [
    'PrometheusMetrics.latency',
    measure((i) => prom.latency(LEVELS[i % 3]!, 'get', 1e-6 * (i & 1023))),
    noopLatency,
  ],
];

console.log(`node ${process.version}, ${N} calls x ${ROUNDS} rounds, best round`);
console.log('operation'.padEnd(36), 'ns/op'.padStart(8), 'vs NOOP'.padStart(10), 'extra ns'.padStart(10));
for (const [name, ns, base] of rows) {
  console.log(
    name.padEnd(36),
    ns.toFixed(1).padStart(8),
    `${(ns / base).toFixed(1)}x`.padStart(10),
    (ns - base).toFixed(1).padStart(10),
  );
}
