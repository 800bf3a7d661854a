import { execFileSync, spawnSync } from 'node:child_process';
import { type CacheEntry, InvalidValueError, TierError } from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import { runTierConformance } from '@bgc/cache-core/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisTier, escapeGlob } from '../src/redis-tier.js';
import { REDIS_HOST, REDIS_PORT, recordingMetrics, uniquePrefix } from './helpers.js';

/**
 * What RedisTier implements of the coherence contract, for the core's conformance suite (its
 * capability-gated coherence and value cases). msgpack keeps fewer types than the codec (no Map).
 */
export const REDIS_CAPABILITIES = {
  versions: true,
  tombstones: true,
  clearKeepsNewer: true,
  expire: true,
  values: 'codec',
  tags: true,
} as const;
const MSGPACK_CAPABILITIES = {
  versions: true,
  tombstones: true,
  clearKeepsNewer: true,
  expire: true,
  tags: true,
} as const;

const confPrefix = uniquePrefix('conf');
runTierConformance(
  'redis (standalone, own client)',
  async () => {
    const tier = new RedisTier({
      host: REDIS_HOST,
      port: REDIS_PORT,
      prefix: confPrefix,
      commandTimeoutMs: 2000,
    });
    await tier.connect();
    return tier;
  },
  { ...REDIS_CAPABILITIES },
);

const sharedClient = new Redis({ host: REDIS_HOST, port: REDIS_PORT, lazyConnect: true });
const confPrefix2 = uniquePrefix('conf-given');
runTierConformance(
  'redis (standalone, given client, msgpack + gzip)',
  async () => {
    if (sharedClient.status === 'wait') await sharedClient.connect();
    return new RedisTier({
      client: sharedClient,
      prefix: confPrefix2,
      serializer: 'msgpack',
      compressThresholdBytes: 1024,
    });
  },
  { ...MSGPACK_CAPABILITIES, teardown: () => void sharedClient.quit() },
);

