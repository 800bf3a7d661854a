export {
  RedisTier,
  type RedisTierOptions,
  type RedisClearOptions,
  DEFAULT_PREFIX,
  DEFAULT_COORDINATION_PREFIX,
  DEFAULT_TOMBSTONE_MS,
} from './redis-tier.js';
export {
  createRedisClient,
  redisOptionsFromEnv,
  redactAddress,
  type RedisConnectionOptions,
} from './redis-client.js';
export { type CompressionAlgorithm, DEFAULT_MAX_VALUE_BYTES } from './envelope-codec.js';
export type { Serializer, SerializerOption } from './serializer.js';
export { RedisInvalidationBus, type RedisInvalidationBusOptions } from './redis-invalidation-bus.js';
export { RedisLock, type RedisLockOptions, type LeaseAndEntry, DEFAULT_LOCK_PREFIX } from './redis-lock.js';
