import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CacheEntry, MultiLevelCache } from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';
import { type ModelCmd, modelRunner } from './model-commands.js';

/**
 * Model-based concurrency test of the second look (a load whose read found a tier failing reads
 * the tiers again and may answer what it finds then): memory in front of a shared tier whose reads
 * fail when a command says so, with random set/delete/get/getOrLoad commands whose tier reads and
 * loaders answer in an order chosen by fast-check's scheduler. `softTimeoutMs: 0` makes the second
 * look start at once, racing the load. Checked: a read that starts after a write or delete of its
 * key completed never returns an older value (the second look never brings back what was deleted
 * or overwritten), and a getOrLoad whose key holds a value in the shared tier never fails.
 */

type Cmd = ModelCmd;

const key = fc.constantFrom('a', 'a', 'b') as fc.Arbitrary<'a' | 'b'>;
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), key, stale: fc.boolean() }),
  fc.record({ op: fc.constantFrom('delete', 'get') as fc.Arbitrary<'delete' | 'get'>, key }),
  fc.record({ op: fc.constant('getOrLoad' as const), key, fail: fc.boolean(), readFails: fc.boolean() }),
);

/** A shared tier whose next read of a key fails when asked to, each read answered when the scheduler says. */
class FlakyShared extends FakeTier {
  readonly failNext = new Set<string>();
  constructor(private readonly s: fc.Scheduler) {
    super({ level: 'l2', scope: 'shared' });
  }
  override async get(k: string): Promise<CacheEntry | undefined> {
    await this.s.schedule(Promise.resolve(), `l2 get ${k}`);
    if (this.failNext.delete(k)) throw new Error('read timed out');
    return super.get(k);
  }
}

async function runModel(s: fc.Scheduler, cmds: Cmd[]): Promise<void> {
  const l1 = new FakeTier({ level: 'l1', sync: true });
  const l2 = new FlakyShared(s);
  const cache = new MultiLevelCache({
    tiers: [l1, l2],
    coalesceWindowMs: 0,
    hardTimeoutMs: 600_000,
    softTimeoutMs: 0,
    failSafeBackoffMs: 0,
    defaultTtlMs: 3_600_000,
    staleTtlMs: 3_600_000,
    tierTimeoutMs: 0,
    circuitBreaker: false,
  });
  cache.on('error', () => {});
  const { run, violations } = modelRunner(s, cache, (cmd) => {
    if (cmd.readFails) l2.failNext.add(cmd.key);
  });
  await s.waitFor(Promise.all(cmds.map(run)));
  await s.waitFor(cache.flush());
  await s.waitFor(cache.close());
  expect(violations).toEqual([]);
}

describe('the second look after a failed tier read', () => {
  it('never returns a value older than the last completed write or delete', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(cmdArb, { minLength: 1, maxLength: 10 }), (s, cmds) =>
        runModel(s, cmds),
      ),
      { numRuns: 400, timeout: 5000 },
    );
  }, 120_000);

  it('answers the shared tier’s stale value, not the loader’s error, when the first read failed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const l1 = new FakeTier({ level: 'l1', sync: true });
        const l2 = new FlakyShared(s);
        const now = Date.now();
        l2.store.set('k', { value: 1, freshUntil: now - 1, staleUntil: now + 60_000, createdAt: now - 2 });
        l2.failNext.add('k');
        const cache = new MultiLevelCache({
          tiers: [l1, l2],
          softTimeoutMs: 0,
          hardTimeoutMs: 600_000,
          tierTimeoutMs: 0,
          circuitBreaker: false,
        });
        cache.on('error', () => {});
        const loaded = cache.getOrLoad('k', () =>
          s.schedule(Promise.resolve(), 'load k').then(() => Promise.reject(new Error('upstream down'))),
        );
        const r = await s.waitFor(loaded);
        await s.waitFor(cache.close());
        expect(r).toMatchObject({ value: 1, stale: true });
      }),
      { numRuns: 100, timeout: 5000 },
    );
  });
});
