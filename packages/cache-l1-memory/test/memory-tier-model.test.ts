import type { CacheEntry } from '@bgc/cache-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryTier } from '../src/index.js';

type Cmd =
  | { op: 'set'; key: number; value: number; ttl: number; stale: number }
  | { op: 'get'; key: number }
  | { op: 'delete'; key: number }
  | { op: 'tick'; ms: number }
  | { op: 'expire'; key: number }
  | { op: 'expireAll' }
  | { op: 'clear' };

const key = fc.integer({ min: 1, max: 5 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constant('set' as const),
    key,
    value: fc.integer(),
    ttl: fc.integer({ min: -5, max: 50 }),
    stale: fc.integer({ min: 0, max: 30 }),
  }),
  fc.record({ op: fc.constant('get' as const), key }),
  fc.record({ op: fc.constant('delete' as const), key }),
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 40 }) }),
  fc.constant({ op: 'clear' as const }),
  fc.record({ op: fc.constant('expire' as const), key }),
  fc.constant({ op: 'expireAll' as const }),
);

describe('MemoryTier against a sequential model (keys 1..5, fake clock)', () => {
  it('agrees on get/getFreshValueSync/set/delete/expire/expireAll/expiry for every generated history', () => {
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 40 }), (cmds) => {
        const clock = { t: 10_000 };
        // Large enough that nothing is evicted: the model has no capacity.
        const tier = new MemoryTier({
          maxSizeBytes: 1_000_000,
          maxTtlMs: 40,
          now: () => clock.t,
          sweepIntervalMs: 0,
        });
        const model = new Map<string, CacheEntry<number>>();
        for (const c of cmds) {
          if (c.op === 'set') {
            const freshUntil = clock.t + c.ttl;
            const e = { value: c.value, freshUntil, staleUntil: freshUntil + c.stale };
            tier.setSync(String(c.key), e);
            const limit = clock.t + 40;
            if (e.staleUntil <= clock.t) model.delete(String(c.key));
            else
              model.set(String(c.key), {
                value: e.value,
                freshUntil: Math.min(e.freshUntil, limit),
                staleUntil: Math.min(e.staleUntil, limit),
              });
          } else if (c.op === 'get') {
            const m = model.get(String(c.key));
            const want = m && m.staleUntil > clock.t ? m : undefined;
            expect(tier.getFreshValueSync(String(c.key), clock.t)).toBe(
              m && m.freshUntil > clock.t ? m.value : undefined,
            );
            const got = tier.getSync(String(c.key));
            expect(
              got === undefined
                ? undefined
                : { value: got.value, freshUntil: got.freshUntil, staleUntil: got.staleUntil },
            ).toEqual(want);
          } else if (c.op === 'delete') {
            const m = model.get(String(c.key));
            expect(tier.deleteSync(String(c.key))).toBe(m !== undefined && m.staleUntil > clock.t);
            model.delete(String(c.key));
          } else if (c.op === 'expire' || c.op === 'expireAll') {
            if (c.op === 'expire') void tier.expire([String(c.key)]);
            else tier.expireAll();
            for (const [k, m] of model) {
              if (c.op === 'expire' && k !== String(c.key)) continue;
              if (m.staleUntil > clock.t && m.freshUntil > clock.t) m.freshUntil = clock.t;
            }
          } else if (c.op === 'tick') {
            clock.t += c.ms;
          } else {
            void tier.clear();
            model.clear();
          }
        }
        const live = [...model.values()].filter((e) => e.staleUntil > clock.t).length;
        expect(tier.stats().entries).toBeGreaterThanOrEqual(live);
      }),
      { numRuns: 10_000 },
    );
  });
});
