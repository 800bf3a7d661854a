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
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = ['', ...rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`), '', 'seed goals:'];
  for (const g of goals(r)) lines.push(`  ${g.ok ? 'PASS' : 'MISS'}  ${g.name}: ${g.value}`);
  return lines.join('\n');
}
