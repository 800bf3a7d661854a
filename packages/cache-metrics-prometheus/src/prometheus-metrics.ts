import {
  type CacheErrorType,
  type CacheOperation,
  type CircuitState,
  ConfigError,
  ERROR_TYPES,
  LEVELS,
  type Level,
  type MetricsAdapter,
  type TierLevel,
} from '@bgc/cache-core';
import { Counter, Gauge, type Registry, register as defaultRegistry } from 'prom-client';
import { BoundedLabelValues } from './bounded-label-values.js';
import {
  CIRCUIT_STATE_VALUES,
  DEFAULT_LATENCY_BUCKETS,
  DEFAULT_PREFIX,
  METRIC_SUFFIXES,
  OPERATIONS,
  OTHER,
} from './constants.js';
import { HitRateWindow, type LevelLookups } from './hit-rate-window.js';
import { type HistogramCell, LatencyHistogram } from './latency-histogram.js';

/** Options of {@link PrometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** Registry the metrics are registered in. @default prom-client's default `register` */
  registry?: Registry;
  /**
   * Prepended to every metric name. Must be a valid Prometheus name prefix (letters, digits, `_`,
   * `:`; not starting with a digit), or `''`. @default 'integration_gateway_cache_'
   */
  prefix?: string;
  /**
   * Upper bounds of the latency histogram buckets, in **seconds**, strictly increasing.
   * @default DEFAULT_LATENCY_BUCKETS (1 µs … 10 s)
   */
  buckets?: readonly number[];
  /**
   * Allowed `connector` label values. Other values are recorded as `'other'`; the orchestrator's
   * `'default'` is always allowed. @default undefined: the first `maxLabelValues` names seen
   */
  connectors?: readonly string[];
  /**
   * Allowed `endpoint` label values. Other values are recorded as `'other'`; `'default'` is always
   * allowed. @default undefined: the first `maxLabelValues` names seen
   */
  endpoints?: readonly string[];
  /**
   * Without an allow-list, how many distinct connector (and, separately, endpoint) names become
   * label values before later ones are recorded as `'other'`. @default 100
   */
  maxLabelValues?: number;
  /**
   * Window of the `hit_rate` gauge, in ms: the gauge is `hits / (hits + misses)` over about the last
   * `hitRateWindowMs` (computed at scrape time, so the window may extend by one scrape interval).
   * `0` makes it cumulative since the adapter was created. @default 300000 (5 min, like `rate(...[5m])`)
   */
  hitRateWindowMs?: number;
  /** Clock used by the hit-rate window, in epoch ms. For tests. @default Date.now */
  now?: () => number;
}

/** Full names of the metrics a {@link PrometheusMetrics} registers. */
export interface PrometheusMetricNames {
  hits: string;
  misses: string;
  latency: string;
  size: string;
  hitRate: string;
  promotions: string;
  evictions: string;
  errors: string;
  circuitState: string;
}

/** A counter series kept as plain numbers and written to prom-client when metrics are collected. */
interface CounterCell {
  value: number;
  flushed: number;
  readonly labels: Record<string, string>;
}

type Nested<T> = Map<string, Map<string, Map<string, T>>>;

const NAME_PREFIX = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;
const LEVEL_SET: ReadonlySet<string> = new Set(LEVELS);
const OPERATION_SET: ReadonlySet<string> = new Set(OPERATIONS);
const ERROR_TYPE_SET: ReadonlySet<string> = new Set(ERROR_TYPES);

/**
 * The core's {@link MetricsAdapter} on prom-client, with the seed's metric names, types and labels:
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `<prefix>hits_total` | counter | level, connector, endpoint |
 * | `<prefix>misses_total` | counter | level, connector, endpoint |
 * | `<prefix>latency_seconds` | histogram | level, operation |
 * | `<prefix>size_bytes` | gauge | level |
 * | `<prefix>hit_rate` | gauge (0..1) | level |
 * | `<prefix>promotions_total` | counter | from_level, to_level |
 * | `<prefix>evictions_total` | counter | level |
 * | `<prefix>errors_total` | counter | level, operation, error_type |
 *
 * plus `<prefix>circuit_state{level}` (0 closed, 1 half-open, 2 open) when the cache reports
 * circuit breaker changes.
 *
 * Every label value comes from a bounded set: levels, operations and error types are fixed lists
 * (anything else is recorded as `'other'` / `'unknown'`), connectors and endpoints are an allow-list
 * or the first {@link PrometheusMetricsOptions.maxLabelValues} names. A cache key is never a label.
 *
 * Hot path: counters are plain numbers in pre-built cells looked up by label values (no string
 * building, no allocation) and are written to prom-client when the registry is collected;
 * latencies go to pre-allocated histogram bucket arrays. Methods never throw; invalid numbers are ignored.
 *
 * One adapter per registry and prefix: share it between caches (the `connector` label tells them
 * apart) or call {@link PrometheusMetrics.unregister} before creating another.
 */
