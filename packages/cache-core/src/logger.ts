/**
 * The `logger` option of {@link MultiLevelCache}: any pino-compatible logger (pino itself, or an
 * object with `child`, `debug`, `info`, `warn` and `error` taking `(object, message)`). The cache
 * logs through `logger.child({ pkg: '@bgc/cache-core' })`; without the option it logs nothing and
 * builds no log object.
 */
export interface CacheLogger {
  child(bindings: Record<string, unknown>): CacheLogger;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** The bindings of the cache's child logger. */
export const LOGGER_BINDINGS = Object.freeze({ pkg: '@bgc/cache-core' });

/**
 * The cache's child of `logger`, or `undefined` (silent) without one. A logger that is not
 * pino-compatible is refused by the caller's {@link ConfigError}.
 */
export function cacheLogger(logger: CacheLogger | undefined): CacheLogger | undefined {
  if (logger === undefined) return undefined;
  return logger.child({ ...LOGGER_BINDINGS });
}

/** Whether `logger` has the methods of a {@link CacheLogger}. */
export function isCacheLogger(logger: unknown): logger is CacheLogger {
  if (logger === null || typeof logger !== 'object') return false;
  const l = logger as Record<string, unknown>;
  return ['child', 'debug', 'info', 'warn', 'error'].every((m) => typeof l[m] === 'function');
}

/** An error as a log field: its name, message, code and stack (pino's `err` shape). */
export function errField(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      type: error.name,
      message: error.message,
      ...(code === undefined ? {} : { code }),
      stack: error.stack,
    };
  }
  return { message: String(error) };
}
