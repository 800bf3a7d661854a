export { MemoryTier, type MemoryTierOptions, type MemoryTierStats } from './memory-tier.js';
export { memoryTierFromEnv } from './from-env.js';
