import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { BgcCacheError, type Level, type MultiLevelCache, validateKey } from '@bgc/cache-core';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import {
  DATA_ERRORS,
  DATA_HEADERS,
  ERROR_SCHEMA,
  NOT_MODIFIED,
  OPENAPI_DOCUMENT,
  ROW_SCHEMA,
} from './openapi.js';
import {
  type AnswerBody,
  type AnswerHeads,
  answerBody,
  type PreparedAnswer,
  COMPRESS_MIN_BYTES,
  strongEtag,
  encoded,
  etagMatches,
  pickEncoding,
} from './http-body.js';
import { lazyChildLoggerFactory } from './request-logger.js';

/** `stale-while-revalidate` of fresh answers, seconds. */
const STALE_WHILE_REVALIDATE_S = 60;

/** What the cache headers of an answer are computed from. */
export interface AnswerMeta {
  level: string;
  stale: boolean;
  status?: string | undefined;
  fetchedAt?: number | undefined;
  freshUntil?: number | undefined;
  staleWindowMs?: number | undefined;
}

/**
 * The status, headers and payload of an answer: its validators and cache headers (ETag,
 * Cache-Control from the value's life, Last-Modified, Age), `304` when the request's conditions
 * match, compressed by Accept-Encoding. The one place both ways of sending (the Fastify route and
 * the fast path of L1 hits) take them from, so that they answer byte for byte alike. The header
 * lists are built once per body and answer, and again when Age or max-age moves on (each second):
 * the hits in between share them (never mutated).
 */
function prepareAnswer(
  requestHeaders: IncomingHttpHeaders,
  body: AnswerBody,
  answer: AnswerMeta,
): PreparedAnswer {
  const now = Date.now();
  const fetchedAt = answer.fetchedAt !== undefined && answer.fetchedAt <= now ? answer.fetchedAt : undefined;
  const age = fetchedAt === undefined ? -1 : Math.floor((now - fetchedAt) / 1000);
  const maxAge =
    answer.stale || answer.freshUntil === undefined
      ? -1
      : Math.max(0, Math.floor((answer.freshUntil - now) / 1000));
  let h = body.heads;
  if (
    h === undefined ||
    h.age !== age ||
    h.maxAge !== maxAge ||
    h.level !== answer.level ||
    h.stale !== answer.stale ||
    h.status !== answer.status ||
    h.fetchedAt !== fetchedAt ||
    h.staleWindowMs !== answer.staleWindowMs
  ) {
    h = heads(body, answer, fetchedAt, age, maxAge);
    body.heads = h;
  }
  const inm = requestHeaders['if-none-match'];
  if (inm !== undefined) {
    if (etagMatches(inm, body.etag))
      return (h.notModified ??= { status: 304, headers: h.common, payload: undefined });
  } else {
    const ims = requestHeaders['if-modified-since'];
    if (
      ims !== undefined &&
      fetchedAt !== undefined &&
      Math.floor(fetchedAt / 1000) * 1000 <= Date.parse(ims)
    )
      return (h.notModified ??= { status: 304, headers: h.common, payload: undefined });
  }
  if (body.json.length >= COMPRESS_MIN_BYTES) {
    const encoding = pickEncoding(requestHeaders['accept-encoding']);
    if (encoding) {
      const bytes = encoded(body, encoding);
      h[encoding] ??= {
        status: 200,
        headers: [
          ...h.common,
          'content-type',
          JSON_TYPE,
          'content-encoding',
          encoding,
          'content-length',
          String(bytes.length),
        ],
        payload: bytes,
      };
      return h[encoding];
    }
  }
  if (h.plain === undefined) {
    body.byteLength ??= Buffer.byteLength(body.json);
    h.plain = {
      status: 200,
      headers: [...h.common, 'content-type', JSON_TYPE, 'content-length', String(body.byteLength)],
      payload: body.json,
    };
  }
  return h.plain;
}

/** The header lists of `body` answered as `answer` with this Age and max-age (-1: none). */
function heads(
  body: AnswerBody,
  answer: AnswerMeta,
  fetchedAt: number | undefined,
  age: number,
  maxAge: number,
): AnswerHeads {
  const common = [
    'x-cache-level',
    answer.level,
    'etag',
    body.etag,
    'cache-control',
    cacheControl(answer, maxAge),
  ];
  // Only bodies large enough to be compressed have other representations.
  if (body.json.length >= COMPRESS_MIN_BYTES) common.push('vary', 'accept-encoding');
  if (answer.stale) common.push('x-cache-stale', 'true');
  if (answer.status && answer.status !== 'ok') common.push('x-data-status', answer.status);
  if (fetchedAt !== undefined)
    common.push('last-modified', httpDate(body, Math.floor(fetchedAt / 1000)), 'age', String(age));
  return {
    age,
    maxAge,
    level: answer.level,
    stale: answer.stale,
    status: answer.status,
    fetchedAt,
    staleWindowMs: answer.staleWindowMs,
    common,
  };
}

