import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import {
  ComexStatClient,
  ComexStatConnector,
  loadConnectorConfig,
  RequestSpacer,
  type ComexStatConnectorConfig,
  type ComexStatMonthResult,
  type ComexStatMonthValue,
  type ComexStatRelease,
  isOutdatedByRelease,
  isPublishedMonth,
} from '@bgc/connector-comexstat';
import { pino, type Logger } from 'pino';
import { type GatewayConfig, loadGatewayConfig, redactUrl } from './config.js';
import { createMetricsApp } from './metrics-server.js';
import {
  connectTiers,
  createRuntime,
  EAGER_REFRESH_THRESHOLD,
  errInfo,
  type GatewayRuntime,
  TTL_JITTER,
} from './runtime.js';
import { collectSecrets, scrubSecrets } from './secrets.js';
import {
  createApp,
  type MonthAnswer,
  type MonthContext,
  type MonthQuery,
  type SeriesFetcher,
} from './server.js';

/** A running gateway. */
export interface Gateway {
  /** `http://host:port` of the API. */
  url: string;
  /** `http://host:port/metrics`. */
  metricsUrl: string;
  config: GatewayConfig;
  runtime: GatewayRuntime;
  connector: ComexStatConnector;
  logger: Logger;
  /** Drains in-flight requests, closes the tiers and the servers. */
  close(): Promise<void>;
}

/** Options of {@link startGateway}. */
export interface StartGatewayOptions {
  /** Environment to configure from. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Logger; default pino on stdout at LOG_LEVEL with secrets redacted. */
  logger?: Logger;
}

/**
 * The pino logger of the gateway: JSON lines, secrets redacted wherever they appear in a log object
 * (by path), and every configured secret value (`secrets`, see `collectSecrets`) scrubbed from
 * every line written, whatever path it took (an error message quoting a URL, for example).
 */
export function createLogger(level: string, secrets: readonly string[] = []): Logger {
  return pino({
    level,
    ...(secrets.length > 0 ? { hooks: { streamWrite: (line: string) => scrubSecrets(line, secrets) } } : {}),
    redact: {
      paths: [
        'password',
        '*.password',
        'req.headers.authorization',
        'headers.authorization',
        'REDIS_PASSWORD',
        '*.REDIS_PASSWORD',
        'adminToken',
        '*.adminToken',
      ],
      censor: '***',
    },
  });
}

/**
 * The connector's wait bound for cold misses, ms: COMEXSTAT_MAX_WAIT, else the connector's own
 * default, 2 × the min interval + 10 s (50 s at the default 20 s spacing).
 */
export function connectorWaitBoundMs(config: GatewayConfig, connConfig: ComexStatConnectorConfig): number {
  return config.comexstat.maxWaitMs ?? 2 * connConfig.rateLimit.minIntervalMs + 10_000;
}

/** The connector configuration: COMEXSTAT_CONFIG's YAML, else the built-in defaults (env overrides applied). */
export function connectorConfig(config: GatewayConfig, env: NodeJS.ProcessEnv): ComexStatConnectorConfig {
  if (!config.comexstatConfigPath) return loadConnectorConfig('{}', { env });
  return loadConnectorConfig(readFileSync(config.comexstatConfigPath, 'utf8'), { env });
}

/**
 * The ComexStat connector over the runtime's cache: its client spaced across instances through
 * Redis when L2 is configured.
 */
