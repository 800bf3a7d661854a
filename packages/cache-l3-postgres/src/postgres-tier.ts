import {
  type CacheEntry,
  type CacheOperation,
  ConfigError,
  InvalidValueError,
  type MetricsAdapter,
  NOOP_METRICS,
  SerializationError,
  type Tier,
  type TierDeleteOptions,
  TierError,
  TimeoutError,
  type TierWrite,
} from '@bgc/cache-core';
import {
  capEntry,
  nextVersion,
  observeVersion,
  VERSIONS_PER_MS,
  versionTime,
  validateTags,
} from '@bgc/cache-core/internal';
import { sql } from 'drizzle-orm';
import { AggregatesStore, type AggregatesStoreOptions } from './aggregates-store.js';
import { advisoryXactLock } from './advisory-locks.js';
import {
  type L3Connection,
  type L3ConnectionOptions,
  type L3Database,
  openConnection,
  queryRows,
  type RawQuery,
} from './connection.js';
import { DEFAULT_MAX_KEY_BYTES, storageKey } from './key-encoding.js';
import { migrate } from './migrate.js';
import { OperationDeadlines } from './operation-deadlines.js';
import { L3_ERROR_CODES, toTierError } from './postgres-errors.js';
import { validateMeta } from './meta.js';
import { decodeRow, ROW_KEY, type StoredRow } from './row-decoder.js';
import { entryStatements, type EntryStatements } from './statements.js';
import { type L3Tables, l3Tables } from './schema.js';
import { encodeValue } from './value-codec.js';

/** Largest stored value by default, in UTF-8 bytes of its encoded text: the L2 tier's default (1 MiB). */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
/** Lifetime of a delete's tombstone when the delete carries a version but no `tombstoneMs`. */
export const DEFAULT_TOMBSTONE_MS = 60_000;
/** Rows per write statement of `setMany` (10 array parameters whatever the count). */
export const DEFAULT_WRITE_BATCH_ROWS = 5000;

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
  /** How often the sweeper deletes expired rows and tombstones, in ms; 0 disables it. @default 60000 */
  sweepIntervalMs?: number;
  /** Rows deleted per sweeper statement (small batches keep locks short). @default 500 */
  sweepBatchSize?: number;
  /** Keys longer than this (UTF-8 bytes) are stored as a sha256 hash. @default 512 */
  maxKeyBytes?: number;
  /**
   * Largest value stored or read, in UTF-8 bytes of its encoded text (as the L2 tier's
   * `maxValueBytes`). A larger value is refused on `set` with an `InvalidValueError` (the caller's
   * error, not a tier failure); a larger stored row is a miss, never read into memory. @default 1048576
   */
  maxValueBytes?: number;
  /** How long a versioned delete's tombstone lives when the delete gives no `tombstoneMs`, in ms. @default 60000 */
  tombstoneMs?: number;
  /** Rows per `setMany` statement (one statement of 10 array parameters each). @default 5000 */
  writeBatchRows?: number;
  /**
   * Single-key reads (`get`) run as statements of their own while fewer than this many reads are
   * in flight; past it, the reads that come wait (within `operationTimeoutMs`) and go together as
   * one `getMany` statement (`key = ANY($1)`, up to 1,000 keys) when a read finishes. A burst of
   * thousands of misses then costs a few statements instead of a queue of thousands on the pool
   * (whose waits passed the callers' deadlines: timeouts, then loads). @default 4
   */
  readConcurrency?: number;
  /**
   * `'local'` for a database only this process uses (PGlite): the orchestrator then sends it the
   * invalidation bus's deletes. @default 'local' for `pglite`/`dataDir` (or a drizzle PGlite `db`), else 'shared'
   */
  scope?: 'local' | 'shared';
  /** Where undecodable rows are counted (`error('l3', op, 'serialization_error')`), as the L2 tier does. @default NOOP_METRICS */
  metrics?: MetricsAdapter;
  /** Clock used for expiry, in epoch ms. @default Date.now */
  now?: () => number;
}

