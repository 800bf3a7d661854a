import {
  type CacheEnvConfig,
  ConfigError,
  envBool,
  envDuration,
  envInt,
  loadCacheConfigFromEnv,
} from '@bgc/cache-core';

type Env = Readonly<Record<string, string | undefined>>;

/** The gateway's whole configuration, from environment variables only. */
export interface GatewayConfig {
  /** PORT: the API. @default 8080 */
  port: number;
  /** METRICS_PORT: `/metrics`. @default 8081 */
  metricsPort: number;
  /** HOST to bind. @default '0.0.0.0' */
  host: string;
  /** The seed's cache variables (CACHE_L1_*, CACHE_L2_ENABLED, REDIS_*, CACHE_L3_ENABLED). */
  cache: CacheEnvConfig;
  /** DATABASE_URL: L3 on PostgreSQL. Without it and with CACHE_L3_ENABLED, PGlite in `l3DataDir`. */
  databaseUrl: string | undefined;
  /** L3_DATA_DIR: PGlite's data directory. @default '.data/pglite' */
  l3DataDir: string;
  /**
   * CACHE_L2_PREFIX: prefix of the Redis cache entries (and the invalidation bus channel); what
   * `clear()` removes. Must not start with, or be the start of, `coordPrefix`. @default 'bgc:c:'
   */
  l2Prefix: string;
  /**
   * CACHE_COORD_PREFIX: prefix of the Redis coordination keys (load locks, the request spacer,
   * pending cells), out of `clear()`'s reach. @default 'bgc:x:'
   */
  coordPrefix: string;
  /** L3_SCHEMA: PostgreSQL schema of the L3 tables. @default 'public' */
  l3Schema: string | undefined;
  /** COMEXSTAT_BASE_URL: the upstream (default: the real API, or the YAML's `api.base_url`). */
  comexstatBaseUrl: string | undefined;
  /** COMEXSTAT_CONFIG: path of the connector YAML. */
  comexstatConfigPath: string | undefined;
  /**
   * ADMIN_TOKEN: enables `POST /admin/cache/invalidate`. Trimmed (a secret file's trailing newline
   * is not part of it); at least {@link MIN_ADMIN_TOKEN_LENGTH} characters.
   */
  adminToken: string | undefined;
  /** ADMIN_ON_METRICS_PORT: serve the admin route on METRICS_PORT only (not on the public PORT). @default false */
  adminOnMetricsPort: boolean;
  /** ADMIN_MAX_FAILURES: failed admin authentications per client and minute before 429s. @default 5 */
  adminMaxFailures: number;
  /**
   * CACHE_TOMBSTONE_TTL: how long a deleted key refuses writes of older versions (a load that
   * started before the delete). Must outlive the longest load. Unset: the core's default,
   * max(60 s, 2 × (hard timeout + lock lease)).
   */
  tombstoneMs: number | undefined;
  /**
   * CACHE_CONNECT_TIMEOUT: longest wait for the shared tiers at start-up, ms; the gateway then
   * serves degraded (jobs fail instead, see WARM_CONNECT_TIMEOUT). @default 3s
   */
  connectTimeoutMs: number;
  /**
   * COORD_REDIS_ADDR: a separate Redis for the coordination keys (locks, spacer, pending cells),
   * e.g. a small instance with `maxmemory-policy noeviction` so that no lease is ever evicted;
   * `host:port` or a redis:// URL, with COORD_REDIS_PASSWORD (default REDIS_PASSWORD). Default:
   * the cache's Redis (REDIS_ADDR).
   */
  coordRedisAddr: string | undefined;
  /**
   * REDIS_COMMAND_TIMEOUT: longest wait for one Redis command, ms (ioredis `commandTimeout`);
   * requests then go on without L2. Jobs use 10 s unless it is set. @default 100ms
   */
  redisCommandTimeoutMs: number;
  /** LOG_LEVEL. @default 'info' */
  logLevel: string;
  /** SHUTDOWN_TIMEOUT_MS: longest drain on SIGTERM. @default 10000 */
  shutdownTimeoutMs: number;
  /** WARM_ON_START: run the warming job in the background after start. @default false */
  warmOnStart: boolean;
  /** INSTANCE_ID: names this instance in logs and the invalidation bus. @default hostname-pid */
  instanceId: string | undefined;
  /** Admission control of cold misses and the request spacer (see the connector's README). */
  comexstat: {
    /**
     * COMEXSTAT_MAX_WAIT: longest a cold miss waits for its upstream call, ms; past it 503
     * E_UPSTREAM_BACKLOG with Retry-After. Unset: the connector's 2 × min interval + 10 s.
     */
    maxWaitMs: number | undefined;
    /** COMEXSTAT_MAX_PENDING_CALLS: most upstream calls queued per instance. @default 8 */
    maxPendingCalls: number | undefined;
    /** COMEXSTAT_MAX_PENDING_CELLS: most cells waited for per instance. @default 20000 */
    maxPendingCells: number | undefined;
    /** COMEXSTAT_CLIENT_BUDGET: most cells one client IP waits for at once (0 disables; past it 429). @default 200 */
    clientBudget: number | undefined;
    /**
     * COMEXSTAT_EXPECTED_REPLICAS: replicas sharing the upstream budget; with the spacer's Redis
     * unreachable, an instance spaces its calls min interval × this apart (fail closed). @default 3
     */
    expectedReplicas: number | undefined;
    /**
     * COMEXSTAT_SPACER_COMMAND_TIMEOUT: command timeout of the spacer's own Redis client, ms
     * (longer than REDIS_COMMAND_TIMEOUT: a slow reply must not trip the fail-closed spacing). @default 1s
     */
    spacerCommandTimeoutMs: number;
  };
  /** Load timeouts and the fail-safe window, ms. */
  resilience: {
    /** CACHE_LOAD_SOFT_TIMEOUT: with a stale value at hand, answer it after this. @default 1s */
    softTimeoutMs: number;
    /**
     * CACHE_LOAD_HARD_TIMEOUT: longest wait for the upstream (and, as lockWaitMs, for another
     * instance's load). Unset: derived from the connector's wait bound (see {@link loadBoundsMs}),
     * so that a lone cold miss waits for its call instead of timing out.
     */
    hardTimeoutMs: number | undefined;
    /** CACHE_STALE_TTL: how long past its TTL an entry may be served when the upstream fails. @default 24h */
    staleTtlMs: number;
    /** CACHE_TIER_TIMEOUT: per-operation timeout of L2/L3. @default 500ms */
    tierTimeoutMs: number;
  };
}

