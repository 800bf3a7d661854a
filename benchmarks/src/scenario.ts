import type { ScenarioReport } from './report.js';

/** What every scenario gets from the CLI. */
export interface ScenarioContext {
  /** Shorter rounds and fewer of them (a smoke run, figures are noisier). */
  quick: boolean;
  /** Progress messages (to stderr, so `--json` keeps stdout clean). */
  log(message: string): void;
  /** Unique id of this run: prefix of every Redis key and PostgreSQL schema it creates. */
  runId: string;
  /** Absolute path of the repository root. */
  repoRoot: string;
}

/** One benchmark scenario, in its own file under `src/scenarios/`. */
export interface Scenario {
  /** Stable name other tools call it by, e.g. `l1-get-hit`. */
  name: string;
  /** Runs it and reports the figures; cleans up what it created, even when it fails. */
  run(ctx: ScenarioContext): Promise<ScenarioReport>;
}

/** Round settings of a context: `{ warmup, rounds, durationMs }` scaled down in quick mode. */
export function roundSettings(
  ctx: ScenarioContext,
  durationMs: number,
  rounds = 5,
): { warmup: number; rounds: number; durationMs: number } {
  return ctx.quick
    ? { warmup: 1, rounds: 2, durationMs: Math.max(50, Math.round(durationMs / 4)) }
    : { warmup: 1, rounds, durationMs };
}
