import { execFileSync } from 'node:child_process';
import { ConfigError } from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import { DEFAULT_LOCK_PREFIX, RedisLock } from '../src/redis-lock.js';
import { DEFAULT_COORDINATION_PREFIX, DEFAULT_PREFIX, RedisTier } from '../src/redis-tier.js';
import { REDIS_HOST, REDIS_PORT, sleep, uniquePrefix } from './helpers.js';

/** Calls of one command since the last `CONFIG RESETSTAT`, from `INFO commandstats`. */
function calls(server: RedisServer, command: string): number {
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(server.cli('INFO', 'commandstats'));
  return m ? Number(m[1]) : 0;
}

describe('RedisLock on the real Redis', () => {
  const prefix = uniquePrefix('lock');
  let raw: Redis;
  let a: RedisLock;
  let b: RedisLock;

  beforeAll(async () => {
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    a = new RedisLock({ client: raw, prefix });
    b = new RedisLock({
      host: REDIS_HOST,
      port: REDIS_PORT,
      prefix,
      pollIntervalMs: 50,
      commandTimeoutMs: 2000,
    });
    await Promise.all([a.connect(), b.connect()]);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    expect(raw.status).toBe('ready');
    await raw.quit();
  });

  it('keeps its keys under the coordination namespace by default, apart from the cache prefix', () => {
    expect(DEFAULT_LOCK_PREFIX.startsWith(DEFAULT_COORDINATION_PREFIX)).toBe(true);
    expect(DEFAULT_LOCK_PREFIX.startsWith(DEFAULT_PREFIX)).toBe(false);
    const lock = new RedisLock({ client: raw });
    expect(lock.prefix).toBe('bgc:x:lock:');
    expect(lock.channel).toBe('bgc:x:lock:released');
    expect(() => new RedisLock({ client: raw, prefix: '' })).toThrow(ConfigError);
  });

  it('is exclusive: of 20 concurrent acquirers exactly one gets the lease', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).tryAcquire('exclusive', 5000)),
    );
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toHaveLength(1);
    await winners[0]!.release();
    expect(await raw.exists(`${prefix}exclusive`)).toBe(0);
    const again = await b.tryAcquire('exclusive', 5000);
    expect(again).toBeDefined();
    await again!.release();
    await again!.release();
  });

  it('is released only by its owner (compare-and-delete)', async () => {
    const lease = await a.tryAcquire('owner', 200);
    expect(lease).toBeDefined();
    await lease!.release();
    // b takes it after a released; a's stale release must not remove b's lease.
    const leaseB = await b.tryAcquire('owner', 5000);
    expect(leaseB).toBeDefined();
    await lease!.release();
    expect(await raw.exists(`${prefix}owner`)).toBe(1);
    // Someone else's token in the key: a late release of b does nothing.
    await raw.set(`${prefix}owner`, 'someone-else', 'PX', 5000);
    await leaseB!.release();
    expect(await raw.get(`${prefix}owner`)).toBe('someone-else');
    await raw.del(`${prefix}owner`);
  });

  it('releases and renews after SCRIPT FLUSH (the scripts run by SHA, EVAL on NOSCRIPT)', async () => {
    const flush = () =>
      execFileSync('redis-cli', ['-h', REDIS_HOST, '-p', String(REDIS_PORT), 'SCRIPT', 'FLUSH'], {
        encoding: 'utf8',
      });
    const lock = new RedisLock({ client: raw, prefix, renewFraction: 0.1 });
    const lease = await lock.tryAcquire('flushed', 300);
    expect(lease).toBeDefined();
    flush();
    // Renewed every 30 ms past its 300 ms lease, through a flushed script cache.
    await sleep(450);
    expect(await raw.exists(`${prefix}flushed`)).toBe(1);
    flush();
    await lease!.release();
    expect(await raw.exists(`${prefix}flushed`)).toBe(0);
    await lock.close();
  });

  it('renews the lease while held, and stops renewing once lost or released', async () => {
    const lease = await a.tryAcquire('renew', 300);
    await sleep(900);
    const pttl = await raw.pttl(`${prefix}renew`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    expect(await b.tryAcquire('renew', 300)).toBeUndefined();
    await lease!.release();
    expect(await raw.exists(`${prefix}renew`)).toBe(0);

    const lost = await a.tryAcquire('renew-lost', 300);
    await raw.set(`${prefix}renew-lost`, 'stolen', 'PX', 60_000);
    await sleep(250);
    expect(await raw.pttl(`${prefix}renew-lost`)).toBeGreaterThan(50_000);
    await lost!.release();
    expect(await raw.get(`${prefix}renew-lost`)).toBe('stolen');
    await raw.del(`${prefix}renew-lost`);
  });

  it('a crashed holder (no release message) is noticed by the fallback check once its lease expires', async () => {
    await raw.set(`${prefix}crashed`, 'dead-holder', 'PX', 150);
    expect(await a.tryAcquire('crashed', 1000)).toBeUndefined();
    await b.waitForRelease('crashed', 60_000);
    expect(await raw.exists(`${prefix}crashed`)).toBe(0);
    const lease = await a.tryAcquire('crashed', 1000);
    expect(lease).toBeDefined();
    await lease!.release();
  });

  it('waiters are woken by the release message, not by polling', async () => {
    // A fallback check far beyond the test: only the message can wake the waiters.
    const quiet = new RedisLock({ host: REDIS_HOST, port: REDIS_PORT, prefix, pollIntervalMs: 600_000 });
    await quiet.connect();
    const lease = await a.tryAcquire('wake', 60_000);
    let released = 0;
    const waiters = Array.from({ length: 50 }, () =>
      quiet.waitForRelease('wake', 600_000).then(() => released++),
    );
    await sleep(200);
    expect(released).toBe(0);
    await lease!.release();
    await Promise.all(waiters);
    expect(released).toBe(50);
    await quiet.close();
  });

  it('waitForRelease honours its timeout while the lease is still held, and resolves at once when none is', async () => {
    const held = await a.tryAcquire('wait-timeout', 60_000);
    await b.waitForRelease('wait-timeout', 120);
    expect(await raw.exists(`${prefix}wait-timeout`)).toBe(1);
    await held!.release();
    await b.waitForRelease('never-held', 600_000);
  });

  it('close() releases held leases (announcing them) and wakes its waiters', async () => {
    const closing = new RedisLock({ host: REDIS_HOST, port: REDIS_PORT, prefix, pollIntervalMs: 600_000 });
    await closing.connect();
    const lease = await closing.tryAcquire('closing', 60_000);
    expect(lease).toBeDefined();
    const otherHolder = await a.tryAcquire('held-elsewhere', 60_000);
    const waitingOnClose = closing.waitForRelease('held-elsewhere', 600_000);
    const waitingOnRelease = b.waitForRelease('closing', 600_000);
    await closing.close();
    await waitingOnClose;
    await waitingOnRelease;
    expect(await raw.exists(`${prefix}closing`)).toBe(0);
    await closing.close();
    await closing.waitForRelease('anything', 600_000);
    await otherHolder!.release();
  });

  it('rejects with a typed error when Redis is unreachable, and waiters give up at once', async () => {
    const down = new RedisLock({ host: '127.0.0.1', port: 1, connectTimeoutMs: 100, prefix });
    await expect(down.tryAcquire('x', 1000)).rejects.toMatchObject({
      code: 'E_L2_CONNECTION',
      errorType: 'connection_error',
    });
    await down.waitForRelease('x', 600_000);
    await down.close();
    await expect(a.tryAcquire('x', 0)).rejects.toThrow(ConfigError);
    expect(() => new RedisLock({ client: raw, pollIntervalMs: 0 })).toThrow(ConfigError);
    expect(() => new RedisLock({ client: raw, renewFraction: 1 })).toThrow(ConfigError);
  });
});

