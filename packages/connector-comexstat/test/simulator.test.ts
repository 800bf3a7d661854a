// biome-ignore-all lint/suspicious/noExplicitAny: the simulator's JSON bodies are inspected ad hoc
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ComexStatSimulator,
  generateCell,
  SIM_COUNTRIES,
  SIM_NCMS,
  startComexStatSimulator,
  unitHash,
} from '../src/simulator/index.js';

let sim: ComexStatSimulator;

async function post(body: unknown, query = ''): Promise<{ status: number; json: any; type: string }> {
  const res = await fetch(`${sim.url}/general${query}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    json: text.startsWith('{') ? JSON.parse(text) : text,
  };
}
async function get(path: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sim.url}${path}`);
  return { status: res.status, json: await res.json() };
}

const query = (over: Record<string, unknown> = {}) => ({
  flow: 'export',
  monthDetail: true,
  period: { from: '2024-01', to: '2024-12' },
  filters: [
    { filter: 'ncm', values: ['12019000', '09011110'] },
    { filter: 'country', values: ['160', '063', '249'] },
  ],
  details: ['ncm', 'country'],
  metrics: ['metricFOB', 'metricKG'],
  ...over,
});

beforeAll(async () => {
  sim = await startComexStatSimulator({
    rateLimit: false,
    latency: { baseMs: 1, perRowMs: 0 },
    updated: { year: 2026, month: 8 },
  });
});
afterAll(() => sim.close());