/** What one {@link PostgresTier.sweepExpired} call did. */
export interface SweepResult {
  /** Expired rows (entries and tombstones) deleted. */
  deleted: number;
  /** `true` when another process held the sweeper lock, so this one did nothing more. */
  skipped: boolean;
}

/** Options of {@link PostgresTier.clear}. */
export interface ClearOptions {
  /** Version of the clear: later writes of lower versions are refused. @default nextVersion() */
  version?: number;
}

/** A `get` waiting to go in a merged read (see {@link PostgresTierOptions.readConcurrency}). */
interface QueuedRead {
  key: string;
  resolve: (entry: CacheEntry | undefined) => void;
  reject: (error: unknown) => void;
}

/** Most keys in one merged read. */
const READ_BATCH_MAX = 1000;

/** An entry ready for the upsert's arrays. */
interface EncodedRow {
  id: string;
  full: string | null;
  text: string;
  freshUntil: number;
  staleUntil: number;
  createdAt: number;
  meta: string | null;
  version: number;
  ttlMs: number | null;
  tags: string | null;
}

interface Ready {
  db: L3Database;
  query: RawQuery;
}

const DAY_MS = 86_400_000;
/** Reads take rows as arrays of the server's text: the cheapest form to decode. */
const ARRAYS = { arrays: true } as const;

/**
 * The L3 tier: a PostgreSQL table (`bgc_cache_entries`) over a `pg` pool or an embedded PGlite
 * database. Level `'l3'`; scope `'shared'` on a server, `'local'` on PGlite.
 *
 * - Values are stored as text with the value codec shared with L2 (`Date`, `Map`, `Set`, `BigInt`...
 *   come back as they went in), at most `maxValueBytes` long.
 * - Coherence: every write is a conditional upsert that never replaces a row (entry or tombstone)
 *   of a higher version, nor lands when its version is older than the schema's last `clear()`; a
 *   delete with a version leaves a tombstone for `tombstoneMs`. Reads treat tombstones as misses.
 * - Rows past their stale-until time are never returned; a sweeper deletes them (and old
 *   tombstones) in small batches, one process at a time (advisory lock).
 * - Every operation is bounded by `operationTimeoutMs`; failures reject with a `TierError` whose
 *   code is one of `L3_ERROR_CODES`. A stored row that cannot be decoded safely is a miss,
 *   reported to `onError` and to `metrics` as a serialization error.
 * - Keys longer than `maxKeyBytes` are stored hashed; the full key is kept and checked on read.
 *
 * ```ts
 * const tier = new PostgresTier({ connectionString: process.env.DATABASE_URL, migrate: true });
 * await tier.connect();
 * ```
 */
export class PostgresTier implements Tier {
  /** Name in logs and errors. */
  readonly name: string;
  /** Always `'l3'`. */
  readonly level = 'l3' as const;
  /** `'shared'` on a PostgreSQL server every instance sees, `'local'` on an in-process PGlite database. */
  readonly scope: 'local' | 'shared';
  /** Longest lifetime kept, in ms. */
  readonly maxTtlMs: number;
  /** Largest value stored or read, in UTF-8 bytes of its encoded text. */
  readonly maxValueBytes: number;
  /** The PostgreSQL schema of the table. */
  readonly schema: string;

  private readonly options: PostgresTierOptions;
  private readonly tables: L3Tables;
  private readonly statements: EntryStatements;
  private readonly timeoutMs: number;
  private readonly maxKeyBytes: number;
  private readonly tombstoneMs: number;
  private readonly batchRows: number;
  private readonly metrics: MetricsAdapter;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  private connection: L3Connection | undefined;
  private opening: Promise<Ready> | undefined;
  private state: Ready | undefined;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private sweeping = false;
  private closed: Promise<void> | undefined;
  private readonly deadlines: OperationDeadlines | undefined;
  private readonly readConcurrency: number;
  /** Read statements in flight (single `get`s and merged batches). */
  private readsRunning = 0;
  /** Reads waiting to go together as one statement (see `readConcurrency`). */
  private readQueue: QueuedRead[] = [];

