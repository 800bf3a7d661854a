export { Level, LEVELS, type TierLevel } from './level.js';
export { type CacheEntry, isServable, isFresh, createEntry } from './entry.js';
export type {
  ReadCallbacks,
  Tier,
  TierWrite,
  TierDeleteOptions,
  TierAttachment,
  TierClearOptions,
} from './tier.js';
export {
  checkTags,
  MAX_TAGS,
  MAX_TAG_LENGTH,
} from './entry-tags.js';
export {
  type MetricsAdapter,
  type CacheOperation,
  type CacheErrorType,
  type CircuitState,
  ERROR_TYPES,
  NOOP_METRICS,
} from './metrics.js';
export type { InvalidationBus, InvalidationMessage, DistributedLock, Lease, LeaseAndEntry } from './bus.js';
export { BgcCacheError, type BgcCacheErrorOptions } from './errors/bgc-cache-error.js';
export { InvalidKeyError } from './errors/invalid-key-error.js';
export { InvalidTagError } from './errors/invalid-tag-error.js';
export { InvalidValueError } from './errors/invalid-value-error.js';
export { SerializationError } from './errors/serialization-error.js';
export { TierError, type TierErrorOptions } from './errors/tier-error.js';
export { TimeoutError } from './errors/timeout-error.js';
export { CircuitOpenError } from './errors/circuit-open-error.js';
export { ConfigError } from './errors/config-error.js';
export { UpstreamError, type UpstreamErrorOptions, isRetryableStatus } from './errors/upstream-error.js';
export { KeyPattern, type KeyPart, validateKey, MAX_KEY_LENGTH } from './key-pattern.js';
export { parseDuration } from './duration.js';
export { type CacheEnvConfig, loadCacheConfigFromEnv, envBool, envInt, envDuration } from './config.js';
export { MultiLevelCache } from './multi-level-cache.js';
export type {
  MultiLevelCacheOptions,
  CacheResult,
  LoadResult,
  SetOptions,
  SetManyItem,
  Loader,
  LoaderContext,
  GetOrLoadOptions,
  GetOptions,
  CacheErrorEvent,
  CacheEvents,
  TierHealth,
} from './cache-options.js';
export type {
  CacheEventName,
  CacheHitEvent,
  CacheMissEvent,
  CacheSetEvent,
  CacheInvalidationEvent,
  CacheClearEvent,
  CacheFailSafeEvent,
  CacheTimeoutEvent,
  CacheBusEvent,
  CacheCircuitEvent,
  CacheRecoveredEvent,
} from './events.js';
export type { CacheLogger } from './logger.js';
export { CHANNEL_NAMES, type CacheTraceContext, type TracedOperation } from './instrumentation.js';
