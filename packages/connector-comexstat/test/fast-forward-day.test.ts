// A day in fast-forward (issue 15): 24 h of traffic over 3 instances, the seed's headline goal
// (< 20 upstream calls a day) measured where it lives. Time is simulated: `Date` is faked (the
// cache's TTLs, the memory tier, the simulator's rate limit and release all read it) and the
// spacer, the batcher's wait bounds and the release tracker run on the same simulated clock; I/O
// stays real (the simulator over HTTP, the cross-instance merge and claims on the real Redis).
//
// The cluster: 3 connectors, each with its own memory L1 (5 min TTL) over one shared L2 (an
// in-process shared tier: real Redis expires keys on its own clock, which does not fast-forward),
// one spacer for the cluster (the Redis spacer books slots on the Redis clock, same reason), eager
// refresh at 90% of a TTL. The day: warmed the night before by the seed's job; 20,000 requests at
// random instants, Zipf over the warm set (top 50 NCMs × top 10 countries × last 12 months, 20%
// imports), 2% for countries outside it (Zipf over 20 of them); the simulator publishes a release
// at noon. The upstream refuses calls closer than 15 s (strict); the spacing is the default 20 s.
import { MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import type { CacheEntry } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import {
  ComexStatClient,
  ComexStatConnector,
  type ComexStatFlow,
  type ComexStatMonthResult,
  DEFAULT_CONNECTOR_CONFIG,
  RequestSpacer,
  type SpacerClock,
  warmComexStat,
} from '../src/index.js';
import { SIM_COUNTRIES, startComexStatSimulator } from '../src/simulator/index.js';
import { TOP_COUNTRIES, TOP_NCMS } from './helpers.js';

const HOUR = 3_600_000;
const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const prefix = `bgc-test:day:${process.pid}:${Date.now()}:`;
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/**
 * The simulated clock: `now` is the faked `Date.now()`; sleepers and timers wake when `advanceTo`
 * passes their time. It never waits for real time except to let real I/O finish between steps.
 */
class DayClock implements SpacerClock {
  private sleepers: { at: number; fn: () => void }[] = [];
  now = (): number => Date.now();
  sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => this.setTimer(resolve, ms));
  setTimer = (fn: () => void, ms: number): (() => void) => {
    const s = { at: Date.now() + ms, fn };
    this.sleepers.push(s);
    return () => {
      this.sleepers = this.sleepers.filter((x) => x !== s);
    };
  };
  private nextDue(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const s of this.sleepers) t = Math.min(t, s.at);
    return t;
  }
  /**
   * Moves the clock to `t`, waking every sleeper on the way at its own time. While `upstream()`
   * says that an upstream call is queued or on the wire, the clock moves at most `stepMs` per real
   * millisecond, so that simulated time does not run ahead of the real I/O.
   */
  async advanceTo(t: number, upstream: () => boolean, stepMs = 250): Promise<void> {
    for (;;) {
      // Let local work (cache reads, promise chains, Redis round trips) run before time moves.
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
      const now = Date.now();
      const slow = upstream();
      let next = Math.min(t, this.nextDue());
      if (slow) next = Math.min(next, now + stepMs);
      if (next > now) vi.setSystemTime(next);
      const due = this.sleepers.filter((s) => s.at <= Date.now());
      this.sleepers = this.sleepers.filter((s) => s.at > Date.now());
      for (const s of due) s.fn();
      if (slow) await new Promise((r) => setTimeout(r, 1));
      if (Date.now() >= t && this.nextDue() > t) return;
    }
  }
}

/** mulberry32: the same day on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Ranks 0..n-1 with probability ∝ 1/(rank+1)^s. */
function zipf(n: number, s: number, random: () => number): () => number {
  const cdf: number[] = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf.push(sum);
  }
  return () => {
    const u = random() * sum;
    const i = cdf.findIndex((c) => c >= u);
    return i < 0 ? n - 1 : i;
  };
}

