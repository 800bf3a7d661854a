import type fc from 'fast-check';
import type { MultiLevelCache } from '../src/index.js';

/** A command of the model-based concurrency tests: on key 'a' or 'b'. */
export type ModelCmd =
  | { op: 'set'; key: 'a' | 'b'; stale: boolean }
  | { op: 'delete' | 'get'; key: 'a' | 'b' }
  | { op: 'getOrLoad'; key: 'a' | 'b'; fail: boolean; readFails?: boolean };

/**
 * Runs model commands on `cache` under fast-check's scheduler: writes and deletes number each key's
 * values (1, 2, ...), loaders answer the key's current number when the scheduler lets them (or
 * fail), and every read checks that it returns no value older than the last write or delete of
 * its key that completed before the read started. `beforeLoad` runs before each getOrLoad.
 */
export function modelRunner(
  s: fc.Scheduler,
  cache: MultiLevelCache,
  beforeLoad?: (cmd: Extract<ModelCmd, { op: 'getOrLoad' }>) => void,
) {
  const source: Record<string, number> = { a: 0, b: 0 };
  const completed: Record<string, number> = { a: 0, b: 0 };
  const violations: string[] = [];
  const check = (what: string, k: string, floor: number, value: unknown) => {
    if (value === undefined) return;
    if (typeof value !== 'number' || value < floor)
      violations.push(`${what}(${k}) returned ${String(value)} after ${floor} completed`);
  };
  const run = async (cmd: ModelCmd): Promise<void> => {
    await s.schedule(Promise.resolve(`start ${JSON.stringify(cmd)}`));
    const k = cmd.key;
    const floor = completed[k] as number;
    switch (cmd.op) {
      case 'set': {
        const v = (source[k] as number) + 1;
        source[k] = v;
        await cache.set(k, v, cmd.stale ? { ttlMs: 0 } : {});
        completed[k] = Math.max(completed[k] as number, v);
        return;
      }
      case 'delete': {
        const v = (source[k] as number) + 1;
        source[k] = v;
        await cache.delete(k);
        completed[k] = Math.max(completed[k] as number, v);
        return;
      }
      case 'get':
        check('get', k, floor, (await cache.get(k)).value);
        return;
      case 'getOrLoad': {
        beforeLoad?.(cmd);
        const loader = () => {
          const v = source[k] as number;
          return s
            .schedule(Promise.resolve(v), `load ${k}`)
            .then((x) => (cmd.fail ? Promise.reject(new Error('upstream down')) : x));
        };
        try {
          check('getOrLoad', k, floor, (await cache.getOrLoad(k, loader)).value);
        } catch {
          // A failed load without a fallback: nothing returned.
        }
        return;
      }
    }
  };
  return { run, violations, completed };
}
