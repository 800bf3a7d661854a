import { describe, expect, it } from 'vitest';
import { FrequencySketch, hashKey, spreadHash, WTinyLfuPolicy } from '../src/internal.js';
import { simulateLru, simulatePolicy } from '../src/simulator/simulate.js';
import { OWNER_FIELDS, SLOT_FLOATS } from '../src/w-tiny-lfu-policy.js';

describe('FrequencySketch', () => {
  it('counts up to 15 and ages by halving', () => {
    const s = new FrequencySketch({ capacity: 64, sampleSize: 1000 });
    for (let i = 0; i < 20; i++) s.increment(42);
    expect(s.frequency(42)).toBe(15);
    expect(s.frequency(43)).toBe(0);
    s.reset();
    expect(s.frequency(42)).toBe(7);
    s.clear();
    expect(s.frequency(42)).toBe(0);
  });

  it('ages on its own after sampleSize increments', () => {
    const s = new FrequencySketch({ capacity: 16, sampleSize: 100 });
    for (let i = 0; i < 10; i++) s.increment(7);
    for (let i = 0; i < 95; i++) s.increment(1000 + i);
    expect(s.frequency(7)).toBeLessThanOrEqual(5);
  });

  it('lets one-hit wonders stop at the doorkeeper', () => {
    const s = new FrequencySketch({ capacity: 256, doorkeeper: true });
    s.increment(5);
    expect(s.frequency(5)).toBe(1);
    s.increment(5);
    expect(s.frequency(5)).toBe(2);
    s.reset();
    expect(s.frequency(5)).toBe(0);
  });

  it.each([
    ['small (counters spread over the table)', 500],
    ['large (counters in one 64-byte block)', 50_000],
  ])('estimates frequencies closely with a %s table', (_layout, capacity) => {
    const s = new FrequencySketch({ capacity, sampleSize: 1e9 });
    // `capacity` items seen 1..8 times each: count-min never underestimates, rarely overestimates.
    const seen = (i: number) => (i % 8) + 1;
    for (let i = 0; i < capacity; i++) for (let k = 0; k < seen(i); k++) s.increment(hashKey(`item:${i}`));
    let exact = 0;
    for (let i = 0; i < capacity; i++) {
      const f = s.frequency(hashKey(`item:${i}`));
      expect(f).toBeGreaterThanOrEqual(seen(i));
      if (f === seen(i)) exact++;
    }
    expect(exact / capacity).toBeGreaterThan(0.9);
    // Items never seen mostly read 0.
    let zero = 0;
    for (let i = 0; i < 1000; i++) if (s.frequency(hashKey(`other:${i}`)) === 0) zero++;
    expect(zero).toBeGreaterThan(900);
  });

  it.each([
    ['a small table', 500, false],
    ['a large table', 50_000, false],
    ['the doorkeeper', 50_000, true],
  ])(
    'counts a batch (incrementManySpread) as one increment after another, with %s',
    (_t, capacity, doorkeeper) => {
      // Sample size small enough that the batch crosses several agings.
      const one = new FrequencySketch({ capacity, doorkeeper, sampleSize: 700 });
      const many = new FrequencySketch({ capacity, doorkeeper, sampleSize: 700 });
      const hashes = new Int32Array(128);
      for (let round = 0; round < 40; round++) {
        // Zipf-like: a few hot items (saturating at 15) among many cold ones.
        for (let i = 0; i < hashes.length; i++)
          hashes[i] = spreadHash(hashKey(`k${i % 3 === 0 ? i % 7 : round * 128 + i}`));
        for (const h of hashes) one.incrementSpread(h);
        // Every fourth batch after a caller's own load-only pass (touchSpread), as a drain does.
        const prefetched = round % 4 === 1;
        if (prefetched) for (const h of hashes) expect(Number.isInteger(many.touchSpread(h))).toBe(true);
        many.incrementManySpread(hashes, round % 2 === 0 ? hashes.length : 100, prefetched);
        if (round % 2 !== 0) for (const h of hashes.subarray(100)) many.incrementSpread(h);
      }
      for (let i = 0; i < 40 * 128; i++) {
        const h = spreadHash(hashKey(`k${i}`));
        expect(many.frequencySpread(h)).toBe(one.frequencySpread(h));
      }
      expect(one.frequencySpread(spreadHash(hashKey('k0')))).toBeGreaterThan(0);
    },
  );

  it('grows only upwards', () => {
    const s = new FrequencySketch({ capacity: 100 });
    s.ensureCapacity(50);
    expect(s.sizedFor).toBe(100);
    s.ensureCapacity(1000);
    expect(s.sizedFor).toBe(1000);
    expect(s.sampleSize).toBe(10_000);
  });

  it('hashes strings and numbers deterministically and spreads them', () => {
    expect(hashKey('abc')).toBe(hashKey('abc'));
    expect(hashKey('abc')).not.toBe(hashKey('abd'));
    expect(hashKey(5)).toBe(5);
    expect(hashKey(1.5)).toBe(hashKey('1.5'));
    expect(hashKey(true)).toBe(hashKey('true'));
    expect(hashKey(2 ** 40 + 3)).not.toBe(hashKey(3));
  });
});

