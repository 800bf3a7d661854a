// The CronJobs run exactly as deploy/k8s declares them: command, arguments and environment are
// taken from the manifests (envFrom the ConfigMap, env values and Secret references, the mounted
// connector YAML), the Redis servers run the manifest's own arguments and ACL. The test only points
// the addresses at this machine (its own redis-servers, its own PostgreSQL schema, the simulator)
// and shortens the connect bounds of the failure cases. Then it checks what landed.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMEXSTAT_ROWS_TABLE, ENTRIES_TABLE, TOP_VIEW } from '@bgc/cache-l3-postgres/internal';
import { type ComexStatSimulator, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import { freePort, here, PG_URL, tempSchema } from './helpers.js';

const root = path.resolve(here, '..');
const k8sDir = path.join(root, 'deploy/k8s');
// biome-ignore lint/suspicious/noExplicitAny: parsed YAML documents are untyped
type Doc = Record<string, any>;
const docs: Doc[] = readdirSync(k8sDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(path.join(k8sDir, f), 'utf8')).map((d) => d.toJS() as Doc));
const find = (kind: string, name: string): Doc => {
  const d = docs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!d) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return d;
};

const SECRET = {
  REDIS_PASSWORD: 'gw/pass+word@jobs:1',
  REDIS_ADMIN_PASSWORD: 'admin/pass+word@jobs:2',
  DATABASE_URL: PG_URL,
};

let sim: ComexStatSimulator;
let cache: RedisServer;
let coord: RedisServer;
let schema: Awaited<ReturnType<typeof tempSchema>>;
let mountDir: string;

/** A Redis Deployment's args, `$(VAR)` expanded from the test Secret, minus what startRedis sets. */
function redisArgs(name: string): string[] {
  const args = (find('Deployment', name).spec.template.spec.containers[0].args as string[]).map((a) =>
    a
      .replace('$(REDIS_ADMIN_PASSWORD)', SECRET.REDIS_ADMIN_PASSWORD)
      .replace('$(REDIS_PASSWORD)', SECRET.REDIS_PASSWORD),
  );
  const i = args.indexOf('--requirepass');
  return args.slice(1, i).concat(args.slice(i + 2));
}

/** The CronJob's container: its argv and its environment, resolved as the kubelet would. */
function jobSpec(name: string): { argv: string[]; env: Record<string, string> } {
  const c = find('CronJob', name).spec.jobTemplate.spec.template.spec.containers[0];
  const argv = [...(c.command as string[]), ...((c.args as string[] | undefined) ?? [])];
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const cm = find('ConfigMap', from.configMapRef.name).data as Record<string, string>;
    for (const [k, v] of Object.entries(cm)) if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) env[k] = v;
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) {
      const v = SECRET[e.valueFrom.secretKeyRef.key as keyof typeof SECRET];
      if (v === undefined && !e.valueFrom.secretKeyRef.optional)
        throw new Error(`no secret ${e.valueFrom.secretKeyRef.key}`);
      if (v !== undefined) env[e.name] = v;
    }
  }
  // The mounted connector YAML: the ConfigMap's key, written where the mount points.
  for (const m of c.volumeMounts ?? []) {
    for (const [k, v] of Object.entries(env))
      if (v.startsWith(`${m.mountPath}/`)) env[k] = v.replace(m.mountPath, mountDir);
  }
  return { argv, env };
}

/** What the test changes: addresses on this machine, the test schema, the simulator. */
function local(env: Record<string, string>): Record<string, string> {
  const out = { ...env };
  if (out.REDIS_ADDR) out.REDIS_ADDR = out.REDIS_ADDR.replace('@redis:6379', `@127.0.0.1:${cache.port}`);
  if (out.COORD_REDIS_ADDR)
    out.COORD_REDIS_ADDR = out.COORD_REDIS_ADDR.replace('@redis-coord:6379', `@127.0.0.1:${coord.port}`);
  out.L3_SCHEMA = schema.name;
  out.BGC_L3_SCHEMA = schema.name;
  out.COMEXSTAT_BASE_URL = sim.url;
  // The simulator has no rate limit here; the real API's 20 s spacing would make this test minutes long.
  out.COMEXSTAT_MIN_INTERVAL_MS = '1';
  return out;
}

async function runJob(
  argv: string[],
  env: Record<string, string>,
  timeoutMs = 240_000,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const [cmd, ...args] = argv as [string, ...string[]];
  expect(cmd).toBe('node');
  const t0 = Date.now();
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: process.env.JOB_LOG_LEVEL ?? 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  return { code, stdout, stderr, ms: Date.now() - t0 };
}

async function query<T>(sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 5, perRowMs: 0 } });
  cache = await startRedis({ password: SECRET.REDIS_ADMIN_PASSWORD, args: redisArgs('redis') });
  coord = await startRedis({ password: SECRET.REDIS_ADMIN_PASSWORD, args: redisArgs('redis-coord') });
  schema = await tempSchema();
  mountDir = mkdtempSync(path.join(tmpdir(), 'bgc-jobs-'));
  const cm = find('ConfigMap', 'integration-gateway-config').data as Record<string, string>;
  writeFileSync(path.join(mountDir, 'comexstat.yaml'), cm['comexstat.yaml'] as string);
});

afterAll(async () => {
  await sim?.close();
  await cache?.stop();
  await coord?.stop();
  await schema?.drop();
});

