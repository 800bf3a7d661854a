import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamError } from '@bgc/cache-core';
import { ComexStatApiError, ComexStatClient, type GeneralQuery, RequestSpacer } from '../src/index.js';
import { type ComexStatSimulator, startComexStatSimulator } from '../src/simulator/index.js';
import { minGap } from './helpers.js';

const Q: GeneralQuery = {
  flow: 'export',
  monthDetail: true,
  period: { from: '2025-01', to: '2025-12' },
  filters: [
    { filter: 'ncm', values: ['12019000', '09011110'] },
    { filter: 'country', values: ['160', '063'] },
  ],
  details: ['ncm', 'country'],
  metrics: ['metricFOB', 'metricKG'],
};

let sim: ComexStatSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

function client(url: string, over: Partial<ConstructorParameters<typeof ComexStatClient>[0]> = {}) {
  const sentAt: number[] = [];
  const statuses: (number | undefined)[] = [];
  const c = new ComexStatClient({
    baseUrl: `${url}/`,
    spacer: new RequestSpacer({ minIntervalMs: 40 }),
    retries: 4,
    retryBaseDelayMs: 5,
    maxRetryDelayMs: 30,
    timeoutMs: 1000,
    onAttempt: (a) => {
      sentAt.push(a.sentAt);
      statuses.push(a.error ? (a.status ?? -1) : 0);
    },
    ...over,
  });
  return { c, sentAt, statuses };
}

