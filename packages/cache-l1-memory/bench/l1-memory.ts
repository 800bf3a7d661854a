// Memory check, in a process of its own: a 64 MB tier filled 5× over with the values the ComexStat
// connector caches (`{ status, rows: [{ flow, ano, mes, ncm, pais, fob, kg }], fetchedAt }`, decoded
// from JSON as they arrive from L2/L3 or the upstream). The heap it holds must stay within the byte
// bound ±10%.
// Run: node --expose-gc --import tsx packages/cache-l1-memory/bench/l1-memory.ts
import { MemoryTier } from '../src/index.js';

const BOUND = 64 * 1024 * 1024;
const gc = () => (globalThis as { gc?: () => void }).gc?.();
const value = (i: number) =>
  JSON.parse(
    JSON.stringify({
      status: 'ok',
      rows: Array.from({ length: 20 }, (_, j) => ({
        flow: 'export',
        ano: 2024,
        mes: (i % 12) + 1,
        ncm: String(10000000 + ((i * 31 + j) % 9000000)),
        pais: String(100 + (j % 150)),
        fob: i * 7919 + j * 13,
        kg: i * 1000 + j,
      })),
      fetchedAt: Date.now(),
    }),
  );

if (!(globalThis as { gc?: unknown }).gc) console.warn('run with --expose-gc for a precise figure');
gc();
const base = process.memoryUsage().heapUsed;
const tier = new MemoryTier({ maxSizeBytes: BOUND, sweepIntervalMs: 0 });
let written = 0;
let n = 0;
while (written < 5 * BOUND) {
  const v = value(n);
  tier.setSync(`comexstat:exp:2024:${n}`, {
    value: v,
    freshUntil: Date.now() + 60_000,
    staleUntil: Date.now() + 60_000,
  });
  written += JSON.stringify(v).length * 2;
  n++;
}
gc();
gc();
const held = process.memoryUsage().heapUsed - base;
const s = tier.stats();
const pct = (held / BOUND) * 100;
console.log(
  `bound ${(BOUND / 1048576).toFixed(0)} MB; accounted ${(s.sizeBytes / 1048576).toFixed(1)} MB in ${s.entries} entries after ${n} writes; ` +
    `heap held ${(held / 1048576).toFixed(1)} MB = ${pct.toFixed(0)}% of the bound (target 90-110%): ${Math.abs(pct - 100) <= 10 ? 'met' : 'missed'}`,
);
await tier.close();
