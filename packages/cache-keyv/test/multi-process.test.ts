// Two real processes sharing Redis, each running cache-manager v7 over KeyvStore.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { REDIS_URL, uniquePrefix } from './helpers.js';

const WORKER = fileURLToPath(new URL('./fixtures/keyv-worker.ts', import.meta.url));

class Instance {
  private next = 0;
  private readonly pending = new Map<number, (m: Record<string, unknown>) => void>();
  private gateWaiters: (() => void)[] = [];
  readonly ready: Promise<void>;
  constructor(readonly child: ChildProcess) {
    this.ready = new Promise((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
      child.on('message', (m: Record<string, unknown>) => {
        if (m.ready) resolve();
        else if (m.gate) for (const w of this.gateWaiters.splice(0)) w();
        else this.pending.get(m.id as number)?.(m);
      });
    });
  }
  static start(config: object): Instance {
    return new Instance(
      fork(WORKER, [], {
        execArgv: ['--import', 'tsx'],
        env: { ...process.env, BGC_KEYV_WORKER: JSON.stringify(config) },
        stdio: 'inherit',
      }),
    );
  }
  async call(message: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.next++;
    const reply = await new Promise<Record<string, unknown>>((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ ...message, id });
    });
    expect(reply.error).toBeUndefined();
    return reply;
  }
  /** Resolves when this instance's gated function has started. */
  gateOpened(): Promise<void> {
    return new Promise((r) => this.gateWaiters.push(r));
  }
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ cmd: 'close', id: -1 });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

const prefixes: string[] = [];
async function pair(lockOnMiss: boolean): Promise<[Instance, Instance]> {
  const prefix = uniquePrefix(lockOnMiss ? 'mp-lock' : 'mp');
  prefixes.push(prefix);
  const config = { prefix, url: REDIS_URL, lockOnMiss };
  const instances: [Instance, Instance] = [Instance.start(config), Instance.start(config)];
  await Promise.all(instances.map((i) => i.ready));
  return instances;
}

afterAll(async () => {
  const admin = new Redis(REDIS_URL);
  for (const p of prefixes) {
    const keys = await admin.keys(`${p}*`);
    if (keys.length > 0) await admin.del(...keys);
  }
  admin.disconnect();
});

describe('cache-manager v7 over KeyvStore in two processes sharing Redis', () => {
  it('lockOnMiss: 1,000 concurrent wraps of one key across both processes run the function once', async () => {
    const [a, b] = await pair(true);
    try {
      const [ra, rb] = await Promise.all([
        a.call({ cmd: 'wrap', key: 'cold', concurrency: 500, fnMs: 300 }),
        b.call({ cmd: 'wrap', key: 'cold', concurrency: 500, fnMs: 300 }),
      ]);
      expect((ra.fnCalls as number) + (rb.fnCalls as number)).toBe(1);
      const values = new Set([...(ra.values as string[]), ...(rb.values as string[])]);
      expect(values.size).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  it("lockOnMiss: a wrap on one process waits for the other's running function and takes its value", async () => {
    const [a, b] = await pair(true);
    try {
      const started = a.gateOpened();
      const first = a.call({ cmd: 'wrapGated', key: 'gated' });
      await started; // a holds the lease, its function is running
      const second = b.call({ cmd: 'wrap', key: 'gated', concurrency: 10, fnMs: 0 });
      await a.call({ cmd: 'open' });
      const [ra, rb] = await Promise.all([first, second]);
      expect(ra.fnCalls).toBe(1);
      expect(rb.fnCalls).toBe(0);
      expect(rb.values).toEqual(ra.values);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  it('without lockOnMiss the other process runs the function again (the case the lock exists for)', async () => {
    const [a, b] = await pair(false);
    try {
      const started = a.gateOpened();
      const first = a.call({ cmd: 'wrapGated', key: 'gated' });
      await started;
      // a's function has not stored anything yet: b misses and runs its own.
      const rb = await b.call({ cmd: 'wrap', key: 'gated', concurrency: 10, fnMs: 0 });
      await a.call({ cmd: 'open' });
      const ra = await first;
      expect(ra.fnCalls).toBe(1);
      expect(rb.fnCalls).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);

  it("a del in one process is seen by the other's next reads (bus invalidation of its L1)", async () => {
    const [a, b] = await pair(false);
    try {
      await a.call({ cmd: 'wrap', key: 'hot', concurrency: 1, fnMs: 0 });
      // b reads it from Redis, then from its own L1.
      const first = await b.call({ cmd: 'wrap', key: 'hot', concurrency: 1, fnMs: 0 });
      expect(first.fnCalls).toBe(0);
      expect((await b.call({ cmd: 'get', key: 'hot' })).value).toBeDefined();
      await a.call({ cmd: 'del', key: 'hot' });
      // Pub/sub delivery is asynchronous: poll b until the key is gone, counting the reads.
      let reads = 0;
      const t0 = Date.now();
      for (;;) {
        reads++;
        const r = await b.call({ cmd: 'get', key: 'hot' });
        if (r.value === undefined) break;
        expect(reads).toBeLessThan(100_000); // the bus message never arrived
      }
      const ms = Date.now() - t0;
      console.log(`keyv multi-process: del seen by the other process after ${reads} read(s), ${ms} ms`);
      const after = await b.call({ cmd: 'wrap', key: 'hot', concurrency: 1, fnMs: 0 });
      expect(after.fnCalls).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  }, 60_000);
});
