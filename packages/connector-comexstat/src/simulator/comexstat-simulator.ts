import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SIM_COUNTRIES, SIM_NCMS, SIM_UFS, type SimCountry, type SimNcm } from './simulator-data.js';
import { generateCell, isPublished, type SimRelease, unitHash } from './simulator-generate.js';

/** Rate limit of the simulator, per client IP, counting every endpoint (dates included). */
export interface SimulatorRateLimitOptions {
  /** Requests allowed per window. @default 1 */
  max?: number;
  /** Window length, ms. @default 15000 */
  windowMs?: number;
  /**
   * Strict mode: refused requests count too, so a client that keeps calling keeps being refused
   * until a whole window passes in silence (what the real API does: a retry after 12 s still fails).
   * @default true
   */
  strict?: boolean;
  /** Seconds announced in the 429 message; default the real wait, rounded up. */
  retryAfterSeconds?: number;
}

/** Latency model: `baseMs + perRowMs × rows`, and a row cap above which the query fails. */
export interface SimulatorLatencyOptions {
  /** @default 300 */
  baseMs?: number;
  /** @default 0.3 */
  perRowMs?: number;
  /** Rows above which `/general` answers 500 (the real API times out near 150k). @default 150000 */
  rowCap?: number;
}

/** Options of {@link startComexStatSimulator}. */
export interface ComexStatSimulatorOptions {
  /** TCP port; 0 picks a free one. @default 0 */
  port?: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** `false` disables the rate limit. @default { max: 1, windowMs: 15000, strict: true } */
  rateLimit?: SimulatorRateLimitOptions | false;
  /** @default { baseMs: 300, perRowMs: 0.3, rowCap: 150000 } */
  latency?: SimulatorLatencyOptions;
  /**
   * The latest release. Default: data through the month before `now`, published on its 5th.
   */
  updated?: Date | { year: number; month: number };
  /** Clock used for the default release. @default () => new Date() */
  now?: () => Date;
}

/** The kinds of fault the simulator can inject (docs/comexstat-api.md §8.14). */
export type SimulatorFaultType =
  | 'cloudflare-403'
  | 'http-500'
  | 'http-502'
  | 'http-503'
  | 'rate-limit'
  | 'success-false'
  | 'slow'
  | 'truncated'
  | 'hang';

/** One fault to inject into the next matching requests. */
export interface SimulatorFault {
  type: SimulatorFaultType;
  /** How many requests it affects. @default 1 */
  count?: number;
  /** Extra delay for `slow`, ms. @default 2000 */
  delayMs?: number;
  /** Only requests whose path starts with this. @default every path */
  path?: string;
}

/** What the simulator served. */
export interface SimulatorStats {
  /** Every request received, faults and 429s included. */
  calls: number;
  /** Requests per path (without query string). */
  byPath: Record<string, number>;
  /** Requests answered 429. */
  rateLimited: number;
  /**
   * One record per request: path, arrival time (epoch ms), status sent; for a data query answered
   * also its flow, period, rows and the time taken, ms.
   */
  log: {
    method: string;
    path: string;
    at: number;
    status: number;
    query?: { flow: string; from: string; to: string; ncms: number; countries: number | 'all' };
    rows?: number;
    ms?: number;
  }[];
}

/** Fault injection controls. */
export interface SimulatorFaults {
  /** Queues a fault for the next matching request(s). */
  inject(fault: SimulatorFault): void;
  /** Drops every queued fault. */
  clear(): void;
  /** Faults still queued. */
  readonly pending: number;
}

/** A running simulator. */
export interface ComexStatSimulator {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  readonly stats: SimulatorStats;
  readonly faults: SimulatorFaults;
  /** The release `/general/dates/updated` reports. */
  readonly release: SimRelease;
  /**
   * Moves the release: a Date is the publication day (data through the previous month); a
   * `{ year, month }` is the latest published month (published on the 5th of the next month).
   * Current-year figures change slightly with each release (revisions).
   */
  setUpdated(updated: Date | { year: number; month: number }): void;
  /** Resets the counters and the rate-limit history. */
  resetStats(): void;
  /** Stops the server, cutting hanging requests. */
  close(): Promise<void>;
}

