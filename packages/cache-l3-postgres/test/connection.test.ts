import { nextVersion } from '@bgc/cache-core/internal';
import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { type L3Database, PostgresTier } from '../src/index.js';
import { openConnection } from '../src/internal.js';
import { dropSchema, testPool, uniqueSchema } from './helpers.js';

const pool = testPool(3);
const schema = uniqueSchema('conn');

afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

describe('a drizzle database whose driver client is not reachable', () => {
  // A drizzle database without `$client` (a wrapper, another driver): the tier falls back to drizzle's execute.
  const db = drizzle({ client: pool }) as unknown as L3Database;
  const hidden = new Proxy(db, {
    get: (target, property) => (property === '$client' ? undefined : Reflect.get(target, property)),
  }) as L3Database;

  it('serves every operation through drizzle, with $n parameters and array rows', async () => {
    const connection = await openConnection({ db: hidden });
    expect(connection.driver).toBe('drizzle');
    expect(await connection.query('SELECT $1::int + $2::int AS n', [2, 3])).toEqual([{ n: 5 }]);
    expect(
      await connection.query('SELECT $1::text AS a, $2::text[] AS b', ['x', ['y', 'z']], undefined, {
        arrays: true,
      }),
    ).toEqual([['x', ['y', 'z']]]);
    const tier = new PostgresTier({ db: hidden, schema, migrate: true, sweepIntervalMs: 0 });
    expect(tier.scope).toBe('shared');
    const now = Date.now();
    const v = nextVersion();
    await tier.setMany([
      {
        key: 'a',
        entry: { value: new Map([[1, 'x']]), freshUntil: now + 60_000, staleUntil: now + 60_000, version: v },
      },
      { key: 'b', entry: { value: 2, freshUntil: now + 60_000, staleUntil: now + 60_000, version: v } },
    ]);
    expect((await tier.get('a'))?.value).toEqual(new Map([[1, 'x']]));
    expect((await tier.getMany(['b', 'a', 'c'])).map((e) => e?.version)).toEqual([v, v, undefined]);
    expect(await tier.expire(['a'], v)).toBe(1);
    expect(await tier.delete('b', { version: nextVersion(), tombstoneMs: 60_000 })).toBe(true);
    await tier.set('b', { value: 'late', freshUntil: now + 60_000, staleUntil: now + 60_000, version: v });
    expect(await tier.get('b')).toBeUndefined();
    await tier.clear();
    expect(await tier.get('a')).toBeUndefined();
    await tier.close();
  });
});