describe('simulator: POST /general', () => {
  it('answers the exact envelope with string values, zero-padded months, code + description, names, FOB desc', async () => {
    const { status, json } = await post(query(), '?language=pt');
    expect(status).toBe(200);
    expect(Object.keys(json)).toEqual(['data', 'success', 'message', 'processo_info', 'language']);
    expect(json).toMatchObject({ success: true, message: null, processo_info: null, language: 'pt' });
    const list = json.data.list as Record<string, string>[];
    expect(json.data.count).toBeUndefined();
    expect(list.length).toBeGreaterThan(20);
    for (const row of list) {
      expect(Object.keys(row)).toEqual([
        'coNcm',
        'year',
        'monthNumber',
        'ncm',
        'country',
        'metricFOB',
        'metricKG',
      ]);
      for (const v of Object.values(row)) expect(typeof v).toBe('string');
      expect(row.monthNumber).toMatch(/^(0[1-9]|1[0-2])$/);
      expect(row.year).toBe('2024');
      expect(['China', 'Argentina', 'Estados Unidos']).toContain(row.country);
    }
    const fobs = list.map((r) => Number(r.metricFOB));
    expect(fobs).toEqual([...fobs].sort((a, b) => b - a));
    const soy = list.find((r) => r.coNcm === '12019000');
    expect(soy?.ncm).toBe('Soja, mesmo triturada, exceto para semeadura');
    // Realistic magnitudes: soybean exports to China are in the billions of US$ per month.
    const china = list
      .filter((r) => r.coNcm === '12019000' && r.country === 'China')
      .map((r) => Number(r.metricFOB));
    expect(Math.max(...china)).toBeGreaterThan(1e9);
  });

  it('is deterministic and localizes descriptions with language=en', async () => {
    const a = await post(query());
    const b = await post(query());
    expect(a.json).toEqual(b.json);
    const en = await post(query(), '?language=en');
    expect(en.json.language).toBe('en');
    expect(en.json.data.list.some((r: any) => r.ncm === 'Soybeans, not for sowing')).toBe(true);
    expect(en.json.data.list.some((r: any) => r.country === 'United States')).toBe(true);
  });

  it('applies years × month window and drops unpublished months', async () => {
    const window = await post(query({ period: { from: '2024-02', to: '2025-03' } }));
    const months = new Set(window.json.data.list.map((r: any) => `${r.year}-${r.monthNumber}`));
    for (const m of months) expect(['02', '03']).toContain((m as string).slice(5));
    expect([...months].some((m) => (m as string).startsWith('2025'))).toBe(true);
    const inverted = await post(query({ period: { from: '2025-09', to: '2026-08' } }));
    expect(inverted.status).toBe(200);
    expect(inverted.json.data.list).toEqual([]);
    const future = await post(query({ period: { from: '2026-07', to: '2026-12' } }));
    const futureMonths = new Set(future.json.data.list.map((r: any) => r.monthNumber));
    expect([...futureMonths].sort()).toEqual(['07', '08']);
  });

  it('matches filter values as strings: ints and unknown codes give an empty list', async () => {
    const ints = await post(
      query({
        filters: [
          { filter: 'ncm', values: [9011110] },
          { filter: 'country', values: [63] },
        ],
      }),
    );
    expect(ints.json.data.list).toEqual([]);
    const unknown = await post(query({ filters: [{ filter: 'ncm', values: ['99999999'] }] }));
    expect(unknown.status).toBe(200);
    expect(unknown.json.data.list).toEqual([]);
  });

  it('leaves no-trade combinations out and lets totals equal the sum of detailed rows', async () => {
    const detailed = await post(
      query({ filters: [{ filter: 'ncm', values: ['09011110'] }], details: ['country'], monthDetail: false }),
    );
    const total = await post(
      query({ filters: [{ filter: 'ncm', values: ['09011110'] }], details: [], monthDetail: false }),
    );
    const sum = detailed.json.data.list.reduce((n: number, r: any) => n + Number(r.metricFOB), 0);
    expect(total.json.data.list).toHaveLength(1);
    expect(Number(total.json.data.list[0].metricFOB)).toBe(sum);
    expect(total.json.data.list[0]).not.toHaveProperty('monthNumber');
    // Not every one of the 281 partners buys coffee: absent, not zero-filled.
    expect(detailed.json.data.list.length).toBeLessThan(SIM_COUNTRIES.length);
    expect(detailed.json.data.list.every((r: any) => Number(r.metricFOB) > 0)).toBe(true);
    expect(
      detailed.json.data.list.some((r: any) =>
        ['A Designar', 'Provisão de Navios e Aeronaves', 'Bancos Centrais'].includes(r.country),
      ),
    ).toBe(true);
  });

  it('generates some empty cells and some KG "0" rows', () => {
    const release = { updated: '2026-09-04', year: 2026, month: 8 };
    let empty = 0;
    let zeroKg = 0;
    let total = 0;
    for (const ncm of SIM_NCMS) {
      for (const country of SIM_COUNTRIES.slice(0, 18)) {
        for (let m = 1; m <= 12; m++) {
          total++;
          const c = generateCell('export', 2025, m, ncm, country, release);
          if (!c) empty++;
          else if (c.kg === 0) zeroKg++;
        }
      }
    }
    expect(empty / total).toBeGreaterThan(0.1);
    expect(empty / total).toBeLessThan(0.7);
    expect(zeroKg).toBeGreaterThan(0);
    expect(unitHash('a')).toBe(unitHash('a'));
  });

  it('revises current-year figures when the release advances and freezes earlier years', async () => {
    const cur = query({ period: { from: '2026-01', to: '2026-03' } });
    const old = query({ period: { from: '2025-01', to: '2025-03' } });
    const a = await post(cur);
    const a0 = await post(old);
    sim.setUpdated({ year: 2026, month: 9 });
    const b = await post(cur);
    const b0 = await post(old);
    sim.setUpdated({ year: 2026, month: 8 });
    expect(b.json.data.list[0].metricFOB).not.toBe(a.json.data.list[0].metricFOB);
    expect(b0.json).toEqual(a0.json);
  });

  it('supports extra metrics, heading/chapter details and filters', async () => {
    const imp = await post(
      query({
        flow: 'import',
        metrics: ['metricFOB', 'metricStatistic', 'metricFreight', 'metricInsurance', 'metricCIF'],
      }),
    );
    const r = imp.json.data.list[0];
    expect(Number(r.metricCIF)).toBe(
      Number(r.metricFOB) + Number(r.metricFreight) + Number(r.metricInsurance),
    );
    const heading = await post(
      query({
        filters: [
          { filter: 'chapter', values: ['26'] },
          { filter: 'heading', values: ['2601'] },
        ],
        details: ['heading', 'chapter', 'state', 'via'],
      }),
    );
    expect(heading.json.data.list[0]).toMatchObject({
      headingCode: '2601',
      chapterCode: '26',
      state: 'Não Declarada',
    });
  });

  it('validates bodies with Portuguese 400 messages', async () => {
    const cases: [unknown, string][] = [
      [query({ flow: 'both' }), 'Fluxo inválido (use export ou import)'],
      [query({ period: { from: '2024-1', to: '2024-12' } }), 'Período inválido (use o formato AAAA-MM)'],
      [
        query({ period: { from: '2024-13', to: '2024-12' } }),
        'Período inválido (mês deve estar entre 01 e 12)',
      ],
      [query({ period: { from: '2025-01', to: '2024-12' } }), 'Período inválido (início posterior ao fim)'],
      [query({ filters: [{ filter: 'produto', values: ['1'] }] }), 'Filtro inválido'],
      [query({ filters: 'x' }), 'Filtro inválido'],
      [query({ filters: [{ filter: 'ncm', values: 'x' }] }), 'Filtro inválido (values deve ser uma lista)'],
      [query({ details: ['sh6'] }), 'Detalhamento inválido'],
      [query({ metrics: ['fob'] }), 'Métrica inválida (fob)'],
      [query({ metrics: [] }), 'Métrica inválida (informe ao menos uma)'],
      [
        query({ details: ['country'], metrics: ['metricStatistic'] }),
        'Métrica inválida (ncm é obrigatório para metricStatistic)',
      ],
      [
        query({ metrics: ['metricCIF'] }),
        'metricFreight, metricInsurance e metricCIF só são permitidos para fluxo (flow) de importação',
      ],
      ['{not json', 'Corpo da requisição inválido (JSON malformado)'],
      ['null', 'Corpo da requisição inválido'],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect(res.status, message).toBe(400);
      expect(res.json).toEqual({ error: { code: 400, message } });
    }
  });

  it('answers 500 above the row cap', async () => {
    const small = await startComexStatSimulator({
      rateLimit: false,
      latency: { baseMs: 1, perRowMs: 0, rowCap: 5 },
    });
    try {
      const res = await fetch(`${small.url}/general`, { method: 'POST', body: JSON.stringify(query()) });
      expect(res.status).toBe(500);
      expect(await res.json()).toEqual({ error: { code: 500 } });
    } finally {
      await small.close();
    }
  });

  it('takes longer for bigger results (latency ≈ base + per row)', async () => {
    const slow = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 1, perRowMs: 5 } });
    try {
      const t0 = Date.now();
      const res = await fetch(`${slow.url}/general`, { method: 'POST', body: JSON.stringify(query()) });
      const rows = ((await res.json()) as any).data.list.length;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(rows * 5);
    } finally {
      await slow.close();
    }
  });
});