  /** @throws {ConfigError} for an invalid schema name or a non-positive size. */
  constructor(options: PostgresTierOptions) {
    this.options = options;
    this.name = options.name ?? 'postgres';
    this.maxTtlMs = options.maxTtlMs ?? 30 * DAY_MS;
    this.schema = options.schema ?? 'public';
    this.tables = l3Tables(this.schema);
    this.statements = entryStatements(this.schema);
    this.scope = options.scope ?? (isEmbedded(options) ? 'local' : 'shared');
    this.timeoutMs = options.operationTimeoutMs ?? 1000;
    this.deadlines = this.timeoutMs > 0 ? new OperationDeadlines(this.timeoutMs) : undefined;
    this.maxKeyBytes = options.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
    this.maxValueBytes = positive('maxValueBytes', options.maxValueBytes, DEFAULT_MAX_VALUE_BYTES);
    this.batchRows = positive('writeBatchRows', options.writeBatchRows, DEFAULT_WRITE_BATCH_ROWS);
    this.readConcurrency = positive('readConcurrency', options.readConcurrency, 4);
    this.tombstoneMs = options.tombstoneMs ?? DEFAULT_TOMBSTONE_MS;
    this.metrics = options.metrics ?? NOOP_METRICS;
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
   * @throws {TierError} `E_L3_CONNECTION`, `E_L3_TIMEOUT` or `E_L3_POSTGRES` when the database
   *   cannot be reached or migrated.
   */
  async connect(): Promise<void> {
    try {
      await this.ready();
    } catch (error) {
      throw toTierError(this.name, 'get', error);
    }
  }

  /** Alias of {@link PostgresTier.connect}, kept for existing callers. */
  init(): Promise<void> {
    return this.connect();
  }

  /** The drizzle database the tier uses (to share it with an `AggregatesStore`, for example). */
  async database(): Promise<L3Database> {
    return (await this.ready()).db;
  }

  /**
   * An {@link AggregatesStore} on the tier's own connection and schema, migrated as the tier is
   * (so that rows fed to it land in tables that exist: an embedded PGlite tier migrates itself).
   * Closing the store never closes the tier's connection.
   * @throws {TierError} when the database cannot be reached or migrated.
   */
  async aggregatesStore(
    options: Omit<AggregatesStoreOptions, keyof L3ConnectionOptions> = {},
  ): Promise<AggregatesStore> {
    await this.connect();
    return new AggregatesStore({
      migrate: this.options.migrate ?? false,
      ...options,
      db: (this.state as Ready).db,
      schema: this.schema,
      onError: this.onError,
    });
  }

  /**
   * Reads one entry. Resolves `undefined` on a miss, a tombstone, an expired row, or a row that
   * fails to decode. Past `readConcurrency` reads in flight, it waits and goes in one merged
   * statement with the others that came meanwhile.
   */
  get(key: string): Promise<CacheEntry | undefined> {
    if (this.readsRunning >= this.readConcurrency)
      return this.run(
        'get',
        () => new Promise((resolve, reject) => this.readQueue.push({ key, resolve, reject })),
      );
    const { id } = storageKey(key, this.maxKeyBytes);
    const st = this.statements;
    this.readsRunning++;
    const read = this.run('get', (s) =>
      s
        .query<StoredRow>(st.get.text, [id, this.now(), this.maxValueBytes], st.get.name, ARRAYS)
        .then((rows) => (rows[0] === undefined ? undefined : this.decode(key, rows[0], 'get'))),
    );
    read.then(this.readDone, this.readDone);
    return read;
  }

  /** A read statement finished: the waiting reads go, merged, while there is room. */
  private readonly readDone = (): void => {
    this.readsRunning--;
    while (this.readQueue.length > 0 && this.readsRunning < this.readConcurrency) this.mergedRead();
  };

  /**
   * One statement for up to READ_BATCH_MAX waiting reads (`getMany`, which decodes a key asked
   * twice once): the entry object is cloned for its second caller (none shared between callers).
   */
  private mergedRead(): void {
    const batch = this.readQueue.splice(0, READ_BATCH_MAX);
    this.readsRunning++;
    this.getMany(batch.map((r) => r.key)).then(
      (entries) => {
        this.readDone();
        const given = new Set<CacheEntry>();
        batch.forEach((r, i) => {
          const entry = entries[i];
          if (entry === undefined || !given.has(entry)) {
            if (entry !== undefined) given.add(entry);
            r.resolve(entry);
          } else r.resolve(structuredClone(entry));
        });
      },
      (error: unknown) => {
        this.readDone();
        for (const r of batch) r.reject(error);
      },
    );
  }

  /** Reads many keys in one statement (`key = ANY($1)`, one array parameter). Resolves an array aligned with `keys`. */
  getMany(keys: readonly string[]): Promise<(CacheEntry | undefined)[]> {
    const n = keys.length;
    if (n === 0) return Promise.resolve([]);
    const ids = new Array<string>(n);
    const max = this.maxKeyBytes;
    for (let i = 0; i < n; i++) {
      const key = keys[i] as string;
      // Short keys are their own id (no allocation); see storageKey.
      ids[i] = key.length * 3 <= max ? key : storageKey(key, max).id;
    }
    const st = this.statements;
    return this.run('get_many', (s) =>
      s
        .query<StoredRow>(st.getMany.text, [ids, this.now(), this.maxValueBytes], st.getMany.name, ARRAYS)
        .then((rows) => this.alignRows(keys, ids, rows)),
    );
  }

  /**
   * The entries of `rows` (in any order) aligned with `keys`. Each row is decoded once, however
   * often its key was asked for: a key given twice gets the same entry object twice.
   */
  private alignRows(
    keys: readonly string[],
    ids: readonly string[],
    rows: readonly StoredRow[],
  ): (CacheEntry | undefined)[] {
    const n = keys.length;
    const out = new Array<CacheEntry | undefined>(n);
    const m = rows.length;
    if (m === 0) return out.fill(undefined);
    const byId = new Map<string, number>();
    for (let r = 0; r < m; r++) byId.set((rows[r] as StoredRow)[ROW_KEY] as string, r);
    // Per row: its entry once decoded, null when it decoded to a miss, undefined before.
    const decoded = new Array<CacheEntry | null | undefined>(m);
    for (let i = 0; i < n; i++) {
      const r = byId.get(ids[i] as string);
      if (r === undefined) {
        out[i] = undefined;
        continue;
      }
      const key = keys[i] as string;
      const row = rows[r] as StoredRow;
      if (!this.answers(key, row)) {
        out[i] = undefined;
        continue;
      }
      let entry = decoded[r];
      if (entry === undefined) {
        entry = this.decodeValid(key, row, 'get_many') ?? null;
        decoded[r] = entry;
      }
      out[i] = entry ?? undefined;
    }
    return out;
  }

  /**
   * Stores one entry, shortened to {@link PostgresTier.maxTtlMs}: a conditional upsert that does
   * nothing when the row holds a higher version (entry or tombstone), or when the entry's version is
   * older than the last `clear()` (such a write lost a race; it is not an error).
   * @throws {InvalidValueError} when the value cannot be encoded (a function, a class instance, a
   *   cycle, `undefined`) or is over `maxValueBytes`; the previous row of a lower version is then
   *   deleted, so no outdated value remains.
   */
  async set(key: string, entry: CacheEntry): Promise<void> {
    const row = await this.encodeOrDrop(key, entry);
    await this.run('set', (s) => this.upsert(s, [row]));
  }

  /**
   * Stores many entries: one statement per `writeBatchRows` rows (10 array parameters whatever the
   * count, so PostgreSQL's 65,535-parameter limit never applies). A key given twice keeps its
   * highest version (the last one on a tie). Versions are checked as in {@link PostgresTier.set}.
   * @throws {InvalidValueError} when a value cannot be stored; nothing is written then.
   */
  async setMany(writes: readonly TierWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const rows = new Map<string, EncodedRow>();
    for (const w of writes) {
      const row = await this.encodeOrDrop(w.key, w.entry);
      // One statement cannot update a row twice: keep the newest write of each key.
      const previous = rows.get(row.id);
      if (previous !== undefined && previous.version > row.version) continue;
      rows.delete(row.id);
      rows.set(row.id, row);
    }
    // Rows in key order: concurrent batches lock rows in the same order, so they never deadlock.
    const all = [...rows.values()].sort(byId);
    await this.run('set_many', async (s) => {
      for (let i = 0; i < all.length; i += this.batchRows)
        await this.upsert(s, all.slice(i, i + this.batchRows));
    });
  }

  /**
   * Removes one key. With `options.version`, leaves a tombstone of that version for `tombstoneMs`
   * (default {@link PostgresTierOptions.tombstoneMs}) so that no write of a lower version brings it
   * back, and leaves a row of a higher version alone. Resolves `true` if it held a servable entry
   * it removed.
   */
  async delete(key: string, options?: TierDeleteOptions): Promise<boolean> {
    return (await this.removeKeys('delete', [key], options)) > 0;
  }

  /** Removes many keys in one statement, with tombstones as {@link PostgresTier.delete}. Resolves how many held a servable entry. */
  async deleteMany(keys: readonly string[], options?: TierDeleteOptions): Promise<number> {
    if (keys.length === 0) return 0;
    return this.removeKeys('delete', keys, options);
  }

  /**
   * Logical expiry: the entries of `keys` stop being fresh now but keep their stale-until time (still
   * there as fail-safe fallbacks). Rows of a version higher than `version` are left alone. Resolves
   * how many fresh entries were turned stale.
   */
  async expire(keys: readonly string[], version?: number): Promise<number> {
    if (keys.length === 0) return 0;
    const ids = keys.map((key) => storageKey(key, this.maxKeyBytes).id);
    const st = this.statements;
    return this.run('set', async (s) => {
      const rows = await s.query(st.expire.text, [ids, this.now(), version ?? null], st.expire.name);
      return rows.length;
    });
  }

  /**
   * Deletes every row of the tier's table (in its schema only) not newer than the clear, and records
   * the clear's version: a later write of an older version (a load that started before) is refused.
   * Without `options.version`, the clear takes the last version of the current millisecond, and
   * resolves only once that millisecond is over: every version taken before the call, by any clock
   * of the same wall time, is older than the clear, and every version taken after it resolves is
   * newer. Unversioned writes (no `version`) are not ordered and still land.
   */
  async clear(options: ClearOptions = {}): Promise<void> {
    let version = options.version;
    if (version === undefined) {
      const ms = Date.now();
      version = Math.max(nextVersion(ms), (ms + 1) * VERSIONS_PER_MS - 1);
      observeVersion(version);
    }
    const statements = this.statements.clear(version);
    await this.run('clear', async (s) => {
      await s.db.transaction(async (tx) => {
        for (const statement of statements) await tx.execute(statement);
      });
    });
    if (options.version === undefined)
      while (Date.now() <= versionTime(version)) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  /** Resolves when the server answers `SELECT 1` within the operation timeout. */
  async ping(): Promise<void> {
    await this.run('get', async (s) => {
      await s.query('SELECT 1', []);
    });
  }

  /**
   * Deletes rows (entries and tombstones) past their stale-until time, `sweepBatchSize` at a time,
   * until none is left. Only one process sweeps a schema at a time: when another holds the lock
   * this call returns `{ skipped: true }` at once.
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
    const { db, query } = this.connection;
    if (this.options.migrate) await migrate({ db, schema: this.schema });
    this.state = { db, query };
    return this.state;
  }

  private run<T>(operation: CacheOperation, fn: (state: Ready) => Promise<T>): Promise<T> {
    if (this.closed)
      return Promise.reject(
        new TierError(this.name, operation, 'the tier is closed', { code: L3_ERROR_CODES.closed }),
      );
    const work = this.state ? fn(this.state) : this.ready().then(fn);
    const mapError = (error: unknown) => toTierError(this.name, operation, error);
    // One promise layer: the deadline's, which maps errors itself.
    if (this.deadlines !== undefined)
      return this.deadlines.bound(
        work,
        () => new TimeoutError(`${this.name} ${operation}`, this.timeoutMs),
        mapError,
      );
    return work.then(undefined, (error: unknown) => {
      throw mapError(error);
    });
  }

  /** Encodes an entry; when it cannot be stored, drops the key's older row (best effort) and throws. */
  private async encodeOrDrop(key: string, entry: CacheEntry): Promise<EncodedRow> {
    try {
      return this.encode(key, entry);
    } catch (error) {
      const { id } = storageKey(key, this.maxKeyBytes);
      const st = this.statements;
      await this.run('delete', (s) =>
        s.query(st.dropOlder.text, [id, entry.version ?? 0], st.dropOlder.name),
      ).catch(() => undefined);
      throw error;
    }
  }

  private encode(key: string, entry: CacheEntry): EncodedRow {
    const shown = JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key);
    if (entry.value === undefined)
      throw new InvalidValueError(`The value for key ${shown} is undefined; cache null instead`);
    const version = entry.version ?? 0;
    if (!Number.isSafeInteger(version) || version < 0)
      throw new InvalidValueError(
        `The entry for key ${shown} has version ${version}; versions are integers >= 0`,
      );
    const now = this.now();
    const capped = capEntry(entry, this.maxTtlMs, now);
    let text: string;
    try {
      text = encodeValue(capped.value);
    } catch (error) {
      if (error instanceof InvalidValueError)
        throw new InvalidValueError(`The value for key ${shown} cannot be stored: ${error.message}`, {
          cause: error,
        });
      throw error;
    }
    // text.length * 3 bounds the UTF-8 size: skip the exact count for small values.
    if (text.length * 3 > this.maxValueBytes) {
      const bytes = Buffer.byteLength(text, 'utf8');
      if (bytes > this.maxValueBytes)
        throw new InvalidValueError(
          `The value for key ${shown} is ${bytes} bytes encoded, over the ${this.name} tier's limit of ${this.maxValueBytes} bytes; cache a smaller value or raise maxValueBytes`,
        );
    }
    let meta: string | null = null;
    if (capped.meta !== undefined) {
      const problem = validateMeta(capped.meta);
      if (problem) throw new InvalidValueError(`The meta of key ${shown} cannot be stored: ${problem}`);
      meta = JSON.stringify(capped.meta);
    }
    let tags: string | null = null;
    if (capped.tags !== undefined && capped.tags.length > 0) {
      const problem = validateTags(capped.tags);
      if (problem) throw new InvalidValueError(`The tags of key ${shown} cannot be stored: ${problem}`);
      tags = JSON.stringify(capped.tags);
    }
    const { id, full } = storageKey(key, this.maxKeyBytes);
    return {
      id,
      full,
      text,
      freshUntil: Math.floor(capped.freshUntil),
      staleUntil: Math.floor(capped.staleUntil),
      createdAt: Math.floor(capped.createdAt ?? now),
      meta,
      version,
      ttlMs: capped.ttlMs === undefined ? null : Math.floor(capped.ttlMs),
      tags,
    };
  }

  private async upsert(s: Ready, rows: readonly EncodedRow[]): Promise<void> {
    const n = rows.length;
    const ids = new Array<string>(n);
    const fulls = new Array<string | null>(n);
    const texts = new Array<string>(n);
    const fresh = new Array<number>(n);
    const stale = new Array<number>(n);
    const created = new Array<number>(n);
    const metas = new Array<string | null>(n);
    const versions = new Array<number>(n);
    const ttls = new Array<number | null>(n);
    const tags = new Array<string | null>(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i] as EncodedRow;
      ids[i] = r.id;
      fulls[i] = r.full;
      texts[i] = r.text;
      fresh[i] = r.freshUntil;
      stale[i] = r.staleUntil;
      created[i] = r.createdAt;
      metas[i] = r.meta;
      versions[i] = r.version;
      ttls[i] = r.ttlMs;
      tags[i] = r.tags;
    }
    const st = this.statements.upsert;
    await s.query(
      st.text,
      [ids, fulls, texts, fresh, stale, created, metas, versions, ttls, this.now(), tags],
      st.name,
    );
  }

