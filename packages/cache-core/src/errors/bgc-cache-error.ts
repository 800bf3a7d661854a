const MARKER = Symbol.for('bgc.cache.error');

/** Options shared by every error of the library. */
export interface BgcCacheErrorOptions {
  /** The underlying error. */
  cause?: unknown;
}

/**
 * Base class of every error thrown by bgc-cache packages. `code` is stable across versions and
 * safe to branch on; `message` says what happened and what to do.
 *
 * Use {@link BgcCacheError.isInstance} rather than `instanceof` when two copies of the package may
 * be installed: it checks a `Symbol.for` marker shared across copies.
 */
export class BgcCacheError extends Error {
  /** Stable machine-readable code, e.g. `E_INVALID_KEY`. */
  readonly code: string;

  constructor(code: string, message: string, options: BgcCacheErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BgcCacheError';
    this.code = code;
    Object.defineProperty(this, MARKER, { value: true });
  }

  /** Whether `error` is a bgc-cache error (from any installed copy of the package). */
  static isInstance(error: unknown): error is BgcCacheError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[MARKER] === true;
  }
}
