import type { CacheErrorType, CacheOperation } from '../metrics.js';
import { BgcCacheError, type BgcCacheErrorOptions } from './bgc-cache-error.js';

/** Options of {@link TierError}. */
export interface TierErrorOptions extends BgcCacheErrorOptions {
  /** A more specific code than `E_TIER` (e.g. `E_REDIS_CONNECTION`). */
  code?: string;
  /**
   * The metrics `error_type` of this failure, decided by the tier that knows its backend (e.g.
   * `'connection_error'`, `'timeout'`, `'redis_error'`). The core reports it as is.
   * @default undefined (the core falls back to classifying the code, for one release)
   */
  errorType?: CacheErrorType;
}

/** A tier's backend failed an operation. Code `E_TIER` (or a more specific one). */
export class TierError extends BgcCacheError {
  /** The tier's name, e.g. `"redis"`. */
  readonly tier: string;
  /** The failed operation. */
  readonly operation: CacheOperation;
  /** The metrics `error_type` the tier assigned, if it did ({@link TierErrorOptions.errorType}). */
  readonly errorType: CacheErrorType | undefined;
  constructor(tier: string, operation: CacheOperation, message: string, options?: TierErrorOptions) {
    super(options?.code ?? 'E_TIER', `${tier} tier failed on ${operation}: ${message}`, options);
    this.name = 'TierError';
    this.tier = tier;
    this.operation = operation;
    this.errorType = options?.errorType;
  }
}
