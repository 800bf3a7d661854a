import { ConfigError, NOOP_METRICS } from '@bgc/cache-core';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { nextVersion, observeVersion } from '@bgc/cache-core/internal';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { COMPRESSORS } from '../src/compression.js';
import { DEFAULT_COORDINATION_PREFIX, RedisTier } from '../src/redis-tier.js';
import { coherenceCases } from './coherence-cases.js';
import { REDIS_HOST, REDIS_PORT, recordingMetrics, uniquePrefix } from './helpers.js';

describe('RedisTier coherence on the real Redis (two clients)', () => {
  const prefix = uniquePrefix('coherence');
  const clients: Redis[] = [];
  let a: RedisTier;
  afterAll(async () => {
    await a?.clear();
    await Promise.all(clients.map((c) => c.quit()));
  });
  coherenceCases(async () => {
    const [ca, cb, raw] = [0, 1, 2].map(() => new Redis({ host: REDIS_HOST, port: REDIS_PORT }));
    clients.push(ca as Redis, cb as Redis, raw as Redis);
    a = new RedisTier({ client: ca, prefix });
    const b = new RedisTier({ client: cb, prefix });
    await Promise.all([a.connect(), b.connect()]);
    return {
      a,
      b,
      pttl: (k) => (raw as Redis).pttl(prefix + k),
      raw: (k) => (raw as Redis).get(prefix + k),
    };
  });
});

describe('RedisTier key layout (issue 22)', () => {
  it('refuses a prefix that nests with a coordination prefix', () => {
    const client = { on() {}, defineCommand() {} } as unknown as Redis;
    expect(() => new RedisTier({ client, prefix: 'bgc:x:cache:' })).toThrow(ConfigError);
    expect(() => new RedisTier({ client, prefix: 'bgc:' })).toThrow(/overlap/);
    expect(() => new RedisTier({ client, prefix: 'app:c:', coordinationPrefixes: ['app:'] })).toThrow(
      ConfigError,
    );
    expect(() => new RedisTier({ client, prefix: '' })).toThrow(ConfigError);
    expect(() => new RedisTier({ client, tombstoneMs: -1 })).toThrow(ConfigError);
    expect(new RedisTier({ client, prefix: 'app:c:', coordinationPrefixes: ['app:x:'] }).prefix).toBe(
      'app:c:',
    );
    expect(DEFAULT_COORDINATION_PREFIX).toBe('bgc:x:');
  });

  it('clear() leaves coordination keys and other prefixes alone', async () => {
    const raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    const base = uniquePrefix('layout');
    const tier = new RedisTier({ client: raw, prefix: `${base}c:`, coordinationPrefixes: [`${base}x:`] });
    try {
      await raw.set(`${base}x:lock:k`, 'token', 'PX', 60_000);
      await tier.set('k', { value: 1, freshUntil: Date.now() + 60_000, staleUntil: Date.now() + 60_000 });
      await tier.clear();
      expect(await raw.get(`${base}x:lock:k`)).toBe('token');
      expect(await tier.get('k')).toBeUndefined();
    } finally {
      await raw.del(`${base}x:lock:k`, `${base}c:\u0000cleared`);
      await raw.quit();
    }
  });
});

