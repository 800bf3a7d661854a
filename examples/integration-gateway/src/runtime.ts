import { hostname } from 'node:os';
import { BgcCacheError, MultiLevelCache, type MultiLevelCacheOptions, type Tier } from '@bgc/cache-core';
import { memoryTierFromEnv } from '@bgc/cache-l1-memory';
import {
  createRedisClient,
  RedisInvalidationBus,
  RedisLock,
  RedisTier,
  redisOptionsFromEnv,
} from '@bgc/cache-l2-redis';
import { AggregatesStore, createPgliteTier, PostgresTier } from '@bgc/cache-l3-postgres';
import { collectProcessMetrics, PrometheusMetrics } from '@bgc/cache-metrics-prometheus';
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { type GatewayConfig, loadBoundsMs } from './config.js';
import { redactUrl } from './secrets.js';

/** The cache's TTL jitter: lifetimes shortened by up to this share. */
export const TTL_JITTER = 0.1;
/** The share of a value's lifetime past which a read starts its eager refresh. */
export const EAGER_REFRESH_THRESHOLD = 0.9;

/** The endpoints the gateway serves: the `endpoint` label values of the metrics. */
export const ENDPOINTS = ['exportacao_mes', 'importacao_mes'] as const;

/** The connector's default wait bound at the default 20 s spacing (2 × 20 s + 10 s), ms. */
export const DEFAULT_WAIT_BOUND_MS = 50_000;

/** Options of {@link createRuntime}. */
export interface CreateRuntimeOptions {
  /**
   * The connector's wait bound (its `admission.maxWaitMs`), ms: the cache's hard timeout and lock
   * wait default above it (see `loadBoundsMs`). @default DEFAULT_WAIT_BOUND_MS
   */
  waitBoundMs?: number;
}

/** Everything the gateway runs on, built from its configuration. */
export interface GatewayRuntime {
  cache: MultiLevelCache;
  registry: Registry;
  metrics: PrometheusMetrics;
  redis: Redis | Cluster | undefined;
  /** The Redis of the coordination keys: COORD_REDIS_ADDR's, else {@link GatewayRuntime.redis}. */
  coordRedis: Redis | Cluster | undefined;
  /**
   * The request spacer's own client on the coordination Redis, with COMEXSTAT_SPACER_COMMAND_TIMEOUT
   * (1 s) instead of the L2 client's 100 ms, so that a slow reply does not trip the spacer's
   * fail-closed spacing.
   */
  spacerRedis: Redis | Cluster | undefined;
  /** The cache's load bounds (hard timeout, lock wait), ms, derived from the connector's wait bound. */
  loadBounds: { hardTimeoutMs: number; lockWaitMs: number };
  l3: PostgresTier | undefined;
  aggregates: AggregatesStore | undefined;
  instanceId: string;
  close(): Promise<void>;
}

/**
 * Builds the tiers the configuration asks for (L1 memory; L2 Redis with its invalidation bus and
 * load lock; L3 PostgreSQL, or PGlite when no DATABASE_URL is set), the Prometheus metrics, and the
 * orchestrator over them. A Redis that is down at start does not stop the gateway: it starts
 * degraded and the client reconnects by itself.
 */
