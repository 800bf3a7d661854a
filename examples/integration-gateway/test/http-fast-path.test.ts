// Issue 17 (part): the fast path of L1 hits answers before Fastify routes the request, with the
// same status, headers (in the same order) and bytes as the Fastify route; everything else goes
// through Fastify. Real HTTP (the fast path sits in the server's request listener, which inject skips).
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  conditionHeaders,
  createApp,
  type MonthAnswer,
  type MonthQuery,
  parseMonthQuery,
} from '../src/server.js';

interface Raw {
  status: number;
  headers: string[];
  body: Buffer;
}

function get(url: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode as number, headers: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** The header lines but Date (the one a server sets from its own clock). */
const lines = (r: Raw) => {
  const out: string[] = [];
  for (let i = 0; i < r.headers.length; i += 2)
    if (r.headers[i] !== 'Date') out.push(`${r.headers[i]}: ${r.headers[i + 1]}`);
  return out;
};

const silent = pino({ level: 'silent' });
const NOW = Date.parse('2026-11-20T12:00:00Z');
const bigRows = Object.freeze(
  Array.from({ length: 200 }, (_, i) => Object.freeze({ ncm: '12019000', pais: '160', fob: 1000 + i })),
);
const smallRows = Object.freeze([Object.freeze({ ncm: '12019000', pais: '160', fob: 1 })]);

type Mode = 'fast' | 'route';
interface Served {
  url: string;
  fetched: MonthQuery[];
  looked: MonthQuery[];
  app: ReturnType<typeof createApp>;
}
const apps: ReturnType<typeof createApp>[] = [];

async function serve(
  mode: Mode,
  answerFor: (q: MonthQuery) => MonthAnswer | undefined,
  options: { ready?: boolean; logger?: typeof silent } = {},
): Promise<Served> {
  const fetched: MonthQuery[] = [];
  const looked: MonthQuery[] = [];
  const app = createApp({
    cache: new MultiLevelCache({ tiers: [new MemoryTier()] }),
    fetchMonth: async (q) => {
      fetched.push(q);
      return answerFor(q) ?? { rows: [], level: 'external', stale: false, fetchedAt: NOW - 1000 };
    },
    cachedMonth:
      mode === 'fast'
        ? (q) => {
            looked.push(q);
            return answerFor(q);
          }
        : undefined,
    freshUntil: (_q, a) => (a.fetchedAt ?? NOW) + 3_600_000,
    staleWindowMs: 86_400_000,
    logger: options.logger ?? silent,
  });
  apps.push(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  if (options.ready !== false) app.setPhase('ready');
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, fetched, looked, app };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const hit = (rows: readonly unknown[], extra: Partial<MonthAnswer> = {}): MonthAnswer => ({
  rows,
  level: 'l1',
  stale: false,
  fetchedAt: NOW - 90_000,
  ...extra,
});
const PATH = '/comexstat/exportacao_mes?ano=2024&mes=3&ncm=12019000&pais=160';

describe('the fast path answers L1 hits exactly as the route does', () => {
  it.each([
    ['a small body', smallRows, {}, {}],
    ['a large body, plain', bigRows, {}, {}],
    ['gzip', bigRows, { 'accept-encoding': 'gzip' }, {}],
    ['br', bigRows, { 'accept-encoding': 'br;q=1, gzip;q=0.5' }, {}],
    ['If-Modified-Since → 304', smallRows, { 'if-modified-since': new Date(NOW).toUTCString() }, {}],
    [
      'If-Modified-Since before → 200',
      smallRows,
      { 'if-modified-since': new Date(NOW - 3_600_000).toUTCString() },
      {},
    ],
    ['a month not published yet', Object.freeze([]), {}, { status: 'not_published' }],
  ] as const)('%s', async (_name, rows, headers, extra) => {
    const answer = hit(rows, extra);
    const fast = await serve('fast', () => answer);
    const route = await serve('route', () => answer);
    const a = await get(fast.url, PATH, headers);
    const b = await get(route.url, PATH, headers);
    expect(fast.fetched).toHaveLength(0);
    expect(fast.looked).toHaveLength(1);
    expect(route.fetched).toHaveLength(1);
    expect(a.status).toBe(b.status);
    expect(lines(a)).toEqual(lines(b));
    expect(a.body.equals(b.body)).toBe(true);
  });

  it('If-None-Match: the same 304 (no body, no content-type), and a 200 for another tag', async () => {
    const answer = hit(bigRows);
    const fast = await serve('fast', () => answer);
    const route = await serve('route', () => answer);
    const etag = (await get(route.url, PATH)).headers[3] as string;
    expect(etag).toMatch(/^"/);
    for (const inm of [etag, `"x", W/${etag}`, '*', '"other"']) {
      const a = await get(fast.url, PATH, { 'if-none-match': inm });
      const b = await get(route.url, PATH, { 'if-none-match': inm });
      expect(a.status).toBe(inm === '"other"' ? 200 : 304);
      expect(a.status).toBe(b.status);
      expect(lines(a)).toEqual(lines(b));
      expect(a.body.equals(b.body)).toBe(true);
    }
    expect(fast.fetched).toHaveLength(0);
  });

  it('the imports route too, and any order of the parameters', async () => {
    const fast = await serve('fast', () => hit(smallRows));
    const r = await get(fast.url, '/comexstat/importacao_mes?pais=160&ncm=12019000&mes=12&ano=2024');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body.toString())).toMatchObject({ ano: 2024, mes: 12, ncm: '12019000', pais: '160' });
    expect(fast.looked).toEqual([{ flow: 'import', ano: 2024, mes: 12, ncm: '12019000', pais: '160' }]);
    expect(fast.fetched).toHaveLength(0);
  });
});

describe('everything else goes through Fastify', () => {
  it.each([
    [
      'a leading zero (coerced by the route)',
      '/comexstat/exportacao_mes?ano=2024&mes=03&ncm=12019000&pais=160',
    ],
    ['an extra parameter', `${PATH}&x=1`],
    ['a repeated parameter', `${PATH}&mes=4`],
    ['a trailing &', `${PATH}&`],
  ])('%s', async (_name, path) => {
    const fast = await serve('fast', () => hit(smallRows));
    const r = await get(fast.url, path);
    expect(fast.looked).toHaveLength(0);
    // Fastify decided: an answer from fetchMonth, or its 400.
    expect(fast.fetched.length + (r.status === 400 ? 1 : 0)).toBe(1);
  });

  it('a bad query gets the route 400 (nothing looked up)', async () => {
    const fast = await serve('fast', () => hit(smallRows));
    const r = await get(fast.url, '/comexstat/exportacao_mes?ano=1900&mes=3&ncm=12019000&pais=160');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body.toString()).error.code).toBe('E_INVALID_PARAMETER');
    expect(fast.looked).toHaveLength(0);
  });

  it('a miss, HEAD and POST, other routes', async () => {
    const fast = await serve('fast', () => undefined);
    expect((await get(fast.url, PATH)).status).toBe(200);
    expect(fast.looked).toHaveLength(1);
    expect(fast.fetched).toHaveLength(1);
    const head = await get(fast.url, PATH, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect((await get(fast.url, PATH, {}, 'POST')).status).toBe(404);
    expect((await get(fast.url, '/healthz')).status).toBe(200);
    expect(fast.looked).toHaveLength(1);
  });

  it('while starting or draining: Fastify answers (connection: close while draining)', async () => {
    const fast = await serve('fast', () => hit(smallRows), { ready: false });
    expect((await get(fast.url, PATH)).status).toBe(200);
    expect(fast.looked).toHaveLength(0);
    expect(fast.fetched).toHaveLength(1);
    fast.app.setPhase('draining');
    const r = await get(fast.url, PATH);
    expect(r.headers).toContain('close');
    expect(fast.looked).toHaveLength(0);
    expect(fast.fetched).toHaveLength(2);
  });

  it('a failing lookup is logged at error and answered by the route', async () => {
    const logged: unknown[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    let calls = 0;
    const fast = await serve(
      'fast',
      () => {
        if (calls++ === 0) throw new Error('boom');
        return hit(smallRows);
      },
      { logger },
    );
    const r = await get(fast.url, PATH);
    expect(r.status).toBe(200);
    expect(fast.looked).toHaveLength(1);
    expect(fast.fetched).toHaveLength(1);
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 50,
        msg: 'fast path of a cached answer failed',
        err: expect.objectContaining({ message: 'boom' }),
      }),
    );
  });
});

