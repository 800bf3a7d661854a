import { afterEach, describe, expect, it, vi } from 'vitest';
import { nextDailyRun, scheduleDaily } from '../src/internal.js';

describe('nextDailyRun', () => {
  it('is later today before the hour, tomorrow at or after it', () => {
    expect(nextDailyRun(new Date(2024, 4, 10, 1, 30), 3)).toEqual(new Date(2024, 4, 10, 3, 0));
    expect(nextDailyRun(new Date(2024, 4, 10, 3, 0), 3)).toEqual(new Date(2024, 4, 11, 3, 0));
    expect(nextDailyRun(new Date(2024, 4, 10, 23, 59), 3, 15)).toEqual(new Date(2024, 4, 11, 3, 15));
    expect(nextDailyRun(new Date(2024, 11, 31, 12, 0), 3)).toEqual(new Date(2025, 0, 1, 3, 0));
  });
});

describe('scheduleDaily', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs the task at 03:00 every day, never twice at once, until stopped', async () => {
    vi.useFakeTimers({ now: new Date(2024, 4, 10, 2, 0) });
    let release: () => void = () => {};
    const task = vi.fn(() => new Promise<void>((r) => (release = r)));
    const stop = scheduleDaily(task);
    await vi.advanceTimersByTimeAsync(59 * 60_000);
    expect(task).toHaveBeenCalledTimes(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(task).toHaveBeenCalledTimes(1);
    // Still running a day later: not started again.
    await vi.advanceTimersByTimeAsync(24 * 3_600_000);
    expect(task).toHaveBeenCalledTimes(1);
    release();
    await vi.advanceTimersByTimeAsync(24 * 3_600_000);
    expect(task).toHaveBeenCalledTimes(2);
    stop();
    release();
    await vi.advanceTimersByTimeAsync(3 * 24 * 3_600_000);
    expect(task).toHaveBeenCalledTimes(2);
  });

  it('survives a failing task', async () => {
    vi.useFakeTimers({ now: new Date(2024, 4, 10, 2, 0) });
    const task = vi.fn(async () => {
      throw new Error('boom');
    });
    const stop = scheduleDaily(task, { hour: 2, minute: 30 });
    await vi.advanceTimersByTimeAsync(2 * 24 * 3_600_000);
    expect(task).toHaveBeenCalledTimes(2);
    stop();
  });
});
