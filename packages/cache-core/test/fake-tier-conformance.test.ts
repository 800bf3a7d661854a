import { runTierConformance, FakeTier } from '../src/testing/index.js';

const coherence = {
  versions: true,
  tombstones: true,
  clearKeepsNewer: true,
  expire: true,
  values: 'codec',
  tags: true,
} as const;

const shared = new Map();
runTierConformance(
  'FakeTier (local, sync, fresh values, batch)',
  () => new FakeTier({ sync: true, fresh: true, batch: true, maxTtlMs: 300_000 }),
  { versions: true, expire: true, tags: true },
);
runTierConformance(
  'FakeTier (shared store, callbacks)',
  () => new FakeTier({ level: 'l2', store: shared, callbacks: true }),
  { versions: true, tombstones: true, clearKeepsNewer: true, expire: true, tags: true },
);
const sharedCodec = new Map();
runTierConformance(
  'FakeTier (shared store, codec, batch, sync)',
  () => new FakeTier({ level: 'l2', store: sharedCodec, batch: true, sync: true, codec: true }),
  coherence,
);
