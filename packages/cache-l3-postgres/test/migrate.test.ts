import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BgcCacheError } from '@bgc/cache-core';
import { drizzle } from 'drizzle-orm/node-postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { type L3Database, migrate } from '../src/index.js';
import { defaultMigrationsDir, MIGRATIONS_TABLE, openConnection } from '../src/internal.js';
import { dropSchema, testPool, uniqueSchema } from './helpers.js';

const admin = testPool(2);
const created: string[] = [];
const schema = (label: string) => {
  const s = uniqueSchema(label);
  created.push(s);
  return s;
};

afterAll(async () => {
  for (const s of created) await dropSchema(admin, s);
  await admin.end();
});

describe('migrate', () => {
  it('ships numbered SQL files next to the sources and the build', async () => {
    expect(defaultMigrationsDir()).toMatch(/cache-l3-postgres[\\/]migrations$/);
    expect(await readFile(join(defaultMigrationsDir(), '0001_cache_entries.sql'), 'utf8')).toMatch(
      /CREATE TABLE IF NOT EXISTS bgc_cache_entries/,
    );
  });

  it('two processes migrating one schema at once both succeed; the files are applied once', async () => {
    const s = schema('mig');
    const poolA = testPool(2);
    const poolB = testPool(2);
    const dbA = drizzle({ client: poolA }) as unknown as L3Database;
    const dbB = drizzle({ client: poolB }) as unknown as L3Database;
    const [a, b] = await Promise.all([migrate({ db: dbA, schema: s }), migrate({ db: dbB, schema: s })]);
    expect([a.applied.length, b.applied.length].sort()).toEqual([0, 4]);
    expect(a.alreadyApplied + b.alreadyApplied).toBe(4);
    const { rows } = await admin.query(
      `SELECT version, name FROM "${s}".${MIGRATIONS_TABLE} ORDER BY version`,
    );
    expect(rows).toEqual([
      { version: 1, name: '0001_cache_entries.sql' },
      { version: 2, name: '0002_comexstat_aggregates.sql' },
      { version: 3, name: '0003_entry_versions.sql' },
      { version: 4, name: '0004_entry_tags.sql' },
    ]);
    // And again: nothing to do.
    expect(await migrate({ db: dbA, schema: s })).toEqual({ applied: [], alreadyApplied: 4 });
    await poolA.end();
    await poolB.end();
  });

  it('refuses a migration file changed after it was applied, and rolls back a failing one', async () => {
    const s = schema('mig_bad');
    const dir = await mkdtemp(join(tmpdir(), 'bgc-l3-mig-'));
    const connection = await openConnection({ pool: admin });
    try {
      await writeFile(join(dir, '0001_one.sql'), 'CREATE TABLE one (id int);');
      expect((await migrate({ db: connection.db, schema: s, migrationsDir: dir })).applied).toEqual([
        '0001_one.sql',
      ]);
      await writeFile(join(dir, '0001_one.sql'), 'CREATE TABLE one (id bigint);');
      const changed = await migrate({ db: connection.db, schema: s, migrationsDir: dir }).catch(
        (e: unknown) => e,
      );
      expect(BgcCacheError.isInstance(changed) && changed.code).toBe('E_L3_MIGRATION');
      expect((changed as Error).message).toMatch(/changed after it was applied/);

      await writeFile(join(dir, '0001_one.sql'), 'CREATE TABLE one (id int);');
      await writeFile(
        join(dir, '0002_two.sql'),
        'CREATE TABLE two (id int);\n--> statement-breakpoint\nSELECT no_such_function();',
      );
      const failed = await migrate({ db: connection.db, schema: s, migrationsDir: dir }).catch(
        (e: unknown) => e,
      );
      expect((failed as BgcCacheError).code).toBe('E_L3_MIGRATION');
      expect((failed as Error).message).toMatch(/rolled back/);
      const { rows } = await admin.query(`SELECT to_regclass($1) AS t`, [`${s}.two`]);
      expect(rows[0].t).toBeNull();
    } finally {
      await connection.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses invalid schema names before touching the database', async () => {
    const connection = await openConnection({ pool: admin });
    await expect(migrate({ db: connection.db, schema: 'Robert"); DROP' })).rejects.toThrow(
      /not a valid schema name/,
    );
  });
});