  private async removeKeys(
    operation: CacheOperation,
    keys: readonly string[],
    options: TierDeleteOptions | undefined,
  ): Promise<number> {
    const unique = new Map<string, string | null>();
    for (const key of keys) {
      const { id, full } = storageKey(key, this.maxKeyBytes);
      unique.set(id, full);
    }
    // Key order, as setMany: concurrent batches lock rows in the same order.
    const ids = [...unique.keys()].sort();
    const fulls = ids.map((id) => unique.get(id) ?? null);
    const st = this.statements;
    const version = options?.version;
    return this.run(operation, async (s) => {
      const now = this.now();
      if (version === undefined) {
        const rows = await s.query<{ n: number }>(st.deleteAll.text, [ids, now], st.deleteAll.name);
        return Number(rows[0]?.n ?? 0);
      }
      const tombstoneMs = options?.tombstoneMs ?? this.tombstoneMs;
      if (!(tombstoneMs > 0)) {
        const rows = await s.query<{ n: number }>(
          st.deleteOlder.text,
          [ids, now, version],
          st.deleteOlder.name,
        );
        return Number(rows[0]?.n ?? 0);
      }
      const rows = await s.query<{ n: number }>(
        st.tombstone.text,
        [ids, fulls, now, version, now + Math.ceil(tombstoneMs)],
        st.tombstone.name,
      );
      return Number(rows[0]?.n ?? 0);
    });
  }

