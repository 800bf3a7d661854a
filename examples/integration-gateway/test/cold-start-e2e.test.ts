// A new deployment at the DEFAULT settings (issue 15): the gateway as a process (`node dist/main.js`)
// without COMEXSTAT_CONFIG, COMEXSTAT_MIN_INTERVAL_MS or any timeout variable, i.e. 20 s between
// upstream calls (not scaled down), the cache's hard timeout derived from the connector's 50 s wait
// bound, against the simulator WITH its rate limit (1 call per 15 s per client, strict: a refused
// call restarts the window). Its own redis-server, its own key prefixes per gateway; no L3 (the
// upstream path is what is under test). Asserts statuses and upstream call counts, never durations.
import http from 'node:http';
import {
  type ComexStatSimulator,
  SIM_COUNTRIES,
  SIM_NCMS,
  startComexStatSimulator,
} from '@bgc/connector-comexstat/simulator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import { type GatewayProcess, startGatewayProcess } from './helpers.js';

let sim: ComexStatSimulator;
let redis: RedisServer;
const gateways: GatewayProcess[] = [];

/** A fresh gateway at the default settings, on key prefixes of its own (an empty cache). */
async function freshGateway(name: string): Promise<GatewayProcess> {
  const g = await startGatewayProcess({
    COMEXSTAT_BASE_URL: sim.url,
    CACHE_L2_ENABLED: 'true',
    CACHE_L3_ENABLED: 'false',
    REDIS_ADDR: `127.0.0.1:${redis.port}`,
    CACHE_L2_PREFIX: `cold-${name}:c:`,
    CACHE_COORD_PREFIX: `cold-${name}:x:`,
    INSTANCE_ID: `cold-${name}`,
  });
  gateways.push(g);
  return g;
}

/** `/general` calls (data), apart from the metadata endpoints. */
const dataCalls = () => sim.stats.log.filter((r) => r.path === '/general').length;

beforeAll(async () => {
  // The simulator's default rate limit: 1 request per 15 s per client IP, strict.
  sim = await startComexStatSimulator({ latency: { baseMs: 20, perRowMs: 0 } });
  redis = await startRedis();
});

afterAll(async () => {
  for (const g of gateways) await g.stop('SIGKILL');
  await sim?.close();
  await redis?.stop();
});