const DETAILS = [
  'country',
  'economicBlock',
  'state',
  'via',
  'urf',
  'ncm',
  'subHeading',
  'heading',
  'chapter',
  'section',
  'BECLevel1',
  'BECLevel2',
  'BECLevel3',
  'SITCSection',
  'SITCDivision',
  'SITCGroup',
  'SITCSubGroup',
  'SITCBasicHeading',
  'ISICSection',
  'ISICDivision',
  'ISICGroup',
  'ISICClass',
];
const DETAIL_SET = new Set(DETAILS);

/** The three query endpoints: their details, metrics and years (docs/comexstat-api.md §2). */
interface Dataset {
  details: ReadonlySet<string>;
  metrics: readonly string[];
  minYear: number;
  /** Fixed release for historical data (1989-1996); `undefined` follows the live release. */
  release?: SimRelease;
}
const CITY_DETAILS = ['country', 'economicBlock', 'state', 'city', 'heading', 'chapter', 'section'];
const HISTORICAL_DETAILS = ['country', 'state', 'nbm', 'section'];
const WAYS = [
  ['01', 'MARITIMA'],
  ['02', 'FLUVIAL'],
  ['03', 'LACUSTRE'],
  ['04', 'AEREA'],
  ['05', 'POSTAL'],
  ['06', 'FERROVIARIA'],
  ['07', 'RODOVIARIA'],
  ['08', 'CONDUTO/REDE DE TRANSMISSAO'],
  ['09', 'MEIOS PROPRIOS'],
];
const URFS = [
  ['0817600', 'PORTO DE SANTOS'],
  ['0717700', 'PORTO DO RIO DE JANEIRO'],
  ['0927800', 'PORTO DE PARANAGUA'],
  ['1017700', 'PORTO DE RIO GRANDE'],
  ['0817700', 'AEROPORTO INTERNACIONAL DE SAO PAULO/GUARULHOS'],
];
const BLOCKS = [
  ['105', 'América do Norte'],
  ['107', 'América Central e Caribe'],
  ['108', 'América do Sul'],
  ['111', 'Mercosul'],
  ['112', 'Europa'],
  ['22', 'União Europeia - UE'],
  ['51', 'Oriente Médio'],
  ['52', 'Ásia (Exclusive Oriente Médio)'],
  ['53', 'África'],
  ['54', 'Oceania'],
  ['59', 'Associação de Nações do Sudeste Asiático - ASEAN'],
  ['99', 'Outros'],
];
const METRICS = ['metricFOB', 'metricKG', 'metricStatistic', 'metricFreight', 'metricInsurance', 'metricCIF'];
const IMPORT_ONLY = new Set(['metricFreight', 'metricInsurance', 'metricCIF']);
const PERIOD = /^(\d{4})-(\d{2})$/;

class HttpReply {
  constructor(
    readonly status: number,
    readonly body: string,
    readonly contentType = 'application/json; charset=utf-8',
  ) {}
}