describe('RedisLock waiting keeps Redis load flat (issue 15)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('2,000 waiting keys cost one EXISTS each at the start plus one per fallback interval, and one PUBLISH per release', async () => {
    const holder = new RedisLock({ url: server.url, commandTimeoutMs: 5000 });
    const waiter = new RedisLock({ url: server.url, commandTimeoutMs: 5000, pollIntervalMs: 1000 });
    await Promise.all([holder.connect(), waiter.connect()]);
    const n = 2000;
    const leases = await Promise.all(Array.from({ length: n }, (_, i) => holder.tryAcquire(`k${i}`, 60_000)));
    expect(leases.every(Boolean)).toBe(true);
    server.cli('CONFIG', 'RESETSTAT');
    let woken = 0;
    const waits = Array.from({ length: n }, (_, i) =>
      waiter.waitForRelease(`k${i}`, 600_000).then(() => woken++),
    );
    // Let the waiters sit through at least two fallback intervals.
    await sleep(2500);
    expect(woken).toBe(0);
    const existsWhileWaiting = calls(server, 'exists');
    // Initial checks (n) plus at most one per key per interval: ~3n for 2.5 s. A 20 ms poller
    // (the previous design) would have sent ~125n.
    expect(existsWhileWaiting).toBeGreaterThanOrEqual(n);
    expect(existsWhileWaiting).toBeLessThanOrEqual(n * 4);
    // One subscriber connection for every key.
    expect(calls(server, 'subscribe')).toBe(1);
    await Promise.all(leases.map((l) => l!.release()));
    await Promise.all(waits);
    expect(woken).toBe(n);
    expect(calls(server, 'publish')).toBe(n);
    await holder.close();
    await waiter.close();
  }, 60_000);
});