describe('a fresh gateway at the default 20 s spacing', () => {
  it('answers its very first cold request 200 (its call waits for its slot, within the bound), not 503', async () => {
    sim.resetStats();
    const g = await freshGateway('first');
    // /readyz answered 200 before this (startGatewayProcess waits for it): no metadata call was awaited.
    const year = sim.release.year - 1;
    const r = await fetch(`${g.url}/comexstat/exportacao_mes?ano=${year}&mes=3&ncm=12019000&pais=160`);
    const body = (await r.json()) as { rows?: unknown[]; error?: unknown };
    expect(body.error).toBeUndefined();
    expect(r.status).toBe(200);
    expect(r.headers.get('x-cache-level')).toBe('external');
    expect(body.rows?.length).toBeGreaterThan(0);
    expect(dataCalls()).toBe(1);
    // The release check is the only metadata call (background, at most one); the countries table
    // comes from the bundled snapshot. Nothing was refused by the upstream's rate limit.
    expect(sim.stats.byPath['/general/dates/updated'] ?? 0).toBeLessThanOrEqual(1);
    expect(sim.stats.byPath['/tables/countries'] ?? 0).toBe(0);
    expect(sim.stats.rateLimited).toBe(0);
    await g.stop('SIGTERM');
  }, 180_000);

  it('answers 50 concurrent cold first requests (distinct cells of one flow and year) 200 with one data call', async () => {
    sim.resetStats();
    const g = await freshGateway('burst');
    const year = sim.release.year - 2;
    const ncms = SIM_NCMS.slice(0, 5).map((n) => n.coNcm);
    const countries = SIM_COUNTRIES.filter((c) => c.weight > 0)
      .slice(0, 5)
      .map((c) => c.id);
    // 50 distinct (month, ncm, country) cells of importacao_mes in one year.
    const cells: string[] = [];
    for (let i = 0; cells.length < 50; i++) {
      const mes = (i % 12) + 1;
      const ncm = ncms[Math.floor(i / 12) % ncms.length] as string;
      const pais = countries[Math.floor(i / 60) % countries.length] as string;
      const q = `ano=${year}&mes=${mes}&ncm=${ncm}&pais=${pais}`;
      if (!cells.includes(q)) cells.push(q);
    }
    expect(new Set(cells).size).toBe(50);
    const answers = await Promise.all(
      cells.map(async (q) => {
        const r = await fetch(`${g.url}/comexstat/importacao_mes?${q}`);
        return { status: r.status, body: (await r.json()) as { error?: { code: string } } };
      }),
    );
    const statuses = answers.map((a) => a.status);
    expect(
      answers.filter((a) => a.status !== 200).map((a) => a.body.error?.code),
      'no cold first request is refused',
    ).toEqual([]);
    expect(statuses.filter((s) => s === 200)).toHaveLength(50);
    expect(dataCalls()).toBe(1);
    expect(sim.stats.byPath['/general/dates/updated'] ?? 0).toBeLessThanOrEqual(1);
    expect(sim.stats.rateLimited).toBe(0);
    // A second round is served from the cache: still one data call.
    const again = await fetch(`${g.url}/comexstat/importacao_mes?${cells[17]}`);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-cache-level')).toBe('l1');
    expect(dataCalls()).toBe(1);
    await g.stop('SIGTERM');
  }, 180_000);

  it('3 fresh instances of one deployment: 900 concurrent first requests, then a 168-request chart, <= 6 upstream calls, 0 refused', async () => {
    sim.resetStats();
    // One deployment: the three share the cache and coordination prefixes (spacer, lock, pending cells).
    const pods: GatewayProcess[] = [];
    for (const name of ['a', 'b', 'c']) {
      const g = await startGatewayProcess({
        COMEXSTAT_BASE_URL: sim.url,
        CACHE_L2_ENABLED: 'true',
        CACHE_L3_ENABLED: 'false',
        REDIS_ADDR: `127.0.0.1:${redis.port}`,
        CACHE_L2_PREFIX: 'dep:c:',
        CACHE_COORD_PREFIX: 'dep:x:',
        INSTANCE_ID: `dep-${name}`,
      });
      gateways.push(g);
      pods.push(g);
    }
    // Every /readyz answered 200: the 900 first requests (one flow and year: 12 months × 15 NCMs ×
    // 5 countries), 300 per instance, all at once.
    const year = sim.release.year - 1;
    const ncms = SIM_NCMS.slice(0, 15).map((n) => n.coNcm);
    const countries = SIM_COUNTRIES.filter((c) => c.weight > 0)
      .slice(0, 5)
      .map((c) => c.id);
    const first: string[] = [];
    for (const ncm of ncms)
      for (const pais of countries)
        for (let mes = 1; mes <= 12; mes++)
          first.push(`/comexstat/exportacao_mes?ano=${year}&mes=${mes}&ncm=${ncm}&pais=${pais}`);
    expect(first).toHaveLength(900);
    // From 50 client addresses (127.0.0.x): the per-client budget of cold misses applies to each.
    const ask = (url: string, i: number) =>
      new Promise<{ status: number; code?: string; ms: number }>((resolve) => {
        const t = performance.now();
        const req = http.get(url, { localAddress: `127.0.0.${2 + (i % 50)}` }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => {
            let code: string | undefined;
            try {
              code = (JSON.parse(text) as { error?: { code?: string } }).error?.code;
            } catch {}
            resolve({ status: res.statusCode ?? 0, code, ms: performance.now() - t });
          });
        });
        req.on('error', (e) => resolve({ status: 0, code: e.message, ms: performance.now() - t }));
      });
    const t0 = performance.now();
    const firstAnswers = await Promise.all(
      first.map((path, i) => ask(`${(pods[i % 3] as GatewayProcess).url}${path}`, i)),
    );
    const firstMs = performance.now() - t0;
    expect(firstAnswers.filter((a) => a.status !== 200).map((a) => a.code)).toEqual([]);
    const firstData = dataCalls();

    // A user opens a chart 15 s later: one NCM × country, 2018-2024, both flows = 168 monthly
    // requests spread over the instances. Its two calls (one per flow: the API takes one flow per
    // call) take the next two slots.
    await new Promise((r) => setTimeout(r, Math.max(0, 15_000 - (performance.now() - t0))));
    const chart: string[] = [];
    for (const endpoint of ['exportacao_mes', 'importacao_mes'])
      for (let ano = 2018; ano <= 2024; ano++)
        for (let mes = 1; mes <= 12; mes++)
          chart.push(`/comexstat/${endpoint}?ano=${ano}&mes=${mes}&ncm=09011110&pais=249`);
    const t1 = performance.now();
    const chartAnswers = await Promise.all(
      chart.map((path, i) => ask(`${(pods[i % 3] as GatewayProcess).url}${path}`, i)),
    );
    const chartMs = performance.now() - t1;
    expect(chartAnswers.filter((a) => a.status !== 200).map((a) => a.code)).toEqual([]);
    const byPath = sim.stats.byPath;
    console.log(
      `3 fresh instances at the default 20 s spacing: 900 first requests answered 200 in ${(firstMs / 1000).toFixed(1)} s (slowest ${(Math.max(...firstAnswers.map((a) => a.ms)) / 1000).toFixed(1)} s) with ${firstData} data call(s); chart of 168 opened 15 s later answered 200 in ${(chartMs / 1000).toFixed(1)} s; upstream calls ${sim.stats.calls} (data ${dataCalls()}, dates ${byPath['/general/dates/updated'] ?? 0}, countries ${byPath['/tables/countries'] ?? 0}), refused ${sim.stats.rateLimited}`,
    );
    // The 900 cost one call when every instance's cells joined it through Redis (the instances
    // gather a burst for up to 2.5 s); the chart one per flow.
    expect(firstData).toBeLessThanOrEqual(2);
    expect(dataCalls()).toBeLessThanOrEqual(4);
    expect(sim.stats.byPath['/tables/countries'] ?? 0).toBe(0);
    expect(sim.stats.calls).toBeLessThanOrEqual(6);
    expect(sim.stats.rateLimited).toBe(0);
    // The release check never took a slot before a user's call: the first calls are data calls.
    expect(sim.stats.log.slice(0, 3).map((r) => r.path)).toEqual(['/general', '/general', '/general']);
  }, 180_000);
});
