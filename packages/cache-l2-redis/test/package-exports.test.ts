import { describe, expect, it } from 'vitest';
import * as root from '../src/index.js';
import * as internal from '../src/internal.js';

describe('package entries', () => {
  it('exports the public API only from the root', () => {
    expect(Object.keys(root).sort()).toEqual([
      'DEFAULT_COORDINATION_PREFIX',
      'DEFAULT_LOCK_PREFIX',
      'DEFAULT_MAX_VALUE_BYTES',
      'DEFAULT_PREFIX',
      'DEFAULT_TOMBSTONE_MS',
      'RedisInvalidationBus',
      'RedisLock',
      'RedisTier',
      'createRedisClient',
      'redactAddress',
      'redisOptionsFromEnv',
    ]);
  });

  it('exports the codec, the serializers, the key slot and the client helpers from /internal', () => {
    expect(Object.keys(internal).sort()).toEqual([
      'ENVELOPE_VERSION',
      'EnvelopeCodec',
      'MSGPACK_SERIALIZER',
      'TAG_KEY',
      'decodeJson',
      'encodeJson',
      'escapeGlob',
      'isCluster',
      'keySlot',
      'reconnectDelay',
      'reviveTags',
      'toIoredisOptions',
      'waitForReady',
    ]);
  });
});