/** Sends an answer through Fastify (its hooks run: see {@link prepareAnswer}). */
function sendAnswer(request: FastifyRequest, reply: FastifyReply, body: AnswerBody, answer: AnswerMeta) {
  const { status, headers, payload } = prepareAnswer(request.headers, body, answer);
  for (let i = 0; i < headers.length; i += 2) reply.header(headers[i] as string, headers[i + 1]);
  if (status === 304) return reply.code(304).send();
  return reply.send(payload);
}

/**
 * Writes an answer straight on the Node response (the fast path): the headers Fastify sends for
 * the route (the same, in the same order), then the bytes, in one write.
 */
function writeAnswer(res: ServerResponse, prepared: PreparedAnswer): void {
  // writeHead reads the list (no header was set before on this response): it stays shared.
  res.writeHead(prepared.status, prepared.headers as string[]);
  res.end(prepared.payload);
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** `Cache-Control` of an answer: max-age until its fresh-until (`maxAge`, -1 when stale: 0). */
function cacheControl(answer: AnswerMeta, maxAge: number): string {
  const sie =
    answer.staleWindowMs !== undefined ? `, stale-if-error=${Math.floor(answer.staleWindowMs / 1000)}` : '';
  if (maxAge < 0) return `public, max-age=0${sie}`;
  return `public, max-age=${maxAge}, stale-while-revalidate=${STALE_WHILE_REVALIDATE_S}${sie}`;
}

/** The HTTP date of `seconds` (epoch), kept with the body it belongs to. */
function httpDate(body: AnswerBody, seconds: number): string {
  if (body.lastModifiedS !== seconds) {
    body.lastModified = new Date(seconds * 1000).toUTCString();
    body.lastModifiedS = seconds;
  }
  return body.lastModified as string;
}

/**
 * The leading fields of a monthly answer's JSON. The body is serialized and hashed once per cached
 * value (see `answerBody`); ncm and pais passed the digit patterns: no escaping needed.
 */
function monthHead(q: MonthQuery): string {
  return `"ano":${q.ano},"mes":${q.mes},"ncm":"${q.ncm}","pais":"${q.pais}"`;
}

/** The monthly routes' paths and their flows. */
const MONTH_PATHS: Readonly<Record<string, MonthQuery['flow']>> = {
  '/comexstat/exportacao_mes': 'export',
  '/comexstat/importacao_mes': 'import',
};

/**
 * A monthly query string in its canonical form only: `ano`, `mes`, `ncm` and `pais` once each, in
 * any order, plain digits within the route schema's bounds (`mes` without a leading zero), nothing
 * else. `undefined` for anything else: Fastify's route then validates it (and may accept it).
 */
export function parseMonthQuery(
  url: string,
  from: number,
  flow: MonthQuery['flow'],
  minYear: number,
): MonthQuery | undefined {
  let ano: number | undefined;
  let mes: number | undefined;
  let ncm: string | undefined;
  let pais: string | undefined;
  let i = from;
  while (i <= url.length) {
    let end = url.indexOf('&', i);
    if (end < 0) end = url.length;
    const eq = url.indexOf('=', i);
    if (eq < 0 || eq > end) return undefined;
    const name = url.slice(i, eq);
    const value = url.slice(eq + 1, end);
    if (name === 'ano' && ano === undefined && YEAR.test(value)) ano = Number(value);
    else if (name === 'mes' && mes === undefined && MONTH.test(value)) mes = Number(value);
    else if (name === 'ncm' && ncm === undefined && NCM.test(value)) ncm = value;
    else if (name === 'pais' && pais === undefined && COUNTRY.test(value)) pais = value;
    else return undefined;
    i = end + 1;
  }
  if (ano === undefined || mes === undefined || ncm === undefined || pais === undefined) return undefined;
  if (ano < minYear || ano > 2100) return undefined;
  return { flow, ano, mes, ncm, pais };
}

const YEAR = /^[0-9]{4}$/;
const MONTH = /^(?:[1-9]|1[0-2])$/;
const NCM = /^[0-9]{8}$/;
const COUNTRY = /^[0-9]{3}$/;

/** The request headers an answer depends on, none of them. */
const NO_CONDITIONS: IncomingHttpHeaders = Object.freeze({});

/**
 * The request headers an answer depends on (If-None-Match, If-Modified-Since, Accept-Encoding),
 * read from the raw list without building Node's headers object; `undefined` when one of them is
 * repeated (Node would join or drop the copies: the route decides).
 */
export function conditionHeaders(raw: readonly string[]): IncomingHttpHeaders | undefined {
  let out: IncomingHttpHeaders | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const n = name.length;
    if (n !== 13 && n !== 15 && n !== 17) continue;
    const lower = name.toLowerCase();
    if (lower !== 'if-none-match' && lower !== 'accept-encoding' && lower !== 'if-modified-since') continue;
    out ??= {};
    if (out[lower] !== undefined) return undefined;
    out[lower] = raw[i + 1];
  }
  return out ?? NO_CONDITIONS;
}

