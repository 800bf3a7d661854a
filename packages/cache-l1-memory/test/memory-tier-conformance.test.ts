import { runTierConformance } from '@bgc/cache-core/testing';
import { MemoryTier } from '../src/index.js';

// The coherence cases that apply to a local tier: versions and logical expiry. No tombstones (the
// orchestrator keeps per-key versions for local tiers) and no value codec (values are kept as the
// very objects given, never encoded, so every type comes back as it went in).
const coherence = { timeSlackMs: 5, versions: true, expire: true };

runTierConformance('memory', () => new MemoryTier(), coherence);
runTierConformance(
  'memory (no freeze, tiny sweep interval)',
  () => new MemoryTier({ freeze: false, sweepIntervalMs: 50 }),
  coherence,
);
