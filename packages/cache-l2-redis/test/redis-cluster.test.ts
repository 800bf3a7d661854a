import type { InvalidationMessage } from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import { runTierConformance } from '@bgc/cache-core/testing';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisCluster, startRedisCluster } from '../../../scripts/redis-servers.mjs';
import { keySlot } from '../src/key-slot.js';
import { RedisInvalidationBus } from '../src/redis-invalidation-bus.js';
import { RedisLock } from '../src/redis-lock.js';
import { escapeGlob, RedisTier } from '../src/redis-tier.js';
import { coherenceCases } from './coherence-cases.js';
import { sleep, uniquePrefix, waitUntil } from './helpers.js';

let started: Promise<RedisCluster> | undefined;
const cluster = () => (started ??= startRedisCluster({ masters: 3 }));
afterAll(async () => {
  await (await started)?.stop();
});

const confPrefix = uniquePrefix('cluster-conf');
runTierConformance(
  'redis (3-master cluster)',
  async () => {
    const c = await cluster();
    const tier = new RedisTier({ cluster: c.startupNodes, prefix: confPrefix, commandTimeoutMs: 2000 });
    await tier.connect(10_000);
    return tier;
  },
  {
    versions: true,
    tombstones: true,
    clearKeepsNewer: true,
    expire: true,
    values: 'codec' as const,
    tags: true,
  },
);

