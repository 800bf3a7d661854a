import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BgcCacheError } from '@bgc/cache-core';
import { sql } from 'drizzle-orm';
import { advisoryXactLock } from './advisory-locks.js';
import { type L3Database, queryRows } from './connection.js';
import { MIGRATIONS_TABLE, validateSchemaName } from './schema.js';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** Where to apply them (node-postgres or PGlite drizzle database). */
  db: L3Database;
  /** Schema that receives the tables; created if missing. @default 'public' */
  schema?: string;
  /** Directory of the numbered `.sql` files. @default the package's `migrations/` */
  migrationsDir?: string;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** File names applied by this call, in order. */
  applied: string[];
  /** How many were already applied before. */
  alreadyApplied: number;
}

/** One migration file. */
interface Migration {
  version: number;
  name: string;
  statements: string[];
  checksum: string;
}

/** Statements in a migration file are separated by this marker line (drizzle-kit's convention). */
const BREAKPOINT = /^-->\s*statement-breakpoint\s*$/m;

/**
 * The `migrations/` directory shipped with the package. Both `dist/*.js` (or `.cjs`) and `src/*.ts`
 * sit one level below the package root.
 */
export function defaultMigrationsDir(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'migrations');
}

async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+_[\w-]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (name) => {
      const text = await readFile(join(dir, name), 'utf8');
      return {
        version: Number.parseInt(name, 10),
        name,
        statements: text
          .split(BREAKPOINT)
          .map((s) => s.trim())
          .filter((s) => s.replace(/--.*$/gm, '').trim() !== ''),
        checksum: createHash('sha256').update(text).digest('hex'),
      };
    }),
  );
}

/**
 * Applies the package's SQL migrations that `schema` has not seen yet, in version order, in one
 * transaction. Idempotent, and safe when several processes start at once: a transaction-scoped
 * advisory lock makes them apply one after the other, and later ones find nothing left to do.
 * Applied versions are recorded in `bgc_l3_migrations` with a checksum.
 * @throws {BgcCacheError} `E_L3_MIGRATION` when an applied file was changed since, or a statement fails.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const schema = validateSchemaName(options.schema ?? 'public');
  const migrations = await loadMigrations(options.migrationsDir ?? defaultMigrationsDir());
  const schemaId = sql.identifier(schema);
  try {
    return await options.db.transaction(async (tx) => {
      // Waiting for another process's migration must not hit the pool's short statement_timeout.
      await tx.execute(sql`SET LOCAL statement_timeout = 300000`);
      await tx.execute(advisoryXactLock('migrate', schema, true));
      if (schema !== 'public') await tx.execute(sql`CREATE SCHEMA IF NOT EXISTS ${schemaId}`);
      // Unqualified names in the migration files land in `schema`.
      await tx.execute(sql`SET LOCAL search_path TO ${schemaId}, public`);
      await tx.execute(
        sql`CREATE TABLE IF NOT EXISTS ${sql.identifier(MIGRATIONS_TABLE)} (
          version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const done = await queryRows<{ version: number; checksum: string }>(
        tx,
        sql`SELECT version, checksum FROM ${sql.identifier(MIGRATIONS_TABLE)}`,
      );
      const applied = new Map(done.map((r) => [Number(r.version), r]));
      const result: MigrateResult = { applied: [], alreadyApplied: 0 };
      for (const m of migrations) {
        const previous = applied.get(m.version);
        if (previous) {
          if (previous.checksum !== m.checksum) {
            throw new BgcCacheError(
              'E_L3_MIGRATION',
              `Migration ${m.name} was changed after it was applied to schema "${schema}" (checksum differs); ship changes as a new numbered migration instead`,
            );
          }
          result.alreadyApplied++;
          continue;
        }
        for (const statement of m.statements) await tx.execute(sql.raw(statement));
        await tx.execute(
          sql`INSERT INTO ${sql.identifier(MIGRATIONS_TABLE)} (version, name, checksum) VALUES (${m.version}, ${m.name}, ${m.checksum})`,
        );
        result.applied.push(m.name);
      }
      return result;
    });
  } catch (error) {
    if (BgcCacheError.isInstance(error)) throw error;
    throw new BgcCacheError(
      'E_L3_MIGRATION',
      `Migrating schema "${schema}" failed and was rolled back: ${(error as Error).message}; check the database user's rights and the server logs`,
      { cause: error },
    );
  }
}
