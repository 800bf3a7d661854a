import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ShadowLru } from '../src/shadow-lru.js';

/** The shadow as it was: a Map re-inserted on every access (insertion order = LRU order). */
class MapShadow {
  readonly map = new Map<number, number>();
  weight = 0;
  access(h: number, w: number, capacity: number): boolean {
    const old = this.map.get(h);
    if (old !== undefined) {
      this.map.delete(h);
      this.weight -= old;
    }
    this.map.set(h, w);
    this.weight += w;
    while (this.weight > capacity && this.map.size > 0) {
      const [oldest, ow] = this.map.entries().next().value as [number, number];
      this.map.delete(oldest);
      this.weight -= ow;
    }
    return old !== undefined;
  }
}

describe('ShadowLru', () => {
  it('keeps LRU order, re-weighs on access and evicts the least recent over the capacity', () => {
    const s = new ShadowLru(2);
    expect(s.access(1, 1, 3)).toBe(false);
    expect(s.access(2, 1, 3)).toBe(false);
    expect(s.access(3, 1, 3)).toBe(false);
    expect(s.access(1, 1, 3)).toBe(true);
    expect(s.hashesByRecency()).toEqual([1, 3, 2]);
    // 4 pushes the weight to 4: the least recent (2) goes.
    expect(s.access(4, 1, 3)).toBe(false);
    expect(s.hashesByRecency()).toEqual([4, 1, 3]);
    // Re-weighed: 3 now weighs 2 (total 4), so the least recent, 1, is evicted.
    expect(s.access(3, 2, 3)).toBe(true);
    expect(s.hashesByRecency()).toEqual([3, 4]);
    expect(s.weight).toBe(3);
    // Heavier than the capacity on its own: nothing is kept.
    expect(s.access(-7, 10, 3)).toBe(false);
    expect(s.size).toBe(0);
    expect(s.weight).toBe(0);
    s.access(5, 1, 3);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.hashesByRecency()).toEqual([]);
    expect(s.access(5, 1, 3)).toBe(false);
  });

  it('makes the same hits, order and weight as the Map it replaced (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -20, max: 20 }), fc.integer({ min: 1, max: 5 })), {
          maxLength: 400,
        }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 400 }),
        (accesses, capacity, clearAt) => {
          const ours = new ShadowLru(2);
          let model = new MapShadow();
          accesses.forEach(([h, w], i) => {
            if (i === clearAt) {
              ours.clear();
              model = new MapShadow();
            }
            expect(ours.access(h, w, capacity)).toBe(model.access(h, w, capacity));
          });
          expect(ours.hashesByRecency()).toEqual([...model.map.keys()].reverse());
          expect(ours.weight).toBe(model.weight);
          expect(ours.size).toBe(model.map.size);
        },
      ),
      { numRuns: 300 },
    );
  });
});
