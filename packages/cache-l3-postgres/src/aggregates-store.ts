import { BgcCacheError, InvalidValueError } from '@bgc/cache-core';
import { type SQL, sql } from 'drizzle-orm';
import { advisoryXactLock } from './advisory-locks.js';
import {
  type L3Connection,
  type RawQuery,
  type L3ConnectionOptions,
  type L3Database,
  openConnection,
  queryRows,
} from './connection.js';
import { type DailyScheduleOptions, scheduleDaily } from './daily-schedule.js';
import { migrate } from './migrate.js';
import { COMEXSTAT_ROWS_TABLE, type ComexStatFlow, TOP_VIEW, validateSchemaName } from './schema.js';

/** One ComexStat row: totals of one (flow, year, month, NCM, country). */
export interface ComexStatRow {
  /** `'exp'` or `'imp'`. */
  flow: ComexStatFlow;
  /** Four-digit year. */
  year: number;
  /** 1-12. */
  month: number;
  /** NCM code, as text (keeps leading zeros), e.g. `"12019000"`. */
  ncm: string;
  /** ComexStat country code, as text (keeps leading zeros), e.g. `"160"`. */
  countryCode: string;
  /** FOB value in US dollars. */
  fob: number;
  /** Net weight in kg. */
  kg: number;
}

/** A ranked NCM, with its totals over the window. */
export interface TopNcm {
  ncm: string;
  /** FOB total in US dollars. */
  fob: number;
  /** Net weight total in kg. */
  kg: number;
}

/** A ranked country, with its totals over the window. */
export interface TopCountry {
  countryCode: string;
  /** FOB total in US dollars. */
  fob: number;
  /** Net weight total in kg. */
  kg: number;
}

/** A ranked (NCM, country) pair, with its totals over the window. */
export interface TopPair extends TopNcm {
  countryCode: string;
}

/** Filters of the top-N queries. */
export interface TopQueryOptions {
  /** Which flow to rank. @default 'exp' */
  flow?: ComexStatFlow;
}

/** What {@link AggregatesStore.refreshAggregates} did. */
export interface RefreshResult {
  /** `false` when another process held the refresh lock (it is refreshing right now). */
  refreshed: boolean;
  /** Whether `CONCURRENTLY` was used (not possible on the first populate). */
  concurrently: boolean;
  /** Time spent, in ms. */
  durationMs: number;
}

/** Options of {@link AggregatesStore}: a connection (see {@link L3ConnectionOptions}) and the refresh schedule. */
export interface AggregatesStoreOptions extends L3ConnectionOptions {
  /** Apply the package's migrations on first use. @default false */
  migrate?: boolean;
  /**
   * Refresh the view every day in this process (for single-instance deployments; with a
   * Kubernetes CronJob leave it off). `true` means 03:00 local time. The advisory lock keeps
   * concurrent refreshes to one. @default false
   */
  schedule?: boolean | DailyScheduleOptions;
  /** Longest a refresh may run on the server, in ms (its `statement_timeout`). @default 600000 */
  refreshTimeoutMs?: number;
}

const CHUNK = 1000;
/** SQLSTATEs of a database that was never migrated: undefined table, undefined schema. */
const MISSING = new Set(['42P01', '3F000']);

/**
 * The ComexStat aggregates: the rows table the connector fills, and the materialized view of
 * totals per (flow, NCM, country) over the last 12 months of data, read by the cache-warming job.
 *
 * ```ts
 * const store = new AggregatesStore({ pool, migrate: true });
 * await store.upsertComexStatRows(rows);
 * await store.refreshAggregates();
 * const ncms = await store.topNcms(50); // then topCountries(10)
 * ```
 */
export class AggregatesStore {
  /** The PostgreSQL schema of the tables. */
  readonly schema: string;
  private readonly options: AggregatesStoreOptions;
  private connection: Promise<L3Connection> | undefined;
  private stopSchedule: (() => void) | undefined;
  private closed = false;

  constructor(options: AggregatesStoreOptions) {
    this.options = options;
    // Checked here (a ConfigError for a bad name): the upsert's text quotes it as it is.
    this.schema = validateSchemaName(options.schema ?? 'public');
    if (options.schedule) {
      const schedule = options.schedule === true ? {} : options.schedule;
      this.stopSchedule = scheduleDaily(
        () => this.refreshAggregates().catch((error) => options.onError?.(error)),
        schedule,
      );
    }
  }

