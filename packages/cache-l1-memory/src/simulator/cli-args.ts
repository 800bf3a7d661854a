import { ConfigError } from '@bgc/cache-core';
import type { SimulateTraceOptions, SimulationResult } from './simulate.js';

/** Parsed command line of the simulator. */
export interface SimulatorArgs extends SimulateTraceOptions {
  /** Print one JSON object instead of a human-readable line. */
  json: boolean;
}

/**
 * Parses `--trace FILE --capacity N [--opt] [--json]`.
 * @throws {ConfigError} for a missing trace, a capacity that is not a positive integer, or an unknown flag.
 */
export function parseSimulatorArgs(argv: readonly string[]): SimulatorArgs {
  let trace: string | undefined;
  let capacity: number | undefined;
  let opt = false;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--trace') trace = argv[++i];
    else if (arg === '--capacity') capacity = Number(argv[++i]);
    else if (arg === '--opt') opt = true;
    else if (arg === '--json') json = true;
    else if (arg !== '--')
      throw new ConfigError(String(arg), 'unknown argument; use --trace FILE --capacity N [--opt] [--json]');
  }
  if (!trace) throw new ConfigError('--trace', 'missing; pass the path of a trace file');
  if (capacity === undefined || !Number.isInteger(capacity) || capacity <= 0) {
    throw new ConfigError('--capacity', 'must be a positive integer (entries)');
  }
  return { trace, capacity, opt, json };
}

/** Formats a result for humans: hit rates in percent. */
export function formatResult(r: SimulationResult): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
  const opt = r.optHitRate === undefined ? '' : `  OPT ${pct(r.optHitRate)}`;
  return `${r.trace} capacity ${r.capacity} (${r.accesses} accesses): W-TinyLFU ${pct(r.hitRate)}  LRU ${pct(r.lruHitRate)}${opt}`;
}
