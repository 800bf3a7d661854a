/** One implementation measured in one case of a scenario. */
export interface BenchResult {
  /** Unique name in the scenario: `impl [case]`. Ours start with `bgc`. */
  name: string;
  /** The implementation, e.g. `bgc orchestrator getSync`, `lru-cache get`. */
  impl: string;
  /** The case within the scenario (e.g. `L2 hit c=64`); ratios compare rows of one case. */
  group: string;
  /** Median throughput over the measured rounds, in operations per second. */
  opsPerSec: number;
  /** `(max - min) / median` of the rounds' throughput, in percent. */
  spreadPct?: number;
  /** Measured rounds (warm-up excluded). */
  rounds?: number;
  /** Median latency of one operation, in ms. */
  p50Ms?: number;
  /** 95th percentile latency, in ms. */
  p95Ms?: number;
  /** 99th percentile latency, in ms. */
  p99Ms?: number;
  /** Loader (upstream) calls: the median over rounds, for stampede scenarios. */
  loaderCalls?: number;
  /** Hit rate 0..1, for hit-rate scenarios. */
  hitRate?: number;
  /** Heap bytes allocated per operation (one-at-a-time scenarios). */
  bytesPerOp?: number;
  /** Throughput of each measured round, in run order. */
  roundRates?: number[];
}

/** A target of the issue checked against this run's figures. */
export interface TargetCheck {
  /** What is compared, e.g. `orchestrator L1-hit getSync vs lru-cache get`. */
  description: string;
  /** The target, e.g. `<= 3x`. */
  target: string;
  /** The figure of this run, e.g. `1.8x`. */
  actual: string;
  /** Whether this run meets the target. */
  pass: boolean;
}

/** What one scenario produced. */
export interface ScenarioReport {
  /** Stable scenario name, e.g. `l1-get-hit`. */
  scenario: string;
  /** One line saying what is measured. */
  title: string;
  /** The figure ratios are computed on. @default 'opsPerSec' */
  metric?: 'opsPerSec' | 'hitRate';
  /** The reference implementation of each case (`impl`), the denominator of the ratio column. */
  baselines: Record<string, string>;
  /** Rows, in display order. */
  results: BenchResult[];
  /** Targets of the issue that concern this scenario. */
  targets: TargetCheck[];
  /** Remarks printed under the table (settings, caveats). */
  notes: string[];
  /** Set when the scenario could not run (missing service, trace or build); results are then empty. */
  skipped?: string;
  /** Wall time of the scenario, in seconds. */
  durationSec?: number;
}

/** The JSON printed by `--json`: exactly these keys, ours named `bgc...`. */
export interface JsonOutput {
  scenario: string;
  results: { name: string; opsPerSec: number; p50Ms?: number; p99Ms?: number; loaderCalls?: number }[];
}

/** Builds a result row, naming it `impl [group]` (or `impl` when there is a single unnamed case). */
export function result(
  impl: string,
  group: string,
  figures: Omit<BenchResult, 'name' | 'impl' | 'group'>,
): BenchResult {
  return { name: group ? `${impl} [${group}]` : impl, impl, group, ...figures };
}

/** The row a result is compared with: the baseline of its case, or `undefined`. */
export function baselineOf(report: ScenarioReport, row: BenchResult): BenchResult | undefined {
  const impl = report.baselines[row.group];
  return report.results.find((r) => r.group === row.group && r.impl === impl);
}

/**
 * The ratio column: this row's figure over its case baseline's (throughput or hit rate), so
 * `0.5` means half the baseline's throughput. `undefined` without a baseline or a zero baseline.
 */
export function ratioOf(report: ScenarioReport, row: BenchResult): number | undefined {
  const base = baselineOf(report, row);
  if (!base) return undefined;
  const key = report.metric ?? 'opsPerSec';
  const a = row[key];
  const b = base[key];
  if (a === undefined || b === undefined || b === 0) return undefined;
  return a / b;
}

/** Checks `actual <= max` (or `>= min`) and formats it as a {@link TargetCheck}. */
export function checkTarget(
  description: string,
  actual: number | undefined,
  bound: { max?: number; min?: number },
  format: (x: number) => string = (x) => `${x.toFixed(2)}x`,
): TargetCheck {
  const target = bound.max !== undefined ? `<= ${format(bound.max)}` : `>= ${format(bound.min ?? 0)}`;
  if (actual === undefined || Number.isNaN(actual))
    return { description, target, actual: 'n/a', pass: false };
  const pass =
    (bound.max === undefined || actual <= bound.max) && (bound.min === undefined || actual >= bound.min);
  return { description, target, actual: format(actual), pass };
}