export async function createRuntime(
  config: GatewayConfig,
  env: NodeJS.ProcessEnv,
  log: Logger,
  options: CreateRuntimeOptions = {},
): Promise<GatewayRuntime> {
  const loadBounds = loadBoundsMs(config, options.waitBoundMs ?? DEFAULT_WAIT_BOUND_MS);
  const instanceId = config.instanceId ?? `${hostname()}-${process.pid}`;
  const registry = new Registry();
  // The process metrics without the nodejs_active_*_total gauges: the whole /metrics passes promtool.
  collectProcessMetrics({ registry });
  const metrics = new PrometheusMetrics({ registry, connectors: ['comexstat'], endpoints: [...ENDPOINTS] });
  const tiers: Tier[] = [];
  if (config.cache.l1.enabled) tiers.push(memoryTierFromEnv(env, { metrics }));

  let redis: Redis | Cluster | undefined;
  let coordRedis: Redis | Cluster | undefined;
  let spacerRedis: Redis | Cluster | undefined;
  let bus: RedisInvalidationBus | undefined;
  let lock: RedisLock | undefined;
  if (config.cache.l2.enabled) {
    redis = createRedisClient({
      ...redisOptionsFromEnv(env),
      commandTimeoutMs: config.redisCommandTimeoutMs,
      connectionName: `bgc-gateway-${instanceId}`,
    });
    // Connection errors are reported through the tier's metrics; without a listener ioredis would log each one.
    redis.on('error', (error: Error) =>
      log.debug({ err: { message: error.message } }, 'redis connection error'),
    );
    const prefix = config.l2Prefix;
    tiers.push(new RedisTier({ client: redis, metrics, prefix }));
    bus = new RedisInvalidationBus({ client: redis, instanceId, metrics, prefix });
    coordRedis = redis;
    const coordEnv = config.coordRedisAddr
      ? {
          ...env,
          REDIS_ADDR: config.coordRedisAddr,
          REDIS_PASSWORD: env.COORD_REDIS_PASSWORD || env.REDIS_PASSWORD,
          REDIS_DB: env.COORD_REDIS_DB,
        }
      : env;
    if (config.coordRedisAddr) {
      coordRedis = createRedisClient({
        ...redisOptionsFromEnv(coordEnv),
        commandTimeoutMs: config.redisCommandTimeoutMs,
        connectionName: `bgc-gateway-coord-${instanceId}`,
      });
      coordRedis.on('error', (error: Error) =>
        log.debug({ err: { message: error.message } }, 'coordination redis connection error'),
      );
    }
    // The spacer fails closed (interval × expected replicas) on any Redis error: its own client,
    // with a command timeout long enough that a busy Redis is not taken for a lost one.
    spacerRedis = createRedisClient({
      ...redisOptionsFromEnv(coordEnv),
      commandTimeoutMs: config.comexstat.spacerCommandTimeoutMs,
      connectionName: `bgc-gateway-spacer-${instanceId}`,
    });
    spacerRedis.on('error', (error: Error) =>
      log.debug({ err: { message: error.message } }, 'spacer redis connection error'),
    );
    // Coordination keys live under their own prefix (and, with COORD_REDIS_ADDR, their own
    // noeviction Redis), out of RedisTier.clear()'s and the cache's eviction's reach.
    lock = new RedisLock({ client: coordRedis, prefix: `${config.coordPrefix}lock:` });
  }

  let l3: PostgresTier | undefined;
  let aggregates: AggregatesStore | undefined;
  if (config.databaseUrl) {
    l3 = new PostgresTier({
      connectionString: config.databaseUrl,
      schema: config.l3Schema,
      migrate: true,
      onError: (error) => log.warn({ err: errInfo(error) }, 'postgres pool error'),
    });
    await l3
      .init()
      .catch((error: unknown) =>
        log.warn({ err: errInfo(error) }, 'L3 PostgreSQL not ready at start; serving degraded'),
      );
  } else if (config.cache.l3.enabled) {
    // Migrated before first use, in the schema the aggregates use too.
    l3 = await createPgliteTier({ dataDir: config.l3DataDir, schema: config.l3Schema });
  }
  if (l3) {
    tiers.push(l3);
    const db = await l3.database().catch(() => undefined);
    if (db) aggregates = new AggregatesStore({ db, schema: config.l3Schema });
  }

  // `tombstoneMs`: how long a delete refuses writes of loads that started before it (coherence).
  const cacheOptions: MultiLevelCacheOptions = {
    tiers,
    metrics,
    connector: 'comexstat',
    endpoint: 'exportacao_mes',
    defaultTtlMs: config.cache.l1.defaultTtlMs,
    ttlJitter: TTL_JITTER,
    staleTtlMs: config.resilience.staleTtlMs,
    tierTimeoutMs: config.resilience.tierTimeoutMs,
    softTimeoutMs: config.resilience.softTimeoutMs,
    // Above the connector's wait bound: a lone cold miss waits for its call; past the bound the
    // connector's typed E_UPSTREAM_BACKLOG (503 + Retry-After) answers, not a bare timeout.
    hardTimeoutMs: loadBounds.hardTimeoutMs,
    lockWaitMs: loadBounds.lockWaitMs,
    eagerRefreshThreshold: EAGER_REFRESH_THRESHOLD,
    circuitBreaker: { failureThreshold: 3, cooldownMs: 3000 },
    bus,
    lock,
    ...(config.tombstoneMs !== undefined ? { tombstoneMs: config.tombstoneMs } : {}),
    // The cache logs tier, loader and bus failures, circuit changes and recoveries itself, through
    // a child { pkg: '@bgc/cache-core' } of the gateway's logger (secrets redacted by its paths).
    logger: log,
  };
  const cache = new MultiLevelCache(cacheOptions);

  return {
    cache,
    registry,
    metrics,
    redis,
    coordRedis,
    spacerRedis,
    loadBounds,
    l3,
    aggregates,
    instanceId,
    async close() {
      await cache.close();
      if (redis) redis.disconnect();
      if (coordRedis && coordRedis !== redis) coordRedis.disconnect();
      if (spacerRedis) spacerRedis.disconnect();
    },
  };
}

