// backgroundFills under the interleavings fast-check's scheduler picks: the shared tier's reads,
// writes and deletes of two instances land in adversarial orders, and a fill answered before its
// write landed must never win over a delete or set made on the other instance after it.
import { type CacheEntry, MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyvStore } from '../src/index.js';

/** A shared fake tier (versions and tombstones) whose data-key calls take effect when the scheduler lets them. */
function scheduledTier(s: fc.Scheduler, shared: Map<string, CacheEntry>, name: string): FakeTier {
  const tier = new FakeTier({ level: 'l2', store: shared, tombstones: true });
  const data = (key: string) => !key.includes('/n/');
  const get = tier.get.bind(tier);
  const set = tier.set.bind(tier);
  const del = tier.delete.bind(tier);
  tier.get = async (key) => {
    if (data(key)) await s.schedule(Promise.resolve(), `${name} get`);
    return get(key);
  };
  tier.set = async (key, entry) => {
    if (data(key)) await s.schedule(Promise.resolve(), `${name} set`);
    return set(key, entry);
  };
  tier.delete = async (key, options) => {
    if (data(key)) await s.schedule(Promise.resolve(), `${name} delete`);
    return del(key, options);
  };
  return tier;
}

describe('backgroundFills under interleavings', () => {
  it('a delete or set on another instance after a fill was answered wins, and this instance reads its own fill or what came after', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.constantFrom('delete', 'set'), async (s, other) => {
        const shared = new Map<string, CacheEntry>();
        const caches = ['A', 'B'].map(
          (name) => new MultiLevelCache({ tiers: [scheduledTier(s, shared, name)], circuitBreaker: false }),
        );
        const [a, b] = caches.map((cache) => {
          const store = new KeyvStore(cache);
          store.namespace = 'ns';
          return store;
        }) as [KeyvStore, KeyvStore];
        // One namespace generation for both (its key is not scheduled).
        expect(await s.waitFor(a.has('ns:warm-up'))).toBe(false);
        expect(await s.waitFor(b.has('ns:warm-up'))).toBe(false);

        const run = async () => {
          expect(await a.get('ns:k')).toBeUndefined();
          expect(await a.set('ns:k', 'filled', 60_000)).toBe(true); // answered before its write landed
          const mine = a.get<string>('ns:k'); // read-your-writes: waits for the fill
          if (other === 'delete') await b.delete('ns:k');
          else await b.set('ns:k', 'newer', 60_000);
          return mine;
        };
        const mine = await s.waitFor(run());
        await s.waitFor(Promise.all([a.disconnect(), b.disconnect()]));
        const after = other === 'delete' ? undefined : 'newer';
        expect([`filled`, after]).toContain(mine);
        expect(await s.waitFor(a.get('ns:k'))).toBe(after);
        expect(await s.waitFor(b.get('ns:k'))).toBe(after);
        await s.waitAll();
        for (const c of caches) await c.close();
      }),
      { numRuns: 200 },
    );
  });
});
