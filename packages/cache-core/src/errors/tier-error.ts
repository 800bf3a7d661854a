import type { CacheOperation } from '../metrics.js';
import { BgcCacheError, type BgcCacheErrorOptions } from './bgc-cache-error.js';

/** A tier's backend failed an operation. Code `E_TIER` (or a more specific one). */
export class TierError extends BgcCacheError {
  /** The tier's name, e.g. `"redis"`. */
  readonly tier: string;
  /** The failed operation. */
  readonly operation: CacheOperation;
  constructor(
    tier: string,
    operation: CacheOperation,
    message: string,
    options?: BgcCacheErrorOptions & { code?: string },
  ) {
    super(options?.code ?? 'E_TIER', `${tier} tier failed on ${operation}: ${message}`, options);
    this.name = 'TierError';
    this.tier = tier;
    this.operation = operation;
  }
}