/** Shortest ADMIN_TOKEN accepted. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads and validates the configuration.
 * @throws {ConfigError} naming the first invalid variable (never echoing a URL or a secret).
 */
export function loadGatewayConfig(env: Env = process.env): GatewayConfig {
  const cache = loadCacheConfigFromEnv(env);
  const logLevel = (env.LOG_LEVEL ?? 'info').trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError('LOG_LEVEL', `${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);
  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'expected a postgres:// or postgresql:// URL');
  }
  const base = env.COMEXSTAT_BASE_URL?.trim() || undefined;
  if (base) {
    try {
      new URL(base);
    } catch {
      // Never echo the value (it may carry credentials), nor URL's own error (which quotes it).
      throw new ConfigError(
        'COMEXSTAT_BASE_URL',
        'is not a URL; expected e.g. https://api-comexstat.mdic.gov.br',
      );
    }
  }
  const adminToken = env.ADMIN_TOKEN?.trim() || undefined;
  if (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN !== '' && !adminToken) {
    throw new ConfigError('ADMIN_TOKEN', 'is only whitespace; unset it to disable the admin route');
  }
  if (adminToken && adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new ConfigError(
      'ADMIN_TOKEN',
      `is ${adminToken.length} characters long; use at least ${MIN_ADMIN_TOKEN_LENGTH} random characters (e.g. openssl rand -hex 32), or unset it to disable the admin route`,
    );
  }
  const l2Prefix = env.CACHE_L2_PREFIX?.trim() || 'bgc:c:';
  const coordPrefix = env.CACHE_COORD_PREFIX?.trim() || 'bgc:x:';
  if (l2Prefix.startsWith(coordPrefix) || coordPrefix.startsWith(l2Prefix)) {
    throw new ConfigError(
      'CACHE_COORD_PREFIX',
      `${JSON.stringify(coordPrefix)} and CACHE_L2_PREFIX ${JSON.stringify(l2Prefix)} overlap (one starts with the other); give coordination keys a namespace of their own, e.g. bgc:x: beside bgc:c:`,
    );
  }
  return {
    port: envInt(env, 'PORT', 8080, 0, 65535),
    metricsPort: envInt(env, 'METRICS_PORT', 8081, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    cache,
    databaseUrl,
    l3DataDir: env.L3_DATA_DIR?.trim() || '.data/pglite',
    l3Schema: env.L3_SCHEMA?.trim() || undefined,
    l2Prefix,
    coordPrefix,
    comexstatBaseUrl: base,
    comexstatConfigPath: env.COMEXSTAT_CONFIG?.trim() || undefined,
    adminToken,
    adminOnMetricsPort: envBool(env, 'ADMIN_ON_METRICS_PORT', false),
    adminMaxFailures: envInt(env, 'ADMIN_MAX_FAILURES', 5, 1, 1000),
    connectTimeoutMs: envDuration(env, 'CACHE_CONNECT_TIMEOUT', 3000),
    coordRedisAddr: env.COORD_REDIS_ADDR?.trim() || undefined,
    redisCommandTimeoutMs: envDuration(env, 'REDIS_COMMAND_TIMEOUT', 100),
    tombstoneMs: env.CACHE_TOMBSTONE_TTL?.trim()
      ? envDuration(env, 'CACHE_TOMBSTONE_TTL', 60_000)
      : undefined,
    logLevel,
    shutdownTimeoutMs: envInt(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    warmOnStart: envBool(env, 'WARM_ON_START', false),
    instanceId: env.INSTANCE_ID?.trim() || undefined,
    comexstat: {
      maxWaitMs: optional(env, 'COMEXSTAT_MAX_WAIT', () => {
        const ms = envDuration(env, 'COMEXSTAT_MAX_WAIT', 0);
        if (ms < 1000)
          throw new ConfigError(
            'COMEXSTAT_MAX_WAIT',
            'must be at least 1s; e.g. 50s (2 × the min interval + 10 s)',
          );
        return ms;
      }),
      maxPendingCalls: optional(env, 'COMEXSTAT_MAX_PENDING_CALLS', () =>
        envInt(env, 'COMEXSTAT_MAX_PENDING_CALLS', 8, 1, 10_000),
      ),
      maxPendingCells: optional(env, 'COMEXSTAT_MAX_PENDING_CELLS', () =>
        envInt(env, 'COMEXSTAT_MAX_PENDING_CELLS', 20_000, 1, 10_000_000),
      ),
      clientBudget: optional(env, 'COMEXSTAT_CLIENT_BUDGET', () =>
        envInt(env, 'COMEXSTAT_CLIENT_BUDGET', 200, 0, 10_000_000),
      ),
      expectedReplicas: optional(env, 'COMEXSTAT_EXPECTED_REPLICAS', () =>
        envInt(env, 'COMEXSTAT_EXPECTED_REPLICAS', 3, 1, 1000),
      ),
      spacerCommandTimeoutMs: envDuration(env, 'COMEXSTAT_SPACER_COMMAND_TIMEOUT', 1000),
    },
    resilience: {
      softTimeoutMs: envDuration(env, 'CACHE_LOAD_SOFT_TIMEOUT', 1000),
      hardTimeoutMs: optional(env, 'CACHE_LOAD_HARD_TIMEOUT', () =>
        envDuration(env, 'CACHE_LOAD_HARD_TIMEOUT', 10_000),
      ),
      staleTtlMs: envDuration(env, 'CACHE_STALE_TTL', 24 * 3_600_000),
      tierTimeoutMs: envDuration(env, 'CACHE_TIER_TIMEOUT', 500),
    },
  };
}

/** A variable's parsed value, or `undefined` when it is unset or blank. */
function optional<T>(env: Env, name: string, parse: () => T): T | undefined {
  return env[name]?.trim() ? parse() : undefined;
}

/** Margin of the load's hard timeout above the connector's wait bound, ms: the bound's 503 wins. */
export const LOAD_MARGIN_MS = 10_000;

/**
 * The cache's load bounds from the connector's wait bound (`maxWaitMs`, the connector's
 * `admission.maxWaitMs`): CACHE_LOAD_HARD_TIMEOUT when set, else the bound + {@link LOAD_MARGIN_MS}
 * (60 s at the default 20 s spacing), so that a cold miss waits for its call and, past the bound,
 * gets the connector's typed E_UPSTREAM_BACKLOG (503 + Retry-After) rather than a bare timeout.
 * `lockWaitMs` (waiting for another instance's load) is the same.
 */
export function loadBoundsMs(
  config: GatewayConfig,
  maxWaitMs: number,
): { hardTimeoutMs: number; lockWaitMs: number } {
  const hard = config.resilience.hardTimeoutMs ?? maxWaitMs + LOAD_MARGIN_MS;
  return { hardTimeoutMs: hard, lockWaitMs: hard };
}

export { redactUrl } from './secrets.js';