export function createConnector(
  config: GatewayConfig,
  runtime: GatewayRuntime,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): ComexStatConnector {
  const connConfig = connectorConfig(config, env);
  const spacer = new RequestSpacer({
    minIntervalMs: connConfig.rateLimit.minIntervalMs,
    redis: runtime.spacerRedis,
    expectedReplicas: config.comexstat.expectedReplicas,
    // Coordination keys: out of the cache prefix, so that clear() never resets the spacer.
    redisKey: `${config.coordPrefix}comexstat:spacer`,
    onError: (error) =>
      logger.debug({ err: errInfo(error) }, 'request spacer fell back to in-process spacing'),
    env,
  });
  const client = new ComexStatClient({
    baseUrl: config.comexstatBaseUrl ?? connConfig.api.baseUrl,
    timeoutMs: connConfig.api.timeoutMs,
    retries: connConfig.api.retries,
    language: connConfig.api.language,
    spacer,
  });
  const aggregates = runtime.aggregates;
  return new ComexStatConnector({
    client,
    cache: runtime.cache,
    config: connConfig,
    // Unset fields take the connector's defaults; maxWaitMs is the bound the cache's timeouts sit above.
    admission: {
      maxWaitMs: connectorWaitBoundMs(config, connConfig),
      maxPendingCalls: config.comexstat.maxPendingCalls,
      maxPendingCells: config.comexstat.maxPendingCells,
      clientBudget: config.comexstat.clientBudget,
    },
    onError: (error) => logger.warn({ err: errInfo(error) }, 'background connector task failed'),
    // With Redis, cold misses are merged across instances into as few upstream calls as possible.
    shared: runtime.coordRedis
      ? { redis: runtime.coordRedis, keyPrefix: `${config.coordPrefix}comexstat:pending:` }
      : undefined,
    // Every row the upstream returned feeds the L3 aggregates (top NCMs × countries for warming).
    onRows: aggregates
      ? (rows) =>
          aggregates.upsertComexStatRows(
            rows.map((r) => ({
              flow: r.flow === 'export' ? 'exp' : 'imp',
              year: r.ano,
              month: r.mes,
              ncm: r.ncm,
              countryCode: r.pais,
              fob: r.fob,
              kg: r.kg,
            })),
          )
      : undefined,
  });
}

/** Whether a cached value of `q` predates `release` (revised since, or "not published" and published since). */
function outdated(q: MonthQuery, v: ComexStatMonthValue, release: ComexStatRelease | undefined): boolean {
  if (release === undefined) return false;
  return v.status === 'not_published'
    ? isPublishedMonth(q.ano, q.mes, release)
    : isOutdatedByRelease(q.ano, v.fetchedAt, release);
}

/**
 * Share of a value's policy lifetime (from its fetch time) during which its L1 hits may take the
 * fast path. Past it they take the route, whose `getOrLoad` starts the cache's eager refresh: the
 * runtime's threshold (0.9) of a lifetime the TTL jitter (0.1) shortens by up to 10%, so never
 * before 0.81 of the policy lifetime; the fast path stops 0.01 earlier.
 */
export const FAST_PATH_SHARE = EAGER_REFRESH_THRESHOLD * (1 - TTL_JITTER) - 0.01;

/**
 * The monthly routes' fast path source: the value of a fresh L1 hit (`getSync`, counted as a hit
 * like any other), as `getMonth` would answer it. `undefined` (the route answers) when the L1
 * lacks it, when the release outdated it (the route answers and refreshes it), and in the last
 * part of its lifetime (see {@link FAST_PATH_SHARE}: the route's read starts the eager refresh).
 * Pokes the connector's background metadata checks as `getMonth` does.
 */
