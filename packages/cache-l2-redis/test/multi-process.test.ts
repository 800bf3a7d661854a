import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type RedisCluster, startRedisCluster } from '../../../scripts/redis-servers.mjs';
import { REDIS_HOST, REDIS_PORT, uniquePrefix } from './helpers.js';

const WORKER = fileURLToPath(new URL('./fixtures/cache-worker.ts', import.meta.url));

/** A forked gateway instance, driven by request/reply over IPC. */
class Instance {
  private next = 0;
  private readonly pending = new Map<number, (m: Record<string, unknown>) => void>();
  readonly ready: Promise<void>;
  constructor(readonly child: ChildProcess) {
    this.ready = new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
      child.on('message', (m: Record<string, unknown>) => {
        if (m.ready) resolve();
        else this.pending.get(m.id as number)?.(m);
      });
    });
  }
  static start(config: object): Instance {
    return new Instance(
      fork(WORKER, [], {
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, BGC_WORKER_CONFIG: JSON.stringify(config) },
        stdio: 'inherit',
      }),
    );
  }
  call(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.next++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ ...message, id });
    });
  }
}

async function scenario(config: object) {
  const instances = [Instance.start(config), Instance.start(config), Instance.start(config)];
  try {
    await Promise.all(instances.map((i) => i.ready));

    // 1,000 concurrent getOrLoad of one missing key across 3 processes → 1 loader call.
    const perProcess = [334, 333, 333];
    const loads = await Promise.all(
      instances.map((inst, i) =>
        inst.call({ cmd: 'load', key: 'cold', concurrency: perProcess[i], loaderMs: 300 }),
      ),
    );
    const totalCalls = loads.reduce((sum, r) => sum + (r.loaderCalls as number), 0);
    expect(loads.map((r) => r.error)).toEqual([undefined, undefined, undefined]);
    expect(totalCalls).toBe(1);
    const values = new Set(loads.flatMap((r) => r.values as string[]));
    expect(values.size).toBe(1);

    // A set on one process is seen by the others once its bus message arrives: until then an old
    // value can only come from their own L1, never from the shared L2 (which the set wrote first).
    const [a, b, c] = instances as [Instance, Instance, Instance];
    await a.call({ cmd: 'set', key: 'hot', value: 'v1' });
    // That set's own invalidation reaches b and c first (else it could drop the copy their first
    // read promotes, and the second read would come from L2).
    for (const other of [b, c])
      while (((await other.call({ cmd: 'received', key: 'hot' })).count as number) < 1)
        await new Promise((r) => setTimeout(r, 5));
    for (const other of [b, c]) {
      expect((await other.call({ cmd: 'get', key: 'hot' })).value).toBe('v1');
      expect(await other.call({ cmd: 'get', key: 'hot' })).toMatchObject({ value: 'v1', level: 'l1' });
    }
    await a.call({ cmd: 'set', key: 'hot', value: 'v2' });
    const seen = await Promise.all(
      [b, c].map(async (other) => {
        const staleLevels = new Set<string>();
        for (let i = 0; i < 100_000; i++) {
          const r = await other.call({ cmd: 'get', key: 'hot' });
          if (r.value === 'v2') return { seen: true, staleLevels };
          staleLevels.add(String(r.level));
        }
        return { seen: false, staleLevels };
      }),
    );
    for (const s of seen) {
      expect(s.seen).toBe(true);
      expect([...s.staleLevels].filter((l) => l !== 'l1')).toEqual([]);
    }
  } finally {
    await Promise.all(
      instances.map((i) => (i.child.connected ? i.call({ cmd: 'close' }).catch(() => undefined) : undefined)),
    );
    for (const i of instances) if (i.child.exitCode === null) i.child.kill();
  }
}

describe('3 gateway processes (L1 + Redis L2, bus, lock)', () => {
  let cluster: RedisCluster | undefined;
  afterAll(async () => {
    await cluster?.stop();
  });

  it('on the real Redis: 1,000 concurrent getOrLoad → 1 loader call; a set is seen by the others once its bus message arrives', async () => {
    await scenario({ url: `redis://${REDIS_HOST}:${REDIS_PORT}`, prefix: uniquePrefix('procs') });
  }, 60_000);

  it('on a 3-master cluster: the same', async () => {
    cluster = await startRedisCluster({ masters: 3 });
    await scenario({ cluster: cluster.startupNodes, prefix: uniquePrefix('procs-cluster') });
  }, 60_000);
});