describe('simulator: metadata and tables', () => {
  it('serves dates/updated and dates/years from the controllable release', async () => {
    expect((await get('/general/dates/updated')).json.data).toEqual({
      updated: '2026-09-05',
      year: '2026',
      monthNumber: '08',
    });
    sim.setUpdated(new Date('2026-10-06T00:00:00Z'));
    expect((await get('/general/dates/updated')).json.data).toEqual({
      updated: '2026-10-06',
      year: '2026',
      monthNumber: '09',
    });
    expect((await get('/general/dates/years')).json.data).toEqual({ min: '1997', max: '2026' });
    sim.setUpdated({ year: 2026, month: 8 });
    expect(sim.release.month).toBe(8);
  });

  it('lists 281 countries with the leading-space quirk, real codes and a detail route', async () => {
    const { json } = await get('/tables/countries');
    expect(json.data.count).toBe(281);
    expect(json.data.list).toHaveLength(281);
    expect(json.data.list.some((c: any) => c.text.startsWith(' '))).toBe(true);
    expect(json.data.list).toContainEqual({ id: '063', text: 'Argentina' });
    expect(json.data.list).toContainEqual({ id: '160', text: 'China' });
    const search = await get('/tables/countries?search=china');
    expect(search.json.data.list).toEqual([{ id: '160', text: 'China' }]);
    const detail = await get('/tables/countries/023');
    expect(detail.json).toMatchObject({
      data: { id: '023', country: 'Alemanha', coPaisIson3: '276', coPaisIsoa3: 'DEU' },
      message: 'País encontrado',
    });
    expect((await get('/tables/countries/999')).json.data).toBeNull();
  });

  it('serves ncm tables (paged, add=sh, detail as an array of one) and uf', async () => {
    const page = await get('/tables/ncm?perPage=5&page=2&add=sh');
    expect(page.json.data.count).toBe(SIM_NCMS.length);
    expect(page.json.data.list).toHaveLength(5);
    expect(page.json.data.list[0]).toHaveProperty('headingCode');
    expect((await get('/tables/ncm?search=soja')).json.data.list.length).toBeGreaterThan(1);
    expect((await get('/tables/ncm/12019000')).json.data).toEqual([
      { id: '12019000', text: 'Soja, mesmo triturada, exceto para semeadura' },
    ]);
    expect((await get('/tables/ncm/00000000')).json.data).toBeNull();
    const uf = await get('/tables/uf');
    expect(Array.isArray(uf.json.data)).toBe(true);
    expect(uf.json.data).toHaveLength(34);
    expect((await get('/tables/uf/26')).json.data).toEqual({
      coUf: '26',
      sgUf: 'PE',
      noUf: 'Pernambuco',
      noRegiao: 'REGIAO NORDESTE',
    });
    expect((await get('/tables/uf/00')).json.data).toBeNull();
    expect(
      (await get('/general/metrics')).json.data.list.find((m: any) => m.id === 'metricCIF').depends,
    ).toEqual({ flow: 'import' });
    expect((await get('/general/filters')).json.data.list.length).toBe(22);
    expect((await get('/general/details')).json.data.list.length).toBe(22);
  });

  it('answers 404 for unknown paths and counts calls per path', async () => {
    const before = sim.stats.calls;
    const res = await get('/nope');
    expect(res.status).toBe(404);
    expect(sim.stats.calls).toBe(before + 1);
    expect(sim.stats.byPath['/nope']).toBe(1);
    sim.resetStats();
    expect(sim.stats.calls).toBe(0);
  });
});

