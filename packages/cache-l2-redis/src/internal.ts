/**
 * `@bgc/cache-l2-redis/internal`: the tier's building blocks, shared with its tests and the
 * benchmarks: the value envelope and its codec, the JSON and msgpack serializers' pieces, the
 * cluster key slot, the glob escape of clear patterns and the client helpers behind
 * `createRedisClient`. They follow the tier's needs, not semver: an application imports
 * `RedisTier`, `RedisInvalidationBus`, `RedisLock` and `createRedisClient` from `@bgc/cache-l2-redis`.
 */
export { escapeGlob } from './redis-tier.js';
export { toIoredisOptions, reconnectDelay, isCluster, waitForReady } from './redis-client.js';
export {
  EnvelopeCodec,
  type EnvelopeCodecOptions,
  ENVELOPE_VERSION,
} from './envelope-codec.js';
export { MSGPACK_SERIALIZER } from './serializer.js';
export { encodeJson, decodeJson, reviveTags, type EncodedJson, TAG_KEY } from './json-serializer.js';
export { keySlot } from './key-slot.js';
