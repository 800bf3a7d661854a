// Cross-instance merging of cold misses: two connectors (two "pods") with their own clients and
// caches over one shared tier, one Redis spacer and one Redis pending set.
import { MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ComexStatClient,
  ComexStatConnector,
  DEFAULT_CONNECTOR_CONFIG,
  RequestSpacer,
} from '../src/index.js';
import { SharedMerge } from '../src/internal.js';
import { generateCell, SIM_COUNTRIES, SIM_NCMS, startComexStatSimulator } from '../src/simulator/index.js';
import type { CacheEntry } from '@bgc/cache-core';

const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const prefix = `test:merge:${process.pid}:${Date.now()}:`;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

async function pods(options: {
  shared: boolean;
  failB?: boolean;
  /** Spacing of the pods' calls, ms. @default 250 */
  spacingMs?: number;
  /** Fan-out over the whole year of the asked NCM x country (nothing else). */
  wholeYear?: boolean;
  /** Pod a's writes each take this long, ms. */
  slowWritesA?: number;
}) {
  const sim = await startComexStatSimulator({
    rateLimit: false,
    latency: { baseMs: 40, perRowMs: 0 },
    updated: { year: 2026, month: 8 },
  });
  const store = new Map<string, CacheEntry>();
  const config = {
    ...DEFAULT_CONNECTOR_CONFIG,
    fanOut: options.wholeYear
      ? { enabled: true, wholeYear: true, topLists: false, allCountries: false }
      : { ...DEFAULT_CONNECTOR_CONFIG.fanOut, enabled: false },
  };
  const spacerKey = `${prefix}spacer:${Math.random()}`;
  const make = (name: string, fail = false, slowWrites = 0) => {
    const client = new ComexStatClient({
      baseUrl: sim.url,
      spacer: new RequestSpacer({ minIntervalMs: options.spacingMs ?? 250, redis, redisKey: spacerKey }),
      retries: 0,
    });
    const tier = new FakeTier({ level: 'l2', store, name, batch: true });
    // A pod whose shared tier fails every call (its circuit open under a burst, say).
    if (fail) tier.failWith = new Error('tier down');
    if (slowWrites > 0) {
      const setMany = (tier.setMany as NonNullable<typeof tier.setMany>).bind(tier);
      tier.setMany = async (items) => {
        await new Promise((r) => setTimeout(r, slowWrites));
        return setMany(items);
      };
    }
    const cache = new MultiLevelCache({ tiers: [tier], circuitBreaker: false });
    return new ComexStatConnector({
      client,
      cache,
      config,
      shared: options.shared ? { redis, keyPrefix: `${prefix}pending:` } : undefined,
    });
  };
  return { sim, a: make('a', false, options.slowWritesA), b: make('b', options.failB) };
}

describe('cross-instance merging of cold misses', () => {
  const q1 = { flow: 'export', ano: 2025, mes: 3, ncm: '12019000', pais: '160' } as const;
  const q2 = { flow: 'export', ano: 2025, mes: 7, ncm: '09011110', pais: '249' } as const;
  const q3 = { flow: 'export', ano: 2025, mes: 9, ncm: '27090010', pais: '063' } as const;

  it('without sharing, two pods missing different cells of one year make two calls', async () => {
    const { sim, a, b } = await pods({ shared: false });
    await a.releaseInfo();
    await b.releaseInfo();
    const before = sim.stats.byPath['/general'] ?? 0;
    await Promise.all([a.getMonth(q1), b.getMonth(q2)]);
    expect((sim.stats.byPath['/general'] ?? 0) - before).toBe(2);
    await sim.close();
  });

  it("with sharing, the first call carries the other pod's cells and the other gives its slot up", async () => {
    const { sim, a, b } = await pods({ shared: true });
    await a.releaseInfo();
    await b.releaseInfo();
    const before = sim.stats.byPath['/general'] ?? 0;
    const [r1, r2, r3] = await Promise.all([a.getMonth(q1), b.getMonth(q2), b.getMonth(q3)]);
    expect((sim.stats.byPath['/general'] ?? 0) - before).toBe(1);
    const release = { updated: '2026-09-05', year: 2026, month: 8 };
    for (const [q, r] of [
      [q1, r1],
      [q2, r2],
      [q3, r3],
    ] as const) {
      const cell = generateCell(
        q.flow,
        q.ano,
        q.mes,
        SIM_NCMS.find((n) => n.coNcm === q.ncm)!,
        SIM_COUNTRIES.find((c) => c.id === q.pais)!,
        release,
      );
      expect(r.status).toBe('ok');
      expect(r.rows).toEqual(cell ? [{ ...q, fob: cell.fob, kg: cell.kg }] : []);
    }
    expect(await redis.exists(`${prefix}pending:export:2025`)).toBe(0);
    await sim.close();
  });
});