describe('parseMonthQuery', () => {
  const at = (qs: string) => parseMonthQuery(`/x?${qs}`, 3, 'export', 1997);
  it('takes the canonical form only', () => {
    expect(at('ano=2024&mes=10&ncm=12019000&pais=160')).toEqual({
      flow: 'export',
      ano: 2024,
      mes: 10,
      ncm: '12019000',
      pais: '160',
    });
    for (const qs of [
      '',
      'ano=2024',
      'ano=2024&mes=10&ncm=12019000',
      'ano=2024&mes=13&ncm=12019000&pais=160',
      'ano=2024&mes=0&ncm=12019000&pais=160',
      'ano=1996&mes=1&ncm=12019000&pais=160',
      'ano=2101&mes=1&ncm=12019000&pais=160',
      'ano=2024&mes=1&ncm=1201900&pais=160',
      'ano=2024&mes=1&ncm=12019000&pais=16',
      'ano=2024&mes=1&ncm=12019000&pais=160&ano=2024',
      'ano&mes=1&ncm=12019000&pais=160',
      'ano=2024&mes=1&ncm=12019000&pais=1%360',
    ])
      expect(at(qs), qs).toBeUndefined();
  });
});

describe('conditionHeaders', () => {
  it("reads If-None-Match, If-Modified-Since and Accept-Encoding in any case; a repeated one is the route's", () => {
    expect(conditionHeaders(['Host', 'x', 'Accept', '*/*'])).toEqual({});
    expect(
      conditionHeaders([
        'If-None-Match',
        '"a"',
        'accept-encoding',
        'gzip',
        'IF-MODIFIED-SINCE',
        'd',
        'X-Other-Header1',
        'y',
      ]),
    ).toEqual({ 'if-none-match': '"a"', 'accept-encoding': 'gzip', 'if-modified-since': 'd' });
    expect(conditionHeaders(['if-none-match', '"a"', 'If-None-Match', '"b"'])).toBeUndefined();
  });

  it('a repeated If-None-Match over HTTP goes through the route, which answers as before', async () => {
    const answer = hit(smallRows);
    const fast = await serve('fast', () => answer);
    const route = await serve('route', () => answer);
    const etag = (await get(route.url, PATH)).headers[3] as string;
    const twice = async (url: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(`${url}${PATH}`, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode as number));
        });
        req.setHeader('if-none-match', [etag, '"other"']);
        req.on('error', reject);
        req.end();
      });
    expect(await twice(fast.url)).toBe(await twice(route.url));
    expect(fast.looked).toHaveLength(0);
    expect(fast.fetched).toHaveLength(1);
  });
});
