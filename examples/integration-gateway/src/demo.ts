// The gateway demo: starts the ComexStat simulator and the gateway on the embedded default (memory
// L1 + PGlite L3, or Redis/PostgreSQL when configured), warms the seed's set, replays a simulated
// day of traffic and prints what the seed's goals are about.
//
//   pnpm demo [--instances 3] [--requests 20000] [--concurrency 32] [--json]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { warmComexStat } from '@bgc/connector-comexstat';
import { SIM_COUNTRIES, SIM_NCMS, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import cliProgress from 'cli-progress';
import { sql } from 'drizzle-orm';
import { Pool } from 'undici';
import { freePort, parseDemoArgs, type DemoArgs } from './demo/args.js';
import { buildTraffic, type DemoRequest } from './demo/traffic.js';
import { percentile, renderTable, type DemoReport } from './demo/report.js';
import { startGateway } from './gateway.js';

const here = path.dirname(fileURLToPath(import.meta.url));

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.status === 200) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gateway at ${url} was not ready within ${timeoutMs} ms`);
}

async function main(): Promise<void> {
  const args: DemoArgs = parseDemoArgs(process.argv.slice(2));
  const log = (line: string) => {
    if (!args.json) process.stdout.write(`${line}\n`);
  };
  // A simulated day is compressed: the real API wants ≥ 15 s between calls; the simulator and the
  // spacer use the same rule scaled down 30× so the demo runs in about a minute.
  const sim = await startComexStatSimulator({
    rateLimit: { max: 1, windowMs: 500, strict: false },
    latency: { baseMs: 300, perRowMs: 0.3 },
  });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'bgc-demo-'));
  const shared = args.instances > 1;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    COMEXSTAT_BASE_URL: sim.url,
    COMEXSTAT_MIN_INTERVAL_MS: process.env.COMEXSTAT_MIN_INTERVAL_MS ?? '600',
    PORT: '0',
    METRICS_PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    L3_DATA_DIR: path.join(dataDir, 'pglite'),
    CACHE_L3_ENABLED: process.env.CACHE_L3_ENABLED ?? 'true',
  };
  if (shared) {
    env.CACHE_L2_ENABLED = 'true';
    env.REDIS_ADDR ??= '127.0.0.1:6379';
    env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
  }
  // Each run starts from empty shared tiers: its own Redis prefix and PostgreSQL schema, removed after.
  const runId = `${process.pid}_${Date.now().toString(36)}`;
  env.CACHE_L2_PREFIX ??= `bgc:demo:${runId}:`;
  env.L3_SCHEMA ??= `bgc_demo_${runId}`;
  const children: ChildProcess[] = [];
  const gateway = await startGateway({ env });
  const urls = [gateway.url];
  try {
    for (let i = 1; i < args.instances; i++) {
      const port = await freePort();
      const metricsPort = await freePort();
      const child = spawn(process.execPath, [path.join(here, 'main.js')], {
        env: { ...env, PORT: String(port), METRICS_PORT: String(metricsPort), INSTANCE_ID: `demo-${i}` },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      children.push(child);
      urls.push(`http://127.0.0.1:${port}`);
    }
    await Promise.all(urls.map((u) => waitReady(u, 30_000)));
    const tiers = Object.keys(gateway.runtime.cache.tierStatus()).join(' + ');
    log(
      `ComexStat gateway demo: ${args.instances} instance(s), tiers ${tiers}${gateway.config.databaseUrl ? ' (PostgreSQL)' : gateway.config.cache.l3.enabled ? ' (L3 on PGlite)' : ''}, upstream = simulator at ${sim.url}`,
    );

    const ncms = SIM_NCMS.slice(0, 50).map((n) => n.coNcm);
    const ranked = SIM_COUNTRIES.filter((c) => /^\d{3}$/.test(c.id) && c.id !== '105');
    const countries = ranked.slice(0, 10).map((c) => c.id);
    const coldCountries = ranked.slice(10, 30).map((c) => c.id);

    // 1. Warming: the seed's weekly job, top 50 NCMs × top 10 countries × last 12 months, both flows.
    const before = sim.stats.byPath['/general'] ?? 0;
    const warm = await warmComexStat({
      connector: gateway.connector,
      ncms,
      countries,
      months: 12,
      onProgress: (p) =>
        log(`  warming ${p.flow} ${p.ano}: ${p.done}/${p.total} keys${p.skipped ? ' (already cached)' : ''}`),
    });
    const warmCalls = (sim.stats.byPath['/general'] ?? 0) - before;
    log(
      `warmed ${warm.keysWarmed} keys (${warm.keysSkipped} already cached) with ${warmCalls} upstream calls in ${(warm.ms / 1000).toFixed(1)} s`,
    );

    // 2. A simulated day of traffic from several clients.
    const release = await gateway.connector.releaseInfo();
    const traffic = buildTraffic({
      requests: args.requests,
      ncms,
      countries,
      coldCountries,
      latest: release
        ? { year: release.year, month: release.month }
        : { year: new Date().getFullYear(), month: new Date().getMonth() },
      seed: 20240301,
    });
    const dayStart = sim.stats.byPath['/general'] ?? 0;
    const report = await replay(urls, traffic, args, log);
    report.upstreamCallsDay = (sim.stats.byPath['/general'] ?? 0) - dayStart;
    report.upstreamCallsWarming = warmCalls;
    report.keysWarmed = warm.keysWarmed + warm.keysSkipped;
    report.instances = args.instances;
    report.tiers = tiers;
    if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`${renderTable(report)}\n`);
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(
      children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))),
    );
    await dropDemoNamespace(gateway).catch(() => undefined);
    await gateway.close();
    await sim.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Removes what this run wrote to the shared Redis and PostgreSQL (its own prefix and schema). */
