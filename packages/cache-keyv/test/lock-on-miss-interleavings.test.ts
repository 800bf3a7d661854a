// lockOnMiss under the interleavings fast-check's scheduler picks: the lock's calls (acquire,
// release, wait) of two instances resolve in adversarial orders, and get-then-set sequences (what
// cache-manager's wrap does) must still run the loader once and agree on the value.
import { type DistributedLock, type Lease, MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyvStore } from '../src/index.js';

/**
 * An in-memory lease lock shared by the instances. Each call takes effect when the scheduler lets
 * it (not when it is made), so another instance's set and release can land between a caller's miss
 * and its acquire.
 */
function scheduledLock(s: fc.Scheduler): DistributedLock {
  const held = new Set<string>();
  const waiters = new Map<string, (() => void)[]>();
  const step = (label: string) => s.schedule(Promise.resolve(), label);
  return {
    async tryAcquire(key: string): Promise<Lease | undefined> {
      await step(`acquire ${key}`);
      if (held.has(key)) return undefined;
      held.add(key);
      let done = false;
      return {
        async release() {
          await step(`release ${key}`);
          if (done) return;
          done = true;
          held.delete(key);
          for (const w of waiters.get(key) ?? []) w();
          waiters.delete(key);
        },
      };
    },
    // The scheduler decides when the wait starts; it ends with the (scheduled) release. A scheduled
    // task that itself waits for another one would stall the scheduler.
    async waitForRelease(key: string): Promise<void> {
      await step(`wait ${key}`);
      if (!held.has(key)) return;
      await new Promise<void>((resolve) => waiters.set(key, [...(waiters.get(key) ?? []), resolve]));
    },
  };
}

describe('lockOnMiss under interleavings', () => {
  it('get-then-set sequences on two instances run the loader once and agree on the value', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.boolean(), { minLength: 2, maxLength: 6 }),
        async (s, onA) => {
          const shared = new Map<string, never>();
          const lock = scheduledLock(s);
          const caches = [0, 1].map(
            () => new MultiLevelCache({ tiers: [new FakeTier({ level: 'l2', store: shared })] }),
          );
          const [a, b] = caches.map((cache) => {
            const store = new KeyvStore(cache, { lockOnMiss: { lock, leaseMs: 60_000 } });
            store.namespace = 'ns';
            return store;
          }) as [KeyvStore, KeyvStore];
          let loads = 0;
          const wrap = async (store: KeyvStore) => {
            const hit = await store.get<string>('ns:k');
            if (hit !== undefined) return hit;
            loads++;
            const value = `loaded-${loads}`;
            await store.set('ns:k', value, 60_000);
            return value;
          };
          const results = await s.waitFor(Promise.all(onA.map((x) => wrap(x ? a : b))));
          await s.waitAll();
          for (const c of caches) await c.close();
          expect(loads).toBe(1);
          expect(new Set(results).size).toBe(1);
        },
      ),
      { numRuns: 150 },
    );
  });
});
