import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The test database (a real PostgreSQL 15 on loopback). */
export const DATABASE_URL = process.env.BGC_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema name unique to this run, so parallel test runs never collide. */
export function uniqueSchema(label: string): string {
  return `bgc_test_${label}_${randomBytes(4).toString('hex')}`;
}

/** Drops a schema this run created. */
export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** A pool on the test database. */
export function testPool(max = 5): pg.Pool {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max });
  pool.on('error', () => {});
  return pool;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