/** An error as a log object: message and code only (driver errors can carry credentials in their args). */
export function errInfo(error: unknown): { message: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? { message: error.message, code } : { message: error.message };
  }
  return { message: String(error) };
}

/** A configured tier that could not be reached within the bound: jobs exit non-zero on it. */
export class TierUnreachableError extends BgcCacheError {
  /** The tier's level (`l2`, `l3`). */
  readonly level: string;
  constructor(level: string, what: string, timeoutMs: number, cause: unknown) {
    super(
      'E_TIER_UNREACHABLE',
      `${level.toUpperCase()} ${what} was not reachable within ${Math.round(timeoutMs / 1000)} s (${errInfo(cause).message}); check that it runs and that its address and credentials are right`,
    );
    this.level = level;
  }
}

/** A tier's own connect verb: `connect()` (the coherence contract), else RedisTier.ready / PostgresTier.init. */
function connectVerb(tier: Tier): (() => Promise<void>) | undefined {
  const t = tier as Tier & { ready?: (ms?: number) => Promise<void>; init?: () => Promise<void> };
  if (typeof t.connect === 'function') return () => (t.connect as () => Promise<void>).call(t);
  if (typeof t.ready === 'function') return () => (t.ready as (ms?: number) => Promise<void>).call(t, 1000);
  if (typeof t.init === 'function') return () => (t.init as () => Promise<void>).call(t);
  return undefined;
}

/** What each shared tier is, for messages (addresses redacted). */
function describeTier(config: GatewayConfig, level: string): string {
  if (level === 'l2') return `Redis (${redactUrl(config.cache.l2.addr)})`;
  if (level === 'l3')
    return config.databaseUrl
      ? `PostgreSQL (${redactUrl(config.databaseUrl)})`
      : `PGlite (${config.l3DataDir})`;
  return level;
}

/**
 * Connects every configured shared tier (L2, L3), each retried until `timeoutMs` (ms) has passed.
 * @throws {TierUnreachableError} naming the first tier still unreachable at the deadline.
 */
export async function connectTiers(
  runtime: GatewayRuntime,
  config: GatewayConfig,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const coord = runtime.coordRedis;
  if (coord && coord !== runtime.redis) {
    let last: unknown;
    for (;;) {
      try {
        await coord.ping();
        break;
      } catch (error) {
        last = error;
        if (Date.now() >= deadline)
          throw new TierUnreachableError(
            'coordination',
            `Redis (${redactUrl(config.coordRedisAddr)})`,
            timeoutMs,
            last,
          );
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(1, deadline - Date.now()))));
      }
    }
  }
  for (const tier of runtime.cache.tiers) {
    if (tier.level === 'l1') continue;
    const connect = connectVerb(tier);
    if (!connect) continue;
    let last: unknown;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new TierUnreachableError(tier.level, describeTier(config, tier.level), timeoutMs, last);
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          connect(),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('connect timed out')), left);
          }),
        ]);
        break;
      } catch (error) {
        last = error;
        await new Promise((r) => setTimeout(r, Math.min(250, Math.max(0, deadline - Date.now()))));
      } finally {
        clearTimeout(timer);
      }
    }
  }
}
