import { runTierConformance, FakeTier } from '../src/testing/index.js';

const shared = new Map();
runTierConformance(
  'FakeTier (local, sync, batch)',
  () => new FakeTier({ sync: true, batch: true, maxTtlMs: 300_000 }),
);
runTierConformance('FakeTier (shared store)', () => new FakeTier({ level: 'l2', store: shared }));
