import { MultiLevelCache } from '@bgc/cache-core';
import { createKeyv } from '@bgc/cache-keyv';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { RedisTier } from '@bgc/cache-l2-redis';
import KeyvRedis from '@keyv/redis';
import { CacheableMemory } from 'cacheable';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import {
  BENCH_REDIS_URL as REDIS_URL,
  connectAdmin,
  deleteKeysContaining,
  redisWorkload,
} from '../bench-redis.js';
import {
  type Contender,
  type ContenderFigures,
  pairedRatio,
  concurrentContender,
  runRounds,
} from '../measure.js';
import { payload } from '../payload.js';
import { type BenchResult, checkTarget, result, type ScenarioReport } from '../report.js';
import { roundSettings, type Scenario, type ScenarioContext } from '../scenario.js';

const KEYS = 1000;
const TTL = 10 * 60_000;
const PEER_L2 = 'cache-manager on @keyv/redis';
const PEER_2 = 'cache-manager on memory + @keyv/redis';
const OURS_L2 = 'cache-manager on bgc KeyvStore (redis tier)';
const OURS_2 = 'cache-manager on bgc KeyvStore (memory+redis)';
/** Suffix of our informational contenders whose every `set` waits for Redis (`backgroundFills: false`). */
const AWAITED = ', every set awaited';
const OURS_L2_AWAITED = `${OURS_L2}${AWAITED}` as const;
const OURS_2_AWAITED = `${OURS_2}${AWAITED}` as const;

const concurrent = concurrentContender;

/**
 * `keyv-cache-manager`: cache-manager v7 on our Keyv store (`@bgc/cache-keyv`) beside cache-manager on
 * `@keyv/redis`, on the L2-hit path (get) and the miss path (wrap with a loader), c=1 and c=64.
 */
