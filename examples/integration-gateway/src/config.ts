import { type CacheEnvConfig, ConfigError, envBool, envInt, loadCacheConfigFromEnv } from '@bgc/cache-core';

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
  /** L3_SCHEMA: PostgreSQL schema of the L3 tables. @default 'public' */
  l3Schema: string | undefined;
  /** COMEXSTAT_BASE_URL: the upstream (default: the real API, or the YAML's `api.base_url`). */
  comexstatBaseUrl: string | undefined;
  /** COMEXSTAT_CONFIG: path of the connector YAML. */
  comexstatConfigPath: string | undefined;
  /** ADMIN_TOKEN: enables `POST /admin/cache/invalidate`. */
  adminToken: string | undefined;
  /** LOG_LEVEL. @default 'info' */
  logLevel: string;
  /** SHUTDOWN_TIMEOUT_MS: longest drain on SIGTERM. @default 10000 */
  shutdownTimeoutMs: number;
  /** WARM_ON_START: run the warming job in the background after start. @default false */
  warmOnStart: boolean;
  /** INSTANCE_ID: names this instance in logs and the invalidation bus. @default hostname-pid */
  instanceId: string | undefined;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Reads and validates the configuration.
 * @throws {ConfigError} naming the first invalid variable and its value.
 */
export function loadGatewayConfig(env: Env = process.env): GatewayConfig {
  const cache = loadCacheConfigFromEnv(env);
  const logLevel = (env.LOG_LEVEL ?? 'info').trim() || 'info';
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError('LOG_LEVEL', `${JSON.stringify(logLevel)} is not one of ${LOG_LEVELS.join(', ')}`);
  const databaseUrl = env.DATABASE_URL?.trim() || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'expected a postgres:// or postgresql:// URL');
  }
  const base = env.COMEXSTAT_BASE_URL?.trim() || undefined;
  if (base) {
    try {
      new URL(base);
    } catch (cause) {
      throw new ConfigError('COMEXSTAT_BASE_URL', `${JSON.stringify(base)} is not a URL`, { cause });
    }
  }
  return {
    port: envInt(env, 'PORT', 8080, 0, 65535),
    metricsPort: envInt(env, 'METRICS_PORT', 8081, 0, 65535),
    host: env.HOST?.trim() || '0.0.0.0',
    cache,
    databaseUrl,
    l3DataDir: env.L3_DATA_DIR?.trim() || '.data/pglite',
    l3Schema: env.L3_SCHEMA?.trim() || undefined,
    comexstatBaseUrl: base,
    comexstatConfigPath: env.COMEXSTAT_CONFIG?.trim() || undefined,
    adminToken: env.ADMIN_TOKEN ? env.ADMIN_TOKEN : undefined,
    logLevel,
    shutdownTimeoutMs: envInt(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    warmOnStart: envBool(env, 'WARM_ON_START', false),
    instanceId: env.INSTANCE_ID?.trim() || undefined,
  };
}

/** Replaces the password of a URL (`redis://user:pw@host`) with `***`, for logs. */
export function redactUrl(url: string | undefined): string | undefined {
  if (!url) return url;
  return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
}