describe('RedisTier on untrusted bytes (issue 22 fuzz)', () => {
  const prefix = uniquePrefix('fuzz');
  const metrics = recordingMetrics();
  let raw: Redis;
  let tier: RedisTier;
  beforeAll(async () => {
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    tier = new RedisTier({
      client: raw,
      prefix,
      metrics,
      maxValueBytes: 16 * 1024,
      compressThresholdBytes: 512,
    });
    await tier.connect();
  });
  afterAll(async () => {
    await tier.clear();
    await raw.quit();
  });

  it('get, getWith and getMany never throw on planted bytes: a miss plus a serialization metric', async () => {
    const planted = fc.oneof(
      fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
      fc.string({ maxLength: 200 }).map((s) => Buffer.from(`{"v":1,"n":0,"f":1,"s":9e15,${s}`)),
      fc.constantFrom(
        Buffer.from('{"v":1,"f":1,"s":9e15,"e":"msgpack","b":"kQE="}'),
        Buffer.from('{"v":1,"f":1,"s":9e15,"e":"json","z":"brotli","b":"AAAA"}'),
        Buffer.from(
          '{"v":1,"f":1,"s":9e15,"t":1,"d":{"$bgc":"Object","v":[["__proto__",{"isAdmin":true}]]}}',
        ),
        Buffer.from(`{"v":1,"f":1,"s":9e15,"d":"${'x'.repeat(20_000)}"}`),
      ),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(planted, async (bytes) => {
        const k = `p${run++}`;
        await raw.set(prefix + k, bytes, 'PX', 60_000);
        const errorsBefore = metrics.errors.length;
        const one = await tier.get(k);
        const many = await tier.getMany([k]);
        const viaCallback = await new Promise((resolve, reject) =>
          tier.getWith(k, { ok: resolve, failed: reject }),
        );
        for (const got of [one, many[0], viaCallback]) {
          if (got !== undefined) expect(typeof (got as { freshUntil: number }).freshUntil).toBe('number');
        }
        if (one === undefined) expect(metrics.errors.length).toBeGreaterThan(errorsBefore);
        expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
      }),
      { numRuns: 150 },
    );
    expect(metrics.errors.every(([level, , type]) => level === 'l2' && type === 'serialization_error')).toBe(
      true,
    );
  });

  it('a planted gzip bomb is a miss: inflated at most to maxValueBytes, never to its 20 MB', async () => {
    const bound = 64 * 1024;
    const bombMetrics = recordingMetrics();
    const guarded = new RedisTier({
      client: raw,
      prefix,
      metrics: bombMetrics,
      maxValueBytes: bound,
      compressThresholdBytes: 1024,
    });
    const spy = vi.spyOn(COMPRESSORS.gzip, 'decompress');
    const packed = gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20));
    await raw.set(
      `${prefix}bomb`,
      `{"v":1,"n":0,"f":1,"s":9e15,"e":"json","z":"gzip","b":"${packed.toString('base64')}"}`,
      'PX',
      60_000,
    );
    expect(await guarded.get('bomb')).toBeUndefined();
    expect(bombMetrics.errors).toEqual([['l2', 'get', 'serialization_error']]);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(spy.mock.calls[0]?.[1]).toBe(bound);
    await expect(spy.mock.results[0]?.value).rejects.toThrow();
    spy.mockRestore();
  });

  it('a key of another type under the prefix fails the write with E_L2_REDIS / redis_error', async () => {
    await raw.hset(`${prefix}a-hash`, 'f', 'v');
    await expect(
      tier.set('a-hash', {
        value: 1,
        freshUntil: Date.now() + 1000,
        staleUntil: Date.now() + 1000,
        version: 1,
      }),
    ).rejects.toMatchObject({ code: 'E_L2_REDIS', errorType: 'redis_error' });
    await raw.del(`${prefix}a-hash`);
  });

  it('a tombstone is a miss without a metric', async () => {
    const quiet = new RedisTier({ client: raw, prefix, metrics: NOOP_METRICS });
    await quiet.delete('tomb', { version: 5 });
    const before = metrics.errors.length;
    expect(await tier.get('tomb')).toBeUndefined();
    expect(metrics.errors.length).toBe(before);
  });
});

describe('RedisTier fill hints (keys read absent)', () => {
  const prefix = uniquePrefix('hints');
  let client: Redis;
  let tier: RedisTier;
  beforeAll(async () => {
    client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    tier = new RedisTier({ client, prefix });
    await tier.connect();
  });
  afterAll(async () => {
    await tier.clear();
    await client.quit();
  });

  it('getMany of 200,000 keys (more than a call takes arguments) answers every miss; the last 5,000 stay remembered', async () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `many:${i}`);
    const got = await tier.getMany(keys);
    expect(got.length).toBe(keys.length);
    expect(got.every((e) => e === undefined)).toBe(true);
    // A remembered key's fill is a plain SET NX (a stale fill after a clear lands, read as a miss);
    // a forgotten one's goes through the script (refused by the marker).
    const loadStarted = nextVersion();
    await tier.clear();
    const stale = {
      value: 'stale',
      freshUntil: Date.now() + 60_000,
      staleUntil: Date.now() + 60_000,
      version: loadStarted,
    };
    await tier.set('many:199999', stale);
    await tier.set('many:0', stale);
    expect(await client.get(`${prefix}many:199999`)).toContain('stale');
    expect(await client.get(`${prefix}many:0`)).toBeNull();
    expect(await tier.get('many:199999')).toBeUndefined();
  });

  it('remembering a million absent keys takes linear time (no per-eviction walk)', () => {
    const remember = (tier as unknown as { rememberAbsent(key: string): void }).rememberAbsent.bind(tier);
    const t0 = performance.now();
    for (let i = 0; i < 1_000_000; i++) remember(`k${i}`);
    // ~0.2 s here; evicting a Set's first entry one at a time took ~20 s for as many.
    expect(performance.now() - t0).toBeLessThan(5_000);
  });
});

