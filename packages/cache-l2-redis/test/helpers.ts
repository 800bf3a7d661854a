import { randomUUID } from 'node:crypto';
import type { CacheErrorType, CacheOperation, Level, MetricsAdapter } from '@bgc/cache-core';
import { NOOP_METRICS } from '@bgc/cache-core';

/** Address of the shared Redis every engineer's tests use (unique prefixes keep runs apart). */
export const REDIS_HOST = process.env.REDIS_HOST ?? '127.0.0.1';
export const REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379);

/** A prefix no other test run uses. */
export const uniquePrefix = (what: string) =>
  `bgc-test:l2:${what}:${process.pid}:${randomUUID().slice(0, 8)}:`;

/** Metrics adapter that records error calls. */
export function recordingMetrics(): MetricsAdapter & { errors: [Level, CacheOperation, CacheErrorType][] } {
  const errors: [Level, CacheOperation, CacheErrorType][] = [];
  return { ...NOOP_METRICS, errors, error: (level, op, type) => errors.push([level, op, type]) };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 5 ms until it returns true or `timeoutMs` elapses; resolves the elapsed ms or -1. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 <= timeoutMs) {
    if (await check()) return Date.now() - t0;
    await sleep(5);
  }
  return -1;
}
