import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort } from '../src/demo/args.js';

export { freePort };

export const here = path.dirname(fileURLToPath(import.meta.url));
export const MAIN = path.resolve(here, '../dist/main.js');
export const PG_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A connector YAML for tests: no retries' long back-off, a short timeout; `ttl` is the past years' TTL. */
export function testConnectorYaml(options: { ttl?: string; extra?: string } = {}): string {
  const { ttl = '168h', extra = '' } = options;
  const dir = mkdtempSync(path.join(tmpdir(), 'bgc-gw-'));
  const file = path.join(dir, 'comexstat.yaml');
  writeFileSync(
    file,
    `cache:
  enabled: true
  ttl: ${ttl}
  stale_ttl: 1h
  key_pattern: "comexstat:exp:{ano}:{mes}:{ncm}:{pais}"
api:
  timeout: 3s
  retries: 0
rate_limit:
  min_interval: 1ms
${extra}`,
  );
  return file;
}

/** A gateway process started with `node dist/main.js`, as the Dockerfile does. */
export interface GatewayProcess {
  url: string;
  metricsUrl: string;
  child: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${out}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway not ready in 20 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    child,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill(signal);
      return exited;
    },
  };
}

/** Creates a throw-away schema in the test database; `drop()` removes it. */
export async function tempSchema(): Promise<{ name: string; drop(): Promise<void> }> {
  const name = `bgc_gw_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  return {
    name,
    async drop() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${name} CASCADE`);
      await client.end();
    },
  };
}
