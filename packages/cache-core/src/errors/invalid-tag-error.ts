import { BgcCacheError } from './bgc-cache-error.js';

/** A tag (or a list of tags) cannot be used: not a string, empty, too long, control characters, too many. Code `E_INVALID_TAG`. */
export class InvalidTagError extends BgcCacheError {
  /** The offending tag (truncated to 200 characters), or `undefined` when the list itself is wrong. */
  readonly tag: string | undefined;
  constructor(tag: string | undefined, reason: string) {
    const shown = tag !== undefined && tag.length > 200 ? `${tag.slice(0, 200)}…` : tag;
    super(
      'E_INVALID_TAG',
      shown === undefined
        ? `Invalid tags: ${reason}`
        : `Invalid cache tag ${JSON.stringify(shown)}: ${reason}`,
    );
    this.name = 'InvalidTagError';
    this.tag = shown;
  }
}
