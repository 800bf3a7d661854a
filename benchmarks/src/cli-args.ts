/** The parsed command line of `pnpm bench`. */
export interface BenchArgs {
  /** Scenarios to run, in order; every scenario when none is named. */
  scenarios: string[];
  /** Print JSON instead of tables. */
  json: boolean;
  /** Short rounds (smoke run). */
  quick: boolean;
  /** Do not write `results/`. */
  noSave: boolean;
}

/**
 * Parses `[scenario...] [--json] [--quick] [--no-save]`.
 * @throws {Error} naming an unknown scenario or flag and listing the valid ones.
 */
export function parseBenchArgs(argv: readonly string[], known: readonly string[]): BenchArgs {
  const args: BenchArgs = { scenarios: [], json: false, quick: false, noSave: false };
  for (const arg of argv) {
    if (arg === '--') continue;
    if (arg === '--json') args.json = true;
    else if (arg === '--quick') args.quick = true;
    else if (arg === '--no-save') args.noSave = true;
    else if (arg.startsWith('-'))
      throw new Error(`unknown flag ${arg}; use [scenario...] [--json] [--quick] [--no-save]`);
    else if (!known.includes(arg))
      throw new Error(`unknown scenario ${JSON.stringify(arg)}; choose from ${known.join(', ')}`);
    else args.scenarios.push(arg);
  }
  if (args.scenarios.length === 0) args.scenarios = [...known];
  return args;
}
