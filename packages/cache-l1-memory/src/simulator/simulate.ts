import { basename } from 'node:path';
import { WTinyLfuPolicy, type WTinyLfuPolicyOptions } from '../w-tiny-lfu-policy.js';
import { readTrace } from './trace-reader.js';

/** Tuning of the policy under test; see {@link WTinyLfuPolicyOptions}. */
export type PolicyTuning = Omit<WTinyLfuPolicyOptions<number>, 'maximumWeight' | 'onEvict'>;

/**
 * Hit rate (0..1) of {@link WTinyLfuPolicy} on a trace: every access is a read, and a miss is
 * followed by an insert of cost 1; `capacity` is in entries.
 */
export function simulatePolicy(
  trace: ArrayLike<number>,
  capacity: number,
  tuning: PolicyTuning = {},
): number {
  const policy = new WTinyLfuPolicy<number>({
    expectedEntries: capacity,
    ...tuning,
    maximumWeight: capacity,
  });
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const key = trace[i] as number;
    const slot = policy.find(key);
    if (slot !== -1) {
      policy.recordAccess(slot);
      hits++;
    } else {
      policy.onMiss(key);
      policy.add(key, 1);
    }
  }
  return trace.length === 0 ? 0 : hits / trace.length;
}

/** Hit rate (0..1) of a plain LRU of `capacity` entries (what lru-cache reaches). */
export function simulateLru(trace: ArrayLike<number>, capacity: number): number {
  const lru = new Map<number, true>();
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const key = trace[i] as number;
    if (lru.delete(key)) {
      hits++;
    } else if (lru.size >= capacity) {
      lru.delete(lru.keys().next().value as number);
    }
    lru.set(key, true);
  }
  return trace.length === 0 ? 0 : hits / trace.length;
}

/**
 * Hit rate (0..1) of Bélády's optimal offline policy: on a miss with a full cache, evict the key
 * whose next use is farthest in the future. No policy can do better on the same trace.
 */
export function simulateOpt(trace: ArrayLike<number>, capacity: number): number {
  const n = trace.length;
  const nextUse = new Float64Array(n);
  const last = new Map<number, number>();
  for (let i = n - 1; i >= 0; i--) {
    const key = trace[i] as number;
    nextUse[i] = last.get(key) ?? Number.POSITIVE_INFINITY;
    last.set(key, i);
  }
  // Max-heap of (next use, key) with lazy deletion: stale pairs are skipped when popped.
  const heapUse: number[] = [];
  const heapKey: number[] = [];
  const current = new Map<number, number>();
  const push = (use: number, key: number) => {
    let i = heapUse.length;
    heapUse.push(use);
    heapKey.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((heapUse[p] as number) >= use) break;
      heapUse[i] = heapUse[p] as number;
      heapKey[i] = heapKey[p] as number;
      i = p;
    }
    heapUse[i] = use;
    heapKey[i] = key;
  };
  const pop = (): [number, number] => {
    const top: [number, number] = [heapUse[0] as number, heapKey[0] as number];
    const use = heapUse.pop() as number;
    const key = heapKey.pop() as number;
    const len = heapUse.length;
    if (len > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= len) break;
        const r = l + 1;
        const c = r < len && (heapUse[r] as number) > (heapUse[l] as number) ? r : l;
        if ((heapUse[c] as number) <= use) break;
        heapUse[i] = heapUse[c] as number;
        heapKey[i] = heapKey[c] as number;
        i = c;
      }
      heapUse[i] = use;
      heapKey[i] = key;
    }
    return top;
  };
  let hits = 0;
  for (let i = 0; i < n; i++) {
    const key = trace[i] as number;
    const use = nextUse[i] as number;
    if (current.has(key)) {
      hits++;
    } else if (current.size >= capacity) {
      for (;;) {
        const [u, k] = pop();
        if (current.get(k) === u) {
          current.delete(k);
          break;
        }
      }
    }
    current.set(key, use);
    push(use, key);
  }
  return n === 0 ? 0 : hits / n;
}

/** Options of {@link simulateTrace}. */
export interface SimulateTraceOptions {
  /** Path of the trace file (see {@link readTrace} for the formats). */
  trace: string;
  /** Cache capacity in entries. */
  capacity: number;
  /** Also compute Bélády's optimum. @default false */
  opt?: boolean;
  /** Policy tuning (for experiments). */
  tuning?: PolicyTuning;
}

/** The simulator's result, printed as JSON by the CLI. Hit rates are 0..1. */
export interface SimulationResult {
  trace: string;
  capacity: number;
  accesses: number;
  hitRate: number;
  lruHitRate: number;
  optHitRate?: number;
}

/** Replays a trace file through the policy, LRU and optionally OPT. */
export function simulateTrace(options: SimulateTraceOptions): SimulationResult {
  const keys = readTrace(options.trace);
  const result: SimulationResult = {
    trace: basename(options.trace),
    capacity: options.capacity,
    accesses: keys.length,
    hitRate: round(simulatePolicy(keys, options.capacity, options.tuning)),
    lruHitRate: round(simulateLru(keys, options.capacity)),
  };
  if (options.opt) result.optHitRate = round(simulateOpt(keys, options.capacity));
  return result;
}

function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
