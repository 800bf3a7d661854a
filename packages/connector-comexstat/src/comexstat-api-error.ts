import { UpstreamError } from '@bgc/cache-core';

const MARKER = Symbol.for('bgc.comexstat.api-error');

/** Why a ComexStat call failed; the stable `code` of {@link ComexStatApiError}. */
export type ComexStatErrorCode =
  | 'E_COMEXSTAT_RATE_LIMITED'
  | 'E_COMEXSTAT_CHALLENGE'
  | 'E_COMEXSTAT_HTTP'
  | 'E_COMEXSTAT_BAD_REQUEST'
  | 'E_COMEXSTAT_UNSUCCESSFUL'
  | 'E_COMEXSTAT_MALFORMED'
  | 'E_COMEXSTAT_NETWORK'
  | 'E_COMEXSTAT_TIMEOUT'
  /** A row named a country the countries table does not know: its cells were not cached. */
  | 'E_COMEXSTAT_UNMAPPED'
  /** A call's answer did not cover a cell it was made for. */
  | 'E_COMEXSTAT_INCOMPLETE';

/** Options of {@link ComexStatApiError}. */
export interface ComexStatApiErrorOptions {
  code: ComexStatErrorCode;
  url: string;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** Response body (kept to its first 500 characters). */
  body?: string;
  /** Whether a retry may succeed. */
  isRetryable: boolean;
  /** For 429s: the wait the API asked for, ms. */
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * A ComexStat API call failed. Extends the core's `UpstreamError` (so `statusCode`,
 * `responseBody`, `url` and `isRetryable` are there too) with `status`, `body` and the API's
 * requested wait on 429s. Use {@link ComexStatApiError.isComexStatApiError} across package copies.
 */
export class ComexStatApiError extends UpstreamError {
  /** HTTP status, `undefined` for network errors and timeouts. */
  readonly status: number | undefined;
  /** The first 500 characters of the response body. */
  readonly body: string | undefined;
  /** For 429s, the wait announced in the message ("tente novamente em N segundos"), ms. */
  readonly retryAfterMs: number | undefined;
  // biome-ignore lint/correctness/noUnusedPrivateClassMembers: read through the Symbol.for key by isComexStatApiError
  private readonly [MARKER] = true;

  constructor(message: string, options: ComexStatApiErrorOptions) {
    const body = options.body === undefined ? undefined : options.body.slice(0, 500);
    super(message, {
      code: options.code,
      url: options.url,
      statusCode: options.status,
      responseBody: body,
      isRetryable: options.isRetryable,
      cause: options.cause,
    });
    this.name = 'ComexStatApiError';
    this.status = options.status;
    this.body = body;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** Whether `error` is a ComexStatApiError from any installed copy of this package. */
  static isComexStatApiError(error: unknown): error is ComexStatApiError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}