describe('ComexStatClient over HTTP against the simulator', () => {
  it('queries /general and the metadata endpoints', async () => {
    sim = await startComexStatSimulator({
      rateLimit: false,
      latency: { baseMs: 0, perRowMs: 0 },
      updated: { year: 2026, month: 8 },
    });
    const { c } = client(sim.url, { spacer: false });
    const rows = await c.general(Q);
    expect(rows.length).toBeGreaterThan(10);
    expect(rows[0]).toHaveProperty('metricFOB');
    expect(await c.general(() => ({ ...Q, filters: [{ filter: 'ncm', values: ['99999999'] }] }))).toEqual([]);
    expect(await c.datesUpdated()).toEqual({
      updated: '2026-09-05',
      // The end of the release day in Brasília (the publication hour is unknown).
      updatedAt: Date.parse('2026-09-05T23:59:59.999-03:00'),
      year: 2026,
      month: 8,
    });
    const countries = await c.countries();
    expect(countries).toHaveLength(281);
    expect(countries.every((x) => x.text === x.text.trim())).toBe(true);
    expect(await c.countries('Argentina')).toEqual([{ id: '063', text: 'Argentina' }]);
    expect(await c.country('023')).toMatchObject({ coPaisIsoa3: 'DEU' });
    expect(await c.country('999')).toBeUndefined();
    expect((await c.ncms({ search: 'soja', page: 1, perPage: 2, add: 'sh' })).list).toHaveLength(2);
    expect(await c.ncm('12019000')).toEqual({
      id: '12019000',
      text: 'Soja, mesmo triturada, exceto para semeadura',
    });
    expect(await c.ncm('00000000')).toBeUndefined();
    expect(await c.states()).toHaveLength(34);
    expect(c.baseUrl).toBe(sim.url);
  });

  it('sends JSON headers, a browser-like User-Agent and the language', async () => {
    const seen: { url: string; headers: Record<string, string> }[] = [];
    const fake: typeof fetch = async (url, init) => {
      seen.push({ url: String(url), headers: init?.headers as Record<string, string> });
      return new Response('{"data":{"list":[]},"success":true,"message":null}', {
        headers: { 'content-type': 'application/json' },
      });
    };
    const c = new ComexStatClient({ fetch: fake, spacer: false, language: 'en' });
    await c.general(Q);
    // Data rows always in Portuguese: their country names are matched against the (pt) table.
    expect(seen[0]?.url).toBe('https://api-comexstat.mdic.gov.br/general?language=pt');
    await c.countries();
    expect(seen[1]?.url).toBe('https://api-comexstat.mdic.gov.br/tables/countries?language=en');
    expect(seen[0]?.headers).toMatchObject({
      'content-type': 'application/json',
      accept: 'application/json',
    });
    expect(seen[0]?.headers['user-agent']).toMatch(/^Mozilla\/5\.0/);
  });

  it('survives a 429 storm: every request answered, none lost, no two attempts closer than the spacer', async () => {
    // The simulator allows 1 call per 60 ms; the spacer 40 ms: many 429s, each retried.
    sim = await startComexStatSimulator({
      rateLimit: { max: 1, windowMs: 60, strict: true, retryAfterSeconds: 1 },
      latency: { baseMs: 0, perRowMs: 0 },
    });
    const { c, sentAt, statuses } = client(sim.url, { retries: 10, maxRetryDelayMs: 100 });
    const results = await Promise.all(Array.from({ length: 8 }, () => c.general(Q)));
    expect(results.every((r) => r.length > 0)).toBe(true);
    expect(sim.stats.rateLimited).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 429).length).toBe(sim.stats.rateLimited);
    expect(minGap(sentAt)).toBeGreaterThanOrEqual(40);
    expect(c.stats.failures).toBe(0);
    expect(c.stats.retries).toBe(sim.stats.rateLimited);
  });

  it('never hits the rate limit when the spacer matches it', async () => {
    sim = await startComexStatSimulator({
      rateLimit: { max: 1, windowMs: 30, strict: true },
      latency: { baseMs: 0, perRowMs: 0 },
    });
    const { c, sentAt } = client(sim.url, { spacer: new RequestSpacer({ minIntervalMs: 100 }) });
    await Promise.all(Array.from({ length: 6 }, () => c.datesUpdated()));
    expect(sim.stats.rateLimited).toBe(0);
    expect(sim.stats.calls).toBe(6);
    expect(minGap(sentAt)).toBeGreaterThanOrEqual(100);
  });

  it('a call built long after its grant books the interval again from its send: the next call is not refused', async () => {
    // The upstream refuses calls closer than 250 ms; the spacer's interval is 400 ms. The first
    // call's build takes 250 ms after its grant (a busy event loop, slow shared reads): booked from
    // the grant only, the second call would leave ~150 ms after it and be refused.
    sim = await startComexStatSimulator({
      rateLimit: { max: 1, windowMs: 250, strict: true },
      latency: { baseMs: 0, perRowMs: 0 },
    });
    const { c } = client(sim.url, { spacer: new RequestSpacer({ minIntervalMs: 400 }), retries: 0 });
    const slow = c.generalWhenDue(async () => {
      await new Promise((r) => setTimeout(r, 250));
      return Q;
    });
    await new Promise((r) => setTimeout(r, 20));
    const next = c.generalWhenDue(async () => Q);
    await Promise.all([slow, next]);
    expect(sim.stats.rateLimited).toBe(0);
    const at = sim.stats.log.map((r) => r.at);
    // (The first request's arrival also carries the new connection's set-up: the gap seen by the
    // upstream is the interval less that, not less the build.)
    expect((at[1] as number) - (at[0] as number)).toBeGreaterThanOrEqual(250);
  });

  it('retries 5xx, Cloudflare 403 pages, success:false, truncated bodies and timeouts; loses nothing', async () => {
    sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 0, perRowMs: 0 } });
    sim.faults.inject({ type: 'http-500' });
    sim.faults.inject({ type: 'cloudflare-403' });
    sim.faults.inject({ type: 'http-503' });
    sim.faults.inject({ type: 'success-false' });
    sim.faults.inject({ type: 'truncated' });
    sim.faults.inject({ type: 'slow', delayMs: 400 });
    sim.faults.inject({ type: 'hang' });
    const { c, statuses, sentAt } = client(sim.url, { retries: 8, timeoutMs: 200 });
    const results = await Promise.all([c.general(Q), c.general(Q), c.general(Q)]);
    expect(results.every((r) => r.length > 0)).toBe(true);
    expect(sim.faults.pending).toBe(0);
    expect(statuses.filter((s) => s === 0).length).toBe(3);
    expect(statuses).toEqual(expect.arrayContaining([500, 403, 503, 200, -1, 0]));
    expect(minGap(sentAt)).toBeGreaterThanOrEqual(40);
  });

  it('honours the wait announced in a 429 message in full, beyond maxRetryDelayMs (finding 23)', async () => {
    sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 0, perRowMs: 0 } });
    sim.faults.inject({ type: 'rate-limit' });
    const slept: number[] = [];
    let t = 0;
    // A virtual clock: sleeping advances it, so the test records the waits without spending them.
    const spacer = new RequestSpacer({
      minIntervalMs: 1,
      clock: {
        now: () => t,
        sleep: async (ms) => {
          slept.push(ms);
          t += ms;
        },
      },
    });
    const { c, sentAt } = client(sim.url, { spacer, maxRetryDelayMs: 120, random: () => 0 });
    await c.datesUpdated();
    expect(sentAt).toHaveLength(2);
    // "tente novamente em 10 segundos" → the retry's slot is held back 10 s (not capped to 120 ms).
    expect(Math.max(...slept)).toBeGreaterThan(9_000);
  });

  it('honours an HTTP Retry-After header, and fails at once past maxAnnouncedDelayMs', async () => {
    let calls = 0;
    const fake: typeof fetch = async () => {
      calls++;
      return new Response('{"error":{"code":429,"message":"limite"}}', {
        status: 429,
        headers: { 'content-type': 'application/json', 'retry-after': '900' },
      });
    };
    const held: number[] = [];
    const spacer = new RequestSpacer({ minIntervalMs: 1 });
    const defer = spacer.defer.bind(spacer);
    spacer.defer = async (ms) => {
      held.push(ms);
      await defer(0);
    };
    const c = new ComexStatClient({ fetch: fake, spacer, maxAnnouncedDelayMs: 600_000 });
    const err = await c.datesUpdated().catch((e) => e);
    expect(err).toMatchObject({ code: 'E_COMEXSTAT_RATE_LIMITED', retryAfterMs: 900_000 });
    // One attempt: a 15-minute ban is not waited out holding a slot; every caller is held back instead.
    expect(calls).toBe(1);
    expect(held).toEqual([900_000]);
  });

  it('does not retry other 4xx and throws a typed error with status and body excerpt', async () => {
    sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 0, perRowMs: 0 } });
    const { c } = client(sim.url);
    const err = await c.general({ ...Q, metrics: ['metricCIF'] }).catch((e) => e);
    expect(err).toBeInstanceOf(ComexStatApiError);
    expect(err).toBeInstanceOf(UpstreamError);
    expect(ComexStatApiError.isComexStatApiError(err)).toBe(true);
    expect(err.code).toBe('E_COMEXSTAT_BAD_REQUEST');
    expect(err.status).toBe(400);
    expect(err.statusCode).toBe(400);
    expect(err.isRetryable).toBe(false);
    expect(err.body).toContain('só são permitidos');
    expect(err.url).toBe(`${sim.url}/general?language=pt`);
    expect(err.message).toContain('fix it rather than retrying');
    expect(sim.stats.calls).toBe(1);
    expect(await c.country('x/../../nope')).toBeUndefined();
  });

  it('gives up after the retries with the last error', async () => {
    sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 0, perRowMs: 0 } });
    sim.faults.inject({ type: 'http-502', count: 10 });
    const { c } = client(sim.url, { retries: 2 });
    const err = await c.datesUpdated().catch((e) => e);
    expect(err.code).toBe('E_COMEXSTAT_HTTP');
    expect(err.status).toBe(502);
    expect(err.isRetryable).toBe(true);
    expect(sim.stats.calls).toBe(3);
    expect(c.stats).toEqual({
      requests: 3,
      retries: 2,
      failures: 1,
      byKind: { data: 0, dates: 3, countries: 0, other: 0 },
    });
  });

  it('reports network errors and timeouts as retryable typed errors', async () => {
    const s = await startComexStatSimulator({ rateLimit: false });
    const url = s.url;
    await s.close();
    const { c } = client(url, { retries: 1 });
    const err = await c.datesUpdated().catch((e) => e);
    expect(err.code).toBe('E_COMEXSTAT_NETWORK');
    expect(err.isRetryable).toBe(true);
    sim = await startComexStatSimulator({ rateLimit: false });
    sim.faults.inject({ type: 'hang', count: 2 });
    const t = client(sim.url, { retries: 1, timeoutMs: 50 }).c;
    const timeout = await t.datesUpdated().catch((e) => e);
    expect(timeout.code).toBe('E_COMEXSTAT_TIMEOUT');
    expect(timeout.message).toContain('within 50 ms');
  });

  it('checks the content type before parsing, refuses __proto__ bodies, and validates shapes', async () => {
    const respond =
      (body: string, type = 'application/json', status = 200): typeof fetch =>
      async () =>
        new Response(body, { status, headers: { 'content-type': type } });
    const make = (f: typeof fetch) => new ComexStatClient({ fetch: f, spacer: false, retries: 0 });
    const html = await make(respond('<html>maintenance</html>', 'text/html'))
      .datesUpdated()
      .catch((e) => e);
    expect(html.code).toBe('E_COMEXSTAT_MALFORMED');
    const poisoned = await make(respond('{"data":{"list":[]},"success":true,"__proto__":{"x":1}}'))
      .general(Q)
      .catch((e) => e);
    expect(poisoned.code).toBe('E_COMEXSTAT_MALFORMED');
    expect(poisoned.isRetryable).toBe(false);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    const noList = await make(respond('{"data":{},"success":true}'))
      .general(Q)
      .catch((e) => e);
    expect(noList.message).toContain('data.list');
    const badDates = await make(respond('{"data":{"updated":"x"},"success":true}'))
      .datesUpdated()
      .catch((e) => e);
    expect(badDates.code).toBe('E_COMEXSTAT_MALFORMED');
    await expect(make(respond('{"data":{},"success":true}')).countries()).rejects.toThrow('data.list');
    await expect(make(respond('{"data":{},"success":true}')).ncms()).rejects.toThrow('data.list');
    await expect(make(respond('{"data":{},"success":true}')).states()).rejects.toThrow('not an array');
    // The rate-limit text inside a 200 body is a 429 too.
    const soft = await make(
      respond(
        '{"success":false,"message":"Você excedeu o limite de solicitações. Por favor, tente novamente em 2,5 segundos."}',
      ),
    )
      .datesUpdated()
      .catch((e) => e);
    expect(soft.code).toBe('E_COMEXSTAT_RATE_LIMITED');
    expect(soft.retryAfterMs).toBe(2500);
    const json403 = await make(
      respond('{"error":{"code":403,"message":"Proibido"}}', 'application/json', 403),
    )
      .datesUpdated()
      .catch((e) => e);
    expect(json403.code).toBe('E_COMEXSTAT_HTTP');
    expect(json403.isRetryable).toBe(false);
  });
});
