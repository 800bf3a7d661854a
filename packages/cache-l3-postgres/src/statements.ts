import { type SQL, sql } from 'drizzle-orm';
import { NUMBERS_TEXT } from './row-decoder.js';
import { ENTRIES_TABLE, STATE_TABLE, validateSchemaName } from './schema.js';

/** A statement's text and, on pg, the name it is prepared under (once per connection). */
export interface NamedStatement {
  text: string;
  name: string;
}

/** The SQL of the tier's operations on one schema's entries table. */
export interface EntryStatements {
  /** `$1` key, `$2` now, `$3` maxValueBytes. */
  get: NamedStatement;
  /** `$1` keys (text[]), `$2` now, `$3` maxValueBytes. */
  getMany: NamedStatement;
  /** `$1..$9` the rows' columns as arrays, `$10` now, `$11` the rows' tags (JSON text or null). */
  upsert: NamedStatement;
  /** `$1` keys, `$2` now: unconditional delete of entries (tombstones kept). */
  deleteAll: NamedStatement;
  /** `$1` keys, `$2` now, `$3` version: delete of entries not newer than the version. */
  deleteOlder: NamedStatement;
  /** `$1` keys, `$2` full keys, `$3` now, `$4` version, `$5` tombstone stale-until. */
  tombstone: NamedStatement;
  /** `$1` key, `$2` version: drops the key's row when not newer (a refused write). */
  dropOlder: NamedStatement;
  /** `$1` keys, `$2` now, `$3` version or null. */
  expire: NamedStatement;
  /** The two statements of a clear, in one transaction. */
  clear(version: number): SQL[];
}

const cache = new Map<string, EntryStatements>();

// Columns of a read, in the order of `StoredRow` (row-decoder.ts). `value` is NULL when over the size bound: the row is never read into memory.
// octet_length of a text reads its stored size without decompressing it. The six numeric columns
// travel as one text (`NUMBERS_TEXT`): one field per row to send and parse instead of six (getMany(50)
// at c=16: ~6% more throughput than the columns apart, measured against a bare pg pool).
const READ_COLUMNS = `full_key, CASE WHEN octet_length(value) <= $3 THEN value END AS value,
  ${NUMBERS_TEXT} AS numbers, meta, tags`;

/**
 * The statements of the tier on `schema` (validated, then quoted). Names carry a hash of the schema
 * and of the statement version, since pg keeps a name's text per connection.
 */
