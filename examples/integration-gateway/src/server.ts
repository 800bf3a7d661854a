import { createHash, timingSafeEqual } from 'node:crypto';
import { BgcCacheError, type Level, type MultiLevelCache, validateKey } from '@bgc/cache-core';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';

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
}

/** Resolves one monthly query, from cache or upstream. */
export type MonthFetcher = (query: MonthQuery) => Promise<MonthAnswer>;

/** Options of {@link createApp}. */
export interface AppOptions {
  cache: MultiLevelCache;
  fetchMonth: MonthFetcher;
  /** Enables `POST /admin/cache/invalidate` when set. */
  adminToken?: string | undefined;
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
};

function errorBody(code: string, message: string) {
  return { error: { code, message } };
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
  let phase: Phase = 'starting';
  let lastCheck = 0;
  let lastTiers: Record<string, string> = {};
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { coerceTypes: true, allErrors: false, removeAdditional: false } },
    return503OnClosing: true,
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const httpStatus = error.statusCode ?? 500;
    if (error.validation) {
      const v = error.validation[0];
      const param =
        (v?.params as { missingProperty?: string } | undefined)?.missingProperty ??
        v?.instancePath?.replace(/^\//, '') ??
        'query';
      const hint = PARAM_HINTS[param];
      const problem = v?.keyword === 'required' ? 'is missing' : 'is invalid';
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
      if (error.code === 'E_TIMEOUT')
        return reply
          .code(503)
          .send(
            errorBody(
              'E_UPSTREAM_TIMEOUT',
              `The upstream did not answer in time and nothing is cached for this query; retry later`,
            ),
          );
      if (error.code === 'E_INVALID_KEY' || error.code === 'E_INVALID_VALUE')
        return reply.code(400).send(errorBody(error.code, error.message));
      const code = status === 429 || error.code.includes('RATE') ? 503 : 502;
      request.log.warn(
        { err: { code: error.code, message: error.message } },
        'upstream failure with nothing cached',
      );
      return reply
        .code(code)
        .send(
          errorBody(
            error.code.startsWith('E_UPSTREAM') ? error.code : 'E_UPSTREAM',
            `The ComexStat API failed and nothing is cached for this query: ${error.message}`,
          ),
        );
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
  app.addHook('onSend', async (_request, reply) => {
    if (phase === 'draining') reply.header('connection', 'close');
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody('E_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`)),
  );

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
    app.get<{ Querystring: { ano: number; mes: number; ncm: string; pais: string } }>(
      `/comexstat/${endpoint}`,
      { schema: { querystring: querySchema } },
      async (request, reply) => {
        const { ano, mes, ncm, pais } = request.query;
        const answer = await options.fetchMonth({ flow, ano, mes, ncm, pais });
        reply.header('x-cache-level', answer.level);
        if (answer.stale) reply.header('x-cache-stale', 'true');
        if (answer.status && answer.status !== 'ok') reply.header('x-data-status', answer.status);
        return { ano, mes, ncm, pais, rows: answer.rows };
      },
    );
  }

  if (options.adminToken) {
    const token = options.adminToken;
    app.post<{ Body: { keys: string[] } }>(
      '/admin/cache/invalidate',
      {
        schema: {
          body: {
            type: 'object',
            required: ['keys'],
            properties: {
              keys: {
                type: 'array',
                minItems: 1,
                maxItems: 10_000,
                items: { type: 'string', minLength: 1, maxLength: 1024 },
              },
            },
          },
        },
        // Authentication runs before the body is validated, so a caller without the token learns nothing.
        onRequest: async (request, reply) => {
          const header = request.headers.authorization ?? '';
          const given = header.startsWith('Bearer ') ? header.slice(7) : '';
          if (!given || !safeEqual(given, token)) {
            return reply
              .code(401)
              .header('www-authenticate', 'Bearer')
              .send(
                errorBody('E_UNAUTHORIZED', 'A valid Authorization: Bearer <ADMIN_TOKEN> header is required'),
              );
          }
        },
      },
      async (request) => {
        const keys = [...new Set(request.body.keys)];
        for (const k of keys) validateKey(k);
        await options.cache.deleteMany(keys);
        request.log.info({ keys: keys.length }, 'cache keys invalidated');
        return { invalidated: keys.length };
      },
    );
  }

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
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
  });

  return Object.assign(app, {
    setPhase(next: Phase) {
      phase = next;
    },
  });
}
