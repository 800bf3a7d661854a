import { runTierConformance } from '@bgc/cache-core/testing';
import { PostgresTier } from '../src/index.js';
import { DATABASE_URL, dropSchema, testPool, uniqueSchema } from './helpers.js';

const pool = testPool(10);
/** The whole coherence contract: versions, tombstones, clear marker keeping newer rows, expire, codec values. */
const coherence = {
  versions: true,
  tombstones: true,
  clearKeepsNewer: true,
  expire: true,
  tags: true,
  values: 'codec',
} as const;
const schema = uniqueSchema('conf');

// A given pool, as applications share theirs.
runTierConformance(
  'postgres (given pg.Pool)',
  () => new PostgresTier({ pool, schema, migrate: true, sweepIntervalMs: 0, operationTimeoutMs: 10_000 }),
  {
    ...coherence,
    teardown: async () => {
      await dropSchema(pool, schema);
      await pool.end();
    },
  },
);

const schema2 = uniqueSchema('conf2');
// A pool the tier creates from a URL and closes.
runTierConformance(
  'postgres (connection string)',
  () =>
    new PostgresTier({
      connectionString: DATABASE_URL,
      schema: schema2,
      migrate: true,
      sweepIntervalMs: 0,
      poolSize: 10,
      operationTimeoutMs: 10_000,
    }),
  {
    ...coherence,
    teardown: async () => {
      const admin = testPool(1);
      await dropSchema(admin, schema2);
      await admin.end();
    },
  },
);
