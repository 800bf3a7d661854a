import { parseDuration } from './duration.js';
import { ConfigError } from './errors/config-error.js';

/** The seed's cache configuration, parsed from environment variables. */
export interface CacheEnvConfig {
  l1: {
    /** CACHE_L1_ENABLED. @default true */
    enabled: boolean;
    /** CACHE_L1_MAX_SIZE_MB in bytes. @default 100 MB */
    maxSizeBytes: number;
    /** CACHE_L1_DEFAULT_TTL in ms. @default 5 min */
    defaultTtlMs: number;
  };
  l2: {
    /** CACHE_L2_ENABLED. @default false */
    enabled: boolean;
    /** REDIS_ADDR, `host:port` or a `redis://`/`rediss://` URL. @default "localhost:6379" */
    addr: string;
    /** REDIS_PASSWORD. @default undefined */
    password: string | undefined;
    /** REDIS_DB. @default 0 */
    db: number;
    /** REDIS_MAX_RETRIES. @default 3 */
    maxRetries: number;
    /** REDIS_POOL_SIZE. @default 10 */
    poolSize: number;
  };
  l3: {
    /** CACHE_L3_ENABLED. @default false */
    enabled: boolean;
  };
}

type Env = Readonly<Record<string, string | undefined>>;

function present(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/**
 * Reads a boolean variable: true/false, 1/0, yes/no, on/off (any case).
 * @throws {ConfigError} naming the variable and the bad value.
 */
export function envBool(env: Env, name: string, fallback: boolean): boolean {
  const v = present(env, name);
  if (v === undefined) return fallback;
  const l = v.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(l)) return true;
  if (['false', '0', 'no', 'off'].includes(l)) return false;
  throw new ConfigError(name, `${JSON.stringify(v)} is not a boolean; use true or false`);
}

/**
 * Reads an integer variable within `[min, max]`.
 * @throws {ConfigError} naming the variable and the bad value.
 */
export function envInt(
  env: Env,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const v = present(env, name);
  if (v === undefined) return fallback;
  if (!/^-?\d+$/.test(v)) throw new ConfigError(name, `${JSON.stringify(v)} is not an integer`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(name, `${n} is out of range [${min}, ${max}]`);
  return n;
}

/**
 * Reads a Go-syntax duration variable (`5m`, `168h`) in ms.
 * @throws {ConfigError} naming the variable and the bad value.
 */
export function envDuration(env: Env, name: string, fallbackMs: number): number {
  const v = present(env, name);
  return v === undefined ? fallbackMs : parseDuration(v, name);
}

/**
 * Parses and validates the seed's environment variables in one place.
 * @throws {ConfigError} for the first invalid variable, naming it and its value.
 */
export function loadCacheConfigFromEnv(env: Env = process.env): CacheEnvConfig {
  const maxSizeMb = envInt(env, 'CACHE_L1_MAX_SIZE_MB', 100, 1, 1_048_576);
  const defaultTtlMs = envDuration(env, 'CACHE_L1_DEFAULT_TTL', 5 * 60_000);
  if (defaultTtlMs <= 0) throw new ConfigError('CACHE_L1_DEFAULT_TTL', 'must be greater than 0');
  return {
    l1: {
      enabled: envBool(env, 'CACHE_L1_ENABLED', true),
      maxSizeBytes: maxSizeMb * 1024 * 1024,
      defaultTtlMs,
    },
    l2: {
      enabled: envBool(env, 'CACHE_L2_ENABLED', false),
      addr: present(env, 'REDIS_ADDR') ?? 'localhost:6379',
      password:
        env.REDIS_PASSWORD === undefined || env.REDIS_PASSWORD === '' ? undefined : env.REDIS_PASSWORD,
      db: envInt(env, 'REDIS_DB', 0, 0, 15),
      maxRetries: envInt(env, 'REDIS_MAX_RETRIES', 3, 0, 100),
      poolSize: envInt(env, 'REDIS_POOL_SIZE', 10, 1, 1000),
    },
    l3: { enabled: envBool(env, 'CACHE_L3_ENABLED', false) },
  };
}