describe('WTinyLfuPolicy', () => {
  it('never holds more than its maximum weight and reports evictions', () => {
    const evicted: number[] = [];
    const p = new WTinyLfuPolicy<number>({ maximumWeight: 100, onEvict: (k) => evicted.push(k) });
    for (let i = 0; i < 1000; i++) {
      const s = p.find(i % 300);
      if (s === -1) {
        p.onMiss(i % 300);
        p.add(i % 300, 1 + (i % 3));
      } else {
        p.onHit(s);
      }
      expect(p.weightedSize).toBeLessThanOrEqual(100);
    }
    expect(evicted.length).toBeGreaterThan(0);
    expect(p.size + evicted.length).toBeGreaterThanOrEqual(300);
  });

  it('removes, updates and clears entries', () => {
    const p = new WTinyLfuPolicy<string>({ maximumWeight: 10 });
    const a = p.add('a', 2);
    expect(p.keyAt(a)).toBe('a');
    expect(p.weightAt(a)).toBe(2);
    p.update(a, 5);
    expect(p.weightedSize).toBe(5);
    p.onHit(a);
    p.onHit(a);
    p.update(a, 4);
    expect(p.weightedSize).toBe(4);
    p.remove(a);
    p.remove(a);
    expect(p.find('a')).toBe(-1);
    expect(p.isOccupied(a)).toBe(false);
    p.add('b', 1);
    p.clear();
    expect(p.size).toBe(0);
    expect(p.weightedSize).toBe(0);
  });

  it('rejects an entry heavier than the whole cache by returning -1', () => {
    const p = new WTinyLfuPolicy<string>({ maximumWeight: 10 });
    expect(p.add('huge', 11)).toBe(-1);
    expect(p.size).toBe(0);
  });

  it('validates the maximum weight', () => {
    expect(() => new WTinyLfuPolicy({ maximumWeight: 0 })).toThrow(RangeError);
  });

  it('beats LRU by far on a loop larger than the cache', () => {
    const trace = Array.from({ length: 50_000 }, (_, i) => i % 200);
    expect(simulateLru(trace, 100)).toBe(0);
    expect(simulatePolicy(trace, 100)).toBeGreaterThan(0.4);
  });

  it('grows its window towards LRU on recency-heavy traffic', () => {
    // a sliding working set: recently inserted keys are re-read, old ones never again
    const trace: number[] = [];
    for (let i = 0; i < 60_000; i++)
      trace.push(i % 7 === 0 ? Math.floor(i / 7) : Math.floor(i / 7) - ((i * 31) % 90));
    const p = new WTinyLfuPolicy<number>({ maximumWeight: 100, expectedEntries: 100 });
    let hits = 0;
    for (const k of trace) {
      const s = p.find(k);
      if (s !== -1) {
        p.onHit(s);
        hits++;
      } else {
        p.onMiss(k);
        p.add(k, 1);
      }
    }
    expect(p.windowFraction).toBeGreaterThan(0.05);
    expect(hits / trace.length).toBeGreaterThanOrEqual(simulateLru(trace, 100) - 0.02);
  });

  it('is reproducible: same trace, same seed, same hit rate', () => {
    const trace = Array.from({ length: 20_000 }, (_, i) => ((i * 7919) % 1000) ^ (i % 13));
    expect(simulatePolicy(trace, 50, { seed: 1 })).toBe(simulatePolicy(trace, 50, { seed: 1 }));
    expect(simulatePolicy(trace, 50, { adaptive: false, doorkeeper: true })).toBeGreaterThan(0);
  });
});

