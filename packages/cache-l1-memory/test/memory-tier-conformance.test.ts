import { runTierConformance } from '@bgc/cache-core/testing';
import { MemoryTier } from '../src/index.js';

runTierConformance('memory', () => new MemoryTier());
runTierConformance(
  'memory (no freeze, tiny sweep interval)',
  () => new MemoryTier({ freeze: false, sweepIntervalMs: 50 }),
);
