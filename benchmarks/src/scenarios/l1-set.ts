import { payload } from '../payload.js';
import { checkTarget, result, type ScenarioReport } from '../report.js';
import { roundSettings, type Scenario, type ScenarioContext } from '../scenario.js';
import { mulberry32 } from '../zipf.js';
import { buildL1Caches, contender, zipfKeys } from './l1-get-hit.js';
import { type Contender, pairedRatio, runRounds } from '../measure.js';

const HOUR = 3_600_000;

/** `l1-set`: writes, and a mixed 90% read / 10% write workload, both over Zipf keys. */
export const l1Set: Scenario = {
  name: 'l1-set',
  async run(ctx: ScenarioContext): Promise<ScenarioReport> {
    const { keys, seq, mask } = zipfKeys();
    const c = await buildL1Caches(keys);
    // Distinct value objects, so no library can benefit from storing the same object again.
    const values = Array.from({ length: 4096 }, (_, i) => payload(i));
    const random = mulberry32(11);
    const writes = Uint8Array.from({ length: mask + 1 }, () => (random() < 0.1 ? 1 : 0));
    const k = (i: number) => keys[seq[i & mask] as number] as string;
    const v = (i: number) => values[i & 4095] as object;
    const entry = (i: number) => {
      const now = Date.now();
      return { value: v(i), freshUntil: now + HOUR, staleUntil: now + HOUR, createdAt: now };
    };
    const SET = 'set';
    const MIXED = 'mixed 90/10';
    const sets: Contender[] = [
      contender('lru-cache set', 'sync', (i) => c.lru.set(k(i), v(i))),
      contender('cacheable CacheableMemory set', 'sync', (i) => c.cacheable.set(k(i), v(i))),
      contender('lru-cache set (in async fn)', 'async', async (i) => c.lru.set(k(i), v(i))),
      contender('bgc MemoryTier set', 'async', (i) => c.tier.set(k(i), entry(i))),
      contender('bgc orchestrator set', 'async', (i) => c.cache.set(k(i), v(i))),
      contender('bentocache (memory) set', 'async', (i) =>
        c.bento.set({ key: k(i), value: v(i), ttl: HOUR }),
      ),
      contender('cache-manager (memory) set', 'async', (i) => c.manager.set(k(i), v(i))),
    ];
    // Each op reads, or writes one time in ten; reads use each library's fastest read path.
    const mixed: Contender[] = [
      contender('lru-cache', 'sync', (i) => (writes[i & mask] ? c.lru.set(k(i), v(i)) : c.lru.get(k(i)))),
      contender('cacheable CacheableMemory', 'sync', (i) =>
        writes[i & mask] ? c.cacheable.set(k(i), v(i)) : c.cacheable.get(k(i)),
      ),
      contender('bgc orchestrator (getSync, await set)', 'async', (i) =>
        writes[i & mask] ? c.cache.set(k(i), v(i)) : (c.cache.getSync(k(i)) ?? c.cache.get(k(i))),
      ),
      contender('bgc MemoryTier (getSync, await set)', 'async', (i) =>
        writes[i & mask] ? c.tier.set(k(i), entry(i)) : c.tier.getSync(k(i)),
      ),
      contender('bentocache (memory)', 'async', (i) =>
        writes[i & mask] ? c.bento.set({ key: k(i), value: v(i), ttl: HOUR }) : c.bento.get({ key: k(i) }),
      ),
      contender('cache-manager (memory)', 'async', (i) =>
        writes[i & mask] ? c.manager.set(k(i), v(i)) : c.manager.get(k(i)),
      ),
    ];
    const settings = roundSettings(ctx, 300);
    try {
      ctx.log(
        `l1-set: ${sets.length + mixed.length} contenders, ${settings.rounds} rounds of ${settings.durationMs} ms`,
      );
      const a = await runRounds(sets, settings);
      const b = await runRounds(mixed, settings);
      const results = [...a.map((f) => result(f.impl, SET, f)), ...b.map((f) => result(f.impl, MIXED, f))];
      const ops = (impl: string, group: string) =>
        results.find((r) => r.impl === impl && r.group === group)?.opsPerSec;
      const timeRatio = (impl: string, base: string, group: string) => {
        const x = ops(impl, group);
        const y = ops(base, group);
        return x && y ? y / x : undefined;
      };
      // Paired time ratios (the median over rounds of baseline / ours measured back to back).
      const slower = (impl: string, base: string) => {
        const x = a.find((f) => f.impl === impl);
        const y = a.find((f) => f.impl === base);
        return x && y ? pairedRatio(y, x) : undefined;
      };
      return {
        scenario: 'l1-set',
        title: `L1 writes and a 90/10 read/write mix, Zipf keys (s=1) over ${keys.length} keys, one at a time`,
        baselines: { [SET]: 'lru-cache set', [MIXED]: 'lru-cache' },
        results,
        targets: [
          checkTarget(
            'MemoryTier set time vs awaited lru-cache set (issue 18)',
            slower('bgc MemoryTier set', 'lru-cache set (in async fn)'),
            { max: 2 },
          ),
          checkTarget(
            'orchestrator set time vs awaited lru-cache set (issue 18)',
            slower('bgc orchestrator set', 'lru-cache set (in async fn)'),
            { max: 3 },
          ),
        ],
        notes: [
          `Our set deep-freezes and sizes the value (byte-bounded L1); lru-cache stores the reference. Time ratios of this run: MemoryTier set ${fmt(timeRatio('bgc MemoryTier set', 'lru-cache set (in async fn)', SET))} and orchestrator set ${fmt(timeRatio('bgc orchestrator set', 'lru-cache set (in async fn)', SET))} the time of an awaited lru-cache set.`,
          'Targets are paired time ratios (the median over rounds of baseline / ours measured back to back); the sentence above compares median throughputs. The mixed workload shows what a read-mostly service pays in total.',
        ],
      };
    } finally {
      await c.close();
    }
  },
};

function fmt(x: number | undefined): string {
  return x === undefined ? 'n/a' : `${x.toFixed(2)}x`;
}
