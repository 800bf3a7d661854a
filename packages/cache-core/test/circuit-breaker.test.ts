import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../src/index.js';
import { CircuitBreaker, delay, withTimeout } from '../src/internal.js';

describe('CircuitBreaker', () => {
  it('opens after the threshold, lets one probe through after the cool-down, closes on success', () => {
    let now = 0;
    const states: string[] = [];
    const b = new CircuitBreaker({
      failureThreshold: 2,
      cooldownMs: 100,
      now: () => now,
      onStateChange: (s) => states.push(s),
    });
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe('closed');
    b.failure();
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    expect(b.retryInMs()).toBe(100);
    now = 100;
    expect(b.state).toBe('half_open');
    expect(b.allow()).toBe(true);
    expect(b.allow()).toBe(false);
    b.success();
    expect(b.state).toBe('closed');
    expect(b.retryInMs()).toBe(0);
    expect(states).toEqual(['open', 'half_open', 'closed']);
  });

  it('a failed probe re-opens for another cool-down', () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 50, now: () => now });
    b.failure();
    now = 60;
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.retryInMs()).toBe(50);
  });
});

describe('withTimeout', () => {
  it('resolves, rejects, or times out', async () => {
    await expect(withTimeout(Promise.resolve(1), 50, 'x')).resolves.toBe(1);
    await expect(withTimeout(Promise.reject(new Error('e')), 50, 'x')).rejects.toThrow('e');
    await expect(withTimeout(delay(200), 10, 'slow op')).rejects.toBeInstanceOf(TimeoutError);
    await expect(
      withTimeout(
        delay(1).then(() => 2),
        0,
        'none',
      ),
    ).resolves.toBe(2);
  });
});