/** Most URLs whose parsed query the fast path keeps (then it starts over). */
const MAX_PARSED_URLS = 10_000;

/** Answers a request on the Node objects and resolves true, or leaves it alone and resolves false. */
type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The fast path of the monthly routes' L1 hits: a GET of `/comexstat/exportacao_mes` or
 * `/comexstat/importacao_mes` whose query is canonical (see {@link parseMonthQuery}) and whose
 * answer `cachedMonth` holds is answered from the Node request, before Fastify builds its request
 * and reply objects, routes and validates: the same headers and bytes as the route (both take them
 * from {@link prepareAnswer}). Anything else (another route or method, a query Fastify would have
 * to coerce or refuse, a miss, a stale or outdated value, an error, the gateway not ready) is left
 * to Fastify. No Fastify hook runs for a fast answer; the only one the routes have (`onSend`:
 * `connection: close` while draining, `no-store` on errors) never applies while ready, to a 200
 * or a 304.
 */
function monthFastPath(o: {
  cachedMonth: (query: MonthQuery) => MonthAnswer | undefined;
  complete: (query: MonthQuery, answer: MonthAnswer) => MonthAnswer;
  minYear: number;
  serving: () => boolean;
  logger: Logger;
}): FastPath {
  // The queries of the URLs asked (canonical ones only, bounded): a hit finds its parsed query,
  // the same object each time (sources may key their own memos on it), and its JSON head.
  const parsed = new Map<string, { query: MonthQuery; head: string }>();
  return (req, res) => {
    const url = req.url as string;
    if (req.method !== 'GET' || !o.serving()) return false;
    let known = parsed.get(url);
    if (known === undefined) {
      const q = url.indexOf('?');
      if (q < 0) return false;
      const flow = MONTH_PATHS[url.slice(0, q)];
      if (flow === undefined) return false;
      const query = parseMonthQuery(url, q + 1, flow, o.minYear);
      if (query === undefined) return false;
      if (parsed.size >= MAX_PARSED_URLS) parsed.clear();
      known = { query: Object.freeze(query), head: monthHead(query) };
      parsed.set(url, known);
    }
    const { query } = known;
    const conditions = conditionHeaders(req.rawHeaders);
    if (conditions === undefined) return false;
    let prepared: PreparedAnswer;
    try {
      const found = o.cachedMonth(query);
      if (found === undefined) return false;
      const answer = o.complete(query, found);
      prepared = prepareAnswer(conditions, answerBody(known.head, answer.rows), answer);
    } catch (error) {
      // The route answers instead (and reports its own failure, if it fails too).
      o.logger.error({ err: { message: (error as Error)?.message } }, 'fast path of a cached answer failed');
      return false;
    }
    writeAnswer(res, prepared);
    return true;
  };
}

/**
 * Fastify's `serverFactory` putting `fast` in front of Fastify's handler, on a server configured
 * as Fastify configures its own (keep-alive, request and connection timeouts).
 */
function fastServerFactory(fast: FastPath) {
  return (
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    opts: {
      http?: object | null;
      keepAliveTimeout?: number;
      requestTimeout?: number;
      connectionTimeout?: number;
      maxRequestsPerSocket?: number;
    },
  ) => {
    const server = createServer(opts.http ?? {}, (req, res) => {
      if (!fast(req, res)) handler(req, res);
    });
    if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
    if (opts.requestTimeout !== undefined) server.requestTimeout = opts.requestTimeout;
    if (opts.connectionTimeout !== undefined) server.setTimeout(opts.connectionTimeout);
    if (opts.maxRequestsPerSocket !== undefined && opts.maxRequestsPerSocket > 0)
      server.maxRequestsPerSocket = opts.maxRequestsPerSocket;
    return server;
  };
}

/** One monthly query of the HTTP contract. */
export interface MonthQuery {
  flow: 'export' | 'import';
  ano: number;
  mes: number;
  ncm: string;
  pais: string;
}

/** What the data source answers for a {@link MonthQuery}. */
export interface MonthAnswer {
  rows: readonly unknown[];
  level: Level;
  stale: boolean;
  /** `not_published` when the month is not released yet (rows are empty). */
  status?: string;
  /** When the upstream produced the data, epoch ms: `Last-Modified` and `Age`. */
  fetchedAt?: number;
  /** Until when the data is fresh, epoch ms: `Cache-Control: max-age`. */
  freshUntil?: number;
  /** How long past freshness it may be served when the upstream fails, ms: `stale-if-error`. */
  staleWindowMs?: number;
}

/** Who asks: passed to the data source so that it can budget upstream work per client. */
export interface MonthContext {
  /** The client's id: its IP address as Fastify sees it (`trustProxy` decides). */
  clientId: string;
}

/** Resolves one monthly query, from cache or upstream. */
export type MonthFetcher = (query: MonthQuery, context: MonthContext) => Promise<MonthAnswer>;