async function dropDemoNamespace(gateway: Awaited<ReturnType<typeof startGateway>>): Promise<void> {
  const { config, runtime } = gateway;
  if (!config.l2Prefix.startsWith('bgc:demo:')) return;
  // RedisTier.clear() unlinks every key under the run's prefix (cache entries, locks, spacer, pending cells).
  for (const tier of runtime.cache.tiers) if (tier.level === 'l2') await tier.clear?.();
  if (config.databaseUrl && config.l3Schema?.startsWith('bgc_demo_')) {
    const db = await runtime.l3?.database();
    await db?.execute(sql.raw(`DROP SCHEMA IF EXISTS ${config.l3Schema} CASCADE`));
  }
}

async function replay(
  urls: string[],
  traffic: DemoRequest[],
  args: DemoArgs,
  log: (l: string) => void,
): Promise<DemoReport> {
  const pools = urls.map(
    (u) =>
      new Pool(u, { connections: Math.max(4, Math.ceil(args.concurrency / urls.length)), pipelining: 1 }),
  );
  const latencies = new Float64Array(traffic.length);
  const levels: Record<string, number> = { l1: 0, l2: 0, l3: 0, external: 0 };
  const statuses: Record<string, number> = {};
  let errors = 0;
  let next = 0;
  let done = 0;
  const bar =
    !args.json && process.stdout.isTTY
      ? new cliProgress.SingleBar(
          { format: 'replaying the day [{bar}] {value}/{total} requests | {rps} req/s', hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  bar?.start(traffic.length, 0, { rps: 0 });
  let lastTenth = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= traffic.length) return;
      const req = traffic[i] as DemoRequest;
      const pool = pools[i % pools.length] as Pool;
      const s = performance.now();
      try {
        const res = await pool.request({ method: 'GET', path: req.path });
        await res.body.text();
        latencies[i] = performance.now() - s;
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        const level = String(res.headers['x-cache-level'] ?? 'none');
        if (res.statusCode === 200 && level in levels) levels[level] = (levels[level] as number) + 1;
        else errors++;
      } catch {
        latencies[i] = performance.now() - s;
        errors++;
      }
      done++;
      if (bar && done % 200 === 0)
        bar.update(done, { rps: Math.round(done / ((performance.now() - t0) / 1000)) });
      else if (!bar && !args.json && Math.floor((done * 10) / traffic.length) > lastTenth) {
        lastTenth = Math.floor((done * 10) / traffic.length);
        log(`  ${done}/${traffic.length} requests`);
      }
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  bar?.update(done, { rps: Math.round(done / seconds) });
  bar?.stop();
  await Promise.all(pools.map((p) => p.close()));
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  const total = traffic.length;
  const hits = (levels.l1 ?? 0) + (levels.l2 ?? 0) + (levels.l3 ?? 0);
  return {
    requests: total,
    errors,
    statuses,
    levels,
    hitRate: hits / total,
    p50Ms: percentile(sorted, 0.5),
    p95Ms: percentile(sorted, 0.95),
    p99Ms: percentile(sorted, 0.99),
    reqPerSec: total / seconds,
    seconds,
    upstreamCallsDay: 0,
    upstreamCallsWarming: 0,
    keysWarmed: 0,
    instances: urls.length,
    tiers: '',
  };
}

main().catch((error: Error & { code?: string }) => {
  process.stderr.write(`demo failed: ${error.code ? `[${error.code}] ` : ''}${error.message}\n`);
  process.exit(1);
});
