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
    // A queued command would wait for a connection that never comes (reconnects go on for good);
    // failing fast rejects at once. The bound only tells those two apart, with room for a loaded machine.
    expect(Date.now() - t0).toBeLessThan(5000);
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

describe('addresses with secrets (issue 22, review finding 10)', () => {
  const cases: [
    string,
    string,
    { host: string; port?: number; username?: string; password: string; db?: number; tls?: boolean },
  ][] = [
    [
      'base64 password with / + =',
      'redis://app:ab/cd+ef==@cache:6380/2',
      { host: 'cache', port: 6380, username: 'app', password: 'ab/cd+ef==', db: 2 },
    ],
    ['password only, with /', 'redis://:s3cr/et@h', { host: 'h', password: 's3cr/et' }],
    [
      'password with @',
      'redis://u:pw1@zz9@h:6379',
      { host: 'h', port: 6379, username: 'u', password: 'pw1@zz9' },
    ],
    ['percent-encoded password', 'redis://u:pa%2Fss@h', { host: 'h', username: 'u', password: 'pa/ss' }],
    ['raw % in the password', 'redis://u:100%zz@h', { host: 'h', username: 'u', password: '100%zz' }],
    ['password with :', 'redis://u:a:b:c@h', { host: 'h', username: 'u', password: 'a:b:c' }],
    [
      'TLS, every special character',
      'rediss://u:p/w@x+y%z:1@h:7000/1',
      { host: 'h', port: 7000, username: 'u', password: 'p/w@x+y%z:1', db: 1, tls: true },
    ],
    [
      '?password= with @ and /',
      'redis://h:6379/0?password=pw1@zz9/x',
      { host: 'h', port: 6379, password: 'pw1@zz9/x', db: 0 },
    ],
    [
      '?password= encoded, db in the query',
      'redis://h?password=se%2Bcret&db=3',
      { host: 'h', password: 'se+cret', db: 3 },
    ],
    [
      'host:port with credentials',
      'user:pw/x@host:6379',
      { host: 'host', port: 6379, username: 'user', password: 'pw/x' },
    ],
  ];

  it.each(cases)('%s: parses, and the redacted form never shows the password', (_label, addr, want) => {
    const got = redisOptionsFromEnv({ REDIS_ADDR: addr });
    expect(got).toMatchObject(want);
    const shown = redactAddress(addr);
    expect(shown).not.toContain(want.password);
    expect(shown).not.toContain(encodeURIComponent(want.password));
    // Not even a tail of it (the old redaction left `ss@h` of `p@ss`).
    for (const piece of want.password.split(/[/@+%:=]/).filter((p) => p.length >= 3))
      expect(shown).not.toContain(piece);
    expect(shown).toContain(want.host);
    expect(shown).toContain('***');
  });

  it.each([
    ['bad port', 'redis://u:s3cr/et@h:99999', 's3cr/et'],
    ['database not a number', 'redis://u:top/secret@host:1/notadb', 'top/secret'],
    ['database with @ in the password', 'redis://u:pw1@zz9@h/abc', 'pw1@zz9'],
    ['unparseable host', 'redis://u:top/secret@[bad', 'top/secret'],
    ['query password and a bad db', 'redis://h/x?password=hunter2&a=b', 'hunter2'],
  ])('%s: a ConfigError naming REDIS_ADDR, without the password', (_label, addr, password) => {
    let error: unknown;
    try {
      redisOptionsFromEnv({ REDIS_ADDR: addr });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = `${(error as Error).message} ${JSON.stringify(error)} ${(error as Error).stack}`;
    expect(text).toContain('REDIS_ADDR');
    for (const piece of password.split(/[/@]/).filter((p) => p.length >= 3))
      expect(text).not.toContain(piece);
  });

  it('a user without a password (the gateway ACL user) is a username, its password from REDIS_PASSWORD', () => {
    expect(
      redisOptionsFromEnv({ REDIS_ADDR: 'redis://gateway@redis:6379', REDIS_PASSWORD: 's3cr/et' }),
    ).toMatchObject({
      host: 'redis',
      port: 6379,
      username: 'gateway',
      password: 's3cr/et',
    });
    expect(redisOptionsFromEnv({ REDIS_ADDR: 'redis://gateway@redis:6379' }).password).toBeUndefined();
  });

  it('redacts secrets in query parameters and unparseable credentials', () => {
    expect(redactAddress('redis://h:1/0?password=abc&db=1')).toBe('redis://h:1/0?password=***&db=1');
    expect(redactAddress('redis://h:1?token=abc;auth=def')).toBe('redis://h:1?token=***;auth=***');
    expect(redactAddress('redis://secretonly@h:1')).toBe('redis://***@h:1');
    expect(redactAddress('redis://u:pw@[bad')).not.toContain('pw');
    expect(redactAddress('redis://h:6379')).toBe('redis://h:6379');
  });

  it('connects to a Redis whose password holds / @ + % : given raw in REDIS_ADDR', async () => {
    const password = 'p/w@x+y%z:1';
    const server = await startRedis({ password });
    try {
      const options = redisOptionsFromEnv({ REDIS_ADDR: `redis://:${password}@127.0.0.1:${server.port}` });
      expect(options.password).toBe(password);
      const tier = new RedisTier({ ...options, prefix: uniquePrefix('pw-special'), commandTimeoutMs: 2000 });
      await tier.connect();
      await tier.ping();
      await tier.close();
    } finally {
      await server.stop();
    }
  });
});
