import { BgcCacheError, type BgcCacheErrorOptions } from './bgc-cache-error.js';

/** A value cannot be cached as given: undefined, cyclic, a function, too large... Code `E_INVALID_VALUE`. */
export class InvalidValueError extends BgcCacheError {
  constructor(message: string, options?: BgcCacheErrorOptions) {
    super('E_INVALID_VALUE', message, options);
    this.name = 'InvalidValueError';
  }
}