  /**
   * Inserts or updates rows (by flow, year, month, NCM and country), 1,000 per statement.
   * Resolves the number of rows written (a row given twice counts once; the last one wins).
   * @throws {InvalidValueError} for a row with a bad flow, month, year, code or amount.
   * @throws {BgcCacheError} `E_L3_AGGREGATES` when the database fails.
   */
  async upsertComexStatRows(rows: readonly ComexStatRow[]): Promise<number> {
    // One statement cannot update a row twice: the last row of each (flow, year, month, ncm, country) wins.
    const unique = new Map<string, ComexStatRow>();
    for (const row of rows) {
      validateRow(row);
      const id = `${row.flow}|${row.year}|${row.month}|${row.ncm}|${row.countryCode}`;
      unique.delete(id);
      unique.set(id, row);
    }
    const distinct = [...unique.values()];
    const text = this.upsertText();
    return this.runRaw('upsert rows', async (query) => {
      // One statement per CHUNK rows, its columns as seven array parameters (unnest): building a
      // 1,000-row VALUES list through the query builder cost ~35 ms of CPU per statement, which
      // stalled the event loop when a merged answer of ~10,000 rows landed.
      for (let i = 0; i < distinct.length; i += CHUNK) {
        const chunk = distinct.slice(i, i + CHUNK);
        await query(text, [
          chunk.map((r) => r.flow),
          chunk.map((r) => r.year),
          chunk.map((r) => r.month),
          chunk.map((r) => r.ncm),
          chunk.map((r) => r.countryCode),
          chunk.map((r) => Math.round(r.fob)),
          chunk.map((r) => Math.round(r.kg)),
        ]);
      }
      return distinct.length;
    });
  }

  private upsertText(): string {
    const t = `"${this.schema}"."${COMEXSTAT_ROWS_TABLE}"`;
    return `INSERT INTO ${t} (flow, year, month, ncm, country_code, fob, kg, updated_at)
SELECT u.flow, u.year, u.month, u.ncm, u.country_code, u.fob, u.kg, now()
FROM unnest($1::text[], $2::smallint[], $3::smallint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[])
  AS u(flow, year, month, ncm, country_code, fob, kg)
ON CONFLICT (flow, year, month, ncm, country_code) DO UPDATE
  SET fob = excluded.fob, kg = excluded.kg, updated_at = now()`;
  }

  /**
   * Refreshes the view: `REFRESH MATERIALIZED VIEW CONCURRENTLY` (readers are never blocked), or a
   * plain refresh the first time, when the view was never populated. Under an advisory lock: when
   * another process is refreshing, resolves `{ refreshed: false }` at once.
   * @throws {BgcCacheError} `E_L3_AGGREGATES` when the database fails.
   */
  async refreshAggregates(): Promise<RefreshResult> {
    const started = performance.now();
    const view = sql`${sql.identifier(this.schema)}.${sql.identifier(TOP_VIEW)}`;
    return this.run('refresh', (db) =>
      db.transaction(async (tx) => {
        const [lock] = await queryRows<{ locked: boolean }>(
          tx,
          advisoryXactLock('refresh', this.schema, false),
        );
        if (lock?.locked !== true) {
          return { refreshed: false, concurrently: false, durationMs: performance.now() - started };
        }
        await tx.execute(
          sql.raw(
            `SET LOCAL statement_timeout = ${Math.max(0, Math.floor(this.options.refreshTimeoutMs ?? 600_000))}`,
          ),
        );
        const [state] = await queryRows<{ ispopulated: boolean }>(
          tx,
          sql`SELECT ispopulated FROM pg_matviews WHERE schemaname = ${this.schema} AND matviewname = ${TOP_VIEW}`,
        );
        const concurrently = state?.ispopulated === true;
        await tx.execute(
          concurrently
            ? sql`REFRESH MATERIALIZED VIEW CONCURRENTLY ${view}`
            : sql`REFRESH MATERIALIZED VIEW ${view}`,
        );
        return { refreshed: true, concurrently, durationMs: performance.now() - started };
      }),
    );
  }

  /**
   * The `n` NCMs with the highest FOB over the window, highest first. Empty until the first refresh.
   * @throws {BgcCacheError} `E_L3_AGGREGATES` when the database fails.
   */
  async topNcms(n: number, options: TopQueryOptions = {}): Promise<TopNcm[]> {
    const rows = await this.readView<{ ncm: string; fob: string | number; kg: string | number }>(
      sql`SELECT ncm, sum(fob)::bigint AS fob, sum(kg)::bigint AS kg FROM ${this.view()}
          WHERE flow = ${options.flow ?? 'exp'} GROUP BY ncm ORDER BY sum(fob) DESC, ncm LIMIT ${limit(n)}`,
    );
    return rows.map((r) => ({ ncm: r.ncm, fob: Number(r.fob), kg: Number(r.kg) }));
  }

  /**
   * The `n` countries with the highest FOB over the window, highest first. Empty until the first refresh.
   * @throws {BgcCacheError} `E_L3_AGGREGATES` when the database fails.
   */
  async topCountries(n: number, options: TopQueryOptions = {}): Promise<TopCountry[]> {
    const rows = await this.readView<{ country_code: string; fob: string | number; kg: string | number }>(
      sql`SELECT country_code, sum(fob)::bigint AS fob, sum(kg)::bigint AS kg FROM ${this.view()}
          WHERE flow = ${options.flow ?? 'exp'} GROUP BY country_code ORDER BY sum(fob) DESC, country_code LIMIT ${limit(n)}`,
    );
    return rows.map((r) => ({ countryCode: r.country_code, fob: Number(r.fob), kg: Number(r.kg) }));
  }

