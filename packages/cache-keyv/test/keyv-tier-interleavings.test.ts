// KeyvTier's read-compare-write under every interleaving fast-check's scheduler picks: the store's
// calls resolve in an adversarial order, and the highest version must win whatever the order.
import type { CacheEntry } from '@bgc/cache-core';
import fc from 'fast-check';
import Keyv from 'keyv';
import { describe, expect, it } from 'vitest';
import { KeyvTier } from '../src/index.js';

type Op = { kind: 'set' | 'delete'; version: number };

/** A Map-backed Keyv store whose every call is released by the scheduler. */
function scheduledStore(s: fc.Scheduler) {
  const map = new Map<string, unknown>();
  return {
    opts: {},
    namespace: undefined as string | undefined,
    on() {
      return this;
    },
    get: s.scheduleFunction(async (key: string) => map.get(key)),
    set: s.scheduleFunction(async (key: string, value: unknown) => {
      map.set(key, value);
      return true;
    }),
    delete: s.scheduleFunction(async (key: string) => map.delete(key)),
    clear: s.scheduleFunction(async () => map.clear()),
  };
}

const entry = (version: number): CacheEntry => {
  const now = Date.now();
  return { value: `v${version}`, freshUntil: now + 60_000, staleUntil: now + 120_000, version };
};

describe('KeyvTier under interleavings', () => {
  it('concurrent versioned sets and deletes of one key end in the state of the highest version', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.uniqueArray(
          fc.record({
            kind: fc.constantFrom<Op['kind']>('set', 'delete'),
            version: fc.integer({ min: 1, max: 1000 }),
          }),
          {
            minLength: 2,
            maxLength: 8,
            selector: (o) => o.version,
          },
        ),
        async (s, ops) => {
          const tier = new KeyvTier({ keyv: new Keyv({ store: scheduledStore(s) }) });
          const running = ops.map((op) =>
            op.kind === 'set'
              ? tier.set('k', entry(op.version))
              : tier.delete('k', { version: op.version, tombstoneMs: 60_000 }),
          );
          await s.waitFor(Promise.all(running));
          const got = tier.get('k');
          await s.waitAll();
          const last = ops.reduce((a, b) => (b.version > a.version ? b : a));
          const final = await got;
          if (last.kind === 'set')
            expect(final).toMatchObject({ value: `v${last.version}`, version: last.version });
          else expect(final).toBeUndefined();
        },
      ),
      { numRuns: 200 },
    );
  });
});