describe('simulator: rate limit and faults', () => {
  it('refuses with the exact Portuguese 429 and keeps refusing in strict mode until a quiet window', async () => {
    const s = await startComexStatSimulator({
      rateLimit: { max: 2, windowMs: 150 },
      latency: { baseMs: 0, perRowMs: 0 },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(`${s.url}/general/dates/updated`)).status);
      expect(statuses).toEqual([200, 200, 429, 429]);
      const res = await fetch(`${s.url}/general/dates/updated`);
      expect(res.headers.get('retry-after')).toBeNull();
      expect(await res.json()).toEqual({
        error: {
          code: 429,
          message: 'Você excedeu o limite de solicitações. Por favor, tente novamente em 1 segundos.',
        },
      });
      await new Promise((r) => setTimeout(r, 100));
      // Strict: the refused calls kept the window busy.
      expect((await fetch(`${s.url}/tables/uf`)).status).toBe(429);
      await new Promise((r) => setTimeout(r, 170));
      expect((await fetch(`${s.url}/tables/uf`)).status).toBe(200);
      expect(s.stats.rateLimited).toBe(4);
    } finally {
      await s.close();
    }
  });

  it('injects Cloudflare 403 HTML, 5xx, success:false, 429, truncated, slow and hanging responses', async () => {
    const s = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 0, perRowMs: 0 } });
    try {
      const types = [
        'cloudflare-403',
        'http-502',
        'success-false',
        'rate-limit',
        'truncated',
        'slow',
      ] as const;
      for (const type of types) s.faults.inject({ type, delayMs: 30 });
      expect(s.faults.pending).toBe(6);
      const u = `${s.url}/general/dates/updated`;
      const r403 = await fetch(u);
      expect(r403.status).toBe(403);
      expect(r403.headers.get('content-type')).toContain('text/html');
      expect(await r403.text()).toContain('Just a moment...');
      expect((await fetch(u)).status).toBe(502);
      expect(await (await fetch(u)).json()).toMatchObject({ success: false });
      expect((await fetch(u)).status).toBe(429);
      const truncated = await fetch(u);
      await expect(truncated.json()).rejects.toThrow();
      const t0 = Date.now();
      expect((await fetch(u)).status).toBe(200);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(30);
      s.faults.inject({ type: 'hang', path: '/tables' });
      s.faults.inject({ type: 'http-500', count: 3 });
      s.faults.clear();
      expect(s.faults.pending).toBe(0);
      s.faults.inject({ type: 'hang', path: '/tables' });
      const ctl = new AbortController();
      const hung = fetch(`${s.url}/tables/uf`, { signal: ctl.signal });
      setTimeout(() => ctl.abort(), 50);
      await expect(hung).rejects.toThrow();
      expect((await fetch(u)).status).toBe(200);
    } finally {
      await s.close();
    }
  });
});

