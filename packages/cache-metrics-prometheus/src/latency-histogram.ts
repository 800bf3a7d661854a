import {
  Histogram,
  type MetricObjectWithValues,
  type MetricType,
  type MetricValueWithName,
  type Registry,
} from 'prom-client';

/** One label set of the histogram: non-cumulative bucket counts (last slot is `+Inf`), sum, count. */
export interface HistogramCell {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** Options of {@link LatencyHistogram}. @internal */
export interface LatencyHistogramOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  buckets: readonly number[];
  registry: Registry;
}

/**
 * A prom-client `Histogram` whose observations go to pre-allocated typed-array cells (one per
 * label set) instead of prom-client's per-call label hashing: `observe` costs a bucket search and
 * three additions. The exposition is produced from the cells in exactly prom-client's format
 * (`_bucket{le}` cumulative, `+Inf`, `_sum`, `_count`).
 * @internal
 */
export class LatencyHistogram extends Histogram<string> {
  private readonly bounds: Float64Array;
  private readonly metricName: string;
  private readonly metricHelp: string;
  private readonly cells = new Map<string, HistogramCell>();

  constructor(options: LatencyHistogramOptions) {
    super({
      name: options.name,
      help: options.help,
      labelNames: [...options.labelNames],
      buckets: [...options.buckets],
      registers: [options.registry],
    });
    this.bounds = Float64Array.from(options.buckets);
    this.metricName = options.name;
    this.metricHelp = options.help;
  }

  /** The cell of a label set (created empty on first use). `key` identifies the label set. */
  cell(key: string, labels: Record<string, string>): HistogramCell {
    let cell = this.cells.get(key);
    if (cell === undefined) {
      cell = { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.cells.set(key, cell);
    }
    return cell;
  }

  /** Records `seconds` (finite, >= 0: checked by the caller) in `cell`. */
  record(cell: HistogramCell, seconds: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += seconds;
    cell.count++;
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    for (const cell of this.cells?.values() ?? []) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const name = this.metricName;
    const values: MetricValueWithName<string>[] = [];
    for (const cell of this.cells.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({
          labels: { le: this.bounds[i]!, ...cell.labels },
          value: cumulative,
          metricName: `${name}_bucket`,
        });
      }
      values.push({
        labels: { le: '+Inf', ...cell.labels },
        value: cell.count,
        metricName: `${name}_bucket`,
      });
      values.push({ labels: { ...cell.labels }, value: cell.sum, metricName: `${name}_sum` });
      values.push({ labels: { ...cell.labels }, value: cell.count, metricName: `${name}_count` });
    }
    // prom-client types `type` as a numeric enum it never exports; at runtime it is the type's name.
    const type = 'histogram' as unknown as MetricType;
    return { name, help: this.metricHelp, type, values, aggregator: 'sum', collect: () => {} };
  }

  /** prom-client's Registry prefers this (untyped) method over `get()` when present. */
  getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    return this.get();
  }
}