export function entryStatements(schema: string): EntryStatements {
  let statements = cache.get(schema);
  if (statements) return statements;
  validateSchemaName(schema);
  const t = `"${schema}"."${ENTRIES_TABLE}"`;
  const state = `"${schema}"."${STATE_TABLE}"`;
  const suffix = `_${Buffer.from(schema).toString('hex').slice(0, 40)}`;
  const named = (name: string, text: string): NamedStatement => ({
    name: `bgc_l3v6_${name}${suffix}`,
    text,
  });
  statements = {
    get: named(
      'get',
      `SELECT ${READ_COLUMNS} FROM ${t} WHERE key = $1 AND stale_until > $2 AND value IS NOT NULL`,
    ),
    // `stale_until + 0`: the expiry is a filter on the rows the primary key finds, never an index
    // condition. Without it the planner may scan the stale_until index, i.e. every live row of the
    // table, for each batch: the generic plan of a small analyzed table does (~2 ms for 1,000 rows
    // instead of ~0.25 ms), and an unanalyzed one ANDs that whole index into a bitmap.
    getMany: named(
      'get_many',
      `SELECT ${READ_COLUMNS}, key FROM ${t} WHERE key = ANY($1::text[]) AND stale_until + 0 > $2 AND value IS NOT NULL`,
    ),
    // A versioned write lands only when not older than the last clear (read under FOR SHARE, so a
    // clear running now either waits for this write or is seen by it), and replaces only a row of a
    // version not higher than its own, or a dead one (entry or tombstone past its stale-until: the
    // sweeper has not come yet). Unversioned writes (version 0) are not ordered against clear.
    upsert: named(
      'upsert',
      `INSERT INTO ${t} AS t (key, full_key, value, fresh_until, stale_until, created_at, updated_at, meta, version, ttl_ms, encoding, tags)
SELECT u.key, u.full_key, u.value, u.fresh_until, u.stale_until, u.created_at, $10::bigint, u.meta, u.version, u.ttl_ms, 1, u.tags
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[], $8::bigint[], $9::bigint[], $11::text[])
  AS u(key, full_key, value, fresh_until, stale_until, created_at, meta, version, ttl_ms, tags)
WHERE u.version = 0 OR u.version >= COALESCE((SELECT s.cleared_version FROM ${state} s WHERE s.id FOR SHARE), 0)
ON CONFLICT (key) DO UPDATE SET full_key = excluded.full_key, value = excluded.value,
  fresh_until = excluded.fresh_until, stale_until = excluded.stale_until, created_at = excluded.created_at,
  updated_at = excluded.updated_at, meta = excluded.meta, version = excluded.version,
  ttl_ms = excluded.ttl_ms, encoding = excluded.encoding, tags = excluded.tags
WHERE t.version <= excluded.version OR t.stale_until <= $10::bigint`,
    ),
    deleteAll: named(
      'delete_all',
      `WITH d AS (DELETE FROM ${t} WHERE key = ANY($1::text[]) AND value IS NOT NULL RETURNING stale_until)
SELECT count(*) FILTER (WHERE stale_until > $2)::int AS n FROM d`,
    ),
    deleteOlder: named(
      'delete_older',
      `WITH d AS (DELETE FROM ${t} WHERE key = ANY($1::text[]) AND value IS NOT NULL AND version <= $3 RETURNING stale_until)
SELECT count(*) FILTER (WHERE stale_until > $2)::int AS n FROM d`,
    ),
    // The rows it replaces are locked first (FOR UPDATE), so the count is of entries this delete removed.
    // `stale_until + 0` here and in expire: found by the primary key only, as in getMany.
    tombstone: named(
      'tombstone',
      `WITH old AS (
  SELECT key FROM ${t} WHERE key = ANY($1::text[]) AND value IS NOT NULL AND stale_until + 0 > $3 AND version <= $4 FOR UPDATE
), up AS (
  INSERT INTO ${t} AS t (key, full_key, value, fresh_until, stale_until, created_at, updated_at, meta, version, ttl_ms, encoding)
  SELECT u.key, u.full_key, NULL, $3::bigint, $5::bigint, $3::bigint, $3::bigint, NULL, $4::bigint, NULL, 1
  FROM unnest($1::text[], $2::text[]) AS u(key, full_key)
  ON CONFLICT (key) DO UPDATE SET full_key = excluded.full_key, value = NULL, fresh_until = excluded.fresh_until,
    stale_until = excluded.stale_until, updated_at = excluded.updated_at, meta = NULL,
    version = excluded.version, ttl_ms = NULL, tags = NULL
  WHERE t.version <= excluded.version OR t.stale_until <= $3::bigint
  RETURNING 1
)
SELECT (SELECT count(*) FROM old)::int AS n, (SELECT count(*) FROM up)::int AS written`,
    ),
    dropOlder: named('drop_older', `DELETE FROM ${t} WHERE key = $1 AND value IS NOT NULL AND version <= $2`),
    expire: named(
      'expire',
      `UPDATE ${t} SET fresh_until = $2, updated_at = $2
WHERE key = ANY($1::text[]) AND value IS NOT NULL AND fresh_until > $2 AND stale_until + 0 > $2
  AND ($3::bigint IS NULL OR version <= $3::bigint)
RETURNING 1`,
    ),
    clear: (version) => [
      sql`INSERT INTO ${sql.raw(state)} AS s (id, cleared_version) VALUES (true, ${version})
          ON CONFLICT (id) DO UPDATE SET cleared_version = GREATEST(s.cleared_version, excluded.cleared_version)`,
      sql`DELETE FROM ${sql.raw(t)} WHERE version <= ${version}`,
    ],
  };
  cache.set(schema, statements);
  return statements;
}
