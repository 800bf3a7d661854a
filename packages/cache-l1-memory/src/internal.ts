/**
 * `@bgc/cache-l1-memory/internal`: the building blocks of the memory tier, shared with its
 * hit-rate simulator and benchmarks: the adaptive W-TinyLFU policy, the frequency sketch and its
 * hashes, and the size-and-freeze walk. They follow the tier's needs, not semver: an application
 * imports `MemoryTier` from `@bgc/cache-l1-memory`.
 */
export { WTinyLfuPolicy, type WTinyLfuPolicyOptions } from './w-tiny-lfu-policy.js';
export { FrequencySketch, type FrequencySketchOptions, hashKey, spreadHash } from './frequency-sketch.js';
export { sizeAndFreeze } from './size-and-freeze.js';
