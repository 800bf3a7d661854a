import { describe, expect, it } from 'vitest';
import {
  BgcCacheError,
  CircuitOpenError,
  ConfigError,
  InvalidValueError,
  isRetryableStatus,
  SerializationError,
  TierError,
  TimeoutError,
  UpstreamError,
} from '../src/index.js';
import { classifyError } from '../src/internal.js';

describe('errors', () => {
  it('carry stable codes, names and causes', () => {
    const cause = new Error('root');
    const cases: [BgcCacheError, string, string][] = [
      [new TierError('redis', 'get', 'boom', { cause }), 'E_TIER', 'TierError'],
      [new TimeoutError('redis get', 100), 'E_TIMEOUT', 'TimeoutError'],
      [new CircuitOpenError('redis', 500), 'E_CIRCUIT_OPEN', 'CircuitOpenError'],
      [new SerializationError('bad bytes', { cause }), 'E_SERIALIZATION', 'SerializationError'],
      [new InvalidValueError('cyclic'), 'E_INVALID_VALUE', 'InvalidValueError'],
      [new ConfigError('REDIS_DB', 'bad'), 'E_CONFIG', 'ConfigError'],
      [new UpstreamError('502 from api', { statusCode: 502 }), 'E_UPSTREAM', 'UpstreamError'],
    ];
    for (const [e, code, name] of cases) {
      expect(e.code).toBe(code);
      expect(e.name).toBe(name);
      expect(BgcCacheError.isInstance(e)).toBe(true);
      expect(e).toBeInstanceOf(Error);
    }
    expect((cases[0]![0] as TierError).cause).toBe(cause);
    expect(cases[0]![0].message).toBe('redis tier failed on get: boom');
    expect(BgcCacheError.isInstance(new Error('x'))).toBe(false);
    expect(BgcCacheError.isInstance(null)).toBe(false);
  });

  it('UpstreamError knows what is retryable', () => {
    expect(new UpstreamError('x', { statusCode: 429 }).isRetryable).toBe(true);
    expect(new UpstreamError('x', { statusCode: 400 }).isRetryable).toBe(false);
    expect(new UpstreamError('network').isRetryable).toBe(true);
    expect(new UpstreamError('x', { statusCode: 400, isRetryable: true, code: 'E_X' }).code).toBe('E_X');
    expect([408, 409, 429, 500, 503].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404].some(isRetryableStatus)).toBe(false);
  });

  it('classifyError maps to bounded error types', () => {
    expect(classifyError(new TimeoutError('x', 1))).toBe('timeout');
    expect(classifyError(new CircuitOpenError('r', 1))).toBe('circuit_open');
    expect(classifyError(new SerializationError('s'))).toBe('serialization_error');
    expect(classifyError(new InvalidValueError('s'))).toBe('invalid_value');
    expect(classifyError(new BgcCacheError('E_VALUE_TOO_LARGE', 'big'))).toBe('too_large');
    expect(classifyError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe('connection_error');
    expect(classifyError(new Error('Connection is closed.'))).toBe('connection_error');
    expect(classifyError(new Error('ERR'), 'redis')).toBe('redis_error');
    expect(classifyError(new Error('ERR'), 'postgres')).toBe('postgres_error');
    expect(classifyError('weird')).toBe('unknown');
    expect(classifyError(new TierError('postgres', 'get', 'slow', { code: 'E_L3_TIMEOUT' }))).toBe('timeout');
    expect(classifyError(new TierError('redis', 'get', 'down', { code: 'E_L2_CONNECTION' }))).toBe(
      'connection_error',
    );
  });

  it('classifyError takes the errorType a tier set, and ignores one outside ERROR_TYPES', () => {
    const own = new TierError('kv', 'get', 'refused', { errorType: 'redis_error' });
    expect(own.errorType).toBe('redis_error');
    expect(classifyError(own)).toBe('redis_error');
    expect(classifyError(new TierError('kv', 'get', 'slow', { errorType: 'timeout', code: 'E_X' }))).toBe(
      'timeout',
    );
    expect(classifyError(Object.assign(new Error('x'), { errorType: 'made_up' }))).toBe('unknown');
    expect(new TierError('kv', 'get', 'x').errorType).toBeUndefined();
  });
});
