export { MemoryTier, type MemoryTierOptions, type MemoryTierStats } from './memory-tier.js';
export { memoryTierFromEnv } from './from-env.js';
export { WTinyLfuPolicy, type WTinyLfuPolicyOptions } from './w-tiny-lfu-policy.js';
export { FrequencySketch, type FrequencySketchOptions, hashKey, spreadHash } from './frequency-sketch.js';
export { sizeAndFreeze } from './size-and-freeze.js';
