import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CacheEntry, Tier } from '../src/index.js';
import { MultiLevelCache } from '../src/index.js';
import { type ModelCmd, modelRunner } from './model-commands.js';

/**
 * Model-based concurrency test of a cache with one local tier that keeps no versions of its own
 * (it stores whatever it is given): the orchestrator's per-key versions are all that keeps an
 * older load, or its fail-safe re-store, from undoing a write or delete. On this configuration the
 * orchestrator skips recording a version when nothing can race with it (no flight, load or
 * background work), so the test runs random set/delete/getOrLoad/get commands whose loaders
 * answer (or fail) in an order chosen by fast-check's scheduler, with entries that are sometimes
 * stale at once (fail-safe fallbacks). Checked: a read that starts after a write or delete of its
 * key completed never returns an older value, and once everything settled the tier holds none.
 */

type Cmd = ModelCmd;

const key = fc.constantFrom('a', 'a', 'b') as fc.Arbitrary<'a' | 'b'>;
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, stale: fc.boolean() }),
  fc.record({ op: fc.constantFrom('delete', 'get') as fc.Arbitrary<'delete' | 'get'>, key }),
  fc.record({ op: fc.constant('getOrLoad' as const), key, fail: fc.boolean() }),
);

/** A local tier that keeps whatever it is handed: no version checks, no tombstones. */
class PlainTier implements Tier {
  readonly name = 'plain';
  readonly level = 'l1' as const;
  readonly scope = 'local' as const;
  readonly store = new Map<string, CacheEntry>();
  getSync(key: string): CacheEntry | undefined {
    const e = this.store.get(key);
    return e && e.staleUntil > Date.now() ? e : undefined;
  }
  setSync(key: string, entry: CacheEntry): void {
    this.store.set(key, entry);
  }
  async get(key: string): Promise<CacheEntry | undefined> {
    return this.getSync(key);
  }
  async set(key: string, entry: CacheEntry): Promise<void> {
    this.setSync(key, entry);
  }
  async delete(key: string): Promise<boolean> {
    return this.store.delete(key);
  }
  async close(): Promise<void> {}
}

async function runModel(s: fc.Scheduler, cmds: Cmd[], viaSetSync: boolean): Promise<void> {
  const tier = new PlainTier();
  if (!viaSetSync) (tier as { setSync?: unknown }).setSync = undefined;
  const cache = new MultiLevelCache({
    tiers: [tier],
    coalesceWindowMs: 0,
    hardTimeoutMs: 600_000,
    softTimeoutMs: 600_000,
    failSafeBackoffMs: 0,
    defaultTtlMs: 3_600_000,
    staleTtlMs: 3_600_000,
  });
  const { run, violations, completed } = modelRunner(s, cache);
  await s.waitFor(Promise.all(cmds.map(run)));
  await s.waitFor(cache.flush());
  for (const k of ['a', 'b']) {
    const held = tier.store.get(k)?.value;
    if (held !== undefined && (held as number) < (completed[k] as number))
      violations.push(`the tier holds ${String(held)} for ${k} after ${completed[k]} completed`);
  }
  await s.waitFor(cache.close());
  expect(violations).toEqual([]);
}

describe('one local tier without versions of its own', () => {
  for (const viaSetSync of [true, false]) {
    it(`no read returns a value older than the last completed write or delete (${viaSetSync ? 'setSync' : 'set'})`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.scheduler(), fc.array(cmdArb, { minLength: 1, maxLength: 12 }), (s, cmds) =>
          runModel(s, cmds, viaSetSync),
        ),
        { numRuns: 500, timeout: 5000 },
      );
    }, 120_000);
  }
});