describe('WTinyLfuPolicy slot data', () => {
  it('keeps the owner fields of every slot through growth, beside weights it never lets them touch', () => {
    // The memory tier addresses slot s at s << 3 and its fields by literals: they must stay so.
    expect(SLOT_FLOATS).toBe(8);
    expect([...OWNER_FIELDS]).toEqual([2, 3, 4, 6, 7]);
    const p = new WTinyLfuPolicy<number>({ maximumWeight: 1e9, adaptive: false });
    const slots: number[] = [];
    for (let k = 0; k < 500; k++) {
      const s = p.add(k, k + 1);
      slots.push(s);
      const d = p.slotData;
      for (const f of OWNER_FIELDS) d[s * SLOT_FLOATS + f] = k * 10 + f;
      // hits in between, so that moves relink slots while the data grows under them
      if (k % 3 === 0) p.recordAccess(slots[k >> 1] as number);
    }
    p.drainReads();
    const d = p.slotData;
    for (let k = 0; k < 500; k++) {
      const s = slots[k] as number;
      expect(p.keyAt(s)).toBe(k);
      expect(p.weightAt(s)).toBe(k + 1);
      for (const f of OWNER_FIELDS) expect(d[s * SLOT_FLOATS + f]).toBe(k * 10 + f);
    }
    expect(p.weightedSize).toBe((500 * 501) / 2);
    p.clear();
    // every field of every entry slot zeroed (slots 1..3 are the queues' sentinels)
    expect(p.slotData.subarray(4 * SLOT_FLOATS).every((x) => x === 0)).toBe(true);
    expect(p.size).toBe(0);
  });
});

describe('WTinyLfuPolicy read buffer', () => {
  it('applies buffered hits before a slot is removed, so a reused slot never inherits them', () => {
    const p = new WTinyLfuPolicy<number>({ maximumWeight: 100, adaptive: false });
    const sketch = (p as unknown as { sketch: { frequency(h: number): number } }).sketch;
    const a = p.add(1, 1);
    for (let i = 0; i < 5; i++) p.recordAccess(a);
    expect(sketch.frequency(hashKey(1))).toBe(0);
    p.remove(a);
    expect(sketch.frequency(hashKey(1))).toBe(5);
    const b = p.add(2, 1);
    expect(b).toBe(a);
    p.drainReads();
    expect(sketch.frequency(hashKey(2))).toBe(0);
    expect(sketch.frequency(hashKey(1))).toBe(5);
  });

  it('drains on its own when full, and before a miss is counted', () => {
    const p = new WTinyLfuPolicy<number>({ maximumWeight: 1000, adaptive: false });
    const sketch = (p as unknown as { sketch: { frequency(h: number): number } }).sketch;
    const s = p.add(7, 1);
    for (let i = 0; i < 127; i++) p.recordAccess(s);
    expect(sketch.frequency(hashKey(7))).toBe(0);
    p.recordAccess(s);
    expect(sketch.frequency(hashKey(7))).toBe(15);
    const t = p.add(8, 1);
    p.recordAccess(t);
    p.onMiss(9);
    expect(sketch.frequency(hashKey(8))).toBe(1);
    expect(sketch.frequency(hashKey(9))).toBe(1);
  });

  it('gives the same hit rate buffered or not on a trace (only the climber timing differs)', () => {
    const trace = Array.from({ length: 20_000 }, (_, i) => Math.floor(Math.abs(Math.sin(i * 7.1)) * 900));
    const run = (buffered: boolean) => {
      const p = new WTinyLfuPolicy<number>({ maximumWeight: 100, adaptive: false });
      let hits = 0;
      for (const k of trace) {
        const slot = p.find(k);
        if (slot !== -1) {
          if (buffered) p.recordAccess(slot);
          else p.onHit(slot);
          hits++;
        } else {
          p.onMiss(k);
          p.add(k, 1);
        }
      }
      return hits;
    };
    expect(run(true)).toBe(run(false));
  });
});
