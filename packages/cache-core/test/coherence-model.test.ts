import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type {
  CacheEntry,
  DistributedLock,
  InvalidationBus,
  InvalidationMessage,
  Tier,
} from '../src/index.js';
import { MultiLevelCache } from '../src/index.js';
import { FakeTier } from '../src/testing/index.js';

/**
 * Model-based concurrency test: two MultiLevelCache instances (own L1 each, one shared L2 with
 * tombstones, an in-memory invalidation bus) run random get/getOrLoad/set/delete/clear commands
 * whose L2 calls and loader answers are released in an order chosen by fast-check's scheduler.
 *
 * The source of truth is a counter per key: every set and delete first advances it (a write of the
 * new value; a delete = the upstream changed), the loader returns its value when called. Checked:
 * - a read that starts after a write or delete of its key completed never returns an older value;
 * - once everything settled, no tier holds a value older than the last completed write or delete,
 *   and getOrLoad on either instance answers at least that value.
 */

type Cmd =
  | { op: 'get' | 'getOrLoad' | 'set' | 'delete'; inst: 0 | 1; key: 'a' | 'b' }
  | { op: 'clear'; inst: 0 | 1 }
  | { op: 'getMany'; inst: 0 | 1 };

const KEYS = ['a', 'b'] as const;

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({
    op: fc.constantFrom('get', 'getOrLoad', 'set', 'delete') as fc.Arbitrary<
      'get' | 'getOrLoad' | 'set' | 'delete'
    >,
    inst: fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>,
    key: fc.constantFrom('a', 'a', 'a', 'b') as fc.Arbitrary<'a' | 'b'>,
  }),
  fc.record({
    op: fc.constantFrom('clear', 'getMany') as fc.Arbitrary<'clear' | 'getMany'>,
    inst: fc.constantFrom(0, 1) as fc.Arbitrary<0 | 1>,
  }) as fc.Arbitrary<Cmd>,
);

/** A bus delivering to the other instances before publish resolves. */
function memoryBus(): () => InvalidationBus {
  const handlers = new Set<(m: InvalidationMessage) => void>();
  return () => {
    let mine: ((m: InvalidationMessage) => void) | undefined;
    return {
      publish: async (m) => {
        for (const h of handlers) if (h !== mine) h(m);
      },
      subscribe: (h) => {
        mine = h;
        handlers.add(h);
      },
      close: async () => {
        if (mine) handlers.delete(mine);
      },
    };
  };
}

/** An in-memory distributed lock shared by the instances (waiters woken on release). */
function memoryLock(): DistributedLock {
  const held = new Set<string>();
  const waiters = new Map<string, (() => void)[]>();
  return {
    tryAcquire: async (key) => {
      if (held.has(key)) return undefined;
      held.add(key);
      return {
        release: async () => {
          held.delete(key);
          for (const w of waiters.get(key) ?? []) w();
          waiters.delete(key);
        },
      };
    },
    waitForRelease: (key) =>
      held.has(key)
        ? new Promise<void>((resolve) => waiters.set(key, [...(waiters.get(key) ?? []), resolve]))
        : Promise.resolve(),
  };
}