export const keyvCacheManager: Scenario = {
  name: 'keyv-cache-manager',
  async run(ctx: ScenarioContext): Promise<ScenarioReport> {
    const marker = `bgcbench:${ctx.runId}`;
    const connected = await connectAdmin();
    if ('unreachable' in connected) return skipped(connected.unreachable);
    const { admin } = connected;
    const { clients, client, keys, k, missKey, loader } = redisWorkload(KEYS);

    // Ours: a Redis-only stack (every read an L2 hit) and a memory + Redis stack, as createKeyv
    // builds them; each also with every set awaited (backgroundFills: false), for the figures only.
    const stack = (memory: boolean, backgroundFills: boolean, name: string) => {
      const redis = new RedisTier({ client: client(), prefix: `${marker}:${name}:` });
      const cache = new MultiLevelCache({
        tiers: memory ? [new MemoryTier({ maxTtlMs: TTL }), redis] : [redis],
        defaultTtlMs: TTL,
      });
      const keyv = createKeyv(cache, { namespace: 'cm', backgroundFills });
      return { cache, manager: createCache({ stores: [keyv], ttl: TTL }) };
    };
    const ours = {
      [OURS_L2]: stack(false, true, 'kv1'),
      [OURS_L2_AWAITED]: stack(false, false, 'kv1'),
      [OURS_2]: stack(true, true, 'kv2'),
      [OURS_2_AWAITED]: stack(true, false, 'kv2'),
    };
    const peerL2 = createCache({
      stores: [new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: `${marker}:cm1` })],
      ttl: TTL,
    });
    const peer2 = createCache({
      stores: [
        new Keyv({ store: new CacheableMemory({ lruSize: 100_000 }) }),
        new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: `${marker}:cm2` }),
      ],
      ttl: TTL,
    });
    const wrapMiss = (manager: ReturnType<typeof createCache>, tag: string) => (i: number) =>
      manager.wrap(missKey(tag, i), async () => loader(missKey(tag, i)));

    try {
      ctx.log('keyv-cache-manager: filling Redis');
      for (const [i, key] of keys.entries()) {
        const v = payload(i);
        await Promise.all([ours[OURS_L2].manager.set(key, v), peerL2.set(key, v)]);
      }
      const settings = roundSettings(ctx, 400, 8);
      const results: BenchResult[] = [];
      const baselines: Record<string, string> = {};
      const figures = new Map<string, ContenderFigures[]>();
      for (const c of [1, 64]) {
        const cases: [string, Contender[]][] = [
          [
            `L2 hit get c=${c}`,
            [
              concurrent(PEER_L2, c, (i) => peerL2.get(k(i))),
              concurrent(OURS_L2, c, (i) => ours[OURS_L2].manager.get(k(i))),
            ],
          ],
          [
            `miss + wrap c=${c} (redis only)`,
            [
              concurrent(PEER_L2, c, wrapMiss(peerL2, 'peer1'), true),
              concurrent(OURS_L2, c, wrapMiss(ours[OURS_L2].manager, 'ours1'), true),
              concurrent(OURS_L2_AWAITED, c, wrapMiss(ours[OURS_L2_AWAITED].manager, 'ours1aw'), true),
            ],
          ],
          [
            `miss + wrap c=${c} (memory+redis)`,
            [
              concurrent(PEER_2, c, wrapMiss(peer2, 'peer2'), true),
              concurrent(OURS_2, c, wrapMiss(ours[OURS_2].manager, 'ours2'), true),
              concurrent(OURS_2_AWAITED, c, wrapMiss(ours[OURS_2_AWAITED].manager, 'ours2aw'), true),
            ],
          ],
        ];
        for (const [group, contenders] of cases) {
          ctx.log(`keyv-cache-manager: ${group}`);
          baselines[group] = contenders[0]?.impl ?? PEER_L2;
          const f = await runRounds(contenders, settings);
          figures.set(group, f);
          results.push(...f.map((x) => result(x.impl, group, x)));
        }
      }
      const ratio = (group: string, ours: string, peer: string) => {
        const f = figures.get(group);
        const a = f?.find((x) => x.impl === ours);
        const b = f?.find((x) => x.impl === peer);
        return a && b ? pairedRatio(a, b) : undefined;
      };
      const times = (x: number) => `${x.toFixed(2)}x`;
      const targets = [1, 64].flatMap((c) =>
        (
          [
            [`L2 hit get c=${c}`, OURS_L2, PEER_L2],
            [`miss + wrap c=${c} (redis only)`, OURS_L2, PEER_L2],
            [`miss + wrap c=${c} (memory+redis)`, OURS_2, PEER_2],
          ] as const
        ).map(([group, oursImpl, peer]) =>
          checkTarget(`${group}: ${oursImpl} / ${peer}`, ratio(group, oursImpl, peer), { min: 1 }, times),
        ),
      );
      return {
        scenario: 'keyv-cache-manager',
        title: `cache-manager v7 on @bgc/cache-keyv vs on @keyv/redis: L2-hit get and miss + wrap, Zipf keys over ${KEYS} keys, c=1 and c=64`,
        baselines,
        results,
        targets,
        notes: [
          'Both sides are cache-manager v7 over a Keyv, each built as its package recommends: ours with createKeyv (Keyv records reach the cache as objects, the tiers encode them), the peer with new Keyv({ store: new KeyvRedis(url) }) (Keyv serializes records to JSON text).',
          'L2 hit: Redis only on both sides, so every read goes to Redis. Ours reads through the orchestrator (timeouts, breaker, metrics) and the RedisTier (ioredis); @keyv/redis uses node-redis.',
          'Miss + wrap: a key never seen before on every call (get misses, the loader answers at once, then set): the cost of the miss path. The memory+redis case compares our one store (MemoryTier + RedisTier) with cache-manager over two stores (CacheableMemory + @keyv/redis).',
          "Miss + wrap, ours: cache-manager's set fills the key the store just missed, so it answers once the write has started and the write lands in the background (backgroundFills, KeyvStore's default, like the core's own loads): its version is taken at the call (a delete or set elsewhere after it wins), this instance's reads of the key wait for it, other instances read what Redis held until it lands (here a miss). The peer's set waits for Redis' reply. 'every set awaited' is ours with backgroundFills: false, for comparison (no target).",
          'Round trips per wrap on a miss, both sides: one read, one write (ours: MGET of the entry and its cleared-at marker, then SET NX PX, the fill of a key just read absent; the compare-and-set script only when the key exists by then; the peer: GET, SET PX). The RedisTier batches the commands of one tick into one socket write (cork/uncork on nextTick), as node-redis does; without it, profiles at c=64 showed ~30% of ours in per-command socket writes.',
          'Ratios are paired: the median over rounds of ours / peer measured back to back in the same round.',
        ],
      };
    } finally {
      await Promise.allSettled([
        peerL2.disconnect(),
        peer2.disconnect(),
        ...Object.values(ours).flatMap((o) => [o.manager.disconnect(), o.cache.close()]),
      ]);
      try {
        const removed = await deleteKeysContaining(admin, marker);
        ctx.log(`keyv-cache-manager: removed ${removed} keys of this run from Redis`);
      } finally {
        for (const c of clients) c.disconnect();
        admin.disconnect();
      }
    }
  },
};

function skipped(reason: string): ScenarioReport {
  return {
    scenario: 'keyv-cache-manager',
    title: 'cache-manager v7 on @bgc/cache-keyv vs on @keyv/redis',
    baselines: {},
    results: [],
    targets: [],
    notes: [],
    skipped: reason,
  };
}
