import { BgcCacheError, type BgcCacheErrorOptions } from './bgc-cache-error.js';

/** A stored value could not be encoded or decoded. Code `E_SERIALIZATION`. */
export class SerializationError extends BgcCacheError {
  constructor(message: string, options?: BgcCacheErrorOptions) {
    super('E_SERIALIZATION', message, options);
    this.name = 'SerializationError';
  }
}