export function l1Answers(
  connector: ComexStatConnector,
  runtime: Pick<GatewayRuntime, 'cache'>,
): ((q: MonthQuery) => MonthAnswer | undefined) | undefined {
  if (!connector.config.cache.enabled) return undefined;
  const cache = runtime.cache;
  // Keys of the queries asked (the fast path hands the same frozen query object for a URL).
  const keys = new WeakMap<MonthQuery, string>();
  // Until when each value may take the fast path, with the cell it was decided for.
  const until = new WeakMap<ComexStatMonthValue, { ano: number; mes: number; at: number }>();
  let poked = 0;
  return (q) => {
    const now = Date.now();
    // getMonth pokes on every call; a poke only starts a check that is due: once a second is enough.
    if (now - poked >= 1000) {
      poked = now;
      connector.start();
    }
    let key = keys.get(q);
    if (key === undefined) {
      key = connector.keyFor(q);
      if (Object.isFrozen(q)) keys.set(q, key);
    }
    const v = cache.getSync<ComexStatMonthValue>(
      key,
      q.flow === 'export' ? 'exportacao_mes' : 'importacao_mes',
    );
    if (v === undefined) return undefined;
    let fast = until.get(v);
    if (fast === undefined || fast.ano !== q.ano || fast.mes !== q.mes) {
      fast = {
        ano: q.ano,
        mes: q.mes,
        at: v.fetchedAt + FAST_PATH_SHARE * connector.ttlFor(q.ano, q.mes, v),
      };
      // Cached values are frozen and shared by their hits: decided once per value.
      if (Object.isFrozen(v)) until.set(v, fast);
    }
    if (now >= fast.at || outdated(q, v, connector.releases.current)) return undefined;
    return { rows: v.rows, status: v.status, level: 'l1', stale: false, fetchedAt: v.fetchedAt };
  };
}

/**
 * The time-series source: the months of a range from one batch read of the cache (`getMany`: one
 * round trip per tier, hits promoted to the faster tiers); the months it lacks, and those a release
 * outdated since they were cached, through the connector's `getMonth` all at once, which merges
 * their cold misses into one upstream call per flow (the row bound permitting) and answers an
 * outdated month stale while it refreshes it, as for a single month.
 */
export function seriesFetcher(
  connector: ComexStatConnector,
  runtime: Pick<GatewayRuntime, 'cache'>,
  fetchMonth: (q: MonthQuery, ctx: MonthContext) => Promise<MonthAnswer>,
): SeriesFetcher {
  return async (queries, ctx) => {
    if (queries.length === 0) return [];
    if (!connector.config.cache.enabled) return Promise.all(queries.map((q) => fetchMonth(q, ctx)));
    const cached = await runtime.cache.getMany<ComexStatMonthValue>(
      queries.map((q) => connector.keyFor(q)),
      { endpoint: (queries[0] as MonthQuery).flow === 'export' ? 'exportacao_mes' : 'importacao_mes' },
    );
    const release = connector.releases.current;
    return Promise.all(
      queries.map((q, i): MonthAnswer | Promise<MonthAnswer> => {
        const hit = cached[i];
        const v = hit?.value;
        if (hit === undefined || v === undefined) return fetchMonth(q, ctx);
        if (outdated(q, v, release)) return fetchMonth(q, ctx);
        return { rows: v.rows, status: v.status, level: hit.level, stale: hit.stale, fetchedAt: v.fetchedAt };
      }),
    );
  };
}

/**
 * Starts one gateway from environment variables: the tiers, the connector, the API on PORT and
 * `/metrics` on METRICS_PORT. Ports 0 pick free ones (see `url`/`metricsUrl`).
 */
