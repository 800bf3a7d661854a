import { MultiLevelCache } from '@bgc/cache-core';
import { createKeyv } from '@bgc/cache-keyv';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { RedisTier } from '@bgc/cache-l2-redis';
import KeyvRedis from '@keyv/redis';
import { CacheableMemory } from 'cacheable';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import { Keyv } from 'keyv';
import { BENCH_REDIS_URL as REDIS_URL, connectAdmin, deleteKeysContaining } from '../bench-redis.js';
import {
  type Contender,
  type ContenderFigures,
  type Op,
  pairedRatio,
  runConcurrent,
  runRounds,
} from '../measure.js';
import { payload, payloadKey } from '../payload.js';
import { type BenchResult, checkTarget, result, type ScenarioReport } from '../report.js';
import { roundSettings, type Scenario, type ScenarioContext } from '../scenario.js';
import { zipfSequence } from '../zipf.js';

const KEYS = 1000;
const TTL = 10 * 60_000;
const OURS_L2 = 'cache-manager on bgc KeyvStore (redis tier only)';
const PEER_L2 = 'cache-manager on @keyv/redis';
const OURS_MISS = 'cache-manager on bgc KeyvStore (memory+redis) wrap';
const PEER_MISS = 'cache-manager on memory + @keyv/redis wrap';
const OURS_MISS_L2 = 'cache-manager on bgc KeyvStore (redis tier only) wrap';
const PEER_MISS_L2 = 'cache-manager on @keyv/redis wrap';

function concurrent(impl: string, concurrency: number, op: Op, fresh = false): Contender {
  let start = 0;
  return {
    impl,
    async round(durationMs) {
      // Miss cases need keys never used before: each round continues the sequence.
      const sample = await runConcurrent(op, { concurrency, durationMs, start: fresh ? start : 0 });
      start += sample.ops + concurrency;
      return sample;
    },
  };
}

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
    const clients: Redis[] = [];
    const client = () => {
      const c = new Redis(REDIS_URL);
      clients.push(c);
      return c;
    };
    const keys = Array.from({ length: KEYS }, (_, i) => payloadKey(i));
    const seq = zipfSequence({ n: KEYS, length: 1 << 16, s: 1, seed: 3 });
    const k = (i: number) => keys[seq[i & 0xffff] as number] as string;
    const missKey = (impl: string, i: number) => `miss:${impl}:${i}`;
    const loader = (key: string) => payload(key.length + (key.charCodeAt(key.length - 1) % 97));

    // Redis only: every read is an L2 hit.
    const bgcL2 = new MultiLevelCache({
      tiers: [new RedisTier({ client: client(), prefix: `${marker}:kv1:` })],
      defaultTtlMs: TTL,
    });
    const oursL2 = createCache({
      stores: [createKeyv(bgcL2, { namespace: 'cm' })],
      ttl: TTL,
    });
    const peerL2 = createCache({
      stores: [new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: `${marker}:cm1` })],
      ttl: TTL,
    });
    // Memory in front of Redis (one Keyv store for us, two cache-manager stores for the peer).
    const bgc2 = new MultiLevelCache({
      tiers: [
        new MemoryTier({ maxTtlMs: TTL }),
        new RedisTier({ client: client(), prefix: `${marker}:kv2:` }),
      ],
      defaultTtlMs: TTL,
    });
    const ours2 = createCache({
      stores: [createKeyv(bgc2, { namespace: 'cm' })],
      ttl: TTL,
    });
    const peer2 = createCache({
      stores: [
        new Keyv({ store: new CacheableMemory({ lruSize: 100_000 }) }),
        new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: `${marker}:cm2` }),
      ],
      ttl: TTL,
    });

    try {
      ctx.log('keyv-cache-manager: filling Redis');
      for (const [i, key] of keys.entries()) {
        const v = payload(i);
        await Promise.all([oursL2.set(key, v), peerL2.set(key, v)]);
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
              concurrent(OURS_L2, c, (i) => oursL2.get(k(i))),
            ],
          ],
          [
            `miss + wrap c=${c} (redis only)`,
            [
              concurrent(
                PEER_MISS_L2,
                c,
                (i) => peerL2.wrap(missKey('peer1', i), async () => loader(missKey('peer1', i))),
                true,
              ),
              concurrent(
                OURS_MISS_L2,
                c,
                (i) => oursL2.wrap(missKey('ours1', i), async () => loader(missKey('ours1', i))),
                true,
              ),
            ],
          ],
          [
            `miss + wrap c=${c} (memory+redis)`,
            [
              concurrent(
                PEER_MISS,
                c,
                (i) => peer2.wrap(missKey('peer2', i), async () => loader(missKey('peer2', i))),
                true,
              ),
              concurrent(
                OURS_MISS,
                c,
                (i) => ours2.wrap(missKey('ours2', i), async () => loader(missKey('ours2', i))),
                true,
              ),
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
      const targets = [1, 64].flatMap((c) => [
        checkTarget(
          `L2-hit get c=${c}: ours / cache-manager on @keyv/redis`,
          ratio(`L2 hit get c=${c}`, OURS_L2, PEER_L2),
          { min: 1 },
          times,
        ),
        checkTarget(
          `miss + wrap c=${c} (redis only): ours / cache-manager on @keyv/redis`,
          ratio(`miss + wrap c=${c} (redis only)`, OURS_MISS_L2, PEER_MISS_L2),
          { min: 1 },
          times,
        ),
        checkTarget(
          `miss + wrap c=${c} (memory+redis): ours / cache-manager on memory + @keyv/redis`,
          ratio(`miss + wrap c=${c} (memory+redis)`, OURS_MISS, PEER_MISS),
          { min: 1 },
          times,
        ),
      ]);
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
          'Ratios are paired: the median over rounds of ours / peer measured back to back in the same round.',
        ],
      };
    } finally {
      await Promise.allSettled([
        oursL2.disconnect(),
        peerL2.disconnect(),
        ours2.disconnect(),
        peer2.disconnect(),
        bgcL2.close(),
        bgc2.close(),
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
