import { ConfigError } from '@bgc/cache-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../scripts/redis-servers.mjs';
import {
  createRedisClient,
  reconnectDelay,
  redactAddress,
  redisOptionsFromEnv,
  toIoredisOptions,
  waitForReady,
} from '../src/redis-client.js';
import { RedisTier } from '../src/redis-tier.js';
import { uniquePrefix } from './helpers.js';

describe('redisOptionsFromEnv', () => {
  it('reads the seed variables with resilient defaults', () => {
    expect(redisOptionsFromEnv({})).toEqual({
      host: 'localhost',
      port: 6379,
      maxRetriesPerRequest: 1,
      poolSize: 10,
    });
    expect(
      redisOptionsFromEnv({
        REDIS_ADDR: 'redis:6380',
        REDIS_PASSWORD: 'pw',
        REDIS_DB: '3',
        REDIS_MAX_RETRIES: '3',
        REDIS_POOL_SIZE: '20',
      }),
    ).toEqual({
      host: 'redis',
      port: 6380,
      password: 'pw',
      db: 3,
      maxRetriesPerRequest: 3,
      poolSize: 20,
    });
    expect(redisOptionsFromEnv({ REDIS_ADDR: 'rediss://app:s%40cret@cache.internal:6390/2' })).toEqual({
      host: 'cache.internal',
      port: 6390,
      username: 'app',
      password: 's@cret',
      db: 2,
      tls: true,
      maxRetriesPerRequest: 1,
      poolSize: 10,
    });
    expect(redisOptionsFromEnv({ REDIS_ADDR: 'redis://[::1]' })).toMatchObject({ host: '::1', port: 6379 });
    expect(redisOptionsFromEnv({ REDIS_ADDR: 'cache' })).toMatchObject({ host: 'cache', port: 6379 });
  });

  it('names the bad variable without echoing a password', () => {
    const bad = (env: Record<string, string>) => {
      try {
        redisOptionsFromEnv(env);
      } catch (error) {
        return error as ConfigError;
      }
      throw new Error('expected a ConfigError');
    };
    expect(bad({ REDIS_DB: '16' }).field).toBe('REDIS_DB');
    expect(bad({ REDIS_MAX_RETRIES: 'many' }).field).toBe('REDIS_MAX_RETRIES');
    const e = bad({ REDIS_ADDR: 'redis://u:topsecret@host:1/notadb' });
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.message).not.toContain('topsecret');
    expect(bad({ REDIS_ADDR: 'redis://u:topsecret@[bad' }).message).not.toContain('topsecret');
    expect(bad({ REDIS_ADDR: 'a b:c' }).field).toBe('REDIS_ADDR');
    expect(redactAddress('redis://user:pw@h:1')).toBe('redis://user:***@h:1');
  });
});

describe('createRedisClient', () => {
  it('applies the resilient settings of the resilience guide', () => {
    const o = toIoredisOptions({ url: 'rediss://h:7000', commandTimeoutMs: 80 });
    expect(o).toMatchObject({
      host: 'h',
      port: 7000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 80,
      connectTimeout: 1500,
      tls: {},
    });
    const delays = Array.from({ length: 30 }, (_, i) => o.retryStrategy!(i + 1));
    expect(delays.every((d) => typeof d === 'number' && d >= 50 && d < 5100)).toBe(true);
    expect(reconnectDelay(1_000, 2000)).toBeLessThan(2100);
    expect(toIoredisOptions({ tls: { rejectUnauthorized: true } }).tls).toEqual({ rejectUnauthorized: true });
  });

  it('fails fast while Redis is absent instead of queueing', async () => {
    const client = createRedisClient({ host: '127.0.0.1', port: 1, connectTimeoutMs: 200 });
    client.on('error', () => undefined);
    const t0 = Date.now();
    await expect(client.get('x')).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(500);
    await expect(waitForReady(client, 100)).rejects.toMatchObject({ code: 'E_TIMEOUT' });
    client.disconnect();
  });
});

describe('password and ACL user (own redis-server)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedis({ password: 'adm1n-pass' });
    server.cli('ACL', 'SETUSER', 'gateway', 'on', '>gw-pass', '~bgc:*', '+@all', '-@dangerous');
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('works as an ACL user limited to the prefix, which cannot FLUSHALL or KEYS', async () => {
    const prefix = `bgc:${uniquePrefix('acl')}`;
    const tier = new RedisTier({
      url: `redis://gateway:gw-pass@127.0.0.1:${server.port}`,
      prefix,
      commandTimeoutMs: 2000,
    });
    await tier.ready();
    const now = Date.now();
    await tier.set('k', { value: 'v', freshUntil: now + 60_000, staleUntil: now + 60_000 });
    expect((await tier.get('k'))?.value).toBe('v');
    await tier.clear();
    expect(await tier.get('k')).toBeUndefined();
    await expect(tier.client.flushall()).rejects.toThrow(/NOPERM/);
    await expect(tier.client.keys('*')).rejects.toThrow(/NOPERM/);
    await tier.close();
  });

  it('works with REDIS_PASSWORD from the environment, and a wrong password never shows up in errors', async () => {
    const tier = new RedisTier({
      ...redisOptionsFromEnv({ REDIS_ADDR: `127.0.0.1:${server.port}`, REDIS_PASSWORD: 'adm1n-pass' }),
      prefix: uniquePrefix('pw'),
    });
    await tier.ready();
    await expect(tier.ping()).resolves.toBeUndefined();
    await tier.close();

    const wrong = new RedisTier({
      host: '127.0.0.1',
      port: server.port,
      password: 'wr0ng-s3cret',
      prefix: 'x:',
      maxReconnectDelayMs: 100,
    });
    const error = await wrong.get('k').then(
      () => undefined,
      (e: unknown) => e as Error & { cause?: Error },
    );
    expect(error).toBeDefined();
    expect(
      `${error!.message} ${error!.cause?.message} ${JSON.stringify(error)} ${error!.stack}`,
    ).not.toContain('wr0ng-s3cret');
    await wrong.close();
  });
});