describe('the CronJobs as deploy/k8s declares them', () => {
  it('warming fills Redis and PostgreSQL with the 4,320 keys, ≤ 1 data call per flow and calendar year, and says so', async () => {
    const job = jobSpec('comexstat-warm-cache');
    expect(job.argv).toEqual(['node', 'dist/warm.js', '--json']);
    const before = sim.stats.byPath['/general'] ?? 0;
    const r = await runJob(job.argv, local(job.env));
    if (r.code !== 0) console.log(r.stdout, r.stderr);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
      keysExpected: number;
      keysWarmed: number;
      held: Record<string, number>;
      generalCalls: number;
      flowYears: number;
      incomplete: string[];
    };
    expect(report.keysExpected).toBe(4320);
    expect(report.keysWarmed).toBe(4320);
    expect(report.held).toMatchObject({ l2: 4320, l3: 4320 });
    expect(report.incomplete).toEqual([]);
    expect(report.generalCalls).toBeLessThanOrEqual(report.flowYears);
    expect((sim.stats.byPath['/general'] ?? 0) - before).toBe(report.generalCalls);

    // What landed: the keys in the cache Redis (under bgc:c:), the entries and the rows in PostgreSQL.
    const keys = cache.cli('--scan', '--pattern', 'bgc:c:comexstat:*:*:*:*:*').split('\n').filter(Boolean);
    // The whole-year fan-out stores every month of each year it asked for: at least the warmed set
    // (which the report read back key by key above).
    expect(new Set(keys).size).toBeGreaterThanOrEqual(4320);
    // The spacer's and locks' scripts ran on the coordination Redis (their keys live only as long
    // as a 1 ms spacing, so their count is what is checked, not their presence).
    expect(scriptCalls(coord.cli('INFO', 'commandstats'))).toBeGreaterThan(0);
    const [entries] = await query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schema.name}.${ENTRIES_TABLE} WHERE key ~ '^comexstat:(exp|imp):'`,
    );
    expect(entries?.n).toBe(new Set(keys).size);
    const [rows] = await query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${schema.name}.${COMEXSTAT_ROWS_TABLE}`,
    );
    expect(rows?.n).toBeGreaterThan(0);
  }, 300_000);

  it('a second run finds everything in place: no data call, every key already cached', async () => {
    const job = jobSpec('comexstat-warm-cache');
    const r = await runJob(job.argv, local(job.env));
    if (r.code !== 0) console.log(r.stdout, r.stderr);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Record<string, unknown>;
    expect(report).toMatchObject({ keysWarmed: 0, keysSkipped: 4320, generalCalls: 0, incomplete: [] });
  }, 300_000);

  it('the aggregates refresh populates the materialized view from the rows the warming fed', async () => {
    const job = jobSpec('comexstat-refresh-aggregates');
    expect(job.argv.slice(0, 2)).toEqual(['node', 'node_modules/@bgc/cache-l3-postgres/dist/cli.js']);
    const r = await runJob(job.argv, local(job.env));
    if (r.code !== 0) console.log(r.stdout, r.stderr);
    expect(r.code).toBe(0);
    const [view] = await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema.name}.${TOP_VIEW}`);
    expect(view?.n).toBeGreaterThan(0);
  }, 120_000);

  it.each([
    ['warming, Redis unreachable', 'comexstat-warm-cache', 'REDIS_ADDR', /L2 Redis .*not reachable/],
    [
      'warming, coordination Redis unreachable',
      'comexstat-warm-cache',
      'COORD_REDIS_ADDR',
      /COORDINATION Redis .*not reachable/,
    ],
    [
      'warming, PostgreSQL unreachable',
      'comexstat-warm-cache',
      'DATABASE_URL',
      /L3 PostgreSQL .*not reachable/,
    ],
    [
      'aggregates refresh, PostgreSQL unreachable',
      'comexstat-refresh-aggregates',
      'DATABASE_URL',
      /PostgreSQL .*(did not accept a connection|unreachable|not reachable)/,
    ],
  ])(
    '%s: exits non-zero within its bound, naming the tier',
    async (_name, cronJob, variable, message) => {
      const closed = await freePort();
      const job = jobSpec(cronJob);
      const env = local(job.env);
      env[variable] =
        variable === 'DATABASE_URL'
          ? `postgres://postgres:${encodeURIComponent('pg/pass@x')}@127.0.0.1:${closed}/test`
          : `redis://gateway:@127.0.0.1:${closed}`;
      // The bounds are the manifests' variables, shortened for the test.
      env.WARM_CONNECT_TIMEOUT = '2s';
      env.BGC_L3_CONNECT_TIMEOUT_MS = '2000';
      const r = await runJob(job.argv, env, 60_000);
      expect(r.code).not.toBe(0);
      expect(r.code).not.toBeNull();
      expect(r.stderr).toMatch(message);
      expect(`${r.stdout}${r.stderr}`).not.toContain('pg/pass@x');
      expect(`${r.stdout}${r.stderr}`).not.toContain(SECRET.REDIS_PASSWORD);
    },
    90_000,
  );
});

/** How many Lua script calls (EVAL, EVALSHA, FCALL) a Redis served, from `INFO commandstats`. */
function scriptCalls(info: string): number {
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_(?:eval|evalsha|eval_ro|evalsha_ro|fcall):calls=(\d+)/gm))
    n += Number(m[1]);
  return n;
}
