import {
  bigint,
  boolean,
  index,
  pgSchema,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';
import { ConfigError } from '@bgc/cache-core';

/** Name of the key/value table created by the migrations. */
export const ENTRIES_TABLE = 'bgc_cache_entries';
/** Name of the one-row table holding the version of the last `clear()` of a schema. */
export const STATE_TABLE = 'bgc_cache_state';
/** Name of the ComexStat rows table created by the migrations. */
export const COMEXSTAT_ROWS_TABLE = 'comexstat_rows';
/** Name of the materialized view of totals per (flow, NCM, country) over the last 12 months. */
export const TOP_VIEW = 'comexstat_top_ncm_country';
/** Name of the migrations bookkeeping table. */
export const MIGRATIONS_TABLE = 'bgc_l3_migrations';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a PostgreSQL schema name (lower-case letters, digits, `_`, at most 63 characters), so it
 * can be quoted into SQL safely.
 * @throws {ConfigError} when the name does not match.
 */
export function validateSchemaName(schema: string): string {
  if (!IDENTIFIER.test(schema)) {
    throw new ConfigError(
      'schema',
      `${JSON.stringify(schema)} is not a valid schema name; use lower-case letters, digits and _ (max 63)`,
    );
  }
  return schema;
}

/** Builds the drizzle tables of the package in `schema` (`'public'` uses unqualified `pgTable`). */
function buildTables(schema: string) {
  // Typed as pgTable: the schema only changes the generated SQL, not the column types.
  const table = (schema === 'public' ? pgTable : pgSchema(schema).table) as typeof pgTable;
  const entries = table(
    ENTRIES_TABLE,
    {
      key: text('key').primaryKey(),
      fullKey: text('full_key'),
      /** The value's text (see `encoding`); `NULL` marks a tombstone. */
      value: text('value'),
      freshUntil: bigint('fresh_until', { mode: 'number' }).notNull(),
      staleUntil: bigint('stale_until', { mode: 'number' }).notNull(),
      createdAt: bigint('created_at', { mode: 'number' }).notNull(),
      updatedAt: bigint('updated_at', { mode: 'number' }).notNull(),
      /** JSON text of the entry's flat `meta` record. */
      meta: text('meta'),
      /** The entry's (or tombstone's) version; 0 for unversioned writes. */
      version: bigint('version', { mode: 'number' }).notNull().default(0),
      /** The fresh lifetime the entry was loaded with, before any cap. */
      ttlMs: bigint('ttl_ms', { mode: 'number' }),
      /** 0: plain JSON (rows from before migration 0003); 1: the core's value codec. */
      encoding: smallint('encoding').notNull().default(0),
      /** JSON text of the entry's tag list (migration 0004); `NULL` without tags. */
      tags: text('tags'),
    },
    (t) => [index('bgc_cache_entries_stale_until_idx').on(t.staleUntil)],
  );
  const comexstatRows = table(
    COMEXSTAT_ROWS_TABLE,
    {
      flow: text('flow').$type<ComexStatFlow>().notNull(),
      year: smallint('year').notNull(),
      month: smallint('month').notNull(),
      ncm: text('ncm').notNull(),
      countryCode: text('country_code').notNull(),
      fob: bigint('fob', { mode: 'number' }).notNull(),
      kg: bigint('kg', { mode: 'number' }).notNull(),
      updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
    },
    (t) => [primaryKey({ columns: [t.flow, t.year, t.month, t.ncm, t.countryCode] })],
  );
  const state = table(STATE_TABLE, {
    id: boolean('id').primaryKey().default(true),
    clearedVersion: bigint('cleared_version', { mode: 'number' }).notNull().default(0),
  });
  return { entries, comexstatRows, state };
}

/** `'exp'` (exports) or `'imp'` (imports), as in ComexStat's API. */
export type ComexStatFlow = 'exp' | 'imp';

/** The drizzle tables of the package, bound to one schema. */
export type L3Tables = ReturnType<typeof buildTables>;

const cache = new Map<string, L3Tables>();

/**
 * The drizzle tables (`entries`, `comexstatRows`, `state`) of the package in `schema`, for queries of your
 * own. The materialized view is read with SQL (see `AggregatesStore`).
 * @param schema PostgreSQL schema holding the tables. @default 'public'
 * @throws {ConfigError} when `schema` is not a valid schema name.
 */
export function l3Tables(schema = 'public'): L3Tables {
  let tables = cache.get(schema);
  if (!tables) {
    tables = buildTables(validateSchemaName(schema));
    cache.set(schema, tables);
  }
  return tables;
}
