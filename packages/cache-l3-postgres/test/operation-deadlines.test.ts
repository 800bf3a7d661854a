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
});