/**
 * Resolves the months of a range (one flow, NCM and country) at once, in order: what the cache
 * holds from one batch read, the cold months from upstream with as few calls as possible.
 */
export type SeriesFetcher = (queries: readonly MonthQuery[], context: MonthContext) => Promise<MonthAnswer[]>;

/** Options of {@link createApp}. */
export interface AppOptions {
  cache: MultiLevelCache;
  fetchMonth: MonthFetcher;
  /** The time-series routes' source. @default every month through `fetchMonth`, concurrently */
  fetchSeries?: SeriesFetcher;
  /**
   * A fresh answer held in memory (an L1 hit), synchronously, else `undefined`. When given, the
   * monthly routes' hits in their canonical form are answered before Fastify routes the request
   * (see {@link monthFastPath}); everything else, misses included, goes through Fastify.
   */
  cachedMonth?: (query: MonthQuery) => MonthAnswer | undefined;
  /**
   * The fresh-until (epoch ms) of an answer that does not carry one: what `Cache-Control: max-age`
   * is computed from. Called once per answer (cheap: memoize per value). @default none: max-age=0
   */
  freshUntil?: (query: MonthQuery, answer: MonthAnswer) => number | undefined;
  /** The stale window of answers that do not carry one, ms: `stale-if-error`. */
  staleWindowMs?: number;
  /** Enables `POST /admin/cache/invalidate` when set (see {@link registerAdminRoute}). */
  adminToken?: string | undefined;
  /** Serve the admin route elsewhere (the metrics port): not on this app. @default false */
  adminElsewhere?: boolean;
  /** Failed admin authentications per client and minute before 429s. @default 5 */
  adminMaxFailures?: number;
  logger: Logger;
  /** Oldest year accepted. @default 1997 */
  minYear?: number;
}

/** Lifecycle of the gateway as `/readyz` reports it. */
export type Phase = 'starting' | 'ready' | 'draining';

const PARAM_HINTS: Record<string, string> = {
  ano: 'a year from 1997 on, e.g. 2024',
  mes: 'a month number from 1 to 12',
  ncm: 'an 8-digit NCM code, e.g. 12019000',
  pais: 'a 3-digit ComexStat country code, e.g. 160',
  de: 'a month YYYY-MM from 1997-01 on, e.g. 2018-01',
  ate: 'a month YYYY-MM from de on, at most 120 months after it, e.g. 2024-12',
  keys: `a non-empty array of at most 10000 cache keys, and/or tags: a non-empty array of at most 64 tags such as comexstat:ncm:12019000`,
  tags: 'a non-empty array of at most 64 tags of at most 256 characters, e.g. ["comexstat:ncm:12019000"]',
  mode: 'delete or expire',
};

/** Longest range of the time-series routes, months. */
export const MAX_SERIES_MONTHS = 120;

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

/** `Retry-After` in whole seconds (at least 1) from an error's `retryAfterMs`, when it has one. */
function retryAfterSeconds(error: unknown): number | undefined {
  const ms = (error as { retryAfterMs?: unknown } | null)?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) && ms >= 0
    ? Math.max(1, Math.ceil(ms / 1000))
    : undefined;
}

/**
 * The public answer to an upstream-side failure, by error code: status and a message that says
 * what happened and what to do. Never the upstream's URL or message (those go to the logs).
 */
function upstreamFailure(
  code: string,
  status: number | undefined,
): { status: number; code: string; message: string } {
  if (code === 'E_CLIENT_BUDGET')
    return {
      status: 429,
      code,
      message:
        'This client has too many uncached queries waiting for the ComexStat API; retry after the time in Retry-After',
    };
  if (code === 'E_SHUTTING_DOWN')
    return {
      status: 503,
      code,
      message: 'This gateway instance is shutting down; retry the request (another instance answers it)',
    };
  if (code === 'E_UPSTREAM_BACKLOG')
    return {
      status: 503,
      code,
      message:
        'Too many uncached queries are waiting for the ComexStat API; retry after the time in Retry-After',
    };
  if (code === 'E_COMEXSTAT_UNMAPPED' || code === 'E_COMEXSTAT_INCOMPLETE')
    return {
      status: 503,
      code: 'E_UPSTREAM_INCOMPLETE',
      message:
        "The ComexStat API answered without this query's cell (an unknown country or a truncated answer); retry in a minute",
    };
  if (status === 429 || code.includes('RATE_LIMITED'))
    return {
      status: 503,
      code: 'E_UPSTREAM_RATE_LIMITED',
      message:
        'The ComexStat API is rate-limiting us and nothing is cached for this query; retry in a minute',
    };
  return {
    status: 502,
    code: code.startsWith('E_UPSTREAM') ? code : 'E_UPSTREAM',
    message: 'The ComexStat API failed to answer and nothing is cached for this query; retry later',
  };
}

/** Compares two secrets in constant time, whatever their lengths. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * The gateway's HTTP API (Fastify): the two ComexStat routes, the admin invalidation route,
 * `/healthz` and `/readyz`. Metrics are served separately (see {@link createMetricsServer}).
 */
