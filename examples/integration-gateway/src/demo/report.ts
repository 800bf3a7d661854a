/** The demo's final figures (`--json` prints this object). */
export interface DemoReport {
  instances: number;
  tiers: string;
  keysWarmed: number;
  upstreamCallsWarming: number;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  /** Responses per `x-cache-level`. */
  levels: Record<string, number>;
  /** Share of responses served from a cache tier. */
  hitRate: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  reqPerSec: number;
  seconds: number;
  /** `POST /general` calls the simulator served during the day (after warming). */
  upstreamCallsDay: number;
  /** `--cold`: no warming; the figures of an empty cache's first requests. */
  cold?: ColdFigures;
  /** The replay after restarting the gateway (L1 empty): the shared or embedded tiers answer. */
  restart?: PhaseReport;
}

/** One replay phase's figures. */
export interface PhaseReport {
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  /** Responses per `x-cache-level`. */
  levels: Record<string, number>;
  hitRate: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  reqPerSec: number;
  seconds: number;
  /** `POST /general` calls the simulator served during the phase. */
  upstreamCalls: number;
}

/** What a cold start shows (`pnpm demo --cold`). */
export interface ColdFigures {
  /** Latency of the very first request, ms. */
  firstRequestMs: number;
  /** Its status code. */
  firstStatus: number;
  /** 503 answers during the day (nothing cached and the upstream queue too slow). */
  count503: number;
  /** Every upstream HTTP call of the day (data and metadata). */
  upstreamCallsTotal: number;
  /** Requests the simulator refused for its rate limit. */
  rateLimited: number;
}

/** The value at quantile `q` of an ascending array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] as number;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** The seed's goals, checked against a report. */
export function goals(r: DemoReport): { name: string; ok: boolean; value: string }[] {
  return [
    { name: 'hit rate ≥ 98%', ok: r.hitRate >= 0.98, value: pct(r.hitRate) },
    { name: 'P95 < 50 ms', ok: r.p95Ms < 50, value: `${r.p95Ms.toFixed(2)} ms` },
    {
      name: '< 20 upstream calls for the day after warming',
      ok: r.upstreamCallsDay < 20,
      value: String(r.upstreamCallsDay),
    },
    { name: '> 1000 req/s', ok: r.reqPerSec > 1000, value: `${Math.round(r.reqPerSec)} req/s` },
  ];
}

/** The final table of the demo. */
export function renderTable(r: DemoReport): string {
  const share = (n: number | undefined) => `${pct((n ?? 0) / r.requests)} (${n ?? 0})`;
  const rows: [string, string][] = [
    ['instances', `${r.instances} (${r.tiers})`],
    ['keys warmed', `${r.keysWarmed} with ${r.upstreamCallsWarming} upstream calls`],
    ['requests', `${r.requests} in ${r.seconds.toFixed(1)} s, ${r.errors} errors`],
    ['served from l1', share(r.levels.l1)],
    ['served from l2', share(r.levels.l2)],
    ['served from l3', share(r.levels.l3)],
    ['served by upstream', share(r.levels.external)],
    ['hit rate', pct(r.hitRate)],
    ['upstream calls (day)', String(r.upstreamCallsDay)],
    ['latency p50 / p95 / p99', `${r.p50Ms.toFixed(2)} / ${r.p95Ms.toFixed(2)} / ${r.p99Ms.toFixed(2)} ms`],
    ['throughput', `${Math.round(r.reqPerSec)} req/s`],
  ];
  if (r.cold) {
    rows.splice(
      1,
      1,
      ['keys warmed', 'none (--cold)'],
      ['first request', `${r.cold.firstRequestMs.toFixed(0)} ms, status ${r.cold.firstStatus}`],
      ['503 answers', String(r.cold.count503)],
      [
        'upstream calls (all)',
        `${r.cold.upstreamCallsTotal} (${r.cold.rateLimited} refused by the rate limit)`,
      ],
    );
  }
  if (r.restart) {
    const p = r.restart;
    const pshare = (n: number | undefined) => `${pct((n ?? 0) / Math.max(1, p.requests))} (${n ?? 0})`;
    rows.push(
      ['', ''],
      [
        'after a restart',
        `${p.requests} requests in ${p.seconds.toFixed(1)} s, ${p.errors} errors (L1 empty)`,
      ],
      ['  served from l1', pshare(p.levels.l1)],
      ['  served from l2', pshare(p.levels.l2)],
      ['  served from l3', pshare(p.levels.l3)],
      ['  served by upstream', pshare(p.levels.external)],
      ['  hit rate', pct(p.hitRate)],
      ['  upstream calls', String(p.upstreamCalls)],
      ['  latency p50 / p95', `${p.p50Ms.toFixed(2)} / ${p.p95Ms.toFixed(2)} ms`],
    );
    const total = r.requests + p.requests;
    const l3 = (r.levels.l3 ?? 0) + (p.levels.l3 ?? 0);
    rows.push(['served from l3 (whole run)', `${pct(l3 / Math.max(1, total))} (${l3} of ${total})`]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = ['', ...rows.map(([k, v]) => (k ? `${k.padEnd(w)}  ${v}` : '')), '', 'seed goals (the day):'];
  for (const g of goals(r)) lines.push(`  ${g.ok ? 'PASS' : 'MISS'}  ${g.name}: ${g.value}`);
  return lines.join('\n');
}