export class PrometheusMetrics implements MetricsAdapter {
  /** The registry the metrics are registered in. */
  readonly registry: Registry;
  /** The metric name prefix in use. */
  readonly prefix: string;
  /** The full name of every metric registered. */
  readonly names: Readonly<PrometheusMetricNames>;

  private readonly latencyHistogram: LatencyHistogram;
  private readonly circuitGauge: Gauge<string>;

  private readonly connectors: BoundedLabelValues;
  private readonly endpoints: BoundedLabelValues;
  private readonly hitRateWindow: HitRateWindow;

  // Fast lookup by the raw arguments; only accepted (in-set) values are keys, so they stay bounded.
  private readonly hitLookup: Nested<CounterCell> = new Map();
  private readonly missLookup: Nested<CounterCell> = new Map();
  private readonly errorLookup: Nested<CounterCell> = new Map();
  private readonly latencyLookup = new Map<string, Map<string, HistogramCell>>();
  private readonly promotionLookup = new Map<string, Map<string, CounterCell>>();
  private readonly evictionLookup = new Map<string, CounterCell>();
  // The canonical cells, by normalized label values.
  private readonly hitCells = new Map<string, CounterCell>();
  private readonly missCells = new Map<string, CounterCell>();
  private readonly errorCells = new Map<string, CounterCell>();
  private readonly promotionCells = new Map<string, CounterCell>();
  private readonly evictionCells = new Map<string, CounterCell>();
  private readonly sizes = new Map<string, number>();

  constructor(options: PrometheusMetricsOptions = {}) {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (typeof prefix !== 'string' || !NAME_PREFIX.test(prefix)) {
      throw new ConfigError(
        'prefix',
        `"${String(prefix)}" is not a valid Prometheus metric name prefix; use letters, digits, "_" or ":" and do not start with a digit.`,
      );
    }
    const buckets = options.buckets ?? DEFAULT_LATENCY_BUCKETS;
    validateBuckets(buckets);
    const maxLabelValues = options.maxLabelValues ?? 100;
    if (!Number.isInteger(maxLabelValues) || maxLabelValues < 1) {
      throw new ConfigError('maxLabelValues', `expected an integer >= 1, got ${String(maxLabelValues)}.`);
    }
    const windowMs = options.hitRateWindowMs ?? 300_000;
    if (!Number.isFinite(windowMs) || windowMs < 0) {
      throw new ConfigError(
        'hitRateWindowMs',
        `expected a number of ms >= 0 (0 = cumulative), got ${String(windowMs)}.`,
      );
    }

    this.registry = options.registry ?? defaultRegistry;
    this.prefix = prefix;
    const names = {} as PrometheusMetricNames;
    for (const [role, suffix] of Object.entries(METRIC_SUFFIXES)) {
      names[role as keyof PrometheusMetricNames] = prefix + suffix;
    }
    this.names = Object.freeze(names);
    for (const name of Object.values(names)) {
      if (this.registry.getSingleMetric(name) !== undefined) {
        throw new ConfigError(
          'registry',
          `a metric named "${name}" is already registered. Create one PrometheusMetrics per registry and share it between caches, call unregister() on the previous one, or pass another prefix or registry.`,
        );
      }
    }

    this.connectors = new BoundedLabelValues(options.connectors, maxLabelValues);
    this.endpoints = new BoundedLabelValues(options.endpoints, maxLabelValues);
    this.hitRateWindow = new HitRateWindow(windowMs, options.now ?? Date.now);

    const registers = [this.registry];
    const flushInto = (cells: Map<string, CounterCell>) =>
      function (this: Counter<string>): void {
        for (const cell of cells.values()) {
          if (cell.value !== cell.flushed) {
            this.inc(cell.labels, cell.value - cell.flushed);
            cell.flushed = cell.value;
          }
        }
      };
    const lookupLabels = ['level', 'connector', 'endpoint'];
    new Counter({
      name: names.hits,
      help: 'Cache lookups that found a servable entry, by level.',
      labelNames: lookupLabels,
      registers,
      collect: flushInto(this.hitCells),
    });
    new Counter({
      name: names.misses,
      help: 'Cache lookups that found nothing, by level.',
      labelNames: lookupLabels,
      registers,
      collect: flushInto(this.missCells),
    });
    this.latencyHistogram = new LatencyHistogram({
      name: names.latency,
      help: 'Duration of cache operations in seconds, by level and operation (level="external", operation="load" is an upstream call).',
      labelNames: ['level', 'operation'],
      buckets,
      registry: this.registry,
    });
    const sizes = this.sizes;
    new Gauge({
      name: names.size,
      help: 'Current size of a cache level in bytes (entries when the tier cannot measure bytes).',
      labelNames: ['level'],
      registers,
      collect() {
        for (const [level, bytes] of sizes) this.set({ level }, bytes);
      },
    });
    const self = this;
    new Gauge({
      name: names.hitRate,
      help: `Cache hit rate (0..1) per level: hits / (hits + misses) over the last ${windowMs > 0 ? `${windowMs / 1000} s` : 'lifetime (cumulative)'}.`,
      labelNames: ['level'],
      registers,
      collect() {
        this.reset();
        for (const [level, rate] of self.hitRates()) this.set({ level }, rate);
      },
    });
    new Counter({
      name: names.promotions,
      help: 'Entries copied from a slower level to a faster one after a hit.',
      labelNames: ['from_level', 'to_level'],
      registers,
      collect: flushInto(this.promotionCells),
    });
    new Counter({
      name: names.evictions,
      help: 'Entries evicted from a level to make room (expired entries are not counted).',
      labelNames: ['level'],
      registers,
      collect: flushInto(this.evictionCells),
    });
    new Counter({
      name: names.errors,
      help: 'Failed cache operations, by level, operation and error type.',
      labelNames: ['level', 'operation', 'error_type'],
      registers,
      collect: flushInto(this.errorCells),
    });
    this.circuitGauge = new Gauge({
      name: names.circuitState,
      help: 'Circuit breaker state of a cache level: 0 closed, 1 half-open, 2 open.',
      labelNames: ['level'],
      registers,
    });
  }