describe('simulator: /cities, /historical-data and the other tables', () => {
  it('serves /cities with FOB and KG only, states placed', async () => {
    const res = await post(
      query({
        details: ['state', 'city', 'country'],
        filters: [{ filter: 'country', values: ['160'] }],
        period: { from: '2025-01', to: '2025-01' },
      }),
    );
    // `city` is a /cities detail, not a /general one.
    expect(res.status).toBe(400);
    const viaCities = await fetch(`${sim.url}/cities`, {
      method: 'POST',
      body: JSON.stringify(
        query({ details: ['state', 'city'], filters: [{ filter: 'country', values: ['160'] }] }),
      ),
    });
    const body = (await viaCities.json()) as any;
    expect(body.data.list.length).toBeGreaterThan(0);
    expect(body.data.list[0].state).not.toBe('Não Declarada');
    expect(body.data.list[0].city).toMatch(/^Município sede - [A-Z]{2}$/);
    const bad = await fetch(`${sim.url}/cities`, {
      method: 'POST',
      body: JSON.stringify(query({ details: ['ncm'] })),
    });
    expect(bad.status).toBe(400);
    const badMetric = await fetch(`${sim.url}/cities`, {
      method: 'POST',
      body: JSON.stringify(query({ details: ['state'], filters: [], metrics: ['metricStatistic'] })),
    });
    expect(((await badMetric.json()) as any).error.message).toBe('Métrica inválida (metricStatistic)');
    expect((await get('/cities/dates/updated')).json.data.monthNumber).toBe('08');
    expect((await get('/cities/details')).json.data.list).toHaveLength(7);
    expect((await get('/cities/metrics')).json.data.list).toHaveLength(2);
  });

  it('serves /historical-data/ (trailing slash) for 1989-1996 as a bare array', async () => {
    const body = query({
      period: { from: '1995-01', to: '1996-12' },
      details: ['nbm', 'country'],
      filters: [{ filter: 'country', values: ['160', '249'] }],
    });
    const res = await fetch(`${sim.url}/historical-data/`, { method: 'POST', body: JSON.stringify(body) });
    const json = (await res.json()) as any;
    expect(Array.isArray(json.data)).toBe(true);
    expect(json.data.length).toBeGreaterThan(0);
    expect(json.data[0].nbmCode).toMatch(/^\d{10}$/);
    expect(new Set(json.data.map((r: any) => r.year))).toEqual(new Set(['1995', '1996']));
    expect(
      (await fetch(`${sim.url}/historical-data`, { method: 'POST', body: JSON.stringify(body) })).status,
    ).toBe(404);
    const general = await post(query({ period: { from: '1995-01', to: '1996-12' } }));
    expect(general.json.data.list).toEqual([]);
    expect((await get('/historical-data/dates/years')).json.data).toEqual({ min: '1989', max: '1996' });
    expect((await get('/historical-data/dates/updated')).json.data.year).toBe('1996');
    expect((await get('/historical-data/filters')).json.data.list).toHaveLength(4);
  });

  it('serves economic blocks, ways and customs units; unknown ids give data:null', async () => {
    expect((await get('/tables/economic-blocks')).json.data.count).toBe(12);
    const withCountries = (await get('/tables/economic-blocks?add=country')).json.data.list;
    expect(withCountries[0]).toHaveProperty('coCountry');
    expect((await get('/tables/ways/01')).json.data).toEqual({ id: '01', text: 'MARITIMA' });
    expect((await get('/tables/ways')).json.data.list.length).toBe(9);
    expect((await get('/tables/urf/0817600')).json.data.text).toBe('PORTO DE SANTOS');
    expect((await get('/tables/urf/1')).json.data).toBeNull();
  });
});

describe('simulator: default release', () => {
  it('publishes last month on the 5th, never in the future', async () => {
    for (const [today, updated, month] of [
      ['2026-03-04T12:00:00Z', '2026-02-05', 1],
      ['2026-03-05T00:00:00Z', '2026-03-05', 2],
      ['2026-01-02T00:00:00Z', '2025-12-05', 11],
    ] as const) {
      const s = await startComexStatSimulator({ rateLimit: false, now: () => new Date(today) });
      expect(s.release).toMatchObject({ updated, month });
      await s.close();
    }
  });
});
