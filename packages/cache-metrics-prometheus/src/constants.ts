import type { CacheOperation, CircuitState } from '@bgc/cache-core';

/** The seed's metric name prefix. */
export const DEFAULT_PREFIX = 'integration_gateway_cache_';

/**
 * Default latency buckets, in **seconds**: from 1 µs (an L1 hit) to 10 s (a slow upstream call),
 * roughly ×2–×5 apart so P95 stays within one bucket of the truth at every level.
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = Object.freeze([
  1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

/**
 * The metric names without prefix, by role. The first eight are the seed's, exactly;
 * `circuitState` is an extra gauge fed by the optional `MetricsAdapter.circuitState`.
 */
export const METRIC_SUFFIXES = Object.freeze({
  hits: 'hits_total',
  misses: 'misses_total',
  latency: 'latency_seconds',
  size: 'size_bytes',
  hitRate: 'hit_rate',
  promotions: 'promotions_total',
  evictions: 'evictions_total',
  errors: 'errors_total',
  circuitState: 'circuit_state',
});

/** Every operation label value the core emits; anything else is recorded as `'other'`. */
export const OPERATIONS: readonly CacheOperation[] = Object.freeze([
  'get',
  'set',
  'delete',
  'get_many',
  'set_many',
  'clear',
  'load',
]);

/** Value of the `circuit_state` gauge for each breaker state: 0 closed, 1 half-open, 2 open. */
export const CIRCUIT_STATE_VALUES: Readonly<Record<CircuitState, number>> = Object.freeze({
  closed: 0,
  half_open: 1,
  open: 2,
});

/** The label value that replaces any value outside a bounded set. */
export const OTHER = 'other';