  /** @inheritdoc */
  hit(level: Level, connector: string, endpoint: string): void {
    this.lookupCell(this.hitLookup, this.hitCells, level, connector, endpoint).value++;
  }

  /** @inheritdoc */
  miss(level: Level, connector: string, endpoint: string): void {
    this.lookupCell(this.missLookup, this.missCells, level, connector, endpoint).value++;
  }

  /** Records one operation's duration, in **seconds**. Negative or non-finite durations are ignored. */
  latency(level: Level, operation: CacheOperation, seconds: number): void {
    if (!(seconds >= 0 && seconds < Number.POSITIVE_INFINITY)) return;
    const cell = this.latencyLookup.get(level)?.get(operation) ?? this.latencyCell(level, operation);
    this.latencyHistogram.record(cell, seconds);
  }

  /** Sets the current size of a level, in bytes. Negative or non-finite values are ignored. */
  size(level: TierLevel, bytes: number): void {
    if (!(bytes >= 0 && bytes < Number.POSITIVE_INFINITY)) return;
    this.sizes.set(levelLabel(level), bytes);
  }

  /** @inheritdoc */
  promotion(from: Level, to: TierLevel): void {
    const cell = this.promotionLookup.get(from)?.get(to) ?? this.promotionCell(from, to);
    cell.value++;
  }

  /** Counts `count` evictions (default 1). Non-positive or non-finite counts are ignored. */
  eviction(level: TierLevel, count = 1): void {
    if (!(count > 0 && count < Number.POSITIVE_INFINITY)) return;
    const cell = this.evictionLookup.get(level) ?? this.evictionCell(level);
    cell.value += count;
  }

  /** @inheritdoc */
  error(level: Level, operation: CacheOperation, errorType: CacheErrorType): void {
    this.lookupCell(this.errorLookup, this.errorCells, level, operation, errorType).value++;
  }

  /** Sets `<prefix>circuit_state{level}`: 0 closed, 1 half-open, 2 open. Unknown states are ignored. */
  circuitState(level: TierLevel, state: CircuitState): void {
    const value = CIRCUIT_STATE_VALUES[state];
    if (value === undefined) return;
    this.circuitGauge.set({ level: levelLabel(level) }, value);
  }

