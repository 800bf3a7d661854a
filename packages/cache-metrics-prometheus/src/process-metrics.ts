import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's default gauges whose names end in `_total`, which the Prometheus naming rules
 * reserve for counters (`promtool check metrics` rejects them). Their information is kept by the
 * per-type gauges of the same family (`nodejs_active_handles{type}`, `nodejs_active_requests{type}`,
 * `nodejs_active_resources{type}`): sum them for the total.
 */
export const NON_CONFORMING_DEFAULT_METRICS: readonly string[] = Object.freeze([
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
]);

/** Options of {@link collectProcessMetrics}. */
export interface ProcessMetricsOptions {
  /** Registry the process metrics are registered in. */
  registry: Registry;
  /** Prepended to every default metric name (prom-client's `prefix`). @default '' */
  prefix?: string;
  /** Event-loop lag sampling precision, ms (prom-client's `eventLoopMonitoringPrecision`). @default 10 */
  eventLoopMonitoringPrecision?: number;
}

/**
 * Registers prom-client's default process and Node.js metrics (CPU, memory, GC, event-loop lag,
 * handles...) in `registry`, minus the gauges that break the Prometheus naming rules
 * ({@link NON_CONFORMING_DEFAULT_METRICS}), so that the whole exposition passes
 * `promtool check metrics`. Call once per registry.
 * @returns the names of the metrics left out (with the prefix applied)
 */
export function collectProcessMetrics(options: ProcessMetricsOptions): string[] {
  const prefix = options.prefix ?? '';
  collectDefaultMetrics({
    register: options.registry,
    prefix,
    eventLoopMonitoringPrecision: options.eventLoopMonitoringPrecision ?? 10,
  });
  const removed: string[] = [];
  for (const name of NON_CONFORMING_DEFAULT_METRICS) {
    const full = prefix + name;
    if (options.registry.getSingleMetric(full)) {
      options.registry.removeSingleMetric(full);
      removed.push(full);
    }
  }
  return removed;
}
