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
