import { type JsonOutput, ratioOf, type ScenarioReport } from './report.js';

/** Formats a number for tables: thousands separators, `digits` decimals below 100. */
export function formatNumber(x: number | undefined, digits = 2): string {
  if (x === undefined || Number.isNaN(x)) return '-';
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits);
}

function pct(x: number | undefined): string {
  return x === undefined ? '-' : `${(x * 100).toFixed(1)}%`;
}

function columns(report: ScenarioReport): { header: string[]; rows: string[][] } {
  const hitRate = report.metric === 'hitRate';
  const hasLatency = report.results.some((r) => r.p50Ms !== undefined);
  const hasLoader = report.results.some((r) => r.loaderCalls !== undefined);
  // Operations run one at a time in these scenarios, so the time per operation is 1 / throughput.
  const hasAlloc = report.results.some((r) => r.bytesPerOp !== undefined);
  const header = ['case', 'implementation', hitRate ? 'hit rate' : 'ops/s'];
  if (hitRate) header.push('accesses/s');
  if (hasAlloc) header.push('ns/op', 'bytes/op');
  if (hasLatency) header.push('p50 ms', 'p95 ms', 'p99 ms');
  if (hasLoader) header.push('loader calls');
  header.push('spread', 'ratio');
  const rows = report.results.map((r) => {
    const row = [r.group, r.impl, hitRate ? pct(r.hitRate) : formatNumber(r.opsPerSec)];
    if (hitRate) row.push(formatNumber(r.opsPerSec));
    if (hasAlloc) row.push(formatNumber(1e9 / r.opsPerSec, 1), formatNumber(r.bytesPerOp, 1));
    if (hasLatency) row.push(formatNumber(r.p50Ms, 3), formatNumber(r.p95Ms, 3), formatNumber(r.p99Ms, 3));
    if (hasLoader) row.push(r.loaderCalls === undefined ? '-' : String(r.loaderCalls));
    const ratio = ratioOf(report, r);
    row.push(
      r.spreadPct === undefined ? '-' : `${r.spreadPct.toFixed(1)}%`,
      ratio === undefined ? '-' : `${ratio.toFixed(2)}x`,
    );
    return row;
  });
  return { header, rows };
}

/** The console table of a scenario: one row per implementation and case, then targets and notes. */
export function formatTable(report: ScenarioReport): string {
  const lines = [`== ${report.scenario}: ${report.title}`];
  if (report.skipped) return `${lines[0]}\nskipped: ${report.skipped}`;
  const { header, rows } = columns(report);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  lines.push(line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line));
  lines.push(`ratio = figure / baseline of the case (${baselineText(report)})`);
  for (const t of report.targets)
    lines.push(`target ${t.pass ? 'MET   ' : 'MISSED'} ${t.description}: ${t.actual} (target ${t.target})`);
  for (const n of report.notes) lines.push(`note: ${n}`);
  return lines.join('\n');
}

function baselineText(report: ScenarioReport): string {
  const names = [...new Set(Object.values(report.baselines))];
  return names.join(', ');
}

/** The same table in Markdown, for the summary. */
export function formatMarkdown(report: ScenarioReport): string {
  if (report.skipped) return `_Skipped: ${report.skipped}_\n`;
  const { header, rows } = columns(report);
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  const out = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) out.push(`| ${r.map(esc).join(' | ')} |`);
  out.push('', `Ratio = figure / baseline of the case (${baselineText(report)}).`);
  if (report.targets.length) {
    out.push('', '| target | this run | goal | |', '|---|---:|---:|---|');
    for (const t of report.targets)
      out.push(
        `| ${esc(t.description)} | ${t.actual} | ${esc(t.target)} | ${t.pass ? 'met' : '**missed**'} |`,
      );
  }
  if (report.notes.length) out.push('', ...report.notes.map((n) => `- ${n}`));
  return `${out.join('\n')}\n`;
}

/** The `--json` object: `{ scenario, results: [{ name, opsPerSec, p50Ms?, p99Ms?, loaderCalls? }] }`. */
export function toJsonOutput(report: ScenarioReport): JsonOutput {
  return {
    scenario: report.scenario,
    results: report.results.map((r) => {
      const out: JsonOutput['results'][number] = { name: r.name, opsPerSec: round(r.opsPerSec) };
      if (r.p50Ms !== undefined) out.p50Ms = round(r.p50Ms);
      if (r.p99Ms !== undefined) out.p99Ms = round(r.p99Ms);
      if (r.loaderCalls !== undefined) out.loaderCalls = r.loaderCalls;
      return out;
    }),
  };
}

/** Rounds to 4 significant decimals for JSON (ms figures) or to integers above 1000 (ops/s). */
export function round(x: number): number {
  if (Math.abs(x) >= 1000) return Math.round(x);
  return Math.round(x * 1e4) / 1e4;
}
