import {
  type CacheEntry,
  type CacheOperation,
  capEntry,
  InvalidValueError,
  SerializationError,
  type Tier,
  TierError,
  TimeoutError,
  type TierWrite,
} from '@bgc/cache-core';
import { and, eq, gt, sql } from 'drizzle-orm';
import secureJson from 'secure-json-parse';
import { advisoryXactLock } from './advisory-locks.js';
import {
  type L3Connection,
  type L3ConnectionOptions,
  type L3Database,
  openConnection,
  queryRows,
} from './connection.js';
import { DEFAULT_MAX_KEY_BYTES, storageKey } from './key-encoding.js';
import { migrate } from './migrate.js';
import { L3_ERROR_CODES, toTierError } from './postgres-errors.js';
import { type L3Tables, l3Tables } from './schema.js';

/** Options of {@link PostgresTier}: where the table lives (see {@link L3ConnectionOptions}) and how the tier behaves. */
export interface PostgresTierOptions extends L3ConnectionOptions {
  /** Name in logs and errors. @default 'postgres' */
  name?: string;
  /** Longest lifetime kept, in ms: entries are shortened to it. @default 30 days */
  maxTtlMs?: number;
  /** Apply the package's migrations on start-up (see `migrate`). @default false */
  migrate?: boolean;
  /**
   * Longest an operation may take, in ms, before it rejects with `E_L3_TIMEOUT` (the statement may
   * still finish on the server; `statementTimeoutMs` bounds that). 0 disables. @default 1000
   */
  operationTimeoutMs?: number;
  /** How often the sweeper deletes expired rows, in ms; 0 disables it. @default 60000 */
  sweepIntervalMs?: number;
  /** Rows deleted per sweeper statement (small batches keep locks short). @default 500 */
  sweepBatchSize?: number;
  /** Keys longer than this (UTF-8 bytes) are stored as a sha256 hash. @default 512 */
  maxKeyBytes?: number;
  /** Clock used for expiry, in epoch ms. @default Date.now */
  now?: () => number;
}

/** What one {@link PostgresTier.sweepExpired} call did. */
export interface SweepResult {
  /** Expired rows deleted. */
  deleted: number;
  /** `true` when another process held the sweeper lock, so this one did nothing more. */
  skipped: boolean;
}

/** A row as the read statements return it: JSON as text, decoded here with prototype-poisoning checks. */
interface EntryRow {
  key: string;
  fullKey: string | null;
  value: string;
  freshUntil: number;
  staleUntil: number;
  createdAt: number;
  meta: string | null;
}

const DAY_MS = 86_400_000;
const SAFE_JSON = { protoAction: 'error', constructorAction: 'error' } as const;

/** Builds the prepared read statements of one schema (named per schema: PostgreSQL caches them per connection). */
function prepareReads(db: L3Database, tables: L3Tables, schema: string) {
  const t = tables.entries;
  const columns = {
    key: t.key,
    fullKey: t.fullKey,
    value: sql<string>`${t.value}::text`,
    freshUntil: t.freshUntil,
    staleUntil: t.staleUntil,
    createdAt: t.createdAt,
    meta: sql<string | null>`${t.meta}::text`,
  };
  const suffix = schema === 'public' ? '' : `_${Buffer.from(schema).toString('hex').slice(0, 40)}`;
  return {
    get: db
      .select(columns)
      .from(t)
      .where(and(eq(t.key, sql.placeholder('key')), gt(t.staleUntil, sql.placeholder('now'))))
      .prepare(`bgc_l3_get${suffix}`),
    getMany: db
      .select(columns)
      .from(t)
      .where(
        and(
          sql`${t.key} = ANY(${sql.placeholder('keys')}::text[])`,
          gt(t.staleUntil, sql.placeholder('now')),
        ),
      )
      .prepare(`bgc_l3_get_many${suffix}`),
  };
}

interface Ready {
  db: L3Database;
  reads: ReturnType<typeof prepareReads>;
}

