import { BgcCacheError, type BgcCacheErrorOptions } from './bgc-cache-error.js';

/** A configuration value (environment variable, option, YAML field) is invalid. Code `E_CONFIG`. */
export class ConfigError extends BgcCacheError {
  /** The variable, option or field name, e.g. `CACHE_L1_MAX_SIZE_MB` or `cache.ttl`. */
  readonly field: string;
  constructor(field: string, message: string, options?: BgcCacheErrorOptions) {
    super('E_CONFIG', `Invalid configuration ${field}: ${message}`, options);
    this.name = 'ConfigError';
    this.field = field;
  }
}
