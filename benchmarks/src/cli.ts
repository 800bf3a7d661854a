import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBenchArgs } from './cli-args.js';
import { formatTable, toJsonOutput } from './format.js';
import { formatMachine, machineInfo } from './machine.js';
import type { ScenarioReport } from './report.js';
import { ResultsStore } from './results-store.js';
import type { ScenarioContext } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(here, '..');
const names = SCENARIOS.map((s) => s.name);

/**
 * Several scenarios run one child process each (the same command with one scenario name), so
 * that none inherits another's heap, timers or JIT state: the L1 scenarios fill seven caches with
 * 100k values each, which slowed the scenarios after them when they shared a process.
 */
function runIsolated(argv: readonly string[], scenarios: readonly string[]): void {
  const flags = argv.filter((a) => a.startsWith('-') && a !== '--');
  const t0 = Date.now();
  for (const name of scenarios) {
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), name, ...flags],
      {
        stdio: 'inherit',
      },
    );
    if (child.status !== 0) process.exitCode = 1;
  }
  if (!flags.includes('--no-save')) {
    new ResultsStore({ dir: join(benchDir, 'results'), order: names }).writeSummary();
  }
  process.stderr.write(`[bench] all scenarios done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseBenchArgs(argv, names);
  if (args.scenarios.length > 1) {
    runIsolated(argv, args.scenarios);
    return;
  }
  const machine = machineInfo();
  const store = new ResultsStore({ dir: join(benchDir, 'results'), order: names });
  const ctx: ScenarioContext = {
    quick: args.quick,
    log: (m) => process.stderr.write(`[bench] ${m}\n`),
    runId: `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
    repoRoot: resolve(benchDir, '..'),
  };
  if (!args.json) console.log(`machine: ${formatMachine(machine)}\n`);
  const t0 = Date.now();
  for (const name of args.scenarios) {
    const scenario = SCENARIOS.find((s) => s.name === name);
    if (!scenario) continue;
    const started = Date.now();
    let report: ScenarioReport;
    try {
      report = await scenario.run(ctx);
    } catch (error) {
      process.exitCode = 1;
      const message = error instanceof Error ? error.message : String(error);
      ctx.log(`${name} failed: ${error instanceof Error ? (error.stack ?? message) : message}`);
      report = {
        scenario: name,
        title: name,
        baselines: {},
        results: [],
        targets: [],
        notes: [],
        skipped: `failed: ${message}`,
      };
    }
    report.durationSec = (Date.now() - started) / 1000;
    if (
      !args.noSave &&
      !(report.skipped && report.results.length === 0 && report.skipped.startsWith('failed'))
    ) {
      await store.save(report, machine);
    }
    if (args.json) process.stdout.write(`${JSON.stringify(toJsonOutput(report))}\n`);
    else console.log(`${formatTable(report)}\n(${report.durationSec.toFixed(1)} s)\n`);
  }
  if (!args.noSave) store.writeSummary();
  ctx.log(
    `done in ${((Date.now() - t0) / 1000).toFixed(1)} s${args.noSave ? '' : `; results in ${join(benchDir, 'results')}`}`,
  );
}

main().then(
  () => process.exit(),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
