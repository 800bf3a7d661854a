import { BgcCacheError } from './bgc-cache-error.js';

/** A key is empty, too long, holds control characters, or a pattern placeholder is missing. Code `E_INVALID_KEY`. */
export class InvalidKeyError extends BgcCacheError {
  /** The offending key (truncated to 200 characters). */
  readonly key: string;
  constructor(key: string, reason: string) {
    const shown = key.length > 200 ? `${key.slice(0, 200)}…` : key;
    super('E_INVALID_KEY', `Invalid cache key ${JSON.stringify(shown)}: ${reason}`);
    this.name = 'InvalidKeyError';
    this.key = shown;
  }
}
