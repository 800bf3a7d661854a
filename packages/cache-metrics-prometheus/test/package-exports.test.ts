import { describe, expect, it } from 'vitest';
import * as root from '../src/index.js';
import * as internal from '../src/internal.js';

describe('package entries', () => {
  it('exports the public API only from the root', () => {
    expect(Object.keys(root).sort()).toEqual([
      'DEFAULT_LATENCY_BUCKETS',
      'DEFAULT_PREFIX',
      'NON_CONFORMING_DEFAULT_METRICS',
      'PrometheusMetrics',
      'collectProcessMetrics',
    ]);
  });

  it('exports the metric tables from /internal', () => {
    expect(Object.keys(internal).sort()).toEqual(['CIRCUIT_STATE_VALUES', 'METRIC_SUFFIXES', 'OPERATIONS']);
  });
});
