import { MultiLevelCache } from '@bgc/cache-core';
import { RedisTier } from '@bgc/cache-l2-redis';
import { createCache } from 'cache-manager';
import { Redis } from 'ioredis';
import Keyv from 'keyv';
import KeyvRedis from '../../benchmarks/node_modules/@keyv/redis/dist/index.js';
import { KeyvStore } from './src/index.js';

const p = `tmpbench:${process.pid}:`;
const client = new Redis();
const cacheA = new MultiLevelCache({ tiers: [new RedisTier({ client, prefix: p + 'a:' })] });
const str = createCache({ stores: [new Keyv({ store: new KeyvStore(cacheA), namespace: 'cm' })] });
const cacheB = new MultiLevelCache({ tiers: [new RedisTier({ client, prefix: p + 'b:' })] });
const raw = createCache({
  stores: [
    new Keyv({ store: new KeyvStore(cacheB), namespace: 'cm', serialize: undefined, deserialize: undefined }),
  ],
});
const peer = createCache({
  stores: [new Keyv({ store: new KeyvRedis('redis://127.0.0.1:6379'), namespace: p + 'peer' })],
});
const apc = new Redis({ enableAutoPipelining: true });
const cacheC = new MultiLevelCache({ tiers: [new RedisTier({ client: apc, prefix: p + 'a:' })] });
const strAP = createCache({ stores: [new Keyv({ store: new KeyvStore(cacheC), namespace: 'cm' })] });
const cacheD = new MultiLevelCache({ tiers: [new RedisTier({ client: apc, prefix: p + 'b:' })] });
const rawAP = createCache({
  stores: [
    new Keyv({ store: new KeyvStore(cacheD), namespace: 'cm', serialize: undefined, deserialize: undefined }),
  ],
});
const plain = new MultiLevelCache({ tiers: [new RedisTier({ client, prefix: p + 'c:' })] });
const v = {
  ano: 2024,
  mes: 3,
  rows: Array.from({ length: 4 }, (_, i) => ({
    coNcm: '1201900' + i,
    metricFOB: '4312558120',
    metricKG: '123456',
    coPais: '160',
  })),
};
for (let i = 0; i < 100; i++)
  await Promise.all([
    str.set(`k${i}`, v, 600000),
    raw.set(`k${i}`, v, 600000),
    peer.set(`k${i}`, v, 600000),
    plain.set(`k${i}`, JSON.stringify({ value: v }), { ttlMs: 600000 }),
  ]);
async function run(name: string, op: (i: number) => Promise<unknown>) {
  let n = 0;
  const until = Date.now() + 1500;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (Date.now() < until) {
        await op(n++ % 100);
      }
    }),
  );
  return n / 1.5;
}
const res: Record<string, number[]> = {};
for (let r = 0; r < 4; r++) {
  for (const [name, op] of [
    ['peer', (i: number) => peer.get(`k${i}`)],
    ['ours-string', (i: number) => str.get(`k${i}`)],
    ['ours-raw', (i: number) => raw.get(`k${i}`)],
    ['orchestrator get(string)', (i: number) => plain.get(`k${i}`)],
    ['ours-string-autopipe', (i: number) => strAP.get(`k${i}`)],
    ['ours-raw-autopipe', (i: number) => rawAP.get(`k${i}`)],
  ] as const) {
    (res[name] ??= []).push(Math.round(await run(name, op)));
  }
}
console.log(res);
process.exit(0);
