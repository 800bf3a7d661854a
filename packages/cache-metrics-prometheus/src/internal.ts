/**
 * `@bgc/cache-metrics-prometheus/internal`: the tables behind the adapter's metrics (metric name
 * suffixes by role, the operation label values, the `circuit_state` gauge's values). They follow
 * the adapter's needs, not semver: an application reads the full names from
 * `PrometheusMetrics.names` and imports `PrometheusMetrics` from `@bgc/cache-metrics-prometheus`.
 */
export { METRIC_SUFFIXES, OPERATIONS, CIRCUIT_STATE_VALUES } from './constants.js';
