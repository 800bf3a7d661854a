import type { DistributedLock, Lease } from './bus.js';
import { withTimeout } from './timeout.js';

const noop = (): void => {};

/**
 * Takes the lease on `key` (as {@link DistributedLock.tryAcquire}) within `timeoutMs`. A lease
 * granted after the deadline is given back as soon as it arrives: the caller went on without it,
 * and a lease nobody knows of would be renewed by its holder and keep every other instance
 * waiting. Internal to `@bgc/cache-core`.
 */
export function acquireWithin(
  lock: DistributedLock,
  key: string,
  leaseMs: number,
  timeoutMs: number,
): Promise<Lease | undefined> {
  const attempt = lock.tryAcquire(key, leaseMs);
  return withTimeout(attempt, timeoutMs, 'lock acquire').catch((error: unknown) => {
    attempt.then((late) => late?.release(), noop);
    throw error;
  });
}