  private decode(key: string, row: StoredRow, operation: CacheOperation): CacheEntry | undefined {
    return this.answers(key, row) ? this.decodeValid(key, row, operation) : undefined;
  }

  /** Whether `row` answers for `key`: a hashed row only for the key it was written with. */
  private answers(key: string, row: StoredRow): boolean {
    const fullKey = row[0];
    return fullKey === null
      ? !(key.length * 3 > this.maxKeyBytes && storageKey(key, this.maxKeyBytes).full !== null)
      : fullKey === key;
  }

  /** Decodes a row that answers for `key`; a row that cannot be decoded safely is a reported miss. */
  private decodeValid(key: string, row: StoredRow, operation: CacheOperation): CacheEntry | undefined {
    try {
      return decodeRow(row, this.maxValueBytes);
    } catch (error) {
      this.metrics.error('l3', operation, 'serialization_error');
      this.onError(
        new SerializationError(
          `${this.name} tier: the stored row of key ${JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key)} cannot be read safely (${(error as Error).message}); treated as a miss`,
          { cause: error },
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

function byId(a: EncodedRow, b: EncodedRow): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(Number.isFinite(value) && value > 0))
    throw new ConfigError(name, `${value} must be a positive number`);
  return value;
}

/** Whether the options open an in-process PGlite database (a tier no other process sees). */
function isEmbedded(options: PostgresTierOptions): boolean {
  if (options.pglite !== undefined || options.dataDir !== undefined) return true;
  const client = (options.db as unknown as { $client?: Record<string, unknown> } | undefined)?.$client;
  return (
    client !== undefined && typeof client.exec === 'function' && typeof client.transaction === 'function'
  );
}
