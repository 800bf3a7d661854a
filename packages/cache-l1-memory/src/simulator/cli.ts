import { formatResult, parseSimulatorArgs } from './cli-args.js';
import { simulateTrace } from './simulate.js';

try {
  const args = parseSimulatorArgs(process.argv.slice(2));
  const result = simulateTrace(args);
  process.stdout.write(args.json ? `${JSON.stringify(result)}\n` : `${formatResult(result)}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
