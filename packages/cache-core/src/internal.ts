/**
 * `@bgc/cache-core/internal`: the helpers the `@bgc` tiers share with the orchestrator (entry
 * versions, meta and stored-tag validation, the JSON value codec, timeouts, the circuit breaker,
 * error classification). They follow the tiers' needs, not semver: an application imports from
 * `@bgc/cache-core`, a tier's tests from `@bgc/cache-core/testing`.
 */
export { capEntry } from './entry.js';
export {
  validateMeta,
  readMeta,
  MAX_META_KEYS,
  MAX_META_KEY_LENGTH,
  MAX_META_STRING_LENGTH,
} from './entry-meta.js';
export { validateTags, readTags, INTERNAL_TAG_MARK } from './entry-tags.js';
export { nextVersion, observeVersion, versionTime, VERSIONS_PER_MS } from './version.js';
export { classifyError, isInvalidValue } from './classify-error.js';
export { CircuitBreaker, type CircuitBreakerOptions } from './circuit-breaker.js';
export { withTimeout, delay } from './timeout.js';
export { coarseNow } from './clock.js';
export {
  encodeValue,
  encodePlainValue,
  decodeValue,
  type DecodeValueOptions,
  hasValueTags,
  parseJsonSafely,
  reviveValue,
  VALUE_TAG_KEY,
} from './value-codec.js';