function releaseFrom(updated: Date | { year: number; month: number }): SimRelease {
  if (updated instanceof Date) {
    const prev = new Date(Date.UTC(updated.getUTCFullYear(), updated.getUTCMonth() - 1, 1));
    return {
      updated: updated.toISOString().slice(0, 10),
      year: prev.getUTCFullYear(),
      month: prev.getUTCMonth() + 1,
    };
  }
  const pub = new Date(Date.UTC(updated.year, updated.month, 5));
  return { updated: pub.toISOString().slice(0, 10), year: updated.year, month: updated.month };
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** A data query's shape for the log (already validated). */
function describeQuery(body: unknown): NonNullable<SimulatorStats['log'][number]['query']> {
  const q = body as { flow: string; period: { from: string; to: string }; filters?: unknown[] };
  const values = (name: string) =>
    (q.filters as { filter: string; values: unknown[] }[] | undefined)?.find((f) => f.filter === name)?.values
      .length;
  return {
    flow: q.flow,
    from: q.period.from,
    to: q.period.to,
    ncms: values('ncm') ?? 0,
    countries: values('country') ?? 'all',
  };
}

/**
 * Starts a ComexStat API simulator on node:http, following the reference's §8 checklist: the
 * exact envelope, Portuguese validation errors, the years × month-window period rule, string values,
 * rows sorted by FOB, no-trade combinations absent, a per-IP rate limit with the real 429 message,
 * size-dependent latency, a controllable release and fault injection.
 */
export async function startComexStatSimulator(
  options: ComexStatSimulatorOptions = {},
): Promise<ComexStatSimulator> {
  const rate =
    options.rateLimit === false
      ? undefined
      : { max: 1, windowMs: 15_000, strict: true, ...options.rateLimit };
  const latency = { baseMs: 300, perRowMs: 0.3, rowCap: 150_000, ...options.latency };
  const now = options.now ?? (() => new Date());
  const today = now();
  // Default: the latest 5th-of-the-month release not in the future.
  const lastFifth = new Date(
    Date.UTC(today.getUTCFullYear(), today.getUTCMonth() - (today.getUTCDate() < 5 ? 1 : 0), 5),
  );
  let release = releaseFrom(options.updated ?? lastFifth);
  const stats: SimulatorStats = { calls: 0, byPath: {}, rateLimited: 0, log: [] };
  const history = new Map<string, number[]>();
  const queue: (Required<Omit<SimulatorFault, 'path'>> & { path: string | undefined })[] = [];
  const sockets = new Set<Socket>();
  const countryById = new Map(SIM_COUNTRIES.map((c) => [c.id, c]));
  const ncmById = new Map(SIM_NCMS.map((n) => [n.coNcm, n]));

  const envelope = (data: unknown, language: string, message: string | null = null): HttpReply =>
    new HttpReply(200, JSON.stringify({ data, success: true, message, processo_info: null, language }));
  const error = (status: number, message?: string): HttpReply =>
    new HttpReply(
      status,
      JSON.stringify({ error: message === undefined ? { code: status } : { code: status, message } }),
    );

  function rateLimited(ip: string): HttpReply | undefined {
    if (!rate) return undefined;
    const t = Date.now();
    const list = (history.get(ip) ?? []).filter((x) => x > t - rate.windowMs);
    const refused = list.length >= rate.max;
    if (!refused || rate.strict) list.push(t);
    history.set(ip, list);
    if (!refused) return undefined;
    const oldest = list[list.length - 1 - rate.max] ?? t;
    const seconds = rate.retryAfterSeconds ?? Math.max(1, Math.ceil((oldest + rate.windowMs - t) / 1000));
    return error(
      429,
      `Você excedeu o limite de solicitações. Por favor, tente novamente em ${seconds} segundos.`,
    );
  }

  const DATASETS: Record<'general' | 'cities' | 'historical', Dataset> = {
    general: { details: DETAIL_SET, metrics: METRICS, minYear: 1997 },
    cities: { details: new Set(CITY_DETAILS), metrics: ['metricFOB', 'metricKG'], minYear: 1997 },
    historical: {
      details: new Set(HISTORICAL_DETAILS),
      metrics: ['metricFOB', 'metricKG'],
      minYear: 1989,
      release: { updated: '1997-01-31', year: 1996, month: 12 },
    },
  };

  function general(
    body: unknown,
    language: string,
    dataset: Dataset = DATASETS.general,
  ): HttpReply | { rows: Record<string, string>[] } {
    if (typeof body !== 'object' || body === null) return error(400, 'Corpo da requisição inválido');
    const q = body as Record<string, unknown>;
    if (q.flow !== 'export' && q.flow !== 'import')
      return error(400, 'Fluxo inválido (use export ou import)');
    const period = q.period as { from?: unknown; to?: unknown } | undefined;
    const from = typeof period?.from === 'string' ? PERIOD.exec(period.from) : null;
    const to = typeof period?.to === 'string' ? PERIOD.exec(period.to) : null;
    if (!from || !to) return error(400, 'Período inválido (use o formato AAAA-MM)');
    const [fy, fm, ty, tm] = [Number(from[1]), Number(from[2]), Number(to[1]), Number(to[2])];
    if (fm < 1 || fm > 12 || tm < 1 || tm > 12)
      return error(400, 'Período inválido (mês deve estar entre 01 e 12)');
    if (fy * 12 + fm > ty * 12 + tm) return error(400, 'Período inválido (início posterior ao fim)');
    const filters = q.filters ?? [];
    if (!Array.isArray(filters)) return error(400, 'Filtro inválido');
    for (const f of filters) {
      if (
        typeof f !== 'object' ||
        f === null ||
        !dataset.details.has((f as { filter?: string }).filter as string)
      ) {
        return error(400, 'Filtro inválido');
      }
      if (!Array.isArray((f as { values?: unknown }).values))
        return error(400, 'Filtro inválido (values deve ser uma lista)');
    }
    const details = q.details ?? [];
    if (!Array.isArray(details) || details.some((d) => !dataset.details.has(d as string))) {
      return error(400, 'Detalhamento inválido');
    }
    const metrics = q.metrics ?? ['metricFOB'];
    if (!Array.isArray(metrics) || metrics.length === 0)
      return error(400, 'Métrica inválida (informe ao menos uma)');
    for (const m of metrics) {
      if (!dataset.metrics.includes(m as string)) return error(400, `Métrica inválida (${String(m)})`);
      if (m === 'metricStatistic' && !details.includes('ncm')) {
        return error(400, 'Métrica inválida (ncm é obrigatório para metricStatistic)');
      }
      if (IMPORT_ONLY.has(m as string) && q.flow !== 'import') {
        return error(
          400,
          'metricFreight, metricInsurance e metricCIF só são permitidos para fluxo (flow) de importação',
        );
      }
    }
    const flow = q.flow;
    const monthDetail = q.monthDetail === true;
    const values = (name: string): unknown[] | undefined =>
      (filters as { filter: string; values: unknown[] }[]).find((f) => f.filter === name)?.values;
    const strings = (v: unknown[] | undefined): Set<string> | undefined =>
      v === undefined ? undefined : new Set(v.filter((x): x is string => typeof x === 'string'));
    const ncmFilter = strings(values('ncm'));
    const headingFilter = strings(values('heading'));
    const chapterFilter = strings(values('chapter'));
    const countryFilter = strings(values('country'));
    const ncms = SIM_NCMS.filter(
      (n) =>
        (!ncmFilter || ncmFilter.has(n.coNcm)) &&
        (!headingFilter || headingFilter.has(n.coNcm.slice(0, 4))) &&
        (!chapterFilter || chapterFilter.has(n.coNcm.slice(0, 2))),
    );
    const countries = SIM_COUNTRIES.filter((c) => !countryFilter || countryFilter.has(c.id));
    const en = language === 'en';
    const live = dataset.release ?? release;
    const groups = new Map<string, { row: Record<string, string>; fob: number; kg: number }>();
    // Years × month window: the months fm..tm apply to every year fy..ty (docs/comexstat-api.md §3).
    for (let year = fy; year <= ty; year++) {
      for (let month = fm; month <= tm; month++) {
        if (year < dataset.minYear || !isPublished(live, year, month)) continue;
        for (const ncm of ncms) {
          for (const country of countries) {
            const cell = generateCell(flow, year, month, ncm, country, live);
            if (!cell) continue;
            const row = describe(
              details as string[],
              ncm,
              country,
              en,
              year,
              monthDetail ? month : undefined,
              dataset !== DATASETS.general,
            );
            const key = JSON.stringify(row);
            const g = groups.get(key);
            if (g) {
              g.fob += cell.fob;
              g.kg += cell.kg;
            } else groups.set(key, { row, fob: cell.fob, kg: cell.kg });
          }
        }
      }
    }
    const rows = [...groups.values()]
      .sort((a, b) => b.fob - a.fob)
      .map((g) => {
        const out = { ...g.row };
        for (const m of metrics as string[]) out[m] = String(metricValue(m, g.fob, g.kg));
        return out;
      });
    return { rows };
  }

  function describe(
    details: string[],
    ncm: SimNcm,
    country: SimCountry,
    en: boolean,
    year: number,
    month: number | undefined,
    placeStates: boolean,
  ): Record<string, string> {
    const row: Record<string, string> = {};
    if (details.includes('ncm')) row.coNcm = ncm.coNcm;
    if (details.includes('heading')) row.headingCode = ncm.coNcm.slice(0, 4);
    if (details.includes('chapter')) row.chapterCode = ncm.coNcm.slice(0, 2);
    row.year = String(year);
    if (month !== undefined) row.monthNumber = pad2(month);
    for (const d of details) {
      if (d === 'ncm') row.ncm = en ? ncm.en : ncm.pt;
      else if (d === 'country') row.country = (en ? country.en : undefined) ?? country.text.trim();
      else if (d === 'heading') row.heading = `Posição ${ncm.coNcm.slice(0, 4)}`;
      else if (d === 'chapter') row.chapter = `Capítulo ${ncm.coNcm.slice(0, 2)}`;
      // State names stay Portuguese even with language=en (docs/comexstat-api.md §1); /general leaves the
      // declarant's state undeclared, /cities and /historical-data place each flow in one state.
      else if (d === 'state') row.state = placeStates ? stateOf(ncm, country).text : 'Não Declarada';
      else if (d === 'city') row.city = `Município sede - ${stateOf(ncm, country).uf}`;
      else if (d === 'nbm') {
        row.nbmCode = `${ncm.coNcm}00`;
        row.nbm = en ? ncm.en : ncm.pt;
      } else row[d] = 'Não Declarado';
    }
    return row;
  }

  function stateOf(ncm: SimNcm, country: SimCountry): (typeof SIM_UFS)[number] {
    return SIM_UFS[Math.floor(unitHash(`${ncm.coNcm}|${country.id}|uf`) * 27)] as (typeof SIM_UFS)[number];
  }

  function metricValue(metric: string, fob: number, kg: number): number {
    switch (metric) {
      case 'metricFOB':
        return fob;
      case 'metricKG':
      case 'metricStatistic':
        return kg;
      case 'metricFreight':
        return Math.round(fob * 0.05);
      case 'metricInsurance':
        return Math.round(fob * 0.005);
      default:
        return fob + Math.round(fob * 0.05) + Math.round(fob * 0.005);
    }
  }

  function table(path: string, params: URLSearchParams, language: string): HttpReply | undefined {
    const search = (params.get('search') ?? '').toLowerCase();
    const sub = /^\/(cities|historical-data)(\/.*)$/.exec(path);
    if (sub) {
      if (sub[1] === 'historical-data' && sub[2] === '/dates/years')
        return envelope({ min: '1989', max: '1996' }, language);
      if (sub[1] === 'historical-data' && sub[2] === '/dates/updated') {
        return envelope({ updated: '1997-01-31', year: '1996', monthNumber: '12' }, language);
      }
      const names = sub[1] === 'cities' ? CITY_DETAILS : HISTORICAL_DETAILS;
      if (sub[2] === '/filters' || sub[2] === '/details')
        return envelope({ list: names.map((d) => ({ filter: d, text: d })) }, language);
      if (sub[2] === '/metrics')
        return envelope({ list: ['metricFOB', 'metricKG'].map((id) => ({ id, text: id })) }, language);
      return table(`/general${sub[2]}`, params, language);
    }
    if (path === '/tables/economic-blocks') {
      if (params.get('add') === 'country') {
        const list = SIM_COUNTRIES.filter((c) => c.weight > 0).map((c) => {
          const b = BLOCKS[Math.floor(unitHash(`${c.id}|block`) * BLOCKS.length)] as string[];
          return { economicBlock: b[1], country: c.text.trim(), coBlock: b[0], coCountry: c.id };
        });
        return envelope({ list, count: list.length }, language);
      }
      return envelope({ list: BLOCKS.map(([id, text]) => ({ id, text })), count: BLOCKS.length }, language);
    }
    const coded = /^\/tables\/(ways|urf)(?:\/([^/]+))?$/.exec(path);
    if (coded) {
      const rows = coded[1] === 'ways' ? WAYS : URFS;
      if (coded[2] === undefined)
        return envelope({ list: rows.map(([id, text]) => ({ id, text })), count: rows.length }, language);
      const hit = rows.find(([id]) => id === coded[2]);
      return envelope(hit ? { id: hit[0], text: hit[1] } : null, language);
    }
    if (path === '/general/dates/updated') {
      return envelope(
        { updated: release.updated, year: String(release.year), monthNumber: pad2(release.month) },
        language,
      );
    }
    if (path === '/general/dates/years')
      return envelope({ min: '1997', max: String(release.year) }, language);
    if (path === '/general/filters' || path === '/general/details') {
      return envelope({ list: DETAILS.map((d) => ({ filter: d, text: d })) }, language);
    }
    if (path === '/general/metrics') {
      return envelope(
        {
          list: METRICS.map((id) => ({
            id,
            text: id,
            ...(id === 'metricStatistic' ? { depends: { filter: 'ncm' } } : {}),
            ...(IMPORT_ONLY.has(id) ? { depends: { flow: 'import' } } : {}),
          })),
        },
        language,
      );
    }
    if (path === '/tables/countries') {
      const list = SIM_COUNTRIES.filter((c) => c.text.toLowerCase().includes(search)).map((c) => ({
        id: c.id,
        text: c.text,
      }));
      return envelope({ list, count: list.length }, language);
    }
    let m = /^\/tables\/countries\/([^/]+)$/.exec(path);
    if (m) {
      const c = countryById.get(m[1] as string);
      if (!c) return envelope(null, language, 'País não encontrado');
      return envelope(
        { id: c.id, country: c.text.trim(), coPaisIson3: c.isoN3 ?? '', coPaisIsoa3: c.isoA3 ?? '' },
        language,
        'País encontrado',
      );
    }
    if (path === '/tables/ncm') {
      const page = Math.max(1, Number(params.get('page') ?? '1') || 1);
      const perPage = Math.max(1, Number(params.get('perPage') ?? '20') || 20);
      const add = params.get('add');
      const all = SIM_NCMS.filter(
        (n) => n.coNcm.includes(search) || (language === 'en' ? n.en : n.pt).toLowerCase().includes(search),
      );
      const list = all.slice((page - 1) * perPage, page * perPage).map((n) => ({
        noNCM: language === 'en' ? n.en : n.pt,
        unit: n.unit,
        coNcm: n.coNcm,
        ...(add === 'sh'
          ? {
              subHeadingCode: n.coNcm.slice(0, 6),
              subHeading: `Subposição ${n.coNcm.slice(0, 6)}`,
              headingCode: n.coNcm.slice(0, 4),
              heading: `Posição ${n.coNcm.slice(0, 4)}`,
              chapterCode: n.coNcm.slice(0, 2),
              chapter: `Capítulo ${n.coNcm.slice(0, 2)}`,
            }
          : {}),
      }));
      return envelope({ list, count: all.length }, language);
    }
    m = /^\/tables\/ncm\/([^/]+)$/.exec(path);
    if (m) {
      const n = ncmById.get(m[1] as string);
      return envelope(n ? [{ id: n.coNcm, text: language === 'en' ? n.en : n.pt }] : null, language);
    }
    if (path === '/tables/uf')
      return envelope(
        SIM_UFS.map((u) => ({ text: u.text, id: u.id, uf: u.uf })),
        language,
      );
    m = /^\/tables\/uf\/([^/]+)$/.exec(path);
    if (m) {
      const u = SIM_UFS.find((x) => x.id === m?.[1]);
      return envelope(u ? { coUf: u.id, sgUf: u.uf, noUf: u.text, noRegiao: u.region } : null, language);
    }
    return undefined;
  }

  function takeFault(path: string): (typeof queue)[number] | undefined {
    const i = queue.findIndex((f) => f.path === undefined || path.startsWith(f.path));
    if (i < 0) return undefined;
    const f = queue[i] as (typeof queue)[number];
    f.count--;
    if (f.count <= 0) queue.splice(i, 1);
    return f;
  }

  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

  async function handle(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const path = url.pathname;
    const language = url.searchParams.get('language') ?? 'pt';
    stats.calls++;
    stats.byPath[path] = (stats.byPath[path] ?? 0) + 1;
    const record: SimulatorStats['log'][number] = {
      method: req.method ?? 'GET',
      path,
      at: Date.now(),
      status: 0,
    };
    stats.log.push(record);
    const send = (reply: HttpReply, truncate = false): void => {
      record.status = reply.status;
      const text = truncate
        ? reply.body.slice(0, Math.max(1, Math.floor(reply.body.length / 2)))
        : reply.body;
      res.writeHead(reply.status, {
        'content-type': reply.contentType,
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    const limited = rateLimited(req.socket.remoteAddress ?? 'unknown');
    if (limited) {
      stats.rateLimited++;
      return send(limited);
    }
    const fault = takeFault(path);
    if (fault?.type === 'hang') return;
    if (fault?.type === 'cloudflare-403') {
      return send(
        new HttpReply(
          403,
          '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body>Checking your browser before accessing api-comexstat.mdic.gov.br.</body></html>',
          'text/html; charset=UTF-8',
        ),
      );
    }
    if (fault?.type === 'http-500' || fault?.type === 'http-502' || fault?.type === 'http-503') {
      return send(error(Number(fault.type.slice(5))));
    }
    if (fault?.type === 'rate-limit') {
      stats.rateLimited++;
      return send(
        error(429, 'Você excedeu o limite de solicitações. Por favor, tente novamente em 10 segundos.'),
      );
    }
    if (fault?.type === 'success-false') {
      return send(
        new HttpReply(
          200,
          JSON.stringify({
            data: null,
            success: false,
            message: 'Erro ao processar a consulta',
            processo_info: null,
            language,
          }),
        ),
      );
    }
    if (fault?.type === 'slow') await sleep(fault.delayMs);
    const truncate = fault?.type === 'truncated';
    const dataset =
      path === '/general'
        ? DATASETS.general
        : path === '/cities'
          ? DATASETS.cities
          : path === '/historical-data/'
            ? DATASETS.historical
            : undefined;
    if (dataset && req.method === 'POST') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return send(error(400, 'Corpo da requisição inválido (JSON malformado)'));
      }
      const out = general(parsed, language, dataset);
      if (out instanceof HttpReply) return send(out);
      if (out.rows.length > latency.rowCap) {
        await sleep(latency.baseMs);
        return send(error(500));
      }
      await sleep(latency.baseMs + latency.perRowMs * out.rows.length);
      record.query = describeQuery(parsed);
      record.rows = out.rows.length;
      record.ms = Date.now() - record.at;
      // /historical-data answers a bare array, the others a { list } (docs/comexstat-api.md §2).
      return send(
        envelope(dataset === DATASETS.historical ? out.rows : { list: out.rows }, language),
        truncate,
      );
    }
    const reply = req.method === 'GET' ? table(path, url.searchParams, language) : undefined;
    await sleep(Math.min(latency.baseMs, 50));
    send(reply ?? error(404, 'Rota não encontrada'), truncate);
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch(() => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":{"code":500}}');
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    stats,
    get release() {
      return release;
    },
    faults: {
      inject(fault) {
        queue.push({
          type: fault.type,
          count: fault.count ?? 1,
          delayMs: fault.delayMs ?? 2000,
          path: fault.path,
        });
      },
      clear() {
        queue.length = 0;
      },
      get pending() {
        return queue.reduce((n, f) => n + f.count, 0);
      },
    },
    setUpdated(updated) {
      release = releaseFrom(updated);
    },
    resetStats() {
      stats.calls = 0;
      stats.byPath = {};
      stats.rateLimited = 0;
      stats.log = [];
      history.clear();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