export function createApp(options: AppOptions): FastifyInstance & { setPhase(phase: Phase): void } {
  const minYear = options.minYear ?? 1997;
  const fetchMonth = options.fetchMonth;
  const fetchSeries: SeriesFetcher =
    options.fetchSeries ?? ((queries, ctx) => Promise.all(queries.map((q) => fetchMonth(q, ctx))));
  let phase: Phase = 'starting';
  let closing = false;
  let lastCheck = 0;
  let lastTiers: Record<string, string> = {};
  /** What the routes answer with: the answer's own freshness, else the options'. */
  const complete = (query: MonthQuery, found: MonthAnswer): MonthAnswer => {
    const answer = Object.isFrozen(found) ? { ...found } : found;
    if (answer.freshUntil === undefined && options.freshUntil)
      answer.freshUntil = options.freshUntil(query, answer);
    if (answer.staleWindowMs === undefined) answer.staleWindowMs = options.staleWindowMs;
    return answer;
  };
  const cachedMonth = options.cachedMonth;
  const fast = cachedMonth
    ? monthFastPath({
        cachedMonth,
        complete,
        minYear,
        // Only while ready: starting, draining and closing answers are Fastify's (503, connection: close).
        serving: () => phase === 'ready' && !closing,
        logger: options.logger,
      })
    : undefined;
  const app = Fastify({
    ...(fast ? { serverFactory: fastServerFactory(fast) } : {}),
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // A request's child logger is built when something logs, not on every request.
    childLoggerFactory: lazyChildLoggerFactory,
    ajv: { customOptions: { coerceTypes: true, allErrors: false, removeAdditional: false } },
    return503OnClosing: true,
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const httpStatus = error.statusCode ?? 500;
    if (error.validation) {
      const v = error.validation[0];
      const params = v?.params as { missingProperty?: string; additionalProperty?: string } | undefined;
      // The parameter: a missing or unknown one, else the first segment of the path (`/tags/0`: tags).
      const param =
        params?.missingProperty ??
        params?.additionalProperty ??
        (v?.instancePath ? v.instancePath.split('/')[1] : undefined) ??
        (error.validationContext === 'body' ? 'body' : 'query');
      const hint = PARAM_HINTS[param];
      const problem =
        v?.keyword === 'required'
          ? 'is missing'
          : v?.keyword === 'additionalProperties'
            ? 'is not accepted'
            : 'is invalid';
      return reply
        .code(400)
        .send(
          errorBody(
            'E_INVALID_PARAMETER',
            `Parameter ${param} ${problem}${hint ? `: expected ${hint}` : ''}`,
          ),
        );
    }
    if (BgcCacheError.isInstance(error)) {
      const status = (error as { statusCode?: number }).statusCode;
      const retryAfter = retryAfterSeconds(error);
      if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
      if (error.code === 'E_TIMEOUT')
        return reply
          .code(503)
          .send(
            errorBody(
              'E_UPSTREAM_TIMEOUT',
              `The upstream did not answer in time and nothing is cached for this query; retry later`,
            ),
          );
      if (
        error.code === 'E_INVALID_KEY' ||
        error.code === 'E_INVALID_VALUE' ||
        error.code === 'E_INVALID_TAG'
      )
        return reply.code(400).send(errorBody(error.code, error.message));
      const failure = upstreamFailure(error.code, status);
      // The detail (upstream URL, API message) goes to the logs only.
      request.log.warn(
        { err: { code: error.code, message: error.message }, status: failure.status },
        'upstream failure with nothing cached',
      );
      return reply.code(failure.status).send(errorBody(failure.code, failure.message));
    }
    // Not a validation or library error (TS narrows `error` away: FastifyError has BgcCacheError's shape).
    const other = error as FastifyError;
    if (httpStatus < 500)
      return reply.code(httpStatus).send(errorBody(other.code ?? 'E_BAD_REQUEST', other.message));
    request.log.error({ err: { message: other.message } }, 'unexpected error');
    return reply.code(500).send(errorBody('E_INTERNAL', 'Unexpected error; see the gateway logs'));
  });
  // While draining, ask clients to close their keep-alive connections after each response, so that
  // closing the server does not wait for connections that became idle after it started closing.
  // A callback hook (no promise per request on the hot path).
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (phase === 'draining') reply.header('connection', 'close');
    // Error answers are never cached by clients or CDNs.
    if (reply.statusCode >= 400) reply.header('cache-control', 'no-store');
    done(null, payload);
  });
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody('E_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );

  // OpenAPI 3.1 from the routes' schemas (registered first: it records the routes as they are
  // added), an interactive page at /docs, the document at /openapi.json.
  app.register(swagger, OPENAPI_DOCUMENT);
  app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.register(async (api) => {
    const querySchema = {
      type: 'object',
      required: ['ano', 'mes', 'ncm', 'pais'],
      properties: {
        ano: { type: 'integer', minimum: minYear, maximum: 2100 },
        mes: { type: 'integer', minimum: 1, maximum: 12 },
        ncm: { type: 'string', pattern: '^[0-9]{8}$' },
        pais: { type: 'string', pattern: '^[0-9]{3}$' },
      },
    } as const;

    for (const [endpoint, flow] of [
      ['exportacao_mes', 'export'],
      ['importacao_mes', 'import'],
    ] as const) {
      api.get<{ Querystring: { ano: number; mes: number; ncm: string; pais: string } }>(
        `/comexstat/${endpoint}`,
        {
          schema: {
            tags: ['comexstat'],
            summary: `One month of ${flow === 'export' ? 'exports' : 'imports'} of an NCM to/from a country`,
            querystring: querySchema,
            response: {
              200: {
                description: 'The month: rows: [] when there was no trade',
                headers: DATA_HEADERS,
                type: 'object',
                required: ['ano', 'mes', 'ncm', 'pais', 'rows'],
                properties: {
                  ano: { type: 'integer' },
                  mes: { type: 'integer' },
                  ncm: { type: 'string' },
                  pais: { type: 'string' },
                  rows: { type: 'array', items: ROW_SCHEMA },
                },
              },
              304: NOT_MODIFIED,
              ...DATA_ERRORS,
            },
          },
        },
        async (request, reply) => {
          const { ano, mes, ncm, pais } = request.query;
          const query: MonthQuery = { flow, ano, mes, ncm, pais };
          const answer = complete(query, await options.fetchMonth(query, { clientId: request.ip }));
          return sendAnswer(request, reply, answerBody(monthHead(query), answer.rows), answer);
        },
      );
    }

    const seriesSchema = {
      type: 'object',
      required: ['ncm', 'pais', 'de', 'ate'],
      properties: {
        ncm: { type: 'string', pattern: '^[0-9]{8}$' },
        pais: { type: 'string', pattern: '^[0-9]{3}$' },
        de: { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$' },
        ate: { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$' },
      },
    } as const;

    for (const [endpoint, flow] of [
      ['exportacao', 'export'],
      ['importacao', 'import'],
    ] as const) {
      api.get<{ Querystring: { ncm: string; pais: string; de: string; ate: string } }>(
        `/comexstat/${endpoint}`,
        {
          schema: {
            tags: ['comexstat'],
            summary: `Every month of a range (at most ${MAX_SERIES_MONTHS}) of ${flow === 'export' ? 'exports' : 'imports'} of an NCM to/from a country`,
            querystring: seriesSchema,
            response: {
              200: {
                description: 'The months of the range, oldest first',
                headers: DATA_HEADERS,
                type: 'object',
                required: ['ncm', 'pais', 'de', 'ate', 'months'],
                properties: {
                  ncm: { type: 'string' },
                  pais: { type: 'string' },
                  de: { type: 'string' },
                  ate: { type: 'string' },
                  months: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['ano', 'mes', 'rows', 'level'],
                      properties: {
                        ano: { type: 'integer' },
                        mes: { type: 'integer' },
                        rows: { type: 'array', items: ROW_SCHEMA },
                        level: { type: 'string' },
                        status: { type: 'string' },
                      },
                    },
                  },
                },
              },
              304: NOT_MODIFIED,
              ...DATA_ERRORS,
            },
          },
        },
        async (request, reply) => {
          const { ncm, pais, de, ate } = request.query;
          const from = Number(de.slice(0, 4)) * 12 + Number(de.slice(5)) - 1;
          const to = Number(ate.slice(0, 4)) * 12 + Number(ate.slice(5)) - 1;
          if (Math.floor(from / 12) < minYear || Math.floor(to / 12) > 2100)
            return reply
              .code(400)
              .send(errorBody('E_INVALID_PARAMETER', `Parameter de is invalid: expected ${PARAM_HINTS.de}`));
          if (to < from || to - from + 1 > MAX_SERIES_MONTHS)
            return reply
              .code(400)
              .send(
                errorBody('E_INVALID_PARAMETER', `Parameter ate is invalid: expected ${PARAM_HINTS.ate}`),
              );
          // Every month at once: hits come from one batch read of the cache, cold months are merged
          // by the data source into as few upstream calls as it can (one per flow at most).
          const ctx = { clientId: request.ip };
          const queries: MonthQuery[] = [];
          for (let m = from; m <= to; m++)
            queries.push({ flow, ano: Math.floor(m / 12), mes: (m % 12) + 1, ncm, pais });
          const answers = await fetchSeries(queries, ctx);
          const meta: AnswerMeta = { level: 'series', stale: false, staleWindowMs: options.staleWindowMs };
          const levels = new Set<string>();
          const months = answers.map((a, i) => {
            const q = queries[i] as MonthQuery;
            if (a.staleWindowMs !== undefined) meta.staleWindowMs = a.staleWindowMs;
            const freshUntil = a.freshUntil ?? options.freshUntil?.(q, a);
            if (freshUntil !== undefined)
              meta.freshUntil = Math.min(meta.freshUntil ?? Number.POSITIVE_INFINITY, freshUntil);
            levels.add(a.level);
            if (a.stale) meta.stale = true;
            if (a.fetchedAt !== undefined) meta.fetchedAt = Math.max(meta.fetchedAt ?? 0, a.fetchedAt);
            return a.status && a.status !== 'ok'
              ? { ano: q.ano, mes: q.mes, rows: a.rows, level: a.level, status: a.status }
              : { ano: q.ano, mes: q.mes, rows: a.rows, level: a.level };
          });
          meta.level = levels.size === 1 ? (levels.values().next().value as string) : 'mixed';
          const json = JSON.stringify({ ncm, pais, de, ate, months });
          // The validator covers the data, not where each month came from (`level` changes from
          // `external` to `l1` between two identical answers): a weak ETag, by definition.
          const data = JSON.stringify(answers.map((a) => [a.rows, a.status]));
          return sendAnswer(
            request,
            reply,
            { json, etag: `W/${strongEtag(`${ncm}:${pais}:${de}:${ate}:${data}`)}` },
            meta,
          );
        },
      );
    }

    if (options.adminToken && !options.adminElsewhere) {
      registerAdminRoute(api, {
        cache: options.cache,
        token: options.adminToken,
        maxFailures: options.adminMaxFailures,
      });
    }

    api.get(
      '/healthz',
      {
        schema: {
          tags: ['operations'],
          summary: 'Liveness: 200 while the process lives',
          response: { 200: { type: 'object', properties: { status: { type: 'string' } } } },
        },
      },
      async () => ({ status: 'ok' }),
    );
    const readiness = {
      type: 'object',
      properties: {
        status: { type: 'string', description: 'ok, degraded (a tier is not up), starting or draining' },
        tiers: { type: 'object', additionalProperties: { type: 'string' } },
      },
    } as const;
    api.get(
      '/readyz',
      {
        schema: {
          tags: ['operations'],
          summary: 'Readiness and per-tier health',
          response: { 200: readiness, 503: { ...readiness, description: 'Starting or draining' } },
        },
      },
      async (_request, reply) => {
        if (phase !== 'ready') return reply.code(503).send({ status: phase, tiers: lastTiers });
        const now = Date.now();
        if (now - lastCheck > 1000) {
          lastCheck = now;
          lastTiers = await options.cache.checkTiers();
        } else {
          lastTiers = options.cache.tierStatus();
        }
        const degraded = Object.values(lastTiers).some((s) => s !== 'up');
        return { status: degraded ? 'degraded' : 'ok', tiers: lastTiers };
      },
    );
  });

  return Object.assign(app, {
    setPhase(next: Phase) {
      phase = next;
    },
  });
}