/**
 * The L3 tier: a PostgreSQL table (`bgc_cache_entries`) read and written through drizzle, over a
 * `pg` pool or an embedded PGlite database. Level `'l3'`, scope `'shared'`.
 *
 * - Rows past their stale-until time are never returned; a sweeper deletes them in small batches,
 *   one process at a time (advisory lock), and {@link PostgresTier.sweepExpired} runs it on demand.
 * - Every operation is bounded by `operationTimeoutMs`; failures reject with a `TierError` whose
 *   code is one of `L3_ERROR_CODES`. A stored value that cannot be decoded safely is a miss,
 *   reported to `onError`.
 * - Keys longer than `maxKeyBytes` are stored hashed; the full key is kept and checked on read.
 *
 * ```ts
 * const tier = new PostgresTier({ connectionString: process.env.DATABASE_URL, migrate: true });
 * ```
 */
export class PostgresTier implements Tier {
  /** Name in logs and errors. */
  readonly name: string;
  /** Always `'l3'`. */
  readonly level = 'l3' as const;
  /** Always `'shared'`: every instance sees the same table. */
  readonly scope = 'shared' as const;
  /** Longest lifetime kept, in ms. */
  readonly maxTtlMs: number;
  /** The PostgreSQL schema of the table. */
  readonly schema: string;

  private readonly options: PostgresTierOptions;
  private readonly tables: L3Tables;
  private readonly timeoutMs: number;
  private readonly maxKeyBytes: number;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  private connection: L3Connection | undefined;
  private opening: Promise<Ready> | undefined;
  private state: Ready | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private sweeping = false;
  private closed: Promise<void> | undefined;

  constructor(options: PostgresTierOptions) {
    this.options = options;
    this.name = options.name ?? 'postgres';
    this.maxTtlMs = options.maxTtlMs ?? 30 * DAY_MS;
    this.schema = options.schema ?? 'public';
    this.tables = l3Tables(this.schema);
    this.timeoutMs = options.operationTimeoutMs ?? 1000;
    this.maxKeyBytes = options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
    this.now = options.now ?? Date.now;
    this.onError =
      options.onError ?? ((error) => process.emitWarning(error instanceof Error ? error : String(error)));
    const interval = options.sweepIntervalMs ?? 60_000;
    if (interval > 0) {
      this.sweepTimer = setInterval(() => this.backgroundSweep(), interval);
      this.sweepTimer.unref();
    }
  }

  /**
   * Opens the connection (and applies migrations with `migrate: true`). Operations call it
   * themselves; call it at start-up to fail fast. A failed start is retried by the next call.
   * @throws {TierError} when the database cannot be reached or migrated.
   */
  async init(): Promise<void> {
    try {
      await this.ready();
    } catch (error) {
      throw toTierError(this.name, 'get', error);
    }
  }

  /** The drizzle database the tier uses (to share it with an `AggregatesStore`, for example). */
  async database(): Promise<L3Database> {
    return (await this.ready()).db;
  }

  /** Reads one entry. Resolves `undefined` on a miss, an expired row, or a value that fails to decode. */
  async get(key: string): Promise<CacheEntry | undefined> {
    const { id } = storageKey(key, this.maxKeyBytes);
    return this.run('get', async (s) => {
      const rows = (await s.reads.get.execute({ key: id, now: this.now() })) as EntryRow[];
      return rows[0] === undefined ? undefined : this.decode(key, rows[0]);
    });
  }

  /** Reads many keys in one statement (`key = ANY($1)`). Resolves an array aligned with `keys`. */
  async getMany(keys: readonly string[]): Promise<(CacheEntry | undefined)[]> {
    if (keys.length === 0) return [];
    const ids = keys.map((key) => storageKey(key, this.maxKeyBytes).id);
    return this.run('get_many', async (s) => {
      const rows = (await s.reads.getMany.execute({
        keys: [...new Set(ids)],
        now: this.now(),
      })) as EntryRow[];
      const byId = new Map(rows.map((r) => [r.key, r]));
      return keys.map((key, i) => {
        const row = byId.get(ids[i] as string);
        return row === undefined ? undefined : this.decode(key, row);
      });
    });
  }

