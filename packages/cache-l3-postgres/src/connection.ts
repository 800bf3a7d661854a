import { ConfigError } from '@bgc/cache-core';
import type { PGlite } from '@electric-sql/pglite';
import { type SQL, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { Pool, PoolConfig } from 'pg';

/**
 * A drizzle database over PostgreSQL: `drizzle-orm/node-postgres` or `drizzle-orm/pglite`. Every
 * query of the package goes through it, so both drivers share one code path.
 */
export type L3Database = PgDatabase<PgQueryResultHKT, Record<string, unknown>>;

/**
 * Where the package's tables live. Give exactly one of `db`, `pool`, `connectionString`,
 * `pglite` or `dataDir`. A client you hand over (`db`, `pool`, `pglite`) is never closed; one the
 * package creates (`connectionString`, `dataDir`) is closed by `close()`.
 */
export interface L3ConnectionOptions {
  /** An existing drizzle database (node-postgres or PGlite). Never closed. */
  db?: L3Database;
  /** An existing `pg.Pool`. Never closed. */
  pool?: Pool;
  /** A PostgreSQL URL; the package creates a `pg.Pool` from it (and the pool options below). */
  connectionString?: string;
  /** Size of the created pool. @default 10 */
  poolSize?: number;
  /**
   * `statement_timeout` of the created pool's sessions, in ms: the server cancels longer statements.
   * @default 1000
   */
  statementTimeoutMs?: number;
  /** How long the created pool waits for a connection (new or free), in ms. @default 1000 */
  connectionTimeoutMs?: number;
  /** How long an idle connection of the created pool lives, in ms. @default 30000 */
  idleTimeoutMs?: number;
  /** TLS options of the created pool, as `pg` takes them (`true`, or `{ ca, rejectUnauthorized }`). @default undefined */
  ssl?: PoolConfig['ssl'];
  /** An existing PGlite instance (embedded PostgreSQL). Never closed. */
  pglite?: PGlite;
  /**
   * Data directory of an embedded PGlite database the package creates; `'memory://'` keeps it in
   * memory. Requires the optional peer `@electric-sql/pglite`.
   */
  dataDir?: string;
  /** PostgreSQL schema of the package's tables. Must exist unless migrations create it. @default 'public' */
  schema?: string;
  /** Called with errors of idle pooled connections (e.g. the server restarted) of a created pool. */
  onError?: (error: unknown) => void;
}

/**
 * Runs one parameterised statement (`$1`, `$2`...) straight on the driver and resolves its rows,
 * column names as in the SQL. `name` makes it a named prepared statement where the driver has them
 * (pg: parsed once per connection). The tier's hot paths use it instead of drizzle's row mapping.
 */
export type RawQuery = <R = Record<string, unknown>>(
  text: string,
  values: readonly unknown[],
  name?: string,
  options?: RawQueryOptions,
) => Promise<R[]>;

/** Options of a {@link RawQuery}. */
export interface RawQueryOptions {
  /**
   * Rows as arrays in the statement's column order, and column values as the server's text (pg:
   * no type parsing; the caller converts). The tier's reads use it: it is the cheapest row form.
   */
  arrays?: boolean;
}

/** An opened connection: the drizzle database and how to release what was created for it. */
export interface L3Connection {
  db: L3Database;
  /** The same connection, without drizzle: see {@link RawQuery}. */
  query: RawQuery;
  /** `'pg'`, `'pglite'`, or `'drizzle'` when a drizzle database was given. */
  driver: 'pg' | 'pglite' | 'drizzle';
  /** Closes the pool or PGlite instance the package created; a no-op for given clients. */
  close(): Promise<void>;
}

/** Runs a statement on a drizzle database (or transaction) and resolves its rows, whatever the driver. */
export async function queryRows<R>(db: Pick<L3Database, 'execute'>, query: SQL): Promise<R[]> {
  return ((await db.execute(query)) as unknown as { rows: R[] }).rows;
}

interface PgLikeClient {
  query(config: {
    text: string;
    values: unknown[];
    name?: string;
    rowMode?: 'array';
    types?: unknown;
  }): Promise<{ rows: unknown[] }>;
}
interface PgliteLikeClient {
  query(text: string, values: unknown[], options?: { rowMode?: 'array' }): Promise<{ rows: unknown[] }>;
  exec(text: string): Promise<unknown>;
}

/** A {@link RawQuery} on a pg `Pool` or `Client`. */
function pgQuery(client: PgLikeClient): RawQuery {
  return (text, values, name, options) =>
    client
      .query(
        options?.arrays
          ? { text, values: values as unknown[], name, rowMode: 'array', types: TEXT_TYPES }
          : { text, values: values as unknown[], name },
      )
      .then((r) => r.rows as never[]);
}

const keepText = (text: string): string => text;
/** pg type parsers that keep every column as the server's text (`null` stays `null`). */
const TEXT_TYPES = { getTypeParser: () => keepText };

/** A {@link RawQuery} on a PGlite instance (no named statements). */
function pgliteQuery(client: PgliteLikeClient): RawQuery {
  return (text, values, _name, options) =>
    client
      .query(text, values as unknown[], options?.arrays ? { rowMode: 'array' } : undefined)
      .then((r) => r.rows as never[]);
}

/** A {@link RawQuery} through drizzle's `execute`, for a drizzle database whose client is unknown. */
function drizzleQuery(db: L3Database): RawQuery {
  return async (text, values, _name, options) => {
    const parts = text.split(/\$(\d+)/);
    const chunks: SQL[] = [];
    for (let i = 0; i < parts.length; i++) {
      chunks.push(
        i % 2 === 0 ? sql.raw(parts[i] as string) : sql`${sql.param(values[Number(parts[i]) - 1])}`,
      );
    }
    const rows = await queryRows<Record<string, unknown>>(db, sql.join(chunks));
    return (options?.arrays ? rows.map((row) => Object.values(row)) : rows) as never[];
  };
}

/** The fastest {@link RawQuery} for a given drizzle database: its own client when it is pg or PGlite. */
function queryFor(db: L3Database): RawQuery {
  const client = (db as unknown as { $client?: unknown }).$client as Record<string, unknown> | undefined;
  if (client && typeof client.query === 'function') {
    if (typeof client.exec === 'function' && typeof client.transaction === 'function')
      return pgliteQuery(client as unknown as PgliteLikeClient);
    if (typeof client.connect === 'function') return pgQuery(client as unknown as PgLikeClient);
  }
  return drizzleQuery(db);
}

function interopDefault<T>(mod: T | { default: T }): T {
  return (mod as { default?: T }).default ?? (mod as T);
}

/**
 * Opens the connection described by `options`. Drivers are imported on demand, so `pg` and
 * `@electric-sql/pglite` are only needed when used.
 * @throws {ConfigError} when not exactly one source is given.
 */
export async function openConnection(options: L3ConnectionOptions): Promise<L3Connection> {
  const sources = (['db', 'pool', 'connectionString', 'pglite', 'dataDir'] as const).filter(
    (k) => options[k] !== undefined,
  );
  if (sources.length !== 1) {
    throw new ConfigError(
      'connection',
      sources.length === 0
        ? 'no database given; pass one of db, pool, connectionString, pglite or dataDir'
        : `${sources.join(' and ')} given together; pass only one of them`,
    );
  }
  const noop = async (): Promise<void> => {};
  if (options.db) return { db: options.db, query: queryFor(options.db), driver: 'drizzle', close: noop };
  if (options.pool || options.connectionString !== undefined) {
    const { drizzle } = await import('drizzle-orm/node-postgres');
    if (options.pool)
      return {
        db: drizzle({ client: options.pool }) as unknown as L3Database,
        query: pgQuery(options.pool as unknown as PgLikeClient),
        driver: 'pg',
        close: noop,
      };
    const pg = interopDefault(await import('pg'));
    const statementTimeout = options.statementTimeoutMs ?? 1000;
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      statement_timeout: statementTimeout,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 1000,
      idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
      ssl: options.ssl,
    });
    // Without a listener, an idle connection dropped by the server would crash the process.
    pool.on('error', (error) => options.onError?.(error));
    let closed: Promise<void> | undefined;
    return {
      db: drizzle({ client: pool }) as unknown as L3Database,
      query: pgQuery(pool as unknown as PgLikeClient),
      driver: 'pg',
      close: () => (closed ??= pool.end()),
    };
  }
  const { drizzle } = await import('drizzle-orm/pglite');
  if (options.pglite)
    return {
      db: drizzle({ client: options.pglite }) as unknown as L3Database,
      query: pgliteQuery(options.pglite as unknown as PgliteLikeClient),
      driver: 'pglite',
      close: noop,
    };
  const { PGlite } = await import('@electric-sql/pglite');
  const client = await PGlite.create(options.dataDir === 'memory://' ? undefined : options.dataDir);
  let closed: Promise<void> | undefined;
  return {
    db: drizzle({ client }) as unknown as L3Database,
    query: pgliteQuery(client as unknown as PgliteLikeClient),
    driver: 'pglite',
    close: () => (closed ??= client.close()),
  };
}
