import { runTierConformance, FakeTier } from '../src/testing/index.js';

const shared = new Map();
runTierConformance(
  'FakeTier (local, sync, fresh values, batch)',
  () => new FakeTier({ sync: true, fresh: true, batch: true, maxTtlMs: 300_000 }),
);
runTierConformance(
  'FakeTier (shared store, callbacks)',
  () => new FakeTier({ level: 'l2', store: shared, callbacks: true }),
);
