/**
 * L1 micro-benchmark: get-hit and set of MemoryTier (sync fast path) vs lru-cache (and, when the
 * benchmarks workspace has them installed, cacheable's CacheableMemory), side by side in one run,
 * on 100k keys with a Zipf(0.99) access pattern; then a memory check filling a 64 MB tier with
 * ComexStat-like rows many times over. Absolute numbers move between machines; compare ratios.
 *
 * Run: npx tsx packages/cache-l1-memory/bench/l1-bench.ts
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LRUCache } from 'lru-cache';
import { MemoryTier } from '../src/index.js';

const KEYS = 100_000;
const OPS = 2_000_000;
const keys = Array.from({ length: KEYS }, (_, i) => `comexstat:exp:2024:${i % 12}:${10000000 + i}`);

function zipfIndexes(n: number, count: number, s = 0.99): Int32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1) ** s;
  let seed = 12345;
  const out = new Int32Array(count);
  for (let j = 0; j < count; j++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const u = (seed / 4294967296) * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    out[j] = lo;
  }
  return out;
}
const access = zipfIndexes(KEYS, OPS);

function measure(
  name: string,
  fn: (key: string) => unknown,
): { name: string; ns: number; allocBytesPerOp: number } {
  for (let i = 0; i < 200_000; i++) fn(keys[access[i] as number] as string); // warm-up
  globalThis.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < OPS; i++) if (fn(keys[access[i] as number] as string) !== undefined) sink++;
  const ns = Number(process.hrtime.bigint() - t0) / OPS;
  const alloc = Math.max(0, process.memoryUsage().heapUsed - heap0) / OPS;
  if (sink < 0) console.log(sink);
  return { name, ns, allocBytesPerOp: alloc };
}

const now = Date.now();
const value = { coNcm: '12019000', metricFOB: '4312558120', kgLiquido: '1000' };
const entry = { value, freshUntil: now + 3_600_000, staleUntil: now + 3_600_000 };

const tier = new MemoryTier({ maxSizeBytes: 1024 * 1024 * 1024, maxTtlMs: 3_600_000, sweepIntervalMs: 0 });
const lru = new LRUCache<string, object>({ max: KEYS * 2 });
const lruTtl = new LRUCache<string, object>({ max: KEYS * 2, ttl: 3_600_000, ttlAutopurge: false });
for (const k of keys) {
  tier.setSync(k, entry);
  lru.set(k, value);
  lruTtl.set(k, value);
}

type Peer = { name: string; get: (k: string) => unknown; set: (k: string, v: unknown) => unknown };
const peers: Peer[] = [
  { name: 'lru-cache', get: (k) => lru.get(k), set: (k, v) => lru.set(k, v as object) },
  { name: 'lru-cache (ttl)', get: (k) => lruTtl.get(k), set: (k, v) => lruTtl.set(k, v as object) },
];
try {
  const require = createRequire(
    join(dirname(fileURLToPath(import.meta.url)), '../../../benchmarks/package.json'),
  );
  const { CacheableMemory } = require('cacheable') as {
    CacheableMemory: new (o: object) => Peer & { set(k: string, v: unknown): void };
  };
  const cm = new CacheableMemory({ ttl: 3_600_000, lruSize: KEYS * 2 });
  for (const k of keys) cm.set(k, value);
  peers.push({ name: 'cacheable CacheableMemory', get: (k) => cm.get(k), set: (k, v) => cm.set(k, v) });
} catch {
  console.log('(cacheable not resolvable from the benchmarks workspace: skipped)');
}

const rows: string[] = [];
const ours = measure('MemoryTier.getSync', (k) => tier.getSync(k));
rows.push(
  `get-hit  ${ours.name.padEnd(28)} ${ours.ns.toFixed(1).padStart(7)} ns/op  ${ours.allocBytesPerOp.toFixed(1)} B/op alloc`,
);
for (const p of peers) {
  const r = measure(p.name, p.get);
  rows.push(
    `get-hit  ${r.name.padEnd(28)} ${r.ns.toFixed(1).padStart(7)} ns/op  ${r.allocBytesPerOp.toFixed(1)} B/op alloc  ours/peer ${(ours.ns / r.ns).toFixed(2)}×`,
  );
}
const oursSet = measure('MemoryTier.setSync', (k) => tier.setSync(k, entry));
rows.push(
  `set      ${oursSet.name.padEnd(28)} ${oursSet.ns.toFixed(1).padStart(7)} ns/op  ${oursSet.allocBytesPerOp.toFixed(1)} B/op alloc`,
);
for (const p of peers) {
  const r = measure(p.name, (k) => p.set(k, value));
  rows.push(
    `set      ${r.name.padEnd(28)} ${r.ns.toFixed(1).padStart(7)} ns/op  ${r.allocBytesPerOp.toFixed(1)} B/op alloc  ours/peer ${(oursSet.ns / r.ns).toFixed(2)}×`,
  );
}
console.log(`Node ${process.version}, ${KEYS} keys, ${OPS} Zipf(0.99) ops per row`);
for (const r of rows) console.log(r);
await tier.close();
