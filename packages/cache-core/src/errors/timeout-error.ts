import { BgcCacheError } from './bgc-cache-error.js';

/** An operation took longer than its configured timeout. Code `E_TIMEOUT`. */
export class TimeoutError extends BgcCacheError {
  /** The timeout that elapsed, in ms. */
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super('E_TIMEOUT', `${what} timed out after ${timeoutMs} ms`);
    this.name = 'TimeoutError';
    this.timeoutMs = timeoutMs;
  }
}