/** Options of {@link registerAdminRoute}. */
export interface AdminRouteOptions {
  cache: MultiLevelCache;
  /** The bearer token (already trimmed and checked for length by the configuration). */
  token: string;
  /** Failed authentications per client within `windowMs` before 429s. @default 5 */
  maxFailures?: number | undefined;
  /** Throttling window, ms. @default 60000 */
  windowMs?: number;
  /** Clock, epoch ms (tests). @default Date.now */
  now?: () => number;
}

/** The body of `POST /admin/cache/invalidate`. */
export interface InvalidateBody {
  keys?: string[];
  tags?: string[];
  /** `delete` (default): gone everywhere; `expire`: stale at once, kept as fail-safe fallbacks. */
  mode?: 'delete' | 'expire';
}

/** Most tags one invalidation takes (the core's bound on a tag list). */
export const MAX_INVALIDATE_TAGS = 64;

/** The JSON schema of {@link InvalidateBody}: bounded lists, known fields only. */
export const INVALIDATE_BODY_SCHEMA = {
  type: 'object',
  description: 'keys, tags or both',
  additionalProperties: false,
  properties: {
    keys: {
      type: 'array',
      description: 'Cache keys, e.g. comexstat:exp:2024:3:12019000:160',
      minItems: 1,
      maxItems: 10_000,
      items: { type: 'string', minLength: 1, maxLength: 1024 },
    },
    tags: {
      type: 'array',
      description:
        'Tags: every entry carrying one of them, e.g. comexstat:ncm:12019000, comexstat:year:2025, comexstat:country:160, comexstat:flow:export',
      minItems: 1,
      maxItems: MAX_INVALIDATE_TAGS,
      items: { type: 'string', minLength: 1, maxLength: 256 },
    },
    mode: {
      type: 'string',
      enum: ['delete', 'expire'],
      description: 'delete (default) or expire (stale at once, still served if the upstream fails)',
    },
  },
} as const;