/** Every async call of `tier` first waits for the scheduler to release it. */
function scheduled(tier: FakeTier, s: fc.Scheduler, name: string, log: string[]): Tier {
  const wrap =
    <A extends unknown[], R>(label: string, fn: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      s.schedule(Promise.resolve(`${name}.${label}`)).then(() => {
        log.push(`${name}.${label} ${JSON.stringify(args)}`);
        return fn(...args);
      });
  return Object.assign(tier, {
    get: wrap('get', tier.get.bind(tier)),
    set: wrap('set', tier.set.bind(tier)),
    delete: wrap('delete', tier.delete.bind(tier)),
    clear: wrap('clear', tier.clear.bind(tier)),
  });
}

async function runModel(
  s: fc.Scheduler,
  cmds: Cmd[],
  withLock: boolean,
  backgroundWrites: boolean,
): Promise<void> {
  const lock = withLock ? memoryLock() : undefined;
  const source: Record<string, number> = { a: 0, b: 0 };
  /** Per key, the source value of the last completed write or delete. */
  const completed: Record<string, number> = { a: 0, b: 0 };
  const sharedStore = new Map<string, CacheEntry>();
  const bus = memoryBus();
  const log: string[] = [];
  const l1s = [new FakeTier({ level: 'l1', sync: true }), new FakeTier({ level: 'l1', sync: true })];
  const caches = l1s.map(
    (l1, i) =>
      new MultiLevelCache({
        tiers: [l1, scheduled(new FakeTier({ level: 'l2', store: sharedStore }), s, `l2#${i}`, log)],
        bus: bus(),
        lock,
        backgroundWrites,
        coalesceWindowMs: 0,
        tierTimeoutMs: 0,
        hardTimeoutMs: 600_000,
        softTimeoutMs: 600_000,
        circuitBreaker: false,
        defaultTtlMs: 3_600_000,
      }),
  );
  const loader = (key: string) => () => {
    log.push(`loader ${key} reads ${source[key]}`);
    return s.schedule(Promise.resolve(source[key] as number), `load ${key}`);
  };
  const violations: string[] = [];
  const check = (what: string, key: string, floor: number, value: unknown, allowMiss: boolean) => {
    if (value === undefined && allowMiss) return;
    if (typeof value !== 'number' || value < floor)
      violations.push(`${what}(${key}) returned ${String(value)} after ${floor} completed`);
  };

  const run = async (cmd: Cmd): Promise<void> => {
    await s.schedule(Promise.resolve(`start ${JSON.stringify(cmd)}`));
    log.push(`start ${JSON.stringify(cmd)} source=${JSON.stringify(source)}`);
    try {
      await runCmd(cmd);
    } finally {
      log.push(`end ${JSON.stringify(cmd)} completed=${JSON.stringify(completed)}`);
    }
  };
  const runCmd = async (cmd: Cmd): Promise<void> => {
    const cache = caches[cmd.inst] as MultiLevelCache;
    if (cmd.op === 'getMany') {
      const floors = KEYS.map((k) => completed[k] as number);
      const got = await cache.getMany<number>([...KEYS]);
      KEYS.forEach((k, i) => {
        check('getMany', k, floors[i] as number, got[i]?.value, true);
      });
      return;
    }
    if (cmd.op === 'clear') {
      const values = KEYS.map((k) => {
        source[k] = (source[k] as number) + 1;
        return source[k] as number;
      });
      await cache.clear();
      KEYS.forEach((k, i) => {
        completed[k] = Math.max(completed[k] as number, values[i] as number);
      });
      return;
    }
    const key = cmd.key;
    const floor = completed[key] as number;
    switch (cmd.op) {
      case 'get':
        check('get', key, floor, (await cache.get<number>(key)).value, true);
        return;
      case 'getOrLoad':
        check('getOrLoad', key, floor, (await cache.getOrLoad<number>(key, loader(key))).value, false);
        return;
      case 'set': {
        const n = (source[key] as number) + 1;
        source[key] = n;
        await cache.set(key, n);
        completed[key] = Math.max(completed[key] as number, n);
        return;
      }
      case 'delete': {
        const n = (source[key] as number) + 1;
        source[key] = n;
        await cache.delete(key);
        completed[key] = Math.max(completed[key] as number, n);
        return;
      }
    }
  };

  try {
    const done = Promise.all(cmds.map(run));
    await s.waitFor(done);
    await s.waitFor(Promise.all(caches.map((c) => c.flush())));
    // Nothing stale left behind in any tier.
    for (const key of KEYS) {
      const floor = completed[key] as number;
      for (const [label, e] of [
        ['L1#0', l1s[0]?.store.get(key)],
        ['L1#1', l1s[1]?.store.get(key)],
        ['L2', sharedStore.get(key)],
      ] as const) {
        if (e !== undefined && (e.value as number) < floor)
          violations.push(`${label} holds ${String(e.value)} for ${key} after ${floor} completed`);
      }
      for (const cache of caches) {
        const r = await s.waitFor(cache.getOrLoad<number>(key, loader(key)));
        check('final getOrLoad', key, floor, r.value, false);
      }
    }
  } finally {
    // Background writes may still wait for the scheduler: close (which flushes) under it too.
    await s.waitFor(Promise.all(caches.map((c) => c.close())));
  }
  if (violations.length > 0) console.log(log.join('\n'));
  expect(violations).toEqual([]);
}

describe('coherence model (two instances, shared L2, bus, scheduler interleavings)', () => {
  it('no read returns a value older than the last completed write or delete of its key', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(cmdArb, { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        fc.boolean(),
        runModel,
      ),
      { numRuns: 3000, timeout: 5000 },
    );
  }, 600_000);
});