describe('answers handed to the other instances', () => {
  const q1 = { flow: 'import', ano: 2025, mes: 3, ncm: '12019000', pais: '160' } as const;
  const q2 = { flow: 'import', ano: 2025, mes: 7, ncm: '09011110', pais: '249' } as const;

  it("a pod whose cache cannot be read takes its cells' values from the call that carried them (answers hash): no second call", async () => {
    const { sim, a, b } = await pods({ shared: true, failB: true });
    await a.releaseInfo();
    await b.releaseInfo();
    const before = sim.stats.byPath['/general'] ?? 0;
    // a's call asks for its slot first and carries b's cell (drained when it is granted).
    const ra = a.getMonth(q1);
    await new Promise((r) => setTimeout(r, 20));
    const rb = b.getMonth(q2);
    const [r1, r2] = await Promise.all([ra, rb]);
    expect((sim.stats.byPath['/general'] ?? 0) - before).toBe(1);
    expect(r1.status).toBe('ok');
    expect(r2.status).toBe('ok');
    expect(r2.level).toBe('external');
    const hash = await redis.hgetall(`${prefix}pending:import:answers`);
    expect(Object.keys(hash)).toHaveLength(1);
    expect(await redis.pttl(`${prefix}pending:import:answers`)).toBeGreaterThan(0);
    await sim.close();
  });
});

describe('the rest of an answer (cells no one waited for)', () => {
  it("another pod's load that began after the call is answered from the cache once they are written, not by a second call", async () => {
    // a's call fans out over the year; writing its 11 other months takes 3.5 s (longer than the
    // 3 s during which other pods' watches read the cache after a "stored" mark). b asks for one
    // of them while they are written: its own call's slot is 6 s away; the mark after the rest's write
    // makes its watch read the cache, find the cell and give its slot up.
    const { sim, a, b } = await pods({ shared: true, spacingMs: 6000, wholeYear: true, slowWritesA: 3500 });
    const before = sim.stats.byPath['/general'] ?? 0;
    const q = { flow: 'export', ano: 2025, mes: 3, ncm: '12019000', pais: '160' } as const;
    const neighbour = { ...q, mes: 7 } as const;
    const ra = await a.getMonth(q);
    expect(ra.level).toBe('external');
    const t0 = performance.now();
    const rb = await b.getMonth(neighbour);
    const waited = performance.now() - t0;
    expect(rb.status).toBe('ok');
    expect(rb.level).toBe('external'); // its own load, answered by its watch from the cache
    expect((sim.stats.byPath['/general'] ?? 0) - before).toBe(1);
    expect(waited).toBeLessThan(5500);
    await a.close();
    await b.close();
    await sim.close();
  }, 20_000);
});

describe('SharedMerge answers', () => {
  it('hands values over per flow (many at once), ignores malformed ones, and expires them', async () => {
    const a = new SharedMerge(redis, `${prefix}answers:`);
    const b = new SharedMerge(redis, `${prefix}answers:`);
    const value = (n: number) => ({ status: 'ok' as const, rows: [], fetchedAt: n });
    const cells = Array.from({ length: 1200 }, (_, i) => ({ key: `k${i}`, value: value(i) }));
    await a.putAnswers('export', cells);
    const keys = [...cells.map((c) => c.key), 'missing'];
    const got = await b.getAnswers('export', keys);
    expect(got).toEqual([...cells.map((c) => c.value), undefined]);
    expect(await b.getAnswers('import', ['k1'])).toEqual([undefined]);
    await redis.hset(`${prefix}answers:export:answers`, 'bad', '{"status":"maybe"}', 'worse', '{');
    expect(await b.getAnswers('export', ['bad', 'worse'])).toEqual([undefined, undefined]);
    expect(await redis.pttl(`${prefix}answers:export:answers`)).toBeGreaterThan(60_000);
  });
});

describe('SharedMerge.claim', () => {
  it('one instance wins a cluster job; its own next claim renews it, the others keep losing until it expires', async () => {
    const a = new SharedMerge(redis, `${prefix}claims:`);
    const b = new SharedMerge(redis, `${prefix}claims:`);
    expect(await a.claim('dates-updated', 300)).toBe(true);
    expect(await b.claim('dates-updated', 300)).toBe(false);
    // Due again while its claim lasts (a short interval): the holder is not shut out by itself.
    expect(await a.claim('dates-updated', 300)).toBe(true);
    expect(await b.claim('dates-updated', 300)).toBe(false);
    expect(await redis.pttl(`${prefix}claims:claim:dates-updated`)).toBeGreaterThan(0);
    await redis.del(`${prefix}claims:claim:dates-updated`);
    expect(await b.claim('dates-updated', 300)).toBe(true);
    expect(await a.claim('dates-updated', 300)).toBe(false);
  });
});

describe('SharedMerge flow marks', () => {
  it('tells every instance how long ago a call of the flow was sealed and stored (Redis clock), per flow', async () => {
    const a = new SharedMerge(redis, `${prefix}marks:`);
    const b = new SharedMerge(redis, `${prefix}marks:`);
    expect(await b.state('export')).toEqual({ sealedAgoMs: undefined, storedAgoMs: undefined });
    await a.mark('export', 'sealed');
    await new Promise((r) => setTimeout(r, 30));
    const sealed = await b.state('export');
    expect(sealed.sealedAgoMs).toBeGreaterThanOrEqual(25);
    expect(sealed.sealedAgoMs).toBeLessThan(5000);
    expect(sealed.storedAgoMs).toBeUndefined();
    await a.mark('export', 'stored');
    const both = await b.state('export');
    expect(both.storedAgoMs).toBeGreaterThanOrEqual(0);
    expect(both.storedAgoMs).toBeLessThan(both.sealedAgoMs as number);
    // The other flow is untouched; the marks expire.
    expect(await b.state('import')).toEqual({ sealedAgoMs: undefined, storedAgoMs: undefined });
    expect(await redis.pttl(`${prefix}marks:export:marks`)).toBeGreaterThan(0);
  });
});