/** Most clients the failure throttle remembers; beyond it, expired windows are pruned (then the oldest). */
const MAX_THROTTLED_CLIENTS = 10_000;

/**
 * Registers `POST /admin/cache/invalidate` (Bearer token) on `app`: deletes the given keys through
 * the cache (every tier, every instance through the bus, tombstoned so that an in-flight load cannot
 * write them back). A client that fails authentication `maxFailures` times within `windowMs` gets
 * `429` with `Retry-After` until its window ends, without its token being checked.
 */
export function registerAdminRoute(app: FastifyInstance, options: AdminRouteOptions): void {
  const { token } = options;
  const maxFailures = options.maxFailures ?? 5;
  const windowMs = options.windowMs ?? 60_000;
  const now = options.now ?? Date.now;
  const failures = new Map<string, { count: number; since: number }>();
  const prune = (t: number) => {
    for (const [ip, f] of failures) if (t - f.since >= windowMs) failures.delete(ip);
    while (failures.size >= MAX_THROTTLED_CLIENTS) {
      const oldest = failures.keys().next().value as string;
      failures.delete(oldest);
    }
  };
  app.post<{ Body: InvalidateBody }>(
    '/admin/cache/invalidate',
    {
      schema: {
        tags: ['operations'],
        summary: 'Invalidate cache keys and tags in every tier and every instance',
        description:
          'Deletes (mode delete, the default) or expires (mode expire: kept as fail-safe fallbacks for their stale window) the given keys and every entry carrying one of the given tags. ComexStat entries are tagged comexstat:flow:<export|import>, comexstat:year:<ano>, comexstat:ncm:<ncm> and comexstat:country:<pais>.',
        security: [{ adminToken: [] }],
        response: {
          200: {
            type: 'object',
            description: 'What was invalidated',
            required: ['invalidated', 'tags', 'mode'],
            properties: {
              invalidated: { type: 'integer', description: 'Distinct keys invalidated' },
              tags: { type: 'integer', description: 'Distinct tags invalidated' },
              mode: { type: 'string', enum: ['delete', 'expire'] },
            },
          },
          400: {
            ...ERROR_SCHEMA,
            description: 'Malformed body, key or tag (E_INVALID_PARAMETER, E_INVALID_KEY, E_INVALID_TAG)',
          },
          401: { ...ERROR_SCHEMA, description: 'Missing or wrong token (E_UNAUTHORIZED)' },
          429: {
            ...ERROR_SCHEMA,
            description:
              'Too many failed authentications from this client (E_TOO_MANY_ATTEMPTS); see Retry-After',
          },
        },
        body: INVALIDATE_BODY_SCHEMA,
      },
      // Authentication runs before the body is validated, so a caller without the token learns nothing.
      onRequest: async (request, reply) => {
        const t = now();
        const entry = failures.get(request.ip);
        if (entry && t - entry.since >= windowMs) failures.delete(request.ip);
        const current = failures.get(request.ip);
        if (current && current.count >= maxFailures) {
          const wait = Math.max(1, Math.ceil((current.since + windowMs - t) / 1000));
          return reply
            .code(429)
            .header('retry-after', String(wait))
            .send(
              errorBody(
                'E_TOO_MANY_ATTEMPTS',
                `Too many failed authentications from this client; retry after ${wait} s with the right token`,
              ),
            );
        }
        const header = request.headers.authorization ?? '';
        const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
        if (!given || !safeEqual(given, token)) {
          if (current) current.count++;
          else {
            if (failures.size >= MAX_THROTTLED_CLIENTS) prune(t);
            failures.set(request.ip, { count: 1, since: t });
          }
          request.log.warn({ client: request.ip }, 'admin authentication failed');
          return reply
            .code(401)
            .header('www-authenticate', 'Bearer')
            .send(
              errorBody('E_UNAUTHORIZED', 'A valid Authorization: Bearer <ADMIN_TOKEN> header is required'),
            );
        }
        failures.delete(request.ip);
      },
    },
    async (request, reply) => {
      const body = request.body;
      const keys = [...new Set(body.keys ?? [])];
      const tags = [...new Set(body.tags ?? [])];
      const mode = body.mode ?? 'delete';
      if (keys.length === 0 && tags.length === 0)
        return reply
          .code(400)
          .send(errorBody('E_INVALID_PARAMETER', `Parameter keys is missing: expected ${PARAM_HINTS.keys}`));
      try {
        for (const k of keys) validateKey(k);
        // Tags first: deleteByTag/expireByTag check every tag before invalidating anything, so a
        // bad tag leaves the keys alone too.
        if (tags.length > 0) {
          if (mode === 'expire') await options.cache.expireByTag(tags);
          else await options.cache.deleteByTag(tags);
        }
      } catch (error) {
        if (
          BgcCacheError.isInstance(error) &&
          (error.code === 'E_INVALID_KEY' || error.code === 'E_INVALID_TAG')
        )
          return reply.code(400).send(errorBody(error.code, error.message));
        throw error;
      }
      if (keys.length > 0) {
        if (mode === 'expire') await options.cache.expireMany(keys);
        else await options.cache.deleteMany(keys);
      }
      request.log.info({ keys: keys.length, tags, mode }, 'cache invalidated');
      return { invalidated: keys.length, tags: tags.length, mode };
    },
  );
}
