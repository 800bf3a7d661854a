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

  it('delivers a delete to the other instance within 100 ms, keys only, and ignores its own', async () => {
    const t0 = Date.now();
    await one.publish({ type: 'delete', keys: ['comexstat:exp:2024:03', 'k:2'] });
    const elapsed = await waitUntil(() => gotTwo.length > 0, 1000);
    expect(elapsed).toBeGreaterThanOrEqual(0);
    expect(Date.now() - t0).toBeLessThan(100);
    expect(gotTwo).toEqual([{ type: 'delete', keys: ['comexstat:exp:2024:03', 'k:2'] }]);
    await sleep(50);
    expect(gotOne).toEqual([]);
    await two.publish({ type: 'clear' });
    await waitUntil(() => gotOne.length > 0, 1000);
    expect(gotOne).toEqual([{ type: 'clear' }]);
    expect(two.channel).toBe(`${prefix}invalidate`);
    expect(one.instanceId).not.toBe(two.instanceId);
  });

  it('ignores malformed or unsafe messages, counting them', async () => {
    gotOne.length = 0;
    await raw.publish(one.channel, 'not json');
    await raw.publish(one.channel, '{"i":"x","t":"delete","k":[1]}');
    await raw.publish(one.channel, '{"i":"x","__proto__":{"t":"clear"}}');
    await raw.publish(`${prefix}other-channel`, '{"i":"x","t":"clear"}');
    await waitUntil(() => metrics.errors.length >= 3, 1000);
    expect(gotOne).toEqual([]);
    expect(metrics.errors).toEqual(Array.from({ length: 3 }, () => ['l2', 'delete', 'serialization_error']));
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

  it('raises a local clear after the subscriber reconnects (messages may have been lost)', async () => {
    const server = await startRedis();
    const a = new RedisInvalidationBus({
      url: server.url,
      prefix,
      commandTimeoutMs: 2000,
      maxReconnectDelayMs: 100,
    });
    const heard: InvalidationMessage[] = [];
    a.subscribe((m) => heard.push(m));
    await a.ready();
    const clientList = server.cli('CLIENT', 'LIST');
    expect(clientList).toContain('name=bgc-cache-bus');
    server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    const elapsed = await waitUntil(() => heard.length > 0, 3000);
    expect(elapsed).toBeGreaterThanOrEqual(0);
    expect(heard[0]).toEqual({ type: 'clear' });
    // Still subscribed after the reconnect.
    const b = new RedisInvalidationBus({ url: server.url, prefix, commandTimeoutMs: 2000 });
    await b.ready().catch(() => undefined);
    await sleep(100);
    await b.publish({ type: 'delete', keys: ['after-reconnect'] });
    await waitUntil(() => heard.length > 1, 1000);
    expect(heard[1]).toEqual({ type: 'delete', keys: ['after-reconnect'] });
    await a.close();
    await b.close();
    await expect(b.publish({ type: 'clear' })).rejects.toMatchObject({ code: 'E_L2_CONNECTION' });
    await server.stop();
  });
});
