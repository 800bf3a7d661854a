// Orchestrator overhead on an L1 hit, side by side with a bare Map get, in one run.
// Run: pnpm --filter @bgc/cache-core exec tsx bench/orchestrator-bench.ts
// Absolute numbers move between machines; compare the ratio (seed, Go: L1 get 105 ns, manager get 414 ns).
import { MultiLevelCache } from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';

const N = 100_000;
const OPS = 2_000_000;
const ROUNDS = 5;
const keys = Array.from(
  { length: N },
  (_, i) => `comexstat:exp:2024:${(i % 12) + 1}:${String(10000000 + i)}:160`,
);

const map = new Map<string, unknown>();
const l1 = new FakeTier({ sync: true });
const cache = new MultiLevelCache({ tiers: [l1] });
const now = Date.now();
for (const k of keys) {
  const value = { rows: [{ metricFOB: '1' }] };
  map.set(k, value);
  l1.store.set(k, { value, freshUntil: now + 3_600_000, staleUntil: now + 3_600_000 });
}

function timeIt(fn: (k: string) => unknown): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) if (fn(keys[(i * 7919) % N] as string)) sink++;
  const ns = Number(process.hrtime.bigint() - t0) / OPS;
  if (sink < 0) console.log(sink);
  return ns;
}

async function timeAsync(fn: (k: string) => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < OPS / 4; i++) await fn(keys[(i * 7919) % N] as string);
  return Number(process.hrtime.bigint() - t0) / (OPS / 4);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const mapNs: number[] = [];
const syncNs: number[] = [];
const asyncMapNs: number[] = [];
const getNs: number[] = [];
for (let r = 0; r < ROUNDS + 1; r++) {
  const a = timeIt((k) => map.get(k));
  const b = timeIt((k) => cache.getSync(k));
  const c = await timeAsync(async (k) => map.get(k));
  const d = await timeAsync((k) => cache.get(k));
  if (r > 0) {
    mapNs.push(a);
    syncNs.push(b);
    asyncMapNs.push(c);
    getNs.push(d);
  }
}
const row = (name: string, ns: number, base: number) =>
  console.log(`${name.padEnd(40)}${ns.toFixed(1).padStart(9)}${(ns / base).toFixed(2).padStart(8)}`);
console.log(`${'scenario'.padEnd(40)}${'ns/op'.padStart(9)}${'ratio'.padStart(8)}`);
row('bare Map.get', median(mapNs), median(mapNs));
row('MultiLevelCache.getSync (L1 hit)', median(syncNs), median(mapNs));
row('async function around Map.get', median(asyncMapNs), median(asyncMapNs));
row('MultiLevelCache.get (L1 hit, awaited)', median(getNs), median(asyncMapNs));
console.log(
  'ratios: sync paths vs bare Map.get; awaited paths vs an awaited Map.get (the cost of a promise is the same for both)',
);
console.log('seed (Go, other machine): L1 get 105 ns/op, manager get 414 ns/op');
await cache.close();