export async function startGateway(options: StartGatewayOptions = {}): Promise<Gateway> {
  const env = options.env ?? process.env;
  const config = loadGatewayConfig(env);
  const logger = options.logger ?? createLogger(config.logLevel, collectSecrets(env));
  const connConfig = connectorConfig(config, env);
  const upstream = redactUrl(config.comexstatBaseUrl ?? connConfig.api.baseUrl);
  logger.info(
    {
      l1: config.cache.l1.enabled,
      l2: config.cache.l2.enabled ? redactUrl(config.cache.l2.addr) : false,
      l3: config.databaseUrl
        ? redactUrl(config.databaseUrl)
        : config.cache.l3.enabled
          ? `pglite:${config.l3DataDir}`
          : false,
      upstream,
    },
    'starting integration gateway',
  );
  const runtime = await createRuntime(config, env, logger, {
    waitBoundMs: connectorWaitBoundMs(config, connConfig),
  });
  // Connect the shared tiers before serving (bounded): a tier still down starts the gateway
  // degraded (the clients keep reconnecting), it does not stop it.
  await connectTiers(runtime, config, config.connectTimeoutMs).catch((error: unknown) =>
    logger.warn({ err: errInfo(error) }, 'a cache tier is not reachable at start; serving degraded'),
  );
  const connector = createConnector(config, runtime, env, logger);
  // Background metadata (release check, countries) as early as possible; start() only schedules
  // it (at the spacer's lowest priority): no request and not /readyz ever waits for it.
  connector.start();
  logger.info(
    { waitBoundMs: connectorWaitBoundMs(config, connConfig), ...runtime.loadBounds },
    'cold-miss bounds',
  );
  const staleWindowMs = connector.config.cache.staleTtlMs;
  // HTTP freshness from the value's own life: its TTL policy less the orchestrator's jitter (10%),
  // so that a client or CDN never keeps it longer than the cache would. Decided once per cached
  // value (its rows object), as the cache decided its TTL once.
  const freshUntilOf = new WeakMap<object, number>();
  // The client id lets the connector budget uncached work per client (E_CLIENT_BUDGET).
  const fetchMonth = (q: MonthQuery, ctx: MonthContext): Promise<MonthAnswer> =>
    connector.getMonth(q, { clientId: ctx.clientId });
  const fetchSeries = seriesFetcher(connector, runtime, fetchMonth);
  const cachedMonth = l1Answers(connector, runtime);
  const freshUntil = (q: MonthQuery, answer: MonthAnswer): number | undefined => {
    const r = answer as MonthAnswer & ComexStatMonthResult;
    let until = freshUntilOf.get(r.rows);
    if (until === undefined) {
      const value = { status: r.status, rows: r.rows as never, fetchedAt: r.fetchedAt };
      until = r.fetchedAt + connector.ttlFor(q.ano, q.mes, value) * 0.9;
      // Shared empty rows (`[]` of many cells) are no value's identity: memoize real rows only.
      if (r.rows.length > 0 && Object.isFrozen(r.rows)) freshUntilOf.set(r.rows, until);
    }
    return until;
  };
  const app = createApp({
    cache: runtime.cache,
    fetchMonth,
    fetchSeries,
    cachedMonth,
    freshUntil,
    staleWindowMs,
    adminToken: config.adminToken,
    adminElsewhere: config.adminOnMetricsPort,
    adminMaxFailures: config.adminMaxFailures,
    logger,
  });
  const metricsApp = createMetricsApp({
    registry: runtime.registry,
    logger,
    admin:
      config.adminToken && config.adminOnMetricsPort
        ? { cache: runtime.cache, token: config.adminToken, maxFailures: config.adminMaxFailures }
        : undefined,
  });
  await app.listen({ port: config.port, host: config.host });
  await metricsApp.listen({ port: config.metricsPort, host: config.host });
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const apiPort = (app.server.address() as AddressInfo).port;
  const metricsPort = (metricsApp.server.address() as AddressInfo).port;
  app.setPhase('ready');
  logger.info({ port: apiPort, metricsPort, instance: runtime.instanceId }, 'integration gateway ready');

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${apiPort}`,
    metricsUrl: `http://${host}:${metricsPort}/metrics`,
    config,
    runtime,
    connector,
    logger,
    close() {
      closing ??= (async () => {
        app.setPhase('draining');
        await app.close();
        logger.debug('http server closed');
        // The connector's close() rejects the queries whose upstream call was not sent yet
        // (E_SHUTTING_DOWN), so that SIGTERM never waits behind the spacer queue; the wait is bounded
        // by half the shutdown budget either way, then the tiers close regardless.
        const settled = connector.close().catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        const bounded = await Promise.race([
          settled.then(() => true),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(false), Math.max(100, config.shutdownTimeoutMs / 2));
          }),
        ]);
        clearTimeout(timer);
        if (bounded) logger.debug('connector drained');
        else
          logger.warn(
            'upstream calls still queued at shutdown were abandoned; other instances answer their retries',
          );
        await runtime.close();
        logger.debug('tiers closed');
        await metricsApp.close();
        logger.info('integration gateway stopped');
      })();
      return closing;
    },
  };
}