describe('RedisTier interleavings (fast-check scheduler, two clients)', () => {
  const prefix = uniquePrefix('interleave');
  const clients: Redis[] = [];
  let tiers: RedisTier[];
  beforeAll(async () => {
    tiers = [0, 1].map(() => {
      const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
      clients.push(client);
      return new RedisTier({ client, prefix });
    });
    await Promise.all(tiers.map((t) => t.connect()));
  });
  afterAll(async () => {
    await tiers[0]?.clear();
    await Promise.all(clients.map((c) => c.quit()));
  });

  it('versioned sets, setMany and tombstoning deletes in any order: the highest version decides', async () => {
    let run = 0;
    const op = fc.record({
      kind: fc.constantFrom('set', 'setMany', 'delete', 'deleteMany'),
      tier: fc.constantFrom(0, 1),
      rank: fc.nat({ max: 1000 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(op, { minLength: 1, maxLength: 8 }), async (s, ops) => {
        const key = `k${run++}`;
        // Distinct versions in a random order, so that issue order and version order differ.
        const versions = ops.map((o, i) => 1_000_000 + o.rank * 16 + i);
        const now = Date.now();
        const entry = (i: number) => ({
          value: `write ${i}`,
          freshUntil: now + 60_000,
          staleUntil: now + 120_000,
          version: versions[i] as number,
        });
        const done = ops.map((o, i) =>
          s
            .schedule(Promise.resolve(), `${o.kind}#${i}@${o.tier} v${versions[i]}`)
            .then(async (): Promise<unknown> => {
              const t = tiers[o.tier] as RedisTier;
              const v = versions[i] as number;
              if (o.kind === 'set') return t.set(key, entry(i));
              if (o.kind === 'setMany') return t.setMany([{ key, entry: entry(i) }]);
              if (o.kind === 'delete') return t.delete(key, { version: v, tombstoneMs: 60_000 });
              return t.deleteMany([key], { version: v, tombstoneMs: 60_000 });
            }),
        );
        await s.waitAll();
        await Promise.all(done);
        const winner = versions.indexOf(Math.max(...versions));
        const kind = (ops[winner] as { kind: string }).kind;
        const got = await (tiers[1 - (ops[winner] as { tier: number }).tier] as RedisTier).get(key);
        if (kind === 'set' || kind === 'setMany') {
          expect(got?.value).toBe(`write ${winner}`);
          expect(got?.version).toBe(versions[winner]);
        } else {
          expect(got).toBeUndefined();
        }
      }),
      { numRuns: 150 },
    );
  });

  it('reads, fills, deletes and clears in any order: a fill that started before a clear never reads back, the highest version decides', async () => {
    let run = 0;
    const op = fc.record({
      kind: fc.constantFrom('get', 'getMany', 'set', 'setMany', 'delete', 'clear'),
      tier: fc.constantFrom(0, 1),
      rank: fc.nat({ max: 1000 }),
      // Whether the operation waits for those released before it to finish (a clear takes several
      // round trips: a fill sent during its scan is removed by it, one sent after it is not).
      after: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        // Each run starts with a read of the key on both tiers (the miss every fill follows).
        fc.array(op, { minLength: 1, maxLength: 8 }),
        async (s, ops) => {
          const key = `fill${run++}`;
          const base = nextVersion();
          // Distinct versions above every earlier run's (clears are prefix-wide and keep their
          // marker), in a random order, so that issue order and version order differ.
          const versions = ops.map((o, i) => base + 1 + o.rank * 16 + i);
          observeVersion(base + 20_000);
          await Promise.all((tiers as RedisTier[]).map((t) => t.getMany([key, `${key}:other`])));
          const now = Date.now();
          const entry = (i: number) => ({
            value: `write ${i}`,
            freshUntil: now + 60_000,
            staleUntil: now + 120_000,
            version: versions[i] as number,
          });
          const apply = (o: { kind: string; tier: number }, i: number): Promise<unknown> => {
            const t = tiers[o.tier] as RedisTier;
            const v = versions[i] as number;
            if (o.kind === 'get') return t.get(key);
            if (o.kind === 'getMany') return t.getMany([key]);
            if (o.kind === 'set') return t.set(key, entry(i));
            if (o.kind === 'setMany')
              return t.setMany([
                { key, entry: entry(i) },
                { key: `${key}:other`, entry: entry(i) },
              ]);
            if (o.kind === 'delete') return t.delete(key, { version: v, tombstoneMs: 60_000 });
            return t.clear({ version: v });
          };
          const released: Promise<unknown>[] = [];
          const done = ops.map((o, i) =>
            s
              .schedule(
                Promise.resolve(),
                `${o.kind}#${i}@${o.tier} v${versions[i]}${o.after ? ' after' : ''}`,
              )
              .then((): Promise<unknown> => {
                const before = o.after ? Promise.allSettled([...released]) : undefined;
                const run = (before ?? Promise.resolve()).then(() => apply(o, i));
                released.push(run);
                return run;
              }),
          );
          await s.waitAll();
          await Promise.all(done);
          const writes = ops.flatMap((o, i) => (o.kind === 'clear' || o.kind.startsWith('get') ? [] : [i]));
          const clears = ops.flatMap((o, i) => (o.kind === 'clear' ? [versions[i] as number] : []));
          const cleared = Math.max(0, ...clears);
          const winner = writes.reduce(
            (w, i) => (w < 0 || (versions[i] as number) > (versions[w] as number) ? i : w),
            -1,
          );
          const expected =
            winner >= 0 &&
            (ops[winner] as { kind: string }).kind.startsWith('set') &&
            (versions[winner] as number) >= cleared
              ? `write ${winner}`
              : undefined;
          for (const t of tiers as RedisTier[]) {
            expect((await t.get(key))?.value).toBe(expected);
            expect((await t.getMany([key]))[0]?.value).toBe(expected);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