  /**
   * Stores one entry (`INSERT ... ON CONFLICT DO UPDATE`), shortened to {@link PostgresTier.maxTtlMs}.
   * @throws {InvalidValueError} when the value cannot be encoded as JSON (undefined, cyclic, BigInt).
   */
  async set(key: string, entry: CacheEntry): Promise<void> {
    const row = this.encode(key, entry);
    await this.run('set', (s) => this.upsert(s.db, [row]));
  }

  /** Stores many entries in one `INSERT ... ON CONFLICT DO UPDATE`; a key written twice keeps its last entry. */
  async setMany(writes: readonly TierWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const rows = new Map<string, ReturnType<PostgresTier['encode']>>();
    for (const w of writes) {
      const row = this.encode(w.key, w.entry);
      // One statement cannot update a row twice: keep the last write of each key.
      rows.delete(row.key);
      rows.set(row.key, row);
    }
    await this.run('set_many', (s) => this.upsert(s.db, [...rows.values()]));
  }

  /** Removes one key. Resolves `true` if it held a servable entry. */
  async delete(key: string): Promise<boolean> {
    return (await this.removeKeys('delete', [key])) > 0;
  }

  /** Removes many keys in one statement. Resolves how many held a servable entry. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.removeKeys('delete', keys);
  }

  /** Deletes every row of the tier's table (in its schema only). */
  async clear(): Promise<void> {
    await this.run('clear', async (s) => {
      await s.db.delete(this.tables.entries);
    });
  }

  /** Resolves when the server answers `SELECT 1` within the operation timeout. */
  async ping(): Promise<void> {
    await this.run('get', async (s) => {
      await s.db.execute(sql`SELECT 1`);
    });
  }

  /**
   * Deletes rows past their stale-until time, `sweepBatchSize` at a time, until none is left. Only
   * one process sweeps a schema at a time: when another holds the lock this call returns
   * `{ skipped: true }` at once.
   * @throws {TierError} when the database fails.
   */
  async sweepExpired(): Promise<SweepResult> {
    const batch = this.options.sweepBatchSize ?? 500;
    const t = this.tables.entries;
    let deleted = 0;
    try {
      const { db } = await this.ready();
      for (;;) {
        const now = this.now();
        const n = await db.transaction(async (tx) => {
          const [lock] = await queryRows<{ locked: boolean }>(
            tx,
            advisoryXactLock('sweep', this.schema, false),
          );
          if (lock?.locked !== true) return -1;
          const deletedRows = await queryRows(
            tx,
            sql`DELETE FROM ${t} WHERE ${t.key} IN (
              SELECT ${t.key} FROM ${t} WHERE ${t.staleUntil} <= ${now}
              ORDER BY ${t.staleUntil} LIMIT ${batch} FOR UPDATE SKIP LOCKED) RETURNING 1`,
          );
          return deletedRows.length;
        });
        if (n < 0) return { deleted, skipped: true };
        deleted += n;
        if (n < batch) return { deleted, skipped: false };
      }
    } catch (error) {
      throw toTierError(this.name, 'delete', error);
    }
  }

