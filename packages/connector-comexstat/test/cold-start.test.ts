// Cold start of three fresh instances (issue 15, done-when, connector side): one shared Redis
// spacer and pending-cell set (real Redis), one shared tier, the simulator with its strict rate
// limit. The default spacing (20 s against a 15 s limit) is scaled down 5× (4 s against a 3 s
// window) so that the test takes seconds; every ratio is the default one. Time is scaled, not the
// work: at 20× (1 s), on a VM about twice as slow under CI's parallel load, the landing call's
// processing (17,000 rows fanned out, answers published) outlasted the scaled interval, and
// another instance's next slot came first: a second call for the 900 that the default spacing
// leaves ~16 s to avoid (4 data calls in a fresh-clone run). At 10× (2 s) it still happened with
// two runs at once beside a busy loop on the 2 cores; at 5×, 0 of 2 so.
import { MultiLevelCache } from '@bgc/cache-core';
import type { CacheEntry } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ComexStatClient,
  ComexStatConnector,
  type ComexStatFlow,
  type ComexStatMonthQuery,
  type ComexStatMonthResult,
  DEFAULT_CONNECTOR_CONFIG,
  RequestSpacer,
} from '../src/index.js';
import { startComexStatSimulator } from '../src/simulator/index.js';
import { TOP_COUNTRIES, TOP_NCMS } from './helpers.js';

const INTERVAL_MS = 4000;
const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const prefix = `bgc-test:cold:${process.pid}:${Date.now()}:`;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe('cold start of three instances', () => {
  it('900 concurrent first requests and a 168-request chart cost <= 6 upstream calls, 0 refused, 0 errors', async () => {
    const sim = await startComexStatSimulator({
      rateLimit: { max: 1, windowMs: (INTERVAL_MS * 15) / 20, strict: true },
      latency: { baseMs: 30, perRowMs: 0.001 },
      updated: { year: 2026, month: 8 },
    });
    const shared = new Map<string, CacheEntry>();
    const config = {
      ...DEFAULT_CONNECTOR_CONFIG,
      warming: { ...DEFAULT_CONNECTOR_CONFIG.warming, topNcms: TOP_NCMS, topCountries: TOP_COUNTRIES },
    };
    const caches: MultiLevelCache[] = [];
    const pods = ['a', 'b', 'c'].map((name) => {
      const cache = new MultiLevelCache({
        tiers: [
          new FakeTier({ level: 'l1', name: `l1-${name}` }),
          new FakeTier({ level: 'l2', store: shared, name }),
        ],
        hardTimeoutMs: 120_000,
      });
      caches.push(cache);
      return new ComexStatConnector({
        client: new ComexStatClient({
          baseUrl: sim.url,
          spacer: new RequestSpacer({ minIntervalMs: INTERVAL_MS, redis, redisKey: `${prefix}spacer` }),
          retries: 2,
        }),
        cache,
        config,
        shared: { redis, keyPrefix: `${prefix}pending:` },
        // The default 500 ms check and 50 ms gather, scaled like the interval.
        sharedCheckMs: 100,
        gatherMs: 10,
      });
    });
    try {
      // Ready: one instance knows the release (the others read it from the shared tier later).
      await pods[0]?.releaseInfo();
      for (const p of pods) p.start();

      // 900 concurrent first requests over the warm set (top NCMs × top countries, 2025 exports).
      const t0 = Date.now();
      const first: Promise<ComexStatMonthResult>[] = [];
      for (let i = 0; i < 900; i++) {
        const q: ComexStatMonthQuery = {
          flow: 'export',
          ano: 2025,
          mes: (i % 12) + 1,
          ncm: TOP_NCMS[(i * 7) % TOP_NCMS.length] as string,
          pais: TOP_COUNTRIES[(i * 3) % TOP_COUNTRIES.length] as string,
        };
        first.push((pods[i % 3] as ComexStatConnector).getMonth(q, { clientId: `client-${i % 50}` }));
      }
      const answers = await Promise.allSettled(first);
      const firstMs = Date.now() - t0;
      expect(answers.filter((a) => a.status === 'rejected')).toEqual([]);

      // The chart: one NCM × country over 2018-2024, both flows, spread over the instances.
      const t1 = Date.now();
      const chart: Promise<ComexStatMonthResult>[] = [];
      let n = 0;
      for (const flow of ['export', 'import'] as ComexStatFlow[])
        for (let ano = 2018; ano <= 2024; ano++)
          for (let mes = 1; mes <= 12; mes++)
            chart.push(
              (pods[n++ % 3] as ComexStatConnector).getMonth({
                flow,
                ano,
                mes,
                ncm: '09011110',
                pais: '249',
              }),
            );
      const charted = await Promise.allSettled(chart);
      const chartMs = Date.now() - t1;
      expect(charted.filter((a) => a.status === 'rejected')).toEqual([]);
      await Promise.all(pods.map((p) => p.drain()));

      const byPath = sim.stats.byPath;
      const data = byPath['/general'] ?? 0;
      const total = sim.stats.calls;
      console.log(
        `cold start (3 instances, interval ${INTERVAL_MS} ms = 20 s / 5): 900 first requests in ${firstMs} ms, chart of 168 in ${chartMs} ms; upstream calls ${total} (data ${data}, dates ${byPath['/general/dates/updated'] ?? 0}, countries ${byPath['/tables/countries'] ?? 0}), refused ${sim.stats.rateLimited}`,
      );
      expect(sim.stats.rateLimited).toBe(0);
      expect(total).toBeLessThanOrEqual(6);
      // The 900 need one call; the chart one per flow.
      expect(data).toBeLessThanOrEqual(3);
    } finally {
      await Promise.all(pods.map((p) => p.close()));
      await Promise.all(caches.map((c) => c.close()));
      await sim.close();
    }
  }, 120_000);
});