describe('RedisTier on the real Redis', () => {
  const prefix = uniquePrefix('tier');
  const metrics = recordingMetrics();
  let raw: Redis;
  let tier: RedisTier;
  const entry = (value: unknown, ttlMs = 60_000, staleMs = 60_000) => {
    const now = Date.now();
    return { value, freshUntil: now + ttlMs, staleUntil: now + ttlMs + staleMs, createdAt: now };
  };

  beforeAll(async () => {
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    tier = new RedisTier({ client: raw, prefix, metrics, commandTimeoutMs: 2000 });
    await tier.ready();
  });
  afterAll(async () => {
    await tier.clear();
    await tier.close();
    expect(raw.status).toBe('ready'); // a given client is never closed
    await raw.quit();
  });

  it('stores under the prefix with a Redis TTL equal to the remaining stale-until time', async () => {
    await tier.set('comexstat:exp:2024:03', entry({ fob: 1 }, 60_000, 3_600_000));
    const pttl = await raw.pttl(`${prefix}comexstat:exp:2024:03`);
    expect(pttl).toBeGreaterThan(3_660_000 - 2_000);
    expect(pttl).toBeLessThanOrEqual(3_660_000);
    const ttl = Number(
      execFileSync(
        'redis-cli',
        ['-h', REDIS_HOST, '-p', String(REDIS_PORT), 'TTL', `${prefix}comexstat:exp:2024:03`],
        { encoding: 'utf8' },
      ).trim(),
    );
    expect(ttl).toBeGreaterThan(3_655);
    expect(ttl).toBeLessThanOrEqual(3_660);
    expect(await raw.exists('comexstat:exp:2024:03')).toBe(0);
  });

  it('caps the Redis TTL to maxTtlMs (the seed keeps 7 days)', async () => {
    const capped = new RedisTier({ client: raw, prefix, maxTtlMs: 10_000 });
    await capped.set('capped', entry('x', 86_400_000));
    expect(await raw.pttl(`${prefix}capped`)).toBeLessThanOrEqual(10_000);
    expect((await capped.get('capped'))!.staleUntil).toBeLessThanOrEqual(Date.now() + 10_000);
    await capped.close();
  });

  it('writes and deletes by EVALSHA, and again after SCRIPT FLUSH (EVAL on NOSCRIPT), keeping the compare-and-set', async () => {
    const flush = () =>
      execFileSync('redis-cli', ['-h', REDIS_HOST, '-p', String(REDIS_PORT), 'SCRIPT', 'FLUSH'], {
        encoding: 'utf8',
      });
    const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    const t = new RedisTier({ client, prefix, commandTimeoutMs: 2000 });
    const calls: string[] = [];
    const evalsha = client.evalsha.bind(client);
    const evalLua = client.eval.bind(client);
    client.evalsha = ((...a: Parameters<typeof evalsha>) => {
      calls.push('evalsha');
      return evalsha(...a);
    }) as typeof client.evalsha;
    client.eval = ((...a: Parameters<typeof evalLua>) => {
      calls.push('eval');
      return evalLua(...a);
    }) as typeof client.eval;
    const v1 = nextVersion();
    const v2 = nextVersion();
    flush();
    await t.set('flushed', { ...entry('new'), version: v2 });
    expect(calls).toEqual(['evalsha', 'eval']);
    expect((await t.get('flushed'))?.value).toBe('new');
    calls.length = 0;
    // Loaded by the EVAL: the next write is one EVALSHA, and an older version is still refused.
    await t.set('flushed', { ...entry('old'), version: v1 });
    expect(calls).toEqual(['evalsha']);
    expect((await t.get('flushed'))?.value).toBe('new');
    flush();
    await t.set('flushed', { ...entry('older'), version: v1 });
    expect((await t.get('flushed'))?.value).toBe('new');
    flush();
    calls.length = 0;
    expect(await t.delete('flushed', { version: nextVersion() })).toBe(true);
    expect(calls).toEqual(['evalsha', 'eval']);
    expect(await t.get('flushed')).toBeUndefined();
    // The tombstone refuses the write of the version it replaced.
    await t.set('flushed', { ...entry('resurrected'), version: v2 });
    expect(await t.get('flushed')).toBeUndefined();
    // Pipelines (batch writes and deletes) keep ioredis' defined commands, which also resend on NOSCRIPT.
    flush();
    await t.setMany([
      { key: 'batch:a', entry: { ...entry('a'), version: nextVersion() } },
      { key: 'batch:b', entry: entry('b') },
    ]);
    expect((await t.getMany(['batch:a', 'batch:b'])).map((e) => e?.value)).toEqual(['a', 'b']);
    flush();
    expect(await t.deleteMany(['batch:a', 'batch:b'], { version: nextVersion() })).toBe(2);
    // Other errors are not retried: a key of another type fails the script, as a TierError.
    await client.hset(`${prefix}hash`, 'f', '1');
    await t.set('warm', entry('w')); // loads the script again after the last flush
    calls.length = 0;
    await expect(t.set('hash', entry('x'))).rejects.toBeInstanceOf(TierError);
    expect(calls).toEqual(['evalsha']);
    await client.quit();
  });

  it('writes an envelope readable with redis-cli GET and decodable by a fresh process', async () => {
    const value = {
      ano: 2024,
      when: new Date('2024-03-01T00:00:00Z'),
      big: 12345678901234567890n,
      none: undefined,
      nil: null,
      tags: new Set(['a']),
    };
    const e = entry(value);
    await tier.set('envelope', e);
    const cliText = execFileSync(
      'redis-cli',
      ['-h', REDIS_HOST, '-p', String(REDIS_PORT), '--no-raw', 'GET', `${prefix}envelope`],
      { encoding: 'utf8' },
    );
    expect(cliText).toContain('\\"ano\\":2024');
    const script = `
      const { Redis } = require('ioredis');
      const { RedisTier } = require(${JSON.stringify(new URL('../dist/index.cjs', import.meta.url).pathname)});
      (async () => {
        const client = new Redis({ host: ${JSON.stringify(REDIS_HOST)}, port: ${REDIS_PORT} });
        const tier = new RedisTier({ client, prefix: ${JSON.stringify(prefix)} });
        const got = await tier.get('envelope');
        const v = got.value;
        console.log(JSON.stringify({ ok: v.when instanceof Date && v.when.toISOString(), big: typeof v.big === 'bigint' && v.big.toString(),
          hasNone: 'none' in v && v.none === undefined, nil: v.nil, tags: v.tags instanceof Set && [...v.tags], f: got.freshUntil, s: got.staleUntil }));
        await client.quit();
      })();`;
    const out = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      cwd: new URL('..', import.meta.url).pathname,
    });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toEqual({
      ok: '2024-03-01T00:00:00.000Z',
      big: '12345678901234567890',
      hasNone: true,
      nil: null,
      tags: ['a'],
      f: e.freshUntil,
      s: e.staleUntil,
    });
  });

  it('treats corrupted, foreign and malicious values as a miss plus a serialization_error metric', async () => {
    metrics.errors.length = 0;
    await raw.set(`${prefix}corrupt:1`, '{"v":1,"f":1,"s":');
    await raw.set(`${prefix}corrupt:2`, 'plain text written by another app');
    await raw.set(
      `${prefix}corrupt:3`,
      `{"v":1,"f":${Date.now() + 60_000},"s":${Date.now() + 60_000},"d":{"__proto__":{"polluted":true}}}`,
    );
    await raw.set(`${prefix}corrupt:4`, `{"v":9,"f":1,"s":2,"d":1}`);
    for (const k of ['corrupt:1', 'corrupt:2', 'corrupt:3', 'corrupt:4'])
      expect(await tier.get(k)).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(metrics.errors).toEqual(Array.from({ length: 4 }, () => ['l2', 'get', 'serialization_error']));
    await tier.set('good', entry('fine'));
    const many = await tier.getMany(['corrupt:1', 'good', 'nope']);
    expect(many.map((m) => m?.value)).toEqual([undefined, 'fine', undefined]);
    expect(metrics.errors).toHaveLength(5);
    expect(metrics.errors[4]).toEqual(['l2', 'get_many', 'serialization_error']);
    // A non-string Redis type under our prefix reads as a miss (MGET answers nil for it, as getMany
    // always did), never crashes; a write over it rejects as a Redis error (WRONGTYPE), even right
    // after that miss (its SET NX finds the key, the compare-and-set script fails on it).
    await raw.rpush(`${prefix}corrupt:list`, 'x');
    expect(await tier.get('corrupt:list')).toBeUndefined();
    // The callback form answers the same.
    const viaCallbacks = (k: string) =>
      new Promise<unknown>((resolve, reject) => tier.getWith(k, { ok: resolve, failed: reject }));
    expect(await viaCallbacks('corrupt:2')).toBeUndefined();
    expect(metrics.errors).toHaveLength(6);
    expect(await viaCallbacks('corrupt:list')).toBeUndefined();
    await expect(tier.set('corrupt:list', entry('over a list'))).rejects.toMatchObject({
      code: 'E_L2_REDIS',
    });
    expect(await raw.lrange(`${prefix}corrupt:list`, 0, -1)).toEqual(['x']);
  });

  it('answers getWith through the compressed path as get does', async () => {
    const zipped = new RedisTier({ client: raw, prefix: `${prefix}zip:`, compressThresholdBytes: 10 });
    const value = { text: 'compress me '.repeat(50) };
    await zipped.set('big', entry(value));
    expect(await raw.get(`${prefix}zip:big`)).toContain('"z":"gzip"');
    const got = await new Promise<CacheEntry | undefined>((resolve, reject) =>
      zipped.getWith('big', { ok: resolve, failed: reject }),
    );
    expect(got?.value).toEqual(value);
    await raw.set(`${prefix}zip:broken`, '{"v":1,"f":1,"s":9999999999999,"e":"json","z":"gzip","b":"AAAA"}');
    const broken = await new Promise<CacheEntry | undefined>((resolve, reject) =>
      zipped.getWith('broken', { ok: resolve, failed: reject }),
    );
    expect(broken).toBeUndefined();
  });

  it('reports the stored size and keeps meta', async () => {
    await tier.set('meta', { ...entry([1, 2, 3]), meta: { negative: true, source: 'api' } });
    const got = await tier.get('meta');
    expect(got?.meta).toEqual({ negative: true, source: 'api' });
    expect(got?.size).toBe(Buffer.byteLength((await raw.get(`${prefix}meta`))!));
  });

  it('refuses values over maxValueBytes before Redis, dropping the old value', async () => {
    const small = new RedisTier({ client: raw, prefix, maxValueBytes: 1000 });
    await small.set('big', entry('ok'));
    await expect(small.set('big', entry('é'.repeat(600)))).rejects.toThrow(InvalidValueError);
    await expect(small.set('big', entry('x'.repeat(2000)))).rejects.toThrow(
      /over the Redis tier's limit of 1000 bytes/,
    );
    expect(await raw.exists(`${prefix}big`)).toBe(0);
    await small.set('big', entry('x'.repeat(500)));
    expect((await small.get('big'))?.value).toBe('x'.repeat(500));
    await expect(
      small.set(
        'fn',
        entry(() => 1),
      ),
    ).rejects.toThrow(InvalidValueError);
    await expect(small.setMany([{ key: 'a', entry: entry('x'.repeat(2000)) }])).rejects.toThrow(
      InvalidValueError,
    );
    // A batch with a refused value (thrown at once, or refused after dropping its key) writes
    // nothing, and every refused key's previous value is gone.
    await small.set('was', entry('previous'));
    await small.set('was2', entry('previous'));
    const badVersion = { ...entry('bad'), version: -1 };
    for (const batch of [
      [
        { key: 'ok1', entry: entry('fine') },
        { key: 'was', entry: entry('x'.repeat(2000)) },
        { key: 'bad', entry: badVersion },
      ],
      [
        { key: 'bad', entry: badVersion },
        { key: 'ok1', entry: entry('fine') },
        { key: 'was2', entry: entry('x'.repeat(2000)) },
      ],
    ])
      await expect(small.setMany(batch)).rejects.toThrow(InvalidValueError);
    expect(await small.getMany(['ok1', 'was', 'was2', 'bad'])).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    await small.close();
  });

  it('deletes instead of writing an already expired entry', async () => {
    await tier.set('expired', entry('alive'));
    const now = Date.now();
    await tier.set('expired', { value: 'dead', freshUntil: now - 10, staleUntil: now - 1 });
    expect(await raw.exists(`${prefix}expired`)).toBe(0);
    await tier.setMany([
      { key: 'sm:live', entry: entry(1) },
      { key: 'sm:dead', entry: { value: 2, freshUntil: now - 10, staleUntil: now - 1 } },
    ]);
    expect(await raw.exists(`${prefix}sm:live`, `${prefix}sm:dead`)).toBe(1);
    await tier.setMany([]);
    expect(await tier.deleteMany([])).toBe(0);
  });

  it('clear() removes only keys under its prefix (glob characters in the prefix are escaped)', async () => {
    const base = uniquePrefix('glob');
    const globTier = new RedisTier({ client: raw, prefix: `${base}a*[x]?:`, clearBatchSize: 7 });
    const lookalike = `${base}ab[x]z:other`;
    await raw.set(lookalike, 'must survive', 'PX', 60_000);
    await raw.set(`${base}outside`, 'must survive', 'PX', 60_000);
    await globTier.setMany(Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, entry: entry(i) })));
    await globTier.clear();
    expect(await raw.exists(lookalike, `${base}outside`)).toBe(2);
    expect((await globTier.getMany(['k0', 'k39'])).every((e) => e === undefined)).toBe(true);
    expect(escapeGlob('a*b?c[d]e\\')).toBe('a\\*b\\?c\\[d\\]e\\\\');
    await raw.del(lookalike, `${base}outside`);
    await globTier.close();
  });

  it('clear({ version }) removes keys without a readable version (pre-version envelope, other types), keeps newer ones', async () => {
    const base = uniquePrefix('clear-foreign');
    const t = new RedisTier({ client: raw, prefix: base, clearBatchSize: 3 });
    const now = Date.now();
    await raw.set(`${base}legacy`, `{"v":1,"f":${now + 60_000},"s":${now + 120_000},"d":1}`, 'PX', 60_000);
    await raw.set(`${base}foreign`, 'not an envelope', 'PX', 60_000);
    await raw.hset(`${base}hash`, 'f', '1');
    await raw.rpush(`${base}list`, 'a');
    const clearAt = nextVersion();
    await t.set('newer', { ...entry('kept'), version: nextVersion() });
    await t.clear({ version: clearAt });
    expect(await raw.exists(`${base}legacy`, `${base}foreign`, `${base}hash`, `${base}list`)).toBe(0);
    expect((await t.get('newer'))?.value).toBe('kept');
    await t.clear();
    expect(await t.get('newer')).toBeUndefined();
    await t.close();
  });

  it('wraps connection failures in typed errors without leaking the password', async () => {
    const down = new RedisTier({
      host: '127.0.0.1',
      port: 1,
      password: 'hunter2-secret',
      connectTimeoutMs: 200,
      prefix,
    });
    const errors = await Promise.allSettled([
      down.get('a'),
      down.set('a', entry(1)),
      down.delete('a'),
      down.getMany(['a']),
      down.setMany([{ key: 'a', entry: entry(1) }]),
      down.deleteMany(['a']),
      down.clear(),
      down.ping(),
    ]);
    for (const r of errors) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason;
      expect(TierError.isInstance(err)).toBe(true);
      expect(err.code).toBe('E_L2_CONNECTION');
      expect(`${err.message} ${String(err.cause?.message)} ${JSON.stringify(err)}`).not.toContain('hunter2');
    }
    await down.close();
  });

  it('turns a command timeout into a TimeoutError', async () => {
    const slow = new RedisTier({ host: REDIS_HOST, port: REDIS_PORT, commandTimeoutMs: 50, prefix });
    await slow.ready();
    // DEBUG SLEEP would block the shared server; a blocking command on our own connection times out the same way.
    await expect((slow as unknown as { client: Redis }).client.blpop(`${prefix}never`, 1)).rejects.toThrow(
      /timed out/,
    );
    const origGet = slow.client.get.bind(slow.client);
    (slow.client as Redis).get = (() =>
      (slow.client as Redis).blpop(`${prefix}never`, 1)) as unknown as Redis['get'];
    await expect(slow.get('x')).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    (slow.client as Redis).get = origGet;
    await slow.close();
    await slow.close();
  });
});
