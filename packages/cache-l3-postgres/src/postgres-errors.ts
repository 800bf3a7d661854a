import { type CacheOperation, TierError, TimeoutError } from '@bgc/cache-core';

/** Codes of the {@link TierError}s the L3 tier rejects with. */
export const L3_ERROR_CODES = {
  /** The operation did not finish within `operationTimeoutMs`, or the server cancelled it (`statement_timeout`). */
  timeout: 'E_L3_TIMEOUT',
  /** No connection could be made or kept (refused, reset, terminated by the server, pool wait timed out). */
  connection: 'E_L3_CONNECTION',
  /** PostgreSQL answered with an error (missing table, permission, constraint...). */
  postgres: 'E_L3_POSTGRES',
  /** The tier was closed. */
  closed: 'E_L3_CLOSED',
} as const;

const CONNECTION_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EAI_AGAIN',
]);

/** The innermost error carrying a PostgreSQL SQLSTATE or a Node.js network code (drizzle wraps them). */
function rootCause(error: unknown): Error & { code?: string } {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (typeof (current as { code?: unknown }).code === 'string') return current as Error & { code?: string };
    if (current.cause === undefined) break;
    current = current.cause;
  }
  return current instanceof Error ? current : new Error(String(current));
}

/** Whether a failure is about the connection rather than the statement. */
function isConnectionFailure(root: Error & { code?: string }): boolean {
  const code = root.code ?? '';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300')
    return true;
  if (CONNECTION_NODE_CODES.has(code)) return true;
  return /connection terminated|connection ended|timeout exceeded when trying to connect|client has encountered a connection error|cannot use a pool after calling end/i.test(
    root.message,
  );
}

/**
 * Wraps a driver failure into a {@link TierError} with one of {@link L3_ERROR_CODES}. The message
 * names the operation and carries the driver's own message, never the statement's parameters
 * (they hold cached values).
 */
export function toTierError(tier: string, operation: CacheOperation, error: unknown): TierError {
  if (error instanceof TierError) return error;
  if (error instanceof TimeoutError) {
    return new TierError(
      tier,
      operation,
      `no answer within ${error.timeoutMs} ms; the server is slow or unreachable (raise operationTimeoutMs if this is expected)`,
      {
        code: L3_ERROR_CODES.timeout,
        cause: error,
      },
    );
  }
  const root = rootCause(error);
  if (root.code === '57014') {
    return new TierError(
      tier,
      operation,
      `the server cancelled the statement (statement_timeout): ${root.message}`,
      {
        code: L3_ERROR_CODES.timeout,
        cause: error,
      },
    );
  }
  if (isConnectionFailure(root)) {
    return new TierError(
      tier,
      operation,
      `connection problem: ${root.message}; the pool reconnects on the next call, check that PostgreSQL is up`,
      {
        code: L3_ERROR_CODES.connection,
        cause: error,
      },
    );
  }
  const hint =
    root.code === '42P01' || root.code === '3F000' ? '; run `bgc-l3 migrate` or pass migrate: true' : '';
  return new TierError(tier, operation, `${root.code ? `[${root.code}] ` : ''}${root.message}${hint}`, {
    code: L3_ERROR_CODES.postgres,
    cause: error,
  });
}
