import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { type MetricsAdapter, MultiLevelCache } from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';

/**
 * A shared tier's deadline after a stall of this process (a burst's CPU work, a long GC): the
 * replies that arrived meanwhile are read before the deadline decides, so an answered operation is
 * not counted as timed out (and does not open the tier's circuit).
 */

let cat: ChildProcessWithoutNullStreams | undefined;
let cache: MultiLevelCache | undefined;
afterEach(async () => {
  await cache?.close();
  cat?.kill();
  cat = undefined;
  cache = undefined;
});

/** A shared tier whose every get is answered by another process (`cat` echoes its line). */
function echoTier(): FakeTier {
  const child = spawn('cat');
  cat = child;
  const waiting: (() => void)[] = [];
  let buffered = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl !== -1) {
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.();
      nl = buffered.indexOf('\n');
    }
  });
  const l2 = new FakeTier({ level: 'l2' });
  l2.get = (key) =>
    new Promise((resolve) => {
      waiting.push(() => resolve(undefined));
      child.stdin.write(`${key}\n`);
    });
  return l2;
}

function stall(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {}
}

describe('a shared tier deadline after the process stalled', () => {
  it('counts the replies received during the stall as answers: no timeout, the circuit stays closed', async () => {
    const errors: string[] = [];
    const metrics: MetricsAdapter = {
      hit: () => {},
      miss: () => {},
      latency: () => {},
      size: () => {},
      promotion: () => {},
      eviction: () => {},
      error: (level, op, type) => errors.push(`${level}:${op}:${type}`),
    };
    const l2 = echoTier();
    cache = new MultiLevelCache({
      tiers: [new FakeTier({ level: 'l1', sync: true }), l2],
      metrics,
      tierTimeoutMs: 100,
      circuitBreaker: { failureThreshold: 3, cooldownMs: 60_000 },
    });
    // The echo answers within a few ms; this process looks only after 400 ms.
    const reads = ['a', 'b', 'c', 'd'].map((k) => cache?.get(k));
    stall(400);
    const results = await Promise.all(reads);
    expect(results.map((r) => r?.value)).toEqual([undefined, undefined, undefined, undefined]);
    expect(errors).toEqual([]);
    // The tier is still read (its circuit did not open).
    await cache.get('e');
    expect(errors).toEqual([]);
  });

  it('still times out an operation that has no answer after the stall', async () => {
    const errors: string[] = [];
    const metrics: MetricsAdapter = {
      hit: () => {},
      miss: () => {},
      latency: () => {},
      size: () => {},
      promotion: () => {},
      eviction: () => {},
      error: (level, op, type) => errors.push(`${level}:${op}:${type}`),
    };
    const l2 = new FakeTier({ level: 'l2' });
    l2.get = () => new Promise(() => {});
    cache = new MultiLevelCache({
      tiers: [new FakeTier({ level: 'l1', sync: true }), l2],
      metrics,
      tierTimeoutMs: 50,
    });
    const read = cache.get('a');
    stall(200);
    await expect(read).resolves.toMatchObject({ value: undefined });
    expect(errors).toEqual(['l2:get:timeout']);
  });
});

describe('a shared tier whose writes time out', () => {
  function errorLog() {
    const errors: string[] = [];
    const metrics: MetricsAdapter = {
      hit: () => {},
      miss: () => {},
      latency: () => {},
      size: () => {},
      promotion: () => {},
      eviction: () => {},
      error: (level, op, type) => errors.push(`${level}:${op}:${type}`),
    };
    return { errors, metrics };
  }

  it('keeps its circuit closed for reads (write timeouts do not count); read failures still open it', async () => {
    const { errors, metrics } = errorLog();
    const l2 = new FakeTier({ level: 'l2' });
    l2.set = () => new Promise(() => {});
    cache = new MultiLevelCache({
      tiers: [new FakeTier({ level: 'l1', sync: true }), l2],
      metrics,
      tierTimeoutMs: 20,
      circuitBreaker: { failureThreshold: 3, cooldownMs: 60_000 },
    });
    for (let i = 0; i < 5; i++) await cache.set(`k${i}`, i);
    expect(errors.filter((e) => e === 'l2:set:timeout')).toHaveLength(5);
    await cache.get('other');
    expect(l2.calls.get).toBe(1);
    expect(errors.some((e) => e.endsWith(':circuit_open'))).toBe(false);
    // Reads that fail open it as before.
    l2.failWith = new Error('down');
    for (let i = 0; i < 3; i++) await cache.get(`r${i}`);
    await cache.get('r3');
    expect(errors).toContain('l2:get:circuit_open');
  });

  it('a half-open probe that is a timed-out write opens the circuit again (never stuck half-open)', async () => {
    const { errors, metrics } = errorLog();
    const l2 = new FakeTier({ level: 'l2' });
    cache = new MultiLevelCache({
      tiers: [new FakeTier({ level: 'l1', sync: true }), l2],
      metrics,
      tierTimeoutMs: 20,
      circuitBreaker: { failureThreshold: 1, cooldownMs: 50 },
    });
    l2.failWith = new Error('down');
    await cache.get('a');
    l2.failWith = undefined;
    const realSet = l2.set.bind(l2);
    l2.set = () => new Promise(() => {});
    await new Promise((r) => setTimeout(r, 60));
    await cache.set('probe', 1);
    expect(errors).toContain('l2:set:timeout');
    // Open again: a read right away is refused; after the cool-down a read probes and closes it.
    await cache.get('b');
    expect(errors).toContain('l2:get:circuit_open');
    l2.set = realSet;
    await new Promise((r) => setTimeout(r, 60));
    const before = l2.calls.get ?? 0;
    await cache.get('c');
    await cache.get('d');
    expect((l2.calls.get ?? 0) - before).toBe(2);
  });
});
