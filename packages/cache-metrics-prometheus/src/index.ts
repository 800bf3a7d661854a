export {
  PrometheusMetrics,
  type PrometheusMetricsOptions,
  type PrometheusMetricNames,
} from './prometheus-metrics.js';
export { DEFAULT_PREFIX, DEFAULT_LATENCY_BUCKETS } from './constants.js';
export {
  collectProcessMetrics,
  NON_CONFORMING_DEFAULT_METRICS,
  type ProcessMetricsOptions,
} from './process-metrics.js';
