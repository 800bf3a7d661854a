import { BgcCacheError } from './errors/bgc-cache-error.js';
import { TimeoutError } from './errors/timeout-error.js';
import { type CacheErrorType, ERROR_TYPES } from './metrics.js';

/** Whether a tier refused a value as invalid (the caller's error, not the tier's). */
export function isInvalidValue(error: unknown): boolean {
  return (
    BgcCacheError.isInstance(error) &&
    (error.code === 'E_INVALID_VALUE' ||
      error.code === 'E_VALUE_TOO_LARGE' ||
      error.code === 'E_SERIALIZATION')
  );
}

/**
 * Maps an error to a bounded `error_type` label value. An error that carries its own `errorType`
 * (a {@link TierError} built by a tier that knows its backend) is taken at its word; the code and
 * message heuristics below are kept for one release for tiers that do not set it yet.
 */
export function classifyError(error: unknown, tier?: string): CacheErrorType {
  const own = (error as { errorType?: unknown } | null)?.errorType;
  if (typeof own === 'string' && (ERROR_TYPES as readonly string[]).includes(own))
    return own as CacheErrorType;
  if (error instanceof TimeoutError || (BgcCacheError.isInstance(error) && error.code === 'E_TIMEOUT'))
    return 'timeout';
  if (BgcCacheError.isInstance(error)) {
    if (error.code.endsWith('_TIMEOUT')) return 'timeout';
    if (error.code.endsWith('_CONNECTION') || error.code.endsWith('_CLOSED')) return 'connection_error';
    if (error.code === 'E_CIRCUIT_OPEN') return 'circuit_open';
    if (error.code === 'E_SERIALIZATION') return 'serialization_error';
    if (error.code === 'E_INVALID_VALUE') return 'invalid_value';
    if (error.code === 'E_VALUE_TOO_LARGE') return 'too_large';
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (
    typeof code === 'string' &&
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH)$/.test(code)
  )
    return 'connection_error';
  const msg = error instanceof Error ? error.message : '';
  if (/Connection is closed|connect ECONNREFUSED|Stream isn't writeable|enableOfflineQueue/i.test(msg))
    return 'connection_error';
  if (tier === 'redis') return 'redis_error';
  if (tier === 'postgres' || tier === 'pglite') return 'postgres_error';
  return 'unknown';
}
