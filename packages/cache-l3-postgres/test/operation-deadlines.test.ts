import { describe, expect, it, vi } from 'vitest';
import { OperationDeadlines } from '../src/operation-deadlines.js';

describe('OperationDeadlines', () => {
  it('settles as the work does before the deadline, and rejects with the timeout error after it', async () => {
    vi.useFakeTimers();
    try {
      const deadlines = new OperationDeadlines(1000);
      expect(deadlines.tickMs).toBe(100);
      expect(new OperationDeadlines(20).tickMs).toBe(5);
      expect(new OperationDeadlines(600_000).tickMs).toBe(100);
      await expect(deadlines.bound(Promise.resolve(7), () => new Error('late'))).resolves.toBe(7);
      await expect(
        deadlines.bound(Promise.reject(new Error('boom')), () => new Error('late')),
      ).rejects.toThrow('boom');
      expect(deadlines.size).toBe(0);
      const never = new Promise<number>(() => {});
      const slow = deadlines.bound(never, () => new Error('late'));
      const caught = slow.catch((e: Error) => e.message);
      const started = Date.now();
      await vi.advanceTimersByTimeAsync(999);
      expect(deadlines.size).toBe(1);
      await vi.advanceTimersByTimeAsync(101);
      expect(await caught).toBe('late');
      expect(Date.now() - started).toBeLessThanOrEqual(1100);
      expect(deadlines.size).toBe(0);
      // The interval stopped with nothing pending: no timer left behind.
      expect(vi.getTimerCount()).toBe(0);
      // A result arriving after the timeout changes nothing.
      let finish: (v: number) => void = () => {};
      const later = deadlines.bound(new Promise<number>((r) => (finish = r)), () => new Error('late'));
      const laterCaught = later.catch((e: Error) => e.message);
      await vi.advanceTimersByTimeAsync(1100);
      finish(1);
      expect(await laterCaught).toBe('late');
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps operations settling in any order apart: each leaves the list once, the due ones time out in start order', async () => {
    vi.useFakeTimers();
    try {
      const deadlines = new OperationDeadlines(1000);
      const finishers: ((v: number) => void)[] = [];
      const outcomes: string[] = [];
      const start = (name: string) => {
        const p = deadlines.bound(
          new Promise<number>((r) => finishers.push(r)),
          () => new Error(`late ${name}`),
          (e) => new Error(`mapped ${(e as Error).message}`),
        );
        p.then(
          (v) => outcomes.push(`${name}=${v}`),
          (e: Error) => outcomes.push(e.message),
        );
        return p;
      };
      // a, b, c, d, e start at 0 ms; f and g at 500 ms.
      for (const name of ['a', 'b', 'c', 'd', 'e']) start(name);
      expect(deadlines.size).toBe(5);
      // Settle the middle, the head and the tail: the list stays linked.
      finishers[2]?.(3);
      finishers[0]?.(1);
      finishers[4]?.(5);
      await vi.advanceTimersByTimeAsync(0);
      expect(deadlines.size).toBe(2);
      expect(outcomes).toEqual(['c=3', 'a=1', 'e=5']);
      await vi.advanceTimersByTimeAsync(500);
      start('f');
      start('g');
      finishers[5]?.(6);
      await vi.advanceTimersByTimeAsync(0);
      expect(deadlines.size).toBe(3);
      // b and d are due at 1000 ms, g (started at 500) is not: b and d time out in the same tick.
      await vi.advanceTimersByTimeAsync(500);
      expect(outcomes).toEqual(['c=3', 'a=1', 'e=5', 'f=6', 'mapped late b', 'mapped late d']);
      expect(deadlines.size).toBe(1);
      // A settle after the timeout is ignored, and does not unlink anything else.
      finishers[1]?.(2);
      await vi.advanceTimersByTimeAsync(0);
      expect(deadlines.size).toBe(1);
      finishers[6]?.(7);
      await vi.advanceTimersByTimeAsync(0);
      expect(outcomes.at(-1)).toBe('g=7');
      expect(deadlines.size).toBe(0);
      // The next tick sees nothing pending and stops the interval.
      await vi.advanceTimersByTimeAsync(100);
      expect(vi.getTimerCount()).toBe(0);
      // A new operation after that starts it again and still times out.
      const again = start('h').catch(() => undefined);
      await vi.advanceTimersByTimeAsync(1100);
      await again;
      expect(outcomes.at(-1)).toBe('mapped late h');
      expect(deadlines.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
