import type { Level, TierLevel } from './level.js';

/** Operation label values (bounded set). */
export type CacheOperation = 'get' | 'set' | 'delete' | 'get_many' | 'set_many' | 'clear' | 'load';

/** Error type label values (bounded set). */
export const ERROR_TYPES = [
  'timeout',
  'connection_error',
  'redis_error',
  'postgres_error',
  'serialization_error',
  'invalid_value',
  'circuit_open',
  'loader_error',
  'too_large',
  'unknown',
] as const;

/** One of {@link ERROR_TYPES}. */
export type CacheErrorType = (typeof ERROR_TYPES)[number];

/** Circuit breaker states, as reported to metrics and readiness. */
export type CircuitState = 'closed' | 'open' | 'half_open';

/**
 * Where the cache reports what it does. Every method is synchronous, cheap and must never throw:
 * it sits on the hot path of every read. Label values are bounded (levels, operations, configured
 * connector/endpoint names, {@link ERROR_TYPES}); a cache key is never a label.
 */
export interface MetricsAdapter {
  /** A lookup found a servable entry at `level`. */
  hit(level: Level, connector: string, endpoint: string): void;
  /** A lookup found nothing at `level`. */
  miss(level: Level, connector: string, endpoint: string): void;
  /** How long one operation on a level took, in **seconds**. `level: 'external'` + `'load'` is an upstream call. */
  latency(level: Level, operation: CacheOperation, seconds: number): void;
  /** The current size of a level, in bytes (or entries when bytes are unknown). */
  size(level: TierLevel, bytes: number): void;
  /** An entry found at `from` was copied to the faster level `to`. */
  promotion(from: Level, to: TierLevel): void;
  /** `count` entries were evicted from `level` to make room (not expired ones). */
  eviction(level: TierLevel, count?: number): void;
  /** An operation on `level` failed. */
  error(level: Level, operation: CacheOperation, errorType: CacheErrorType): void;
  /** A tier's circuit breaker changed state. Optional. */
  circuitState?(level: TierLevel, state: CircuitState): void;
}

const noop = (): void => {};

/** The default adapter: records nothing and costs a function call. */
export const NOOP_METRICS: MetricsAdapter = Object.freeze({
  hit: noop,
  miss: noop,
  latency: noop,
  size: noop,
  promotion: noop,
  eviction: noop,
  error: noop,
  circuitState: noop,
});
