import { BgcCacheError, type BgcCacheErrorOptions } from './bgc-cache-error.js';

/** Options of {@link UpstreamError}. */
export interface UpstreamErrorOptions extends BgcCacheErrorOptions {
  /** The URL called. */
  url?: string;
  /** HTTP status, when a response arrived. */
  statusCode?: number;
  /** The first characters of the response body. */
  responseBody?: string;
  /** Whether retrying may succeed (408, 409, 429, >= 500, network errors). */
  isRetryable?: boolean;
  /** A specific code; default `E_UPSTREAM`. */
  code?: string;
}

/** The upstream API (the loader's source) failed. Code `E_UPSTREAM`. */
export class UpstreamError extends BgcCacheError {
  readonly url: string | undefined;
  readonly statusCode: number | undefined;
  readonly responseBody: string | undefined;
  readonly isRetryable: boolean;
  constructor(message: string, options: UpstreamErrorOptions = {}) {
    super(options.code ?? 'E_UPSTREAM', message, options);
    this.name = 'UpstreamError';
    this.url = options.url;
    this.statusCode = options.statusCode;
    this.responseBody = options.responseBody;
    this.isRetryable =
      options.isRetryable ?? (options.statusCode === undefined || isRetryableStatus(options.statusCode));
  }
}

/** 408, 409, 429 and 5xx are worth retrying; other statuses are not. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}
