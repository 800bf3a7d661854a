export { runTierConformance, type TierConformanceOptions, type TierFactory } from './tier-conformance.js';
export { FakeTier, type FakeTierOptions } from './fake-tier.js';
