import { describe, expect, it } from 'vitest';
import * as internal from '../src/internal.js';
import * as root from '../src/index.js';

describe('package entries', () => {
  it('exports the public API only from the root', () => {
    expect(Object.keys(root).sort()).toEqual(['MemoryTier', 'memoryTierFromEnv']);
  });

  it('exports the policy, the sketch and the size walk from /internal', () => {
    expect(Object.keys(internal).sort()).toEqual([
      'FrequencySketch',
      'WTinyLfuPolicy',
      'hashKey',
      'sizeAndFreeze',
      'spreadHash',
    ]);
  });
});
