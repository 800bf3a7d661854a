// The gateway demo: starts the ComexStat simulator and the gateway on the embedded default (memory
// L1 + PGlite L3, or Redis/PostgreSQL when configured), warms the seed's set, replays a simulated
// day of traffic and prints what the seed's goals are about.
//
//   pnpm demo [--instances 3] [--requests 20000] [--concurrency 32] [--restart-requests N] [--cold] [--json]
//
// Phases: warming (skipped with --cold), a day of traffic, then a restart of the gateway (its L1
// empty) and more traffic, answered from L3 (and L2 with Redis).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { warmComexStat } from '@bgc/connector-comexstat';
import { SIM_COUNTRIES, SIM_NCMS, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import cliProgress from 'cli-progress';
import { sql } from 'drizzle-orm';
import type { Redis } from 'ioredis';
import { Pool } from 'undici';
import { freePort, parseDemoArgs, type DemoArgs } from './demo/args.js';
import { buildTraffic, type DemoRequest } from './demo/traffic.js';
import { type ColdFigures, type DemoReport, percentile, renderTable } from './demo/report.js';
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

type RunningGateway = Awaited<ReturnType<typeof startGateway>>;

/** The in-process gateway plus `instances - 1` child processes (`node dist/main.js`), all ready. */
async function startInstances(
  env: NodeJS.ProcessEnv,
  instances: number,
): Promise<{ gateway: RunningGateway; children: ChildProcess[]; urls: string[] }> {
  const children: ChildProcess[] = [];
  const gateway = await startGateway({ env });
  const urls = [gateway.url];
  for (let i = 1; i < instances; i++) {
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
  return { gateway, children, urls };
}

async function stopChildren(children: ChildProcess[]): Promise<void> {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(
    children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))),
  );
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
  // Each run starts from empty shared tiers: its own Redis prefixes and PostgreSQL schema, removed after.
  const runId = `${process.pid}_${Date.now().toString(36)}`;
  env.CACHE_L2_PREFIX ??= `bgc:demo:${runId}:c:`;
  env.CACHE_COORD_PREFIX ??= `bgc:demo:${runId}:x:`;
  env.L3_SCHEMA ??= `bgc_demo_${runId}`;
  let running = await startInstances(env, args.instances);
  try {
    const { gateway } = running;
    const tiers = Object.keys(gateway.runtime.cache.tierStatus()).join(' + ');
    log(
      `ComexStat gateway demo: ${args.instances} instance(s), tiers ${tiers}${gateway.config.databaseUrl ? ' (PostgreSQL)' : gateway.config.cache.l3.enabled ? ' (L3 on PGlite, migrated)' : ''}, upstream = simulator at ${sim.url}${args.cold ? ', cold start (no warming)' : ''}`,
    );

    const ncms = SIM_NCMS.slice(0, 50).map((n) => n.coNcm);
    const ranked = SIM_COUNTRIES.filter((c) => /^\d{3}$/.test(c.id) && c.id !== '105');
    const countries = ranked.slice(0, 10).map((c) => c.id);
    const coldCountries = ranked.slice(10, 30).map((c) => c.id);

    // 1. Warming: the seed's weekly job, top 50 NCMs × top 10 countries × last 12 months, both flows.
    const before = sim.stats.byPath['/general'] ?? 0;
    let warm = { keysWarmed: 0, keysSkipped: 0, ms: 0 };
    if (!args.cold) {
      warm = await warmComexStat({
        connector: gateway.connector,
        ncms,
        countries,
        months: 12,
        onProgress: (p) =>
          log(
            `  warming ${p.flow} ${p.ano}: ${p.done}/${p.total} keys${p.skipped ? ' (already cached)' : ''}`,
          ),
      });
    }
    const warmCalls = (sim.stats.byPath['/general'] ?? 0) - before;
    if (!args.cold)
      log(
        `warmed ${warm.keysWarmed} keys (${warm.keysSkipped} already cached) with ${warmCalls} upstream calls in ${(warm.ms / 1000).toFixed(1)} s`,
      );

    // 2. A simulated day of traffic from several clients.
    const release = await gateway.connector.releaseInfo();
    const latest = release
      ? { year: release.year, month: release.month }
      : { year: new Date().getFullYear(), month: new Date().getMonth() };
    const traffic = buildTraffic({
      requests: args.requests,
      ncms,
      countries,
      coldCountries,
      latest,
      seed: 20240301,
    });
    const dayStart = sim.stats.byPath['/general'] ?? 0;
    const callsStart = sim.stats.calls;
    const limitedStart = sim.stats.rateLimited;
    let cold: ColdFigures | undefined;
    let rest = traffic;
    if (args.cold) {
      // The very first request of an empty cache, alone: what its client waits.
      const first = traffic[0] as DemoRequest;
      const t = performance.now();
      const r = await fetch(`${running.urls[0]}${first.path}`);
      await r.arrayBuffer();
      cold = {
        firstRequestMs: performance.now() - t,
        firstStatus: r.status,
        count503: r.status === 503 ? 1 : 0,
        upstreamCallsTotal: 0,
        rateLimited: 0,
      };
      rest = traffic.slice(1);
      log(`first request of an empty cache: ${cold.firstRequestMs.toFixed(0)} ms, status ${r.status}`);
    }
    const report = await replay(running.urls, rest, args, log);
    report.upstreamCallsDay = (sim.stats.byPath['/general'] ?? 0) - dayStart;
    report.upstreamCallsWarming = warmCalls;
    report.keysWarmed = warm.keysWarmed + warm.keysSkipped;
    report.instances = args.instances;
    report.tiers = tiers;
    if (cold) {
      cold.count503 += report.statuses[503] ?? 0;
      cold.upstreamCallsTotal = sim.stats.calls - callsStart;
      cold.rateLimited = sim.stats.rateLimited - limitedStart;
      report.cold = cold;
    }

    // 3. The gateway restarts (a deploy): L1 starts empty, the shared or embedded tiers answer.
    if (args.restartRequests > 0) {
      log('restarting the gateway: its memory (L1) starts empty, the tiers below answer');
      await stopChildren(running.children);
      // With Redis, L2 is emptied too (its entries only: coordination keys are under their own
      // prefix) so that the run shows L3 answering.
      if (shared)
        for (const tier of gateway.runtime.cache.tiers) if (tier.level === 'l2') await tier.clear?.();
      await gateway.close();
      running = await startInstances(env, 1);
      const after = buildTraffic({
        requests: args.restartRequests,
        ncms,
        countries,
        coldCountries,
        latest,
        seed: 20240302,
      });
      const restartStart = sim.stats.byPath['/general'] ?? 0;
      const phase = await replay(running.urls, after, args, log);
      report.restart = {
        requests: phase.requests,
        errors: phase.errors,
        statuses: phase.statuses,
        levels: phase.levels,
        hitRate: phase.hitRate,
        p50Ms: phase.p50Ms,
        p95Ms: phase.p95Ms,
        p99Ms: phase.p99Ms,
        reqPerSec: phase.reqPerSec,
        seconds: phase.seconds,
        upstreamCalls: (sim.stats.byPath['/general'] ?? 0) - restartStart,
      };
    }
    if (args.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`${renderTable(report)}\n`);
  } finally {
    await stopChildren(running.children);
    await dropDemoNamespace(running.gateway).catch(() => undefined);
    await running.gateway.close();
    await sim.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Removes what this run wrote to the shared Redis and PostgreSQL (its own prefixes and schema). */
async function dropDemoNamespace(gateway: RunningGateway): Promise<void> {
  const { config, runtime } = gateway;
  if (!config.l2Prefix.startsWith('bgc:demo:') || !config.coordPrefix.startsWith('bgc:demo:')) return;
  // RedisTier.clear() unlinks the cache entries under the run's prefix; the coordination keys
  // (locks, spacer, pending cells) are under the other prefix, removed by a SCAN of their own.
  for (const tier of runtime.cache.tiers) if (tier.level === 'l2') await tier.clear?.();
  const redis = runtime.redis as Redis | undefined;
  if (redis && typeof redis.scanStream === 'function') {
    const pattern = `${config.coordPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    for await (const keys of redis.scanStream({ match: pattern, count: 500 }) as AsyncIterable<string[]>)
      if (keys.length > 0) await redis.unlink(...keys);
  }
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