  /**
   * The current hit rate (0..1) per tier level (`l1`, `l2`, `l3`) over the configured window, as
   * the `hit_rate` gauge reports it. Levels without lookups in the window are absent; `external`
   * (where every full miss is counted and nothing ever hits) is never reported.
   */
  hitRates(): Map<string, number> {
    const totals = new Map<string, LevelLookups>();
    const add = (cells: Map<string, CounterCell>, field: keyof LevelLookups) => {
      for (const cell of cells.values()) {
        const level = cell.labels.level!;
        // Every miss reaches 'external', nothing hits there: its rate would be a constant 0.
        if (level === 'external') continue;
        let t = totals.get(level);
        if (t === undefined) totals.set(level, (t = { hits: 0, misses: 0 }));
        t[field] += cell.value;
      }
    };
    add(this.hitCells, 'hits');
    add(this.missCells, 'misses');
    return this.hitRateWindow.rates(totals);
  }

  /** Removes every metric of this adapter from its registry. Later calls record nothing visible. */
  unregister(): void {
    for (const name of Object.values(this.names)) this.registry.removeSingleMetric(name);
  }

  /**
   * The cell for a (level, a, b) triple: lookups (connector, endpoint) or errors (operation,
   * error type). The fast path is three Map reads on the raw arguments.
   */
  private lookupCell(
    lookup: Nested<CounterCell>,
    cells: Map<string, CounterCell>,
    level: string,
    a: string,
    b: string,
  ): CounterCell {
    const cell = lookup.get(level)?.get(a)?.get(b);
    if (cell !== undefined) return cell;
    const isError = cells === this.errorCells;
    const labels: Record<string, string> = isError
      ? { level: levelLabel(level), operation: operationLabel(a), error_type: errorTypeLabel(b) }
      : { level: levelLabel(level), connector: this.connectors.map(a), endpoint: this.endpoints.map(b) };
    const values = Object.values(labels);
    const canonical = canonicalCell(cells, labels);
    if (values[0] === level && values[1] === a && values[2] === b) {
      let byA = lookup.get(level);
      if (byA === undefined) lookup.set(level, (byA = new Map()));
      let byB = byA.get(a);
      if (byB === undefined) byA.set(a, (byB = new Map()));
      byB.set(b, canonical);
    }
    return canonical;
  }

  private latencyCell(level: string, operation: string): HistogramCell {
    const l = levelLabel(level);
    const op = operationLabel(operation);
    const cell = this.latencyHistogram.cell(`${l}|${op}`, { level: l, operation: op });
    if (l === level && op === operation) {
      let byOp = this.latencyLookup.get(level);
      if (byOp === undefined) this.latencyLookup.set(level, (byOp = new Map()));
      byOp.set(operation, cell);
    }
    return cell;
  }

  private promotionCell(from: string, to: string): CounterCell {
    const labels = { from_level: levelLabel(from), to_level: levelLabel(to) };
    const cell = canonicalCell(this.promotionCells, labels);
    if (labels.from_level === from && labels.to_level === to) {
      let byTo = this.promotionLookup.get(from);
      if (byTo === undefined) this.promotionLookup.set(from, (byTo = new Map()));
      byTo.set(to, cell);
    }
    return cell;
  }

  private evictionCell(level: string): CounterCell {
    const labels = { level: levelLabel(level) };
    const cell = canonicalCell(this.evictionCells, labels);
    if (labels.level === level) this.evictionLookup.set(level, cell);
    return cell;
  }
}

function canonicalCell(cells: Map<string, CounterCell>, labels: Record<string, string>): CounterCell {
  const key = Object.values(labels).join('|');
  let cell = cells.get(key);
  if (cell === undefined) cells.set(key, (cell = { value: 0, flushed: 0, labels }));
  return cell;
}

function levelLabel(level: string): string {
  return LEVEL_SET.has(level) ? level : OTHER;
}

function operationLabel(operation: string): string {
  return OPERATION_SET.has(operation) ? operation : OTHER;
}

function errorTypeLabel(errorType: string): string {
  return ERROR_TYPE_SET.has(errorType) ? errorType : 'unknown';
}

function validateBuckets(buckets: readonly number[]): void {
  const ok =
    Array.isArray(buckets) &&
    buckets.length > 0 &&
    buckets.every(
      (b, i) => typeof b === 'number' && b > 0 && Number.isFinite(b) && (i === 0 || b > buckets[i - 1]!),
    );
  if (!ok) {
    throw new ConfigError(
      'buckets',
      'expected a non-empty list of finite latencies in seconds, > 0 and strictly increasing (e.g. [0.000001, 0.001, 0.1, 1]).',
    );
  }
}