  /** Stops the sweeper and closes the pool or PGlite database the tier created (never a given one). Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      if (this.sweepTimer) clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      try {
        await this.opening;
      } catch {
        // A connection that never opened has nothing to close.
      }
      await this.connection?.close();
    })();
    return this.closed;
  }

  private ready(): Promise<Ready> {
    if (this.closed)
      return Promise.reject(
        new TierError(this.name, 'get', 'the tier is closed', { code: L3_ERROR_CODES.closed }),
      );
    if (this.state) return Promise.resolve(this.state);
    this.opening ??= this.open().catch((error) => {
      // Let the next call try again (PostgreSQL may be starting).
      this.opening = undefined;
      throw error;
    });
    return this.opening;
  }

  private async open(): Promise<Ready> {
    if (!this.connection) this.connection = await openConnection({ ...this.options, onError: this.onError });
    const { db } = this.connection;
    if (this.options.migrate) await migrate({ db, schema: this.schema });
    this.state = { db, reads: prepareReads(db, this.tables, this.schema) };
    return this.state;
  }

  private async run<T>(operation: CacheOperation, fn: (state: Ready) => Promise<T>): Promise<T> {
    if (this.closed)
      throw new TierError(this.name, operation, 'the tier is closed', { code: L3_ERROR_CODES.closed });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const work = this.state ? fn(this.state) : this.ready().then(fn);
      if (this.timeoutMs <= 0) return await work;
      return await new Promise<T>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new TimeoutError(`${this.name} ${operation}`, this.timeoutMs)),
          this.timeoutMs,
        );
        timer.unref();
        work.then(resolve, reject);
      });
    } catch (error) {
      throw toTierError(this.name, operation, error);
    } finally {
      clearTimeout(timer);
    }
  }

  private encode(key: string, entry: CacheEntry) {
    const capped = capEntry(entry, this.maxTtlMs, this.now());
    let value: string | undefined;
    try {
      value = JSON.stringify(capped.value);
    } catch (error) {
      throw new InvalidValueError(
        `The value for key ${JSON.stringify(key.slice(0, 200))} cannot be stored as JSON: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    if (value === undefined) {
      throw new InvalidValueError(
        `The value for key ${JSON.stringify(key.slice(0, 200))} is ${typeof capped.value}; cache null instead`,
      );
    }
    const { id, full } = storageKey(key, this.maxKeyBytes);
    const now = this.now();
    return {
      key: id,
      fullKey: full,
      value: sql`${value}::jsonb`,
      freshUntil: Math.floor(capped.freshUntil),
      staleUntil: Math.floor(capped.staleUntil),
      createdAt: Math.floor(capped.createdAt ?? now),
      updatedAt: now,
      meta: capped.meta === undefined ? null : sql`${JSON.stringify(capped.meta)}::jsonb`,
    };
  }

  private async upsert(db: L3Database, rows: ReturnType<PostgresTier['encode']>[]): Promise<void> {
    const t = this.tables.entries;
    await db
      .insert(t)
      .values(rows)
      .onConflictDoUpdate({
        target: t.key,
        set: {
          fullKey: sql`excluded.full_key`,
          value: sql`excluded.value`,
          freshUntil: sql`excluded.fresh_until`,
          staleUntil: sql`excluded.stale_until`,
          createdAt: sql`excluded.created_at`,
          updatedAt: sql`excluded.updated_at`,
          meta: sql`excluded.meta`,
        },
      });
  }

  private async removeKeys(operation: CacheOperation, keys: readonly string[]): Promise<number> {
    const ids = [...new Set(keys.map((key) => storageKey(key, this.maxKeyBytes).id))];
    const t = this.tables.entries;
    return this.run(operation, async (s) => {
      const removed = await s.db
        .delete(t)
        .where(sql`${t.key} = ANY(${sql.param(ids)}::text[])`)
        .returning({ staleUntil: t.staleUntil });
      const now = this.now();
      return removed.filter((r) => r.staleUntil > now).length;
    });
  }

  private decode(key: string, row: EntryRow): CacheEntry | undefined {
    // A hashed row answers only for the key it was written with.
    if (row.fullKey !== null ? row.fullKey !== key : row.key !== key) return undefined;
    try {
      const entry: CacheEntry = {
        value: secureJson.parse(row.value, undefined, SAFE_JSON),
        freshUntil: Number(row.freshUntil),
        staleUntil: Number(row.staleUntil),
        createdAt: Number(row.createdAt),
        size: Buffer.byteLength(row.value, 'utf8'),
      };
      if (row.meta !== null) entry.meta = secureJson.parse(row.meta, undefined, SAFE_JSON);
      return entry;
    } catch (error) {
      this.onError(
        new SerializationError(
          `${this.name} tier: the stored value of key ${JSON.stringify(key.slice(0, 200))} is unsafe or unreadable JSON; treated as a miss`,
          {
            cause: error,
          },
        ),
      );
      return undefined;
    }
  }

  private backgroundSweep(): void {
    if (this.sweeping || this.closed) return;
    this.sweeping = true;
    this.sweepExpired()
      .catch((error) => this.onError(error))
      .finally(() => {
        this.sweeping = false;
      });
  }
}
