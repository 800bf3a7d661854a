import type { InvalidationMessage } from '@bgc/cache-core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from '../../../scripts/redis-servers.mjs';
import { RedisInvalidationBus } from '../src/redis-invalidation-bus.js';
import { REDIS_HOST, REDIS_PORT, recordingMetrics, sleep, uniquePrefix, waitUntil } from './helpers.js';

describe('RedisInvalidationBus on the real Redis', () => {
  const prefix = uniquePrefix('bus');
  let raw: Redis;
  let one: RedisInvalidationBus;
  let two: RedisInvalidationBus;
  const gotOne: InvalidationMessage[] = [];
  const gotTwo: InvalidationMessage[] = [];
  const metrics = recordingMetrics();

  beforeAll(async () => {
    raw = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    one = new RedisInvalidationBus({ client: raw, prefix, metrics });
    two = new RedisInvalidationBus({ host: REDIS_HOST, port: REDIS_PORT, prefix, commandTimeoutMs: 2000 });
    one.subscribe((m) => gotOne.push(m));
    two.subscribe((m) => gotTwo.push(m));
    await Promise.all([one.ready(), two.ready()]);
    await sleep(50);
  });
  afterAll(async () => {
    await one.close();
    await two.close();
    await two.close();
    expect(raw.status).toBe('ready');
    await raw.quit();
  });

  it('delivers a delete to the other instance, keys only, and ignores its own', async () => {
    await one.publish({ type: 'delete', keys: ['comexstat:exp:2024:03', 'k:2'] });
    const elapsed = await waitUntil(() => gotTwo.length > 0, 5000);
    expect(elapsed).toBeGreaterThanOrEqual(0);
    expect(gotTwo).toEqual([{ type: 'delete', keys: ['comexstat:exp:2024:03', 'k:2'] }]);
    await sleep(50);
    expect(gotOne).toEqual([]);
    await two.publish({ type: 'clear' });
    await waitUntil(() => gotOne.length > 0, 5000);
    expect(gotOne).toEqual([{ type: 'clear' }]);
    expect(two.channel).toBe(`${prefix}invalidate`);
    expect(one.instanceId).not.toBe(two.instanceId);
  });

  it('carries versions in delete, expire and clear messages; resync is never published', async () => {
    gotTwo.length = 0;
    await one.publish({ type: 'delete', keys: ['a'], version: 1_800_000_000_000_000 });
    await one.publish({ type: 'expire', keys: ['b', 'c'], version: 42 });
    await one.publish({ type: 'expire', keys: ['d'] });
    await one.publish({ type: 'clear', version: 43 });
    await one.publish({ type: 'resync' });
    await one.publish({ type: 'delete', keys: ['last'] });
    await waitUntil(() => gotTwo.length >= 5, 5000);
    await sleep(50);
    expect(gotTwo).toEqual([
      { type: 'delete', keys: ['a'], version: 1_800_000_000_000_000 },
      { type: 'expire', keys: ['b', 'c'], version: 42 },
      { type: 'expire', keys: ['d'] },
      { type: 'clear', version: 43 },
      { type: 'delete', keys: ['last'] },
    ]);
  });

  it('ignores malformed or unsafe messages, counting them', async () => {
    gotOne.length = 0;
    metrics.errors.length = 0;
    await raw.publish(one.channel, 'not json');
    await raw.publish(one.channel, '{"i":"x","t":"delete","k":[1]}');
    await raw.publish(one.channel, '{"i":"x","__proto__":{"t":"clear"}}');
    await raw.publish(one.channel, '{"i":"x","t":"delete","k":["a"],"n":-1}');
    await raw.publish(one.channel, '{"i":"x","t":"clear","n":"soon"}');
    await raw.publish(one.channel, '{"i":"x","t":"resync"}');
    await raw.publish(`${prefix}other-channel`, '{"i":"x","t":"clear"}');
    await waitUntil(() => metrics.errors.length >= 6, 5000);
    expect(gotOne).toEqual([]);
    expect(metrics.errors).toEqual(Array.from({ length: 6 }, () => ['l2', 'delete', 'serialization_error']));
  });

  it('a bus with another prefix (another environment) hears nothing', async () => {
    const other = new RedisInvalidationBus({ client: raw, prefix: uniquePrefix('env') });
    const heard: InvalidationMessage[] = [];
    other.subscribe((m) => heard.push(m));
    await other.ready();
    await one.publish({ type: 'delete', keys: ['x'] });
    await sleep(50);
    expect(heard).toEqual([]);
    await other.close();
    await expect(new RedisInvalidationBus({ client: raw }).ready()).rejects.toMatchObject({
      code: 'E_BUS_NOT_SUBSCRIBED',
    });
  });

  it('raises a local resync (not a clear) when the subscriber loses its connection and when it is back', async () => {
    const server = await startRedis();
    const a = new RedisInvalidationBus({
      url: server.url,
      prefix,
      commandTimeoutMs: 2000,
      maxReconnectDelayMs: 100,
    });
    const heard: InvalidationMessage[] = [];
    a.subscribe((m) => heard.push(m));
    await a.connect();
    const clientList = server.cli('CLIENT', 'LIST');
    expect(clientList).toContain('name=bgc-cache-bus');
    server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    const elapsed = await waitUntil(() => heard.length >= 2, 10_000);
    expect(elapsed).toBeGreaterThanOrEqual(0);
    expect(heard).toEqual([{ type: 'resync' }, { type: 'resync' }]);
    await a.ready(10_000);
    // Still subscribed after the reconnect.
    const b = new RedisInvalidationBus({ url: server.url, prefix, commandTimeoutMs: 2000 });
    await b.connect();
    await b.publish({ type: 'delete', keys: ['after-reconnect'] });
    await waitUntil(() => heard.length > 2, 5000);
    expect(heard[2]).toEqual({ type: 'delete', keys: ['after-reconnect'] });
    await a.close();
    await b.close();
    await expect(b.publish({ type: 'clear' })).rejects.toMatchObject({ code: 'E_L2_CONNECTION' });
    await server.stop();
  });
});