describe('a day in fast-forward', () => {
  it('24 h of traffic over 3 instances (eager refresh, L1 5 min, a release at noon) cost < 20 upstream calls, 0 refused, 0 errors', async () => {
    const dayStart = Date.UTC(2026, 9, 5); // Monday 5 October 2026, 00:00 UTC
    const dayEnd = dayStart + 24 * HOUR;
    vi.useFakeTimers({ toFake: ['Date'], now: dayStart - 21 * HOUR }); // the job the night before (03:00)
    const clock = new DayClock();
    const sim = await startComexStatSimulator({
      rateLimit: { max: 1, windowMs: 15_000, strict: true },
      latency: { baseMs: 5, perRowMs: 0 },
      updated: { year: 2026, month: 8 },
    });
    const spacer = new RequestSpacer({ minIntervalMs: 20_000, clock });
    const shared = new Map<string, CacheEntry>();
    const config = {
      ...DEFAULT_CONNECTOR_CONFIG,
      warming: { ...DEFAULT_CONNECTOR_CONFIG.warming, topNcms: TOP_NCMS, topCountries: TOP_COUNTRIES },
    };
    const errors: unknown[] = [];
    const caches: MultiLevelCache[] = [];
    const pods = ['a', 'b', 'c'].map((name) => {
      const cache = new MultiLevelCache({
        tiers: [
          new MemoryTier({ maxSizeBytes: 64 * 1024 * 1024, maxTtlMs: 5 * 60_000, now: () => Date.now() }),
          new FakeTier({ level: 'l2', store: shared, name: `l2-${name}`, batch: true }),
        ],
        hardTimeoutMs: 120_000,
        eagerRefreshThreshold: 0.9,
      });
      caches.push(cache);
      return new ComexStatConnector({
        client: new ComexStatClient({
          baseUrl: sim.url,
          spacer,
          retries: 2,
          retryBaseDelayMs: 10,
        }),
        cache,
        config,
        shared: { redis, keyPrefix: `${prefix}pending:` },
        gatherMs: 5,
        sharedCheckMs: 20,
        onError: (e) => errors.push(e),
      });
    });
    const inFlight = new Set<Promise<unknown>>();
    const upstream = () => spacer.waiting > 0 || pods.some((p) => p.pendingCalls > 0);
    const busy = () => inFlight.size > 0 || upstream();
    const track = <T>(p: Promise<T>): Promise<T> => {
      const q = p.finally(() => inFlight.delete(q));
      inFlight.add(q);
      return q;
    };
    const settleAll = async (until: () => boolean) => {
      while (!until()) await clock.advanceTo(Date.now() + 250, () => true);
    };
    try {
      // The night before: the seed's warming job (top 50 × top 10 × last 12 months, both flows).
      let warmed = false;
      const warm = track(warmComexStat({ connector: pods[0] as ComexStatConnector, months: 12 })).finally(
        () => {
          warmed = true;
        },
      );
      await settleAll(() => warmed);
      const warmSummary = await warm;
      const warmCalls = sim.stats.calls;
      expect(warmSummary.keysWarmed).toBe(12_000);

      // The day's traffic.
      const random = prng(20261005);
      const ncmRank = zipf(TOP_NCMS.length, 1, random);
      const countryRank = zipf(TOP_COUNTRIES.length, 1, random);
      const coldCountries = SIM_COUNTRIES.filter((c) => c.weight > 0 && !TOP_COUNTRIES.includes(c.id))
        .slice(0, 20)
        .map((c) => c.id);
      const coldRank = zipf(coldCountries.length, 1.2, random);
      const monthBack = zipf(12, 0.6, random);
      const N = 20_000;
      const times = Array.from({ length: N }, () => dayStart + Math.floor(random() * 24 * HOUR)).sort(
        (x, y) => x - y,
      );
      const releaseAt = dayStart + 12 * HOUR;
      let released = false;
      const answers: Promise<ComexStatMonthResult>[] = [];
      let cold = 0;
      for (let i = 0; i < N; i++) {
        const t = times[i] as number;
        if (!released && t >= releaseAt) {
          await clock.advanceTo(releaseAt, upstream);
          sim.setUpdated({ year: 2026, month: 9 });
          released = true;
        }
        await clock.advanceTo(t, upstream);
        // The months users ask for: the last 12 published ones as the cluster last knew them.
        const latest = released ? 9 : 8;
        let mes = latest - monthBack();
        let ano = 2026;
        if (mes < 1) {
          mes += 12;
          ano--;
        }
        const isCold = random() < 0.02;
        if (isCold) cold++;
        const flow: ComexStatFlow = random() < 0.2 ? 'import' : 'export';
        const q = {
          flow,
          ano,
          mes,
          ncm: TOP_NCMS[ncmRank()] as string,
          pais: isCold ? (coldCountries[coldRank()] as string) : (TOP_COUNTRIES[countryRank()] as string),
        };
        answers.push(track((pods[i % 3] as ComexStatConnector).getMonth(q, { clientId: `c${i % 40}` })));
      }
      await clock.advanceTo(dayEnd, upstream);
      await settleAll(() => !busy());
      const settled = await Promise.allSettled(answers);
      const failed = settled.filter((s) => s.status === 'rejected');

      const day = sim.stats.log.filter((r) => r.at >= dayStart && r.at < dayEnd);
      const kind = (p: string) =>
        p === '/general'
          ? 'data'
          : p === '/general/dates/updated'
            ? 'dates'
            : p === '/tables/countries'
              ? 'countries'
              : 'other';
      const byKind: Record<string, number> = { data: 0, dates: 0, countries: 0, other: 0 };
      for (const r of day) byKind[kind(r.path)] = (byKind[kind(r.path)] ?? 0) + 1;
      const levels: Record<string, number> = {};
      for (const s of settled)
        if (s.status === 'fulfilled') levels[s.value.level] = (levels[s.value.level] ?? 0) + 1;
      const stale = settled.filter((s) => s.status === 'fulfilled' && s.value.stale).length;
      console.log(
        `a day in fast-forward (3 instances, 20 s spacing, ${N} requests, ${cold} cold): upstream calls ${day.length} (data ${byKind.data}, dates ${byKind.dates}, countries ${byKind.countries}, other ${byKind.other}), refused ${sim.stats.rateLimited}, failed requests ${failed.length}; answers by level ${JSON.stringify(levels)}, served stale ${stale}; warming the night before: ${warmCalls} calls; data calls at ${day
          .filter((r) => r.path === '/general')
          .map((r) => new Date(r.at).toISOString().slice(11, 19))
          .join(' ')}`,
      );
      expect(failed.map((f) => (f as PromiseRejectedResult).reason)).toEqual([]);
      expect(sim.stats.rateLimited).toBe(0);
      expect(day.length).toBeLessThan(20);
      // The release is checked once per 6 h interval for the whole cluster; the countries table
      // is the bundled snapshot (no call).
      expect(byKind.dates).toBeLessThanOrEqual(4);
      expect(byKind.countries).toBe(0);
      // The release was learnt by every instance, and its month is served (not "not published").
      for (const p of pods) expect(p.release?.month).toBe(9);
      const after = await track(
        (pods[1] as ComexStatConnector).getMonth({
          flow: 'export',
          ano: 2026,
          mes: 9,
          ncm: TOP_NCMS[0] as string,
          pais: '160',
        }),
      );
      expect(after.status).toBe('ok');
      expect(after.rows.length).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      let closed = false;
      const closing = Promise.all(pods.map((p) => p.close())).finally(() => {
        closed = true;
      });
      while (!closed) await clock.advanceTo(Date.now() + 1000, () => true);
      await closing;
      await Promise.all(caches.map((c) => c.close()));
      await sim.close();
    }
  }, 60_000);
});
