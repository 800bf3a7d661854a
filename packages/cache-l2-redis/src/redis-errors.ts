import {
  BgcCacheError,
  type CacheErrorType,
  type CacheOperation,
  TierError,
  TimeoutError,
} from '@bgc/cache-core';

/** Longest key shown in error messages (characters). */
const SHOWN_KEY = 100;

/** A key quoted for an error message, truncated. */
export function showKey(key: string): string {
  return JSON.stringify(key.length > SHOWN_KEY ? `${key.slice(0, SHOWN_KEY)}…` : key);
}

/**
 * Turns an ioredis failure into a typed error: `TimeoutError` for a command timeout, `TierError`
 * with code `E_L2_CONNECTION` (`errorType` `'connection_error'`) when Redis is unreachable,
 * `E_L2_REDIS` (`'redis_error'`) for an error reply: the metrics label is the tier's decision. The
 * cause keeps only the name and message of the original error: ioredis errors can carry the
 * command's arguments (an `AUTH` password among them).
 */
export function toTierError(
  operation: CacheOperation,
  what: string,
  error: unknown,
  timeoutMs: number | undefined,
): BgcCacheError {
  if (BgcCacheError.isInstance(error)) return error;
  const original = error instanceof Error ? error : new Error(String(error));
  const message = original.message;
  if (/Command timed out/i.test(message)) {
    return new TimeoutError(`Redis ${operation} of ${what}`, timeoutMs ?? 0);
  }
  const cause = new Error(message);
  cause.name = original.name;
  if (isConnectionError(original)) {
    return new TierError(
      'redis',
      operation,
      `Redis is unreachable (${message}) during ${what}; L2 is skipped until it answers again`,
      {
        code: 'E_L2_CONNECTION',
        errorType: 'connection_error',
        cause,
      },
    );
  }
  return new TierError('redis', operation, `Redis replied with an error to ${what}: ${message}`, {
    code: 'E_L2_REDIS',
    errorType: 'redis_error',
    cause,
  });
}

function isConnectionError(error: Error): boolean {
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Cluster isn't ready|None of startup nodes|Failed to refresh slots/i.test(
      error.message,
    )
  );
}

/** The metrics error type of an error thrown by {@link toTierError}. */
export function errorTypeOf(error: unknown): CacheErrorType {
  if (!BgcCacheError.isInstance(error)) return 'unknown';
  switch (error.code) {
    case 'E_TIMEOUT':
      return 'timeout';
    case 'E_L2_CONNECTION':
      return 'connection_error';
    case 'E_L2_REDIS':
      return 'redis_error';
    case 'E_INVALID_VALUE':
      return 'invalid_value';
    case 'E_SERIALIZATION':
      return 'serialization_error';
    default:
      return 'unknown';
  }
}
