import { describe, expect, it } from 'vitest';
import { ConfigError, envBool, envInt, loadCacheConfigFromEnv, parseDuration } from '../src/index.js';

describe('parseDuration', () => {
  it('parses Go durations into ms', () => {
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('168h')).toBe(604_800_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('300ms')).toBe(300);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('1500us')).toBe(2);
  });
  it('names the field on bad input', () => {
    expect(() => parseDuration('5 minutes', 'cache.ttl')).toThrow(/cache\.ttl/);
    expect(() => parseDuration('', 'X')).toThrow(ConfigError);
    expect(() => parseDuration('-5m', 'X')).toThrow(ConfigError);
    expect(() => parseDuration('5d', 'X')).toThrow(/Go syntax/);
  });
});

describe('loadCacheConfigFromEnv', () => {
  it("has the seed's defaults", () => {
    expect(loadCacheConfigFromEnv({})).toEqual({
      l1: { enabled: true, maxSizeBytes: 100 * 1024 * 1024, defaultTtlMs: 300_000 },
      l2: { enabled: false, addr: 'localhost:6379', password: undefined, db: 0, maxRetries: 3, poolSize: 10 },
      l3: { enabled: false },
    });
  });

  it('reads every variable', () => {
    const c = loadCacheConfigFromEnv({
      CACHE_L1_ENABLED: 'false',
      CACHE_L1_MAX_SIZE_MB: '64',
      CACHE_L1_DEFAULT_TTL: '10m',
      CACHE_L2_ENABLED: 'true',
      REDIS_ADDR: 'redis:6379',
      REDIS_PASSWORD: 'pw',
      REDIS_DB: '2',
      REDIS_MAX_RETRIES: '5',
      REDIS_POOL_SIZE: '20',
      CACHE_L3_ENABLED: '1',
    });
    expect(c.l1).toEqual({ enabled: false, maxSizeBytes: 64 * 1024 * 1024, defaultTtlMs: 600_000 });
    expect(c.l2).toEqual({
      enabled: true,
      addr: 'redis:6379',
      password: 'pw',
      db: 2,
      maxRetries: 5,
      poolSize: 20,
    });
    expect(c.l3.enabled).toBe(true);
  });

  it('names the variable and value on errors', () => {
    expect(() => loadCacheConfigFromEnv({ CACHE_L1_MAX_SIZE_MB: 'lots' })).toThrow(
      /CACHE_L1_MAX_SIZE_MB.*"lots"/,
    );
    expect(() => loadCacheConfigFromEnv({ CACHE_L1_MAX_SIZE_MB: '0' })).toThrow(/out of range/);
    expect(() => loadCacheConfigFromEnv({ CACHE_L1_DEFAULT_TTL: '5' })).toThrow(/CACHE_L1_DEFAULT_TTL/);
    expect(() => loadCacheConfigFromEnv({ CACHE_L1_DEFAULT_TTL: '0' })).toThrow(/greater than 0/);
    expect(() => loadCacheConfigFromEnv({ CACHE_L2_ENABLED: 'maybe' })).toThrow(
      /CACHE_L2_ENABLED.*not a boolean/,
    );
    expect(() => loadCacheConfigFromEnv({ REDIS_DB: '99' })).toThrow(/REDIS_DB/);
    try {
      loadCacheConfigFromEnv({ REDIS_POOL_SIZE: 'x' });
    } catch (e) {
      expect((e as ConfigError).field).toBe('REDIS_POOL_SIZE');
      expect((e as ConfigError).code).toBe('E_CONFIG');
    }
  });

  it('exposes the helpers', () => {
    expect(envBool({ A: 'ON' }, 'A', false)).toBe(true);
    expect(envBool({ A: ' ' }, 'A', true)).toBe(true);
    expect(envInt({ A: '-3' }, 'A', 0, -10)).toBe(-3);
  });
});