  /**
   * The `n` (NCM, country) pairs with the highest FOB over the window, highest first.
   * @throws {BgcCacheError} `E_L3_AGGREGATES` when the database fails.
   */
  async topPairs(n: number, options: TopQueryOptions = {}): Promise<TopPair[]> {
    const rows = await this.readView<{
      ncm: string;
      country_code: string;
      fob: string | number;
      kg: string | number;
    }>(
      sql`SELECT ncm, country_code, fob, kg FROM ${this.view()}
          WHERE flow = ${options.flow ?? 'exp'} ORDER BY fob DESC, ncm, country_code LIMIT ${limit(n)}`,
    );
    return rows.map((r) => ({
      ncm: r.ncm,
      countryCode: r.country_code,
      fob: Number(r.fob),
      kg: Number(r.kg),
    }));
  }

  /**
   * The last month of the window (the latest month with data for `flow`) as of the last refresh,
   * or `undefined` before it. The window is the 12 months ending there.
   */
  async latestPeriod(options: TopQueryOptions = {}): Promise<{ year: number; month: number } | undefined> {
    const rows = await this.readView<{ last_year: number; last_month: number }>(
      sql`SELECT last_year, last_month FROM ${this.view()} WHERE flow = ${options.flow ?? 'exp'} LIMIT 1`,
    );
    const row = rows[0];
    return row === undefined ? undefined : { year: Number(row.last_year), month: Number(row.last_month) };
  }

  /** The drizzle database the store uses. */
  async database(): Promise<L3Database> {
    return (await this.connect()).db;
  }

  /** Stops the schedule and closes the connection the store created (never a given one). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.stopSchedule?.();
    const connection = await this.connection?.catch(() => undefined);
    await connection?.close();
  }

  private view() {
    return sql`${sql.identifier(this.schema)}.${sql.identifier(TOP_VIEW)}`;
  }

  private connect(): Promise<L3Connection> {
    this.connection ??= (async () => {
      const connection = await openConnection(this.options);
      if (this.options.migrate) await migrate({ db: connection.db, schema: this.schema });
      return connection;
    })().catch((error) => {
      this.connection = undefined;
      throw error;
    });
    return this.connection;
  }

  private async readView<R>(query: SQL): Promise<R[]> {
    return this.run('read the aggregates', async (db) => {
      try {
        return await queryRows<R>(db, query);
      } catch (error) {
        // 55000: the view exists but was never refreshed; nothing to rank yet.
        if (sqlState(error) === '55000') return [];
        throw error;
      }
    });
  }

  private run<T>(what: string, fn: (db: L3Database) => Promise<T>): Promise<T> {
    return this.runRaw(what, async (_query, db) => fn(db));
  }

  private async runRaw<T>(what: string, fn: (query: RawQuery, db: L3Database) => Promise<T>): Promise<T> {
    if (this.closed)
      throw new BgcCacheError('E_L3_AGGREGATES', `Cannot ${what}: the aggregates store is closed`);
    try {
      const connection = await this.connect();
      return await fn(connection.query, connection.db);
    } catch (error) {
      if (BgcCacheError.isInstance(error)) throw error;
      const root = rootError(error);
      throw new BgcCacheError(
        'E_L3_AGGREGATES',
        `Could not ${what} in schema "${this.schema}": ${root.message}${MISSING.has(sqlState(error) ?? '') ? '; run `bgc-l3 migrate` first (or pass migrate: true)' : ''}`,
        { cause: error },
      );
    }
  }
}

function limit(n: number): number {
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidValueError(`A top-N size must be a non-negative integer, got ${n}`);
  return n;
}

function rootError(error: unknown): Error {
  let e = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e : new Error(String(e));
}

function sqlState(error: unknown): string | undefined {
  for (let e = error, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function validateRow(row: ComexStatRow): void {
  const problem =
    row.flow !== 'exp' && row.flow !== 'imp'
      ? `flow must be 'exp' or 'imp', got ${JSON.stringify(row.flow)}`
      : !Number.isInteger(row.year) || row.year < 1900 || row.year > 9999
        ? `year ${row.year} is not a four-digit year`
        : !Number.isInteger(row.month) || row.month < 1 || row.month > 12
          ? `month ${row.month} is not in 1-12`
          : typeof row.ncm !== 'string' ||
              row.ncm === '' ||
              typeof row.countryCode !== 'string' ||
              row.countryCode === ''
            ? 'ncm and countryCode must be non-empty strings'
            : !Number.isFinite(row.fob) || !Number.isFinite(row.kg)
              ? 'fob and kg must be finite numbers'
              : undefined;
  if (problem) throw new InvalidValueError(`Invalid ComexStat row ${JSON.stringify(row)}: ${problem}`);
}
