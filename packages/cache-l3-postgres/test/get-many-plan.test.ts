import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresTier } from '../src/index.js';
import { ENTRIES_TABLE } from '../src/internal.js';
import { entryStatements } from '../src/statements.js';
import { dropSchema, testPool, uniqueSchema } from './helpers.js';

const pool = testPool(2);
const schema = uniqueSchema('plan');
const ROWS = 1000;
let tier: PostgresTier;

/** Every index a plan node (and its children) reads. */
function indexes(plan: Record<string, unknown>): string[] {
  const own = typeof plan['Index Name'] === 'string' ? [plan['Index Name'] as string] : [];
  const children = (plan.Plans as Record<string, unknown>[] | undefined) ?? [];
  return [...own, ...children.flatMap(indexes)];
}

/** The statements that look keys up in a batch: their parameter types and arguments after the keys. */
const BATCH_LOOKUPS = {
  getMany: { types: 'text[], bigint, int', args: () => `${Date.now()}, 1048576` },
  expire: { types: 'text[], bigint, bigint', args: () => `${Date.now()}, NULL` },
  tombstone: {
    types: 'text[], text[], bigint, bigint, bigint',
    args: () => `'{}', ${Date.now()}, 1, ${Date.now() + 1000}`,
  },
} as const;

/**
 * The indexes of a batch statement's plan (not run), generic (as a prepared statement runs after 5
 * calls) or custom.
 */
async function planIndexes(
  statement: keyof typeof BATCH_LOOKUPS,
  mode: 'force_generic_plan' | 'force_custom_plan',
): Promise<string[]> {
  const st = entryStatements(schema)[statement];
  const { types, args } = BATCH_LOOKUPS[statement];
  const client = await pool.connect();
  try {
    await client.query(`SET plan_cache_mode = ${mode}`);
    await client.query(`PREPARE plan_probe(${types}) AS ${st.text}`);
    const keys = Array.from({ length: 50 }, (_, i) => `plan:${(i * 7) % ROWS}`);
    const { rows } = await client.query(
      `EXPLAIN (FORMAT JSON) EXECUTE plan_probe('{${keys.join(',')}}', ${args()})`,
    );
    return indexes(rows[0]['QUERY PLAN'][0].Plan);
  } finally {
    await client.query('DEALLOCATE ALL').catch(() => undefined);
    await client.query('RESET plan_cache_mode').catch(() => undefined);
    client.release();
  }
}

beforeAll(async () => {
  tier = new PostgresTier({ pool, schema, migrate: true, sweepIntervalMs: 0, operationTimeoutMs: 10_000 });
  await tier.init();
  const now = Date.now();
  for (let i = 0; i < ROWS; i += 250) {
    await tier.setMany(
      Array.from({ length: 250 }, (_, j) => ({
        key: `plan:${i + j}`,
        entry: { value: { n: i + j }, freshUntil: now + 60_000, staleUntil: now + 60_000, createdAt: now },
      })),
    );
  }
});

afterAll(async () => {
  await tier.close();
  await dropSchema(pool, schema);
  await pool.end();
});

describe('batch lookup plans', () => {
  it('never read the stale_until index (every live row) to find a batch of keys, with or without statistics', async () => {
    // Without statistics (autovacuum off or not run yet), then with them: on a small analyzed table
    // the generic plan of `stale_until > $2` as an index condition scanned every live row.
    for (const analyzed of [false, true]) {
      if (analyzed) await pool.query(`ANALYZE "${schema}".${ENTRIES_TABLE}`);
      for (const statement of ['getMany', 'expire', 'tombstone'] as const) {
        for (const mode of ['force_generic_plan', 'force_custom_plan'] as const) {
          const used = await planIndexes(statement, mode);
          expect(
            used.filter((name) => name.includes('stale_until')),
            `${statement}, ${mode}, analyzed: ${analyzed}`,
          ).toEqual([]);
        }
      }
    }
    // And the answers are the same as before: live rows found, missing keys missing.
    const got = await tier.getMany(['plan:1', 'plan:nope', 'plan:999']);
    expect(got.map((e) => e?.value)).toEqual([{ n: 1 }, undefined, { n: 999 }]);
  });
});
