import { PGlite } from '@electric-sql/pglite';
import { runTierConformance } from '@bgc/cache-core/testing';
import { createPgliteTier } from '../src/index.js';

let shared: PGlite | undefined;

// Both instances of the shared-tier check use one embedded database, as two tiers of one process would.
runTierConformance(
  'pglite',
  async () => {
    shared ??= await PGlite.create();
    return createPgliteTier({ pglite: shared, sweepIntervalMs: 0, operationTimeoutMs: 10_000 });
  },
  {
    versions: true,
    tombstones: true,
    clearKeepsNewer: true,
    expire: true,
    tags: true,
    values: 'codec',
    teardown: () => shared?.close(),
  },
);
