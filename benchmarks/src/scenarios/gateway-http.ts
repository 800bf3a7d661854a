import { type ChildProcess, fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SIM_COUNTRIES, SIM_NCMS, startComexStatSimulator } from '@bgc/connector-comexstat/simulator';
import autocannon from 'autocannon';
import { type Contender, pairedRatio, type RoundSample, runRounds } from '../measure.js';
import { checkTarget, result, type ScenarioReport } from '../report.js';
import { roundSettings, type Scenario, type ScenarioContext } from '../scenario.js';

const CONNECTIONS = 32;
const URLS = 24;
const OURS = 'bgc integration-gateway (L1 hit)';
const OURS_GZIP = 'bgc integration-gateway (L1 hit, Accept-Encoding: gzip)';
const OURS_304 = 'bgc integration-gateway (304, If-None-Match)';
const BARE = 'bare Fastify route + Map (limit)';
/** What a client that accepts compression sends (a browser's header). */
const ACCEPT_GZIP = 'gzip, deflate, br';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One request of a round: its path and extra headers. */
interface Req {
  path: string;
  headers?: Record<string, string>;
}

/**
 * One autocannon round against `base` over `requests`, recording every response time. Every answer
 * must have the `status` expected (200, or 304 for revalidations).
 */
function load(
  base: string,
  requests: readonly Req[],
  durationMs: number,
  status: 200 | 304 = 200,
): Promise<RoundSample> {
  return new Promise((resolve, reject) => {
    const latenciesMs: number[] = [];
    let errors = 0;
    let unexpected = 0;
    const instance = autocannon(
      {
        url: base,
        connections: CONNECTIONS,
        duration: durationMs / 1000,
        requests: requests.map((r) => ({ method: 'GET' as const, path: r.path, headers: r.headers })),
      },
      (error) => {
        if (error) return reject(error);
        if (errors > 0 || unexpected > 0)
          return reject(new Error(`${base}: ${unexpected} answers other than ${status}, ${errors} errors`));
        resolve({ ops: latenciesMs.length, elapsedMs: durationMs, latenciesMs });
      },
    );
    instance.on('response', (_client: unknown, code: number, _bytes: number, responseTime: number) => {
      if (code !== status) unexpected++;
      latenciesMs.push(responseTime);
    });
    instance.on('reqError', () => errors++);
  });
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** `gateway-http`: the gateway's cached responses under autocannon vs a bare Fastify route. */
export const gatewayHttp: Scenario = {
  name: 'gateway-http',
  async run(ctx: ScenarioContext): Promise<ScenarioReport> {
    const main = join(ctx.repoRoot, 'examples/integration-gateway/dist/main.js');
    const base = { scenario: 'gateway-http', title: 'Gateway HTTP', baselines: {}, targets: [], notes: [] };
    if (!existsSync(main)) {
      return {
        ...base,
        results: [],
        skipped: `${main} is missing; build it first (pnpm build, or tsup in examples/integration-gateway)`,
      };
    }
    const sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 5, perRowMs: 0 } });
    const dir = mkdtempSync(join(tmpdir(), 'bgc-bench-http-'));
    let gateway: ChildProcess | undefined;
    let bare: ChildProcess | undefined;
    try {
      const [port, metricsPort] = [await freePort(), await freePort()];
      gateway = spawn(process.execPath, [main], {
        env: {
          PATH: process.env.PATH,
          PORT: String(port),
          METRICS_PORT: String(metricsPort),
          HOST: '127.0.0.1',
          COMEXSTAT_BASE_URL: sim.url,
          CACHE_L2_ENABLED: 'false',
          CACHE_L3_ENABLED: 'false',
          LOG_LEVEL: 'warn',
          COMEXSTAT_MIN_INTERVAL_MS: '1',
          NODE_ENV: 'production',
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const gatewayBase = `http://127.0.0.1:${port}`;
      await waitFor(`${gatewayBase}/healthz`, 20_000);
      const paths = Array.from({ length: URLS }, (_, i) => {
        const ncm = SIM_NCMS[i % SIM_NCMS.length]?.coNcm as string;
        const pais = SIM_COUNTRIES[(i * 7) % SIM_COUNTRIES.length]?.id as string;
        return `/comexstat/${i % 2 ? 'importacao_mes' : 'exportacao_mes'}?ano=2024&mes=${(i % 12) + 1}&ncm=${ncm}&pais=${pais}`;
      });
      ctx.log(`gateway-http: warming ${paths.length} URLs through the gateway`);
      const payloads: Record<string, unknown> = {};
      const etags: Record<string, string> = {};
      for (const path of paths) {
        const res = await fetch(gatewayBase + path);
        if (!res.ok) throw new Error(`gateway answered ${res.status} to ${path}: ${await res.text()}`);
        payloads[path] = await res.json();
        etags[path] = res.headers.get('etag') as string;
      }
      let compressed = 0;
      for (const path of paths) {
        const res = await fetch(gatewayBase + path);
        await res.arrayBuffer();
        if (res.headers.get('x-cache-level') !== 'l1')
          throw new Error(`${path} was not an L1 hit after warming (${res.headers.get('x-cache-level')})`);
        // fetch() does not decompress what it did not ask for: a raw request tells the encoding.
        const gz = await fetch(gatewayBase + path, { headers: { 'accept-encoding': ACCEPT_GZIP } });
        await gz.arrayBuffer();
        if (gz.headers.get('content-encoding')) compressed++;
        const revalidated = await fetch(gatewayBase + path, {
          headers: { 'if-none-match': etags[path] as string },
        });
        await revalidated.arrayBuffer();
        if (revalidated.status !== 304)
          throw new Error(`${path} with its ETag answered ${revalidated.status}, not 304`);
      }
      const file = join(dir, 'payloads.json');
      writeFileSync(file, JSON.stringify(payloads));
      const barePort = await freePort();
      const here = dirname(fileURLToPath(import.meta.url));
      bare = fork(join(here, `bare-fastify-server${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`), [], {
        env: { ...process.env, PORT: String(barePort), BARE_PAYLOADS: file },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      const bareBase = `http://127.0.0.1:${barePort}`;
      await waitFor(bareBase + paths[0], 20_000);
      const upstreamCalls = sim.stats.calls;
      const settings = roundSettings(ctx, 4000, 5);
      settings.durationMs = Math.max(1000, Math.round(settings.durationMs / 1000) * 1000);
      ctx.log(
        `gateway-http: autocannon, ${CONNECTIONS} connections, ${settings.rounds} rounds of ${settings.durationMs / 1000} s each`,
      );
      const plain = paths.map((path) => ({ path }));
      const gzip = paths.map((path) => ({ path, headers: { 'accept-encoding': ACCEPT_GZIP } }));
      const revalidations = paths.map((path) => ({
        path,
        headers: { 'if-none-match': etags[path] as string },
      }));
      const contenders: Contender[] = [
        { impl: BARE, round: (ms) => load(bareBase, plain, ms) },
        { impl: OURS, round: (ms) => load(gatewayBase, plain, ms) },
        { impl: OURS_GZIP, round: (ms) => load(gatewayBase, gzip, ms) },
        { impl: OURS_304, round: (ms) => load(gatewayBase, revalidations, ms, 304) },
      ];
      const figures = await runRounds(contenders, settings);
      const group = `c=${CONNECTIONS}`;
      const results = figures.map((f) => result(f.impl, group, f));
      // Paired: the median over rounds of ours / the limit measured back to back.
      const limit = figures.find((f) => f.impl === BARE);
      const ratio = (impl: string) => {
        const ours = figures.find((f) => f.impl === impl);
        return ours && limit ? pairedRatio(ours, limit) : undefined;
      };
      const p95 = (impl: string) => {
        const ours = figures.find((f) => f.impl === impl)?.p95Ms;
        return ours !== undefined && limit?.p95Ms ? ours / limit.p95Ms : undefined;
      };
      const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
      return {
        ...base,
        title: `HTTP: cached GET /comexstat/* over ${paths.length} URLs with autocannon (${CONNECTIONS} connections), gateway (plain, Accept-Encoding: gzip, If-None-Match revalidations) vs a bare Fastify route`,
        baselines: { [group]: BARE },
        results,
        targets: [
          checkTarget('gateway cached req/s vs bare Fastify limit', ratio(OURS), { min: 1 }, pct),
          checkTarget('gateway cached p95 vs bare Fastify limit', p95(OURS), { max: 1 }, pct),
          checkTarget(
            'gateway cached req/s with Accept-Encoding: gzip vs bare Fastify limit',
            ratio(OURS_GZIP),
            { min: 1 },
            pct,
          ),
          checkTarget(
            'gateway 304 revalidations req/s vs bare Fastify limit',
            ratio(OURS_304),
            { min: 1 },
            pct,
          ),
        ],
        notes: [
          'Gateway started as `node examples/integration-gateway/dist/main.js` (L1 only, LOG_LEVEL=warn, COMEXSTAT_MIN_INTERVAL_MS=1 so that warming is quick) against the ComexStat simulator; every measured request is an L1 hit (checked through x-cache-level before the run).',
          `Upstream calls during the measured rounds: ${sim.stats.calls - upstreamCalls}.`,
          'The bare route returns the same objects from a Map, serialized by Fastify on every request (Fastify defaults, no validation, no cache headers). autocannon runs in the benchmark process, on the same 2 cores as the servers.',
          "The gateway answers its monthly routes' L1 hits before Fastify routes them (its fast path, with the route's own headers and bytes, built once per value and second); misses and every other request go through Fastify. Its answers carry 4 headers the bare route's lack (ETag, Cache-Control, Last-Modified, Age), which the servers write and autocannon parses.",
          `Accept-Encoding: gzip rows send \`${ACCEPT_GZIP}\`: ${compressed} of the ${paths.length} answers are compressed (bodies under 1 KB are sent as they are, so that row mostly measures the negotiation). 304 rows send each URL's ETag in If-None-Match; every answer is checked to be a 304.`,
          'The req/s targets are paired: the median over rounds of each row over the bare route measured in the same round; p95 is over every answer of the measured rounds.',
        ],
      };
    } finally {
      await Promise.allSettled([stop(gateway), stop(bare)]);
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
