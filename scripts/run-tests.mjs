// Runs every package's tests (after `turbo run build`) in the order that keeps the whole run short
// on a 2-core machine without letting load-sensitive tests share the CPU:
//   1. at the same time: the packages' suites one after another (turbo, each with vitest's
//      workers and coverage), and the integration gateway's files that mostly wait (spaced upstream
//      calls, process start-ups: its `gateway` project), one file at a time;
//   2. then, alone, the gateway's two files that load the machine (its `gateway-heavy` project: the
//      cold start at 1,000 req/s over three gateway processes, and the demo).
// Every step runs even when an earlier one failed; the exit code is non-zero when any failed.
// Output lines keep turbo's "<package>:test: " prefix, whole lines at a time.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const GATEWAY = 'integration-gateway';

function run(label, command, args, prefix, cwd = process.cwd()) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    for (const [stream, out] of [
      [child.stdout, process.stdout],
      [child.stderr, process.stderr],
    ]) {
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        out.write(`${prefix}${line}\n`);
      });
    }
    child.once('error', (err) => {
      process.stderr.write(`${label}: could not start (${err.message})\n`);
      resolve(1);
    });
    child.once('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const turbo = ['turbo', 'run', 'test', '--concurrency=1', `--filter=!${GATEWAY}`];
const vitest = (project, workers) => ['vitest', 'run', '--project', project, `--maxWorkers=${workers}`];
const gatewayDir = fileURLToPath(new URL(`../examples/${GATEWAY}/`, import.meta.url));
const prefix = `${GATEWAY}:test: `;

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const started = Date.now();
const first = await Promise.all([
  run('packages', 'npx', turbo, ''),
  run('gateway', 'npx', vitest('gateway', 1), prefix, gatewayDir),
]);
const heavy = await run('gateway-heavy', 'npx', vitest('gateway-heavy', 1), prefix, gatewayDir);
const codes = [...first, heavy];
const seconds = ((Date.now() - started) / 1000).toFixed(0);
process.stdout.write(
  `\nrun-tests: packages ${first[0]}, gateway ${first[1]}, gateway-heavy ${heavy} (exit codes) in ${seconds} s\n`,
);
process.exit(codes.some((c) => c !== 0) ? 1 : 0);
