import { OTHER } from './constants.js';

/**
 * Maps free-form label values (connector, endpoint names) onto a bounded set so that a metric's
 * series count can never grow without limit. With an allow-list, listed values (and the
 * orchestrator's `'default'`) pass and anything else becomes `'other'`; without one, the first
 * `maxValues` distinct values pass and later ones become `'other'`.
 * @internal
 */
export class BoundedLabelValues {
  private readonly allowed: Set<string>;
  private readonly open: boolean;
  private readonly maxValues: number;

  constructor(allowList: readonly string[] | undefined, maxValues: number) {
    this.open = allowList === undefined;
    this.allowed = new Set(allowList ?? []);
    if (!this.open) this.allowed.add('default');
    this.maxValues = maxValues;
  }

  /** The label value to record for `value`: itself when accepted, `'other'` otherwise. */
  map(value: string): string {
    if (typeof value !== 'string' || value === '') return OTHER;
    if (this.allowed.has(value)) return value;
    if (this.open && this.allowed.size < this.maxValues) {
      this.allowed.add(value);
      return value;
    }
    return OTHER;
  }
}
