export { RedisTier, type RedisTierOptions, DEFAULT_PREFIX, escapeGlob } from './redis-tier.js';
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
} from './envelope-codec.js';
export { type Serializer, type SerializerOption, MSGPACK_SERIALIZER } from './serializer.js';
export { encodeJson, decodeJson, reviveTags, type EncodedJson, TAG_KEY } from './json-serializer.js';
export { keySlot } from './key-slot.js';
export { RedisInvalidationBus, type RedisInvalidationBusOptions } from './redis-invalidation-bus.js';
export { RedisLock, type RedisLockOptions, DEFAULT_LOCK_PREFIX } from './redis-lock.js';
