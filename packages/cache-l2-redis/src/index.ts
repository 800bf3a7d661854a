export {
  RedisTier,
  type RedisTierOptions,
  type RedisClearOptions,
  DEFAULT_PREFIX,
  DEFAULT_COORDINATION_PREFIX,
  DEFAULT_TOMBSTONE_MS,
  escapeGlob,
} from './redis-tier.js';
export {
  createRedisClient,
  redisOptionsFromEnv,
  toIoredisOptions,
  reconnectDelay,
  redactAddress,
  isCluster,
  waitForReady,
  type RedisConnectionOptions,
} from './redis-client.js';
export {
  EnvelopeCodec,
  type EnvelopeCodecOptions,
  type CompressionAlgorithm,
  ENVELOPE_VERSION,
  DEFAULT_MAX_VALUE_BYTES,
} from './envelope-codec.js';
export {
  validateMeta,
  MAX_META_KEYS,
  MAX_META_KEY_LENGTH,
  MAX_META_STRING_LENGTH,
} from '@bgc/cache-core/internal';
export { type Serializer, type SerializerOption, MSGPACK_SERIALIZER } from './serializer.js';
export { encodeJson, decodeJson, reviveTags, type EncodedJson, TAG_KEY } from './json-serializer.js';
export { keySlot } from './key-slot.js';
export { RedisInvalidationBus, type RedisInvalidationBusOptions } from './redis-invalidation-bus.js';
export { RedisLock, type RedisLockOptions, type LeaseAndEntry, DEFAULT_LOCK_PREFIX } from './redis-lock.js';
