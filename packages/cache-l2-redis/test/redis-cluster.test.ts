import type { InvalidationMessage } from '@bgc/cache-core';
import { runTierConformance } from '@bgc/cache-core/testing';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisCluster, startRedisCluster } from '../../../scripts/redis-servers.mjs';
import { keySlot } from '../src/key-slot.js';
import { RedisInvalidationBus } from '../src/redis-invalidation-bus.js';
import { RedisLock } from '../src/redis-lock.js';
import { RedisTier } from '../src/redis-tier.js';
import { sleep, uniquePrefix, waitUntil } from './helpers.js';

let started: Promise<RedisCluster> | undefined;
const cluster = () => (started ??= startRedisCluster({ masters: 3 }));
afterAll(async () => {
  await (await started)?.stop();
});

const confPrefix = uniquePrefix('cluster-conf');
runTierConformance('redis (3-master cluster)', async () => {
  const c = await cluster();
  const tier = new RedisTier({ cluster: c.startupNodes, prefix: confPrefix, commandTimeoutMs: 2000 });
  await tier.ready(10_000);
  return tier;
});

describe('RedisTier, bus and lock on a 3-master cluster', () => {
  let c: RedisCluster;
  let client: Cluster;
  const prefix = uniquePrefix('cluster');
  const entry = (value: unknown) => ({
    value,
    freshUntil: Date.now() + 60_000,
    staleUntil: Date.now() + 120_000,
  });

  beforeAll(async () => {
    c = await cluster();
    client = new Cluster(c.startupNodes);
    await new Promise((r) => client.once('ready', r));
  });
  afterAll(async () => {
    await client.quit();
  });

  it('computes hash slots as Redis does (hash tags included)', async () => {
    for (const key of ['a', 'bgc:cache:x', 'ключ:日本:🚢', 'user:{42}:profile', '{}', 'x{}y', '{a}{b}']) {
      expect(keySlot(key)).toBe(Number(await client.cluster('KEYSLOT', key)));
    }
  });

  it('spreads keys over every master, and getMany/setMany/deleteMany/clear work across slots', async () => {
    const tier = new RedisTier({ client, prefix });
    const keys = Array.from({ length: 60 }, (_, i) => `k:${i}`);
    await tier.setMany(keys.map((key, i) => ({ key, entry: entry(i) })));
    const perNode = c.nodes.map((n) => Number(n.cli('DBSIZE')));
    expect(perNode.filter((n) => n > 0)).toHaveLength(3);
    const got = await tier.getMany(['missing', ...keys]);
    expect(got.map((g) => g?.value)).toEqual([undefined, ...keys.map((_, i) => i)]);
    expect(await tier.deleteMany(keys.slice(0, 10))).toBe(10);
    const now = Date.now();
    await tier.setMany([{ key: 'k:10', entry: { value: 'dead', freshUntil: now - 2, staleUntil: now - 1 } }]);
    expect(await tier.get('k:10')).toBeUndefined();
    await tier.clear();
    expect((await tier.getMany(keys)).every((g) => g === undefined)).toBe(true);
    await tier.ping();
    await tier.close();
    expect(client.status).toBe('ready');
  });

  it('bus: sharded pub/sub delivers a delete to the other instance within 100 ms, ignoring its own', async () => {
    const one = new RedisInvalidationBus({ client, prefix });
    const two = new RedisInvalidationBus({ cluster: c.startupNodes, prefix, commandTimeoutMs: 2000 });
    expect(one.sharded).toBe(true);
    const heardOne: InvalidationMessage[] = [];
    const heardTwo: InvalidationMessage[] = [];
    one.subscribe((m) => heardOne.push(m));
    two.subscribe((m) => heardTwo.push(m));
    await Promise.all([one.ready(10_000), two.ready(10_000)]);
    await sleep(100);
    const t0 = Date.now();
    await one.publish({ type: 'delete', keys: ['a', 'b'] });
    expect(await waitUntil(() => heardTwo.length > 0, 1000)).toBeGreaterThanOrEqual(0);
    expect(Date.now() - t0).toBeLessThan(100);
    expect(heardTwo).toEqual([{ type: 'delete', keys: ['a', 'b'] }]);
    await sleep(50);
    expect(heardOne).toEqual([]);
    await one.close();
    await two.close();
  });

  it('bus: regular pub/sub also works under Cluster when sharding is off', async () => {
    const one = new RedisInvalidationBus({ client, prefix, sharded: false });
    const two = new RedisInvalidationBus({ client, prefix, sharded: false });
    const heard: InvalidationMessage[] = [];
    two.subscribe((m) => heard.push(m));
    one.subscribe(() => undefined);
    await Promise.all([one.ready(10_000), two.ready(10_000)]);
    await sleep(100);
    await one.publish({ type: 'clear' });
    expect(await waitUntil(() => heard.length > 0, 1000)).toBeGreaterThanOrEqual(0);
    expect(heard).toEqual([{ type: 'clear' }]);
    await one.close();
    await two.close();
  });

  it('lock: exclusive across instances, released by the owner', async () => {
    const a = new RedisLock({ client, prefix });
    const b = new RedisLock({ client, prefix, pollIntervalMs: 5 });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).tryAcquire('lock', 5000)),
    );
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toHaveLength(1);
    const wait = b.waitForRelease('lock', 5000);
    await winners[0]!.release();
    await wait;
    expect(await client.exists(`${prefix}lock`)).toBe(0);
    await a.close();
    await b.close();
  });
});