describe('RedisLock.tryAcquireAndRead: the miss path in one round trip (issue 18)', () => {
  const prefix = uniquePrefix('acq-read');
  let raw: Redis;
  let other: Redis;
  let lock: RedisLock;
  let tier: RedisTier;
  const entry = (value: unknown, ttlMs = 60_000) => {
    const now = Date.now();
    return { value, freshUntil: now + ttlMs, staleUntil: now + ttlMs + 60_000, version: nextVersion() };
  };
  beforeAll(async () => {
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    other = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    lock = new RedisLock({ client: raw, prefix: `${prefix}x:` });
    tier = new RedisTier({ client: raw, prefix: `${prefix}c:`, coordinationPrefixes: [`${prefix}x:`] });
    await tier.connect();
  });
  afterAll(async () => {
    await tier.clear();
    await lock.close();
    await Promise.all([raw.quit(), other.quit()]);
  });

  it.each([
    ['same client (one socket write)', () => tier],
    [
      'concurrently (tier on another client)',
      () => new RedisTier({ client: other, prefix: `${prefix}c:`, coordinationPrefixes: [`${prefix}x:`] }),
    ],
  ])(
    '%s: a miss takes the lease, a fresh hit gives it back, a held lease reads only',
    async (_l, makeTier) => {
      const t = makeTier();
      const k = `key-${Math.random()}`;
      const miss = await lock.tryAcquireAndRead(k, 5000, t);
      expect(miss.entry).toBeUndefined();
      expect(miss.lease).toBeDefined();
      expect(await raw.exists(`${prefix}x:${k}`)).toBe(1);
      // Another instance: the lease is held, it reads (still a miss) and waits.
      const busy = await lock.tryAcquireAndRead(k, 5000, t);
      expect(busy.lease).toBeUndefined();
      expect(busy.entry).toBeUndefined();
      await t.set(k, entry('loaded'));
      await miss.lease!.release();
      // The value landed: a later miss path sees it and holds no lease.
      const hit = await lock.tryAcquireAndRead(k, 5000, t);
      expect(hit.lease).toBeUndefined();
      expect(hit.entry?.value).toBe('loaded');
      expect(await raw.exists(`${prefix}x:${k}`)).toBe(0);
      // A stale entry is returned with the lease (the caller refreshes it).
      await t.set(k, { ...entry('stale'), freshUntil: Date.now() - 1, version: nextVersion() });
      const stale = await lock.tryAcquireAndRead(k, 5000, t);
      expect(stale.entry?.value).toBe('stale');
      expect(stale.lease).toBeDefined();
      await stale.lease!.release();
    },
  );

  it('reports a failed read beside the lease, and a failed lease as a typed error', async () => {
    const broken = { get: () => Promise.reject(new Error('tier down')) } as unknown as RedisTier;
    const r = await lock.tryAcquireAndRead('broken-read', 5000, broken);
    expect(r.lease).toBeDefined();
    expect((r.readError as Error).message).toBe('tier down');
    await r.lease!.release();
    const down = new RedisLock({ host: '127.0.0.1', port: 1, connectTimeoutMs: 100 });
    await expect(down.tryAcquireAndRead('x', 1000, tier)).rejects.toMatchObject({ code: 'E_L2_CONNECTION' });
    await down.close();
  });
});

describe('RedisLock: a lease attempt whose reply timed out', () => {
  const prefix = uniquePrefix('lock-late');
  let raw: Redis;
  beforeAll(() => {
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
  });
  afterAll(async () => {
    await raw.quit();
  });

  for (const how of ['tryAcquire', 'tryAcquireAndRead'] as const) {
    it(`${how}: the SET that still ran on the server is given back by its token (no lease held by nobody)`, async () => {
      // The lock's own connection is held by a blocking command: the SET queued behind it times out
      // on the client (commandTimeout 50 ms) but runs on the server once the BLPOP returns.
      const client = new Redis({ host: REDIS_HOST, port: REDIS_PORT, commandTimeout: 50 });
      const lock = new RedisLock({ client, prefix });
      const tier = new RedisTier({ host: REDIS_HOST, port: REDIS_PORT, prefix: `${prefix}t:` });
      await Promise.all([lock.connect(), tier.ready()]);
      client.blpop(`${prefix}never`, 0.3).catch(() => {});
      const key = `k-${how}`;
      const attempt =
        how === 'tryAcquire' ? lock.tryAcquire(key, 60_000) : lock.tryAcquireAndRead(key, 60_000, tier);
      await expect(attempt).rejects.toMatchObject({ code: 'E_TIMEOUT' });
      // After the BLPOP (300 ms), the SET and then the release by token run in order; a PING on the
      // same connection answers after both.
      await sleep(300);
      for (let i = 0; i < 20; i++) if ((await client.ping().catch(() => 'late')) === 'PONG') break;
      expect(await raw.exists(`${prefix}${key}`)).toBe(0);
      const other = new RedisLock({ client: raw, prefix });
      const lease = await other.tryAcquire(key, 1000);
      expect(lease).toBeDefined();
      await lease?.release();
      await lock.close();
      await tier.close();
      await client.quit();
    });
  }
});
