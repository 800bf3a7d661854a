// The per-request logger is built on first use: answers that log nothing build no pino child,
// answers that log carry the request id as Fastify's own child would.
import { Writable } from 'node:stream';
import { BgcCacheError, MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LazyChildLogger } from '../src/request-logger.js';
import { createApp, type MonthFetcher } from '../src/server.js';

const caches: MultiLevelCache[] = [];
afterEach(async () => {
  for (const c of caches.splice(0)) await c.close();
});

/** A pino logger writing JSON lines into `lines`, counting the children made from it. */
function recordingLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level }, stream);
  let children = 0;
  const child = logger.child.bind(logger);
  // Fastify wraps the logger in a child of its own at start: count the children of that one too.
  const counting = Object.assign(Object.create(logger), {
    child(...args: Parameters<typeof logger.child>) {
      children++;
      const c = child(...args);
      const inner = c.child.bind(c);
      c.child = ((...a: Parameters<typeof c.child>) => {
        children++;
        return inner(...a);
      }) as typeof c.child;
      return c;
    },
  }) as typeof logger;
  return { logger: counting, lines, children: () => children };
}

const Q = '/comexstat/exportacao_mes?ano=2024&mes=3&ncm=12019000&pais=160';

describe('request logger', () => {
  it('builds no child logger for answers that log nothing, and one with reqId when a request logs', async () => {
    const rec = recordingLogger();
    let fail = false;
    const fetchMonth: MonthFetcher = async () => {
      if (fail) throw new BgcCacheError('E_COMEXSTAT_HTTP', 'upstream said no');
      return { rows: [{ fob: 1 }], level: 'l1', stale: false };
    };
    const cache = new MultiLevelCache({ tiers: [new MemoryTier()] });
    caches.push(cache);
    const app = createApp({ cache, fetchMonth, logger: rec.logger });
    await app.ready();
    const atStart = rec.children();
    for (let i = 0; i < 20; i++) expect((await app.inject({ method: 'GET', url: Q })).statusCode).toBe(200);
    expect(rec.children()).toBe(atStart);

    fail = true;
    const r = await app.inject({ method: 'GET', url: Q });
    expect(r.statusCode).toBe(502);
    expect(rec.children()).toBe(atStart + 1);
    const warn = rec.lines.find((l) => l.msg === 'upstream failure with nothing cached');
    expect(warn).toMatchObject({ level: 40, reqId: expect.stringMatching(/^req-/) });
    await app.close();
  });

  it('delegates every level and child() to the real child, honouring its level', () => {
    const rec = recordingLogger('debug');
    const lazy = new LazyChildLogger(rec.logger, { reqId: 'req-7' }, { level: 'warn' });
    expect(lazy.level).toBe('warn');
    expect(rec.children()).toBe(0);
    lazy.info('dropped: below warn');
    lazy.debug('dropped too');
    lazy.trace('and this');
    lazy.silent('never');
    lazy.warn({ a: 1 }, 'kept');
    lazy.error('kept too');
    lazy.fatal('and fatal');
    expect(rec.children()).toBe(1);
    expect(rec.lines.map((l) => [l.level, l.msg, l.reqId])).toEqual([
      [40, 'kept', 'req-7'],
      [50, 'kept too', 'req-7'],
      [60, 'and fatal', 'req-7'],
    ]);
    lazy.level = 'debug';
    lazy.debug('now kept');
    expect(rec.lines.at(-1)).toMatchObject({ level: 20, msg: 'now kept', reqId: 'req-7' });
    const grandchild = lazy.child({ step: 'x' });
    grandchild.warn('from the grandchild');
    expect(rec.lines.at(-1)).toMatchObject({ reqId: 'req-7', step: 'x', msg: 'from the grandchild' });
    // Without a level of its own, the lazy logger reports the parent's until built.
    expect(new LazyChildLogger(rec.logger, {}, {}).level).toBe('debug');
  });
});