describe('RedisTier coherence on a 3-master cluster (two clients)', () => {
  const prefix = uniquePrefix('cluster-coherence');
  const clients: Cluster[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((cl) => cl.quit()));
  });
  coherenceCases(async () => {
    const c = await cluster();
    const [ca, cb, raw] = [0, 1, 2].map(() => new Cluster(c.startupNodes));
    clients.push(ca as Cluster, cb as Cluster, raw as Cluster);
    await Promise.all(clients.map((cl) => new Promise((r) => cl.once('ready', r))));
    const a = new RedisTier({ client: ca, prefix });
    const b = new RedisTier({ client: cb, prefix });
    return {
      a,
      b,
      pttl: (k) => (raw as Cluster).pttl(prefix + k),
      raw: (k) => (raw as Cluster).get(prefix + k),
    };
  });

  it('clear() raises one cleared-at marker per hash slot, spread over every master', async () => {
    const raw = clients[2] as Cluster;
    let markers = 0;
    for (const node of raw.nodes('master')) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(
          cursor,
          'MATCH',
          `${escapeGlob(prefix)}\u0000cleared*`,
          'COUNT',
          1000,
        );
        cursor = next;
        markers += found.length;
      } while (cursor !== '0');
    }
    expect(markers).toBe(16384);
  });
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

  it('writes, deletes and releases after SCRIPT FLUSH on every master (each node loads the scripts on NOSCRIPT)', async () => {
    const tier = new RedisTier({ client, prefix: `${prefix}flush:` });
    const lock = new RedisLock({ client, prefix: `${prefix}flushlock:` });
    const keys = Array.from({ length: 30 }, (_, i) => `f:${i}`);
    const older = nextVersion();
    const newer = nextVersion();
    await tier.set('f:0', { ...entry('warm'), version: older });
    for (const n of c.nodes) n.cli('SCRIPT', 'FLUSH');
    await Promise.all(keys.map((key) => tier.set(key, { ...entry(key), version: newer })));
    expect(c.nodes.map((n) => Number(n.cli('DBSIZE')) > 0)).toEqual([true, true, true]);
    expect((await tier.getMany(keys)).map((e) => e?.value)).toEqual(keys);
    for (const n of c.nodes) n.cli('SCRIPT', 'FLUSH');
    // Still a compare-and-set on a node that has just reloaded it: the older version is refused.
    await Promise.all(keys.map((key) => tier.set(key, { ...entry('stale'), version: older })));
    expect((await tier.getMany(keys)).map((e) => e?.value)).toEqual(keys);
    for (const n of c.nodes) n.cli('SCRIPT', 'FLUSH');
    const deleted = await Promise.all(keys.map((key) => tier.delete(key, { version: nextVersion() })));
    expect(deleted.every(Boolean)).toBe(true);
    expect((await tier.getMany(keys)).every((e) => e === undefined)).toBe(true);
    const lease = await lock.tryAcquire('k', 5000);
    for (const n of c.nodes) n.cli('SCRIPT', 'FLUSH');
    await lease!.release();
    expect(await client.exists(`${prefix}flushlock:k`)).toBe(0);
    await lock.close();
    await tier.clear();
  });

  it('bus: sharded pub/sub delivers a delete (with its version) to the other instance, ignoring its own', async () => {
    const one = new RedisInvalidationBus({ client, prefix });
    const two = new RedisInvalidationBus({ cluster: c.startupNodes, prefix, commandTimeoutMs: 2000 });
    expect(one.sharded).toBe(true);
    const heardOne: InvalidationMessage[] = [];
    const heardTwo: InvalidationMessage[] = [];
    one.subscribe((m) => heardOne.push(m));
    two.subscribe((m) => heardTwo.push(m));
    await Promise.all([one.ready(10_000), two.ready(10_000)]);
    await sleep(100);
    await one.publish({ type: 'delete', keys: ['a', 'b'], version: 7 });
    expect(await waitUntil(() => heardTwo.length > 0, 5000)).toBeGreaterThanOrEqual(0);
    expect(heardTwo).toEqual([{ type: 'delete', keys: ['a', 'b'], version: 7 }]);
    await sleep(50);
    expect(heardOne).toEqual([]);
    await one.close();
    await two.close();
  });

  it('bus: a sharded subscriber that loses its connection raises resync (lost, then back) and keeps listening', async () => {
    const one = new RedisInvalidationBus({ client, prefix: `${prefix}resync:` });
    const two = new RedisInvalidationBus({
      cluster: c.startupNodes,
      prefix: `${prefix}resync:`,
      commandTimeoutMs: 2000,
    });
    const heard: InvalidationMessage[] = [];
    one.subscribe(() => undefined);
    two.subscribe((m) => heard.push(m));
    await Promise.all([one.connect(10_000), two.connect(10_000)]);
    for (const node of c.nodes) node.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(
      await waitUntil(() => heard.filter((m) => m.type === 'resync').length >= 2, 15_000),
    ).toBeGreaterThanOrEqual(0);
    expect(heard.every((m) => m.type === 'resync')).toBe(true);
    // Delivery resumes once the subscriber group has resubscribed.
    const delivered = await waitUntil(async () => {
      await one.publish({ type: 'delete', keys: ['after'], version: 9 });
      return heard.some((m) => m.type === 'delete');
    }, 15_000);
    expect(delivered).toBeGreaterThanOrEqual(0);
    expect(heard.find((m) => m.type === 'delete')).toEqual({ type: 'delete', keys: ['after'], version: 9 });
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

  it('lock: under Cluster too, waiters are woken by the release message (no fallback check in the window)', async () => {
    const holder = new RedisLock({ client, prefix });
    const waiter = new RedisLock({
      cluster: c.startupNodes,
      prefix,
      commandTimeoutMs: 2000,
      pollIntervalMs: 600_000,
    });
    await waiter.connect(10_000);
    const keys = ['m:1', 'm:2', 'm:3', 'm:4', 'm:5', 'm:6'];
    const leases = await Promise.all(keys.map((k) => holder.tryAcquire(k, 60_000)));
    let woken = 0;
    const waits = keys.map((k) => waiter.waitForRelease(k, 600_000).then(() => woken++));
    await sleep(300);
    expect(woken).toBe(0);
    await Promise.all(leases.map((l) => l!.release()));
    await Promise.all(waits);
    expect(woken).toBe(keys.length);
    await holder.close();
    await waiter.close();
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
