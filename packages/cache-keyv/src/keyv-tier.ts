import {
  BgcCacheError,
  type CacheEntry,
  type CacheErrorType,
  type CacheOperation,
  ConfigError,
  InvalidValueError,
  Level,
  type Tier,
  type TierClearOptions,
  type TierDeleteOptions,
  type TierLevel,
  TierError,
  type TierWrite,
} from '@bgc/cache-core';
import { nextVersion, VERSIONS_PER_MS, validateTags } from '@bgc/cache-core/internal';
import type Keyv from 'keyv';
import { decodeStoredValue, encodeStoredValue, redact, showKey } from './value-codec.js';

/** Options of {@link KeyvTier}. */
export interface KeyvTierOptions {
  /**
   * The Keyv instance to store entries in (its store: `@keyv/sqlite`, `@keyv/mongo`, `@keyv/postgres`,
   * a `Map`...). Its `namespace` scopes this tier: `clear()` removes that namespace only (on adapters
   * that clear by namespace; a `Map` store is cleared whole). The tier sets `throwOnErrors` on it so
   * that a failing backend rejects instead of reading as a miss.
   */
  keyv: Keyv;
  /** Backend name in logs, metrics and errors. @default 'keyv' */
  name?: string;
  /** The level this tier serves at. @default 'l2' */
  level?: TierLevel;
  /**
   * `'shared'` when every instance sees the same store (SQLite file, MongoDB, PostgreSQL...);
   * `'local'` for a per-process store (a `Map`). @default 'shared'
   */
  scope?: 'local' | 'shared';
  /** Longest lifetime (ms) the tier keeps an entry for. @default undefined (the entry's own) */
  maxTtlMs?: number;
  /** Largest encoded entry (bytes) accepted on read; larger ones read as a miss. @default 16 MiB */
  maxValueBytes?: number;
  /** Call `keyv.disconnect()` in {@link KeyvTier.close}. @default false (the Keyv was handed in) */
  ownsKeyv?: boolean;
}

/** The record a {@link KeyvTier} stores through Keyv for one entry (or a tombstone). */
interface StoredRecord {
  /** The value, encoded with the value codec (absent on a tombstone). */
  v?: string;
  /** freshUntil (epoch ms). */
  f?: number;
  /** staleUntil (epoch ms). */
  s?: number;
  /** createdAt. */
  c?: number;
  /** version. */
  n?: number;
  /** ttlMs. */
  t?: number;
  /** meta. */
  m?: Record<string, string | number | boolean>;
  /** tags (absent when the entry has none). */
  g?: string[];
  /** 1 on a tombstone. */
  x?: 1;
}

/**
 * Key (inside the Keyv namespace) of the "cleared at version" marker. It starts with DEL (U+007F),
 * a character cache keys never hold (the core's key validation refuses control characters), so it
 * cannot collide with an entry; NUL would, but some drivers cut strings at NUL.
 */
const CLEARED_KEY = '\u007fbgc:cleared';

/**
 * Any Keyv store as a {@link Tier} of a `MultiLevelCache`: entries keep the cache's envelope
 * (fresh and stale times, version, ttlMs, meta) so fail-safe and coherence work on it, and values
 * go through the core's value codec (the same types come back as every other shared tier returns).
 *
 * Versions: a write never replaces an entry or tombstone of a higher version, and a clear refuses
 * later writes of older versions. Keyv has no compare-and-set, so the check is a read followed by
 * a write, serialized per key within this process: it is exact for one process, and across
 * processes it narrows the race to the gap between a read and a write on the backend.
 */
export class KeyvTier implements Tier {
  /** Backend name used in logs and errors. */
  readonly name: string;
  /** The level this tier serves at. */
  readonly level: TierLevel;
  /** `'shared'` or `'local'` (see {@link KeyvTierOptions.scope}). */
  readonly scope: 'local' | 'shared';
  /** Longest lifetime (ms) the tier keeps an entry for. */
  readonly maxTtlMs?: number;
  /** The Keyv instance entries go through. */
  readonly keyv: Keyv;
  private readonly maxValueBytes: number;
  private readonly ownsKeyv: boolean;
  private lastTier = false;
  private closed = false;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(options: KeyvTierOptions) {
    if (!options || typeof options.keyv?.get !== 'function') {
      throw new ConfigError(
        'keyv',
        'KeyvTier needs a Keyv instance: new KeyvTier({ keyv: new Keyv({ store }) })',
      );
    }
    if (options.maxTtlMs !== undefined && !(options.maxTtlMs > 0))
      throw new ConfigError('maxTtlMs', `${options.maxTtlMs} must be a positive number of ms`);
    this.keyv = options.keyv;
    this.keyv.throwOnErrors = true;
    this.name = options.name ?? 'keyv';
    this.level = options.level ?? Level.L2;
    this.scope = options.scope ?? 'shared';
    if (options.maxTtlMs !== undefined) this.maxTtlMs = options.maxTtlMs;
    this.maxValueBytes = options.maxValueBytes ?? 16 * 1024 * 1024;
    this.ownsKeyv = options.ownsKeyv ?? false;
  }

  /** Records whether a slower tier can refill this one (a last tier keeps entries' own lifetime). */
  attach(attachment: { index: number; lastTier: boolean }): void {
    this.lastTier = attachment.lastTier;
  }

  /** Reads one entry; `undefined` on a miss, a tombstone, an expired or an unreadable record. */
  async get(key: string): Promise<CacheEntry | undefined> {
    const raw = await this.call('get', key, () => this.keyv.get<StoredRecord>(key));
    return this.toEntry(raw, Date.now());
  }

  /** Reads many entries in one call of the store (`getMany` where the adapter has it). */
  async getMany(keys: readonly string[]): Promise<(CacheEntry | undefined)[]> {
    if (keys.length === 0) return [];
    const raws = await this.call('get_many', undefined, () => this.readMany(keys));
    const now = Date.now();
    return keys.map((_, i) => this.toEntry(raws[i], now));
  }

  /**
   * Stores one entry unless the stored entry, tombstone or clear marker has a higher version (the
   * write lost a race: dropped silently). The record expires from the store at `staleUntil`.
   */
  async set(key: string, entry: CacheEntry): Promise<void> {
    const record = this.toRecord(key, entry);
    return this.serialized(key, async () => {
      const version = record.n ?? 0;
      const [current, cleared] = await this.call('set', key, () => this.readMany([key, CLEARED_KEY]));
      // An unversioned write (a caller that does not use versions) is not held against a clear.
      if (record.n !== undefined && isRecord(cleared) && (cleared.n ?? 0) > version) return;
      if (isRecord(current) && (current.n ?? 0) > version && live(current, Date.now())) return;
      const ttl = (record.s as number) - Date.now();
      if (ttl <= 0) {
        await this.call('delete', key, () => this.keyv.delete(key));
        return;
      }
      await this.call('set', key, () => this.keyv.set(key, record, ttl));
    });
  }

  /** Stores many entries (each with the version check of {@link KeyvTier.set}). */
  async setMany(writes: readonly TierWrite[]): Promise<void> {
    await Promise.all(writes.map((w) => this.set(w.key, w.entry)));
  }

  /**
   * Removes one key; with `options.version` and `tombstoneMs`, leaves a tombstone that refuses later
   * writes of lower versions for `tombstoneMs`. An entry of a higher version than the delete is kept.
   * Resolves whether a live entry existed.
   */
  delete(key: string, options: TierDeleteOptions = {}): Promise<boolean> {
    return this.serialized(key, async () => {
      const current = await this.call('delete', key, () => this.keyv.get<StoredRecord>(key));
      const now = Date.now();
      const existed = isRecord(current) && current.x !== 1 && live(current, now);
      const version = options.version;
      if (version !== undefined) {
        if (isRecord(current) && (current.n ?? 0) > version && live(current, now)) return false;
        if (options.tombstoneMs !== undefined && options.tombstoneMs > 0) {
          const tomb: StoredRecord = { x: 1, n: version, s: now + options.tombstoneMs };
          await this.call('delete', key, () => this.keyv.set(key, tomb, options.tombstoneMs));
          return existed;
        }
      }
      if (current !== undefined) await this.call('delete', key, () => this.keyv.delete(key));
      return existed;
    });
  }

  /** Removes many keys (as {@link KeyvTier.delete}); resolves how many live entries existed. */
  async deleteMany(keys: readonly string[], options?: TierDeleteOptions): Promise<number> {
    const existed = await Promise.all(keys.map((k) => this.delete(k, options)));
    return existed.filter(Boolean).length;
  }

  /**
   * Logical expiry: the fresh entries of `keys` whose version is not above `version` stop being
   * fresh now and keep their stale-until. Resolves how many were expired (already stale ones are
   * not counted).
   */
  async expire(keys: readonly string[], version?: number): Promise<number> {
    const done = await Promise.all(
      keys.map((key) =>
        this.serialized(key, async () => {
          const current = await this.call('set', key, () => this.keyv.get<StoredRecord>(key));
          const now = Date.now();
          if (!isRecord(current) || current.x === 1 || !live(current, now)) return false;
          // Already stale: nothing to expire (and not counted).
          if ((current.f ?? 0) <= now) return false;
          if (version !== undefined && (current.n ?? 0) > version) return false;
          const next: StoredRecord = { ...current, f: Math.min(current.f ?? now, now) };
          await this.call('set', key, () => this.keyv.set(key, next, (current.s as number) - now));
          return true;
        }),
      ),
    );
    return done.filter(Boolean).length;
  }

  /**
   * Removes every entry of the Keyv's namespace, then records the clear's version (`options.version`,
   * or the last version of the current millisecond, after which it waits for that millisecond to
   * end) so that writes of older versions (loads that started before the clear) are refused.
   */
  async clear(options: TierClearOptions = {}): Promise<void> {
    // Without a version, the clear takes the last version of the current millisecond: every version
    // taken before it (by any copy of the clock, in any process with a synchronized clock) is
    // older; the clear returns only once that millisecond is over, so every version taken after it
    // is newer.
    const now = Date.now();
    const version = options.version ?? Math.max(nextVersion(now), (now + 1) * VERSIONS_PER_MS - 1);
    const marker: StoredRecord = { n: version };
    await this.call('clear', undefined, () => this.keyv.clear());
    await this.call('clear', undefined, () => this.keyv.set(CLEARED_KEY, marker));
    if (options.version === undefined) while (Date.now() <= now) await new Promise((r) => setTimeout(r, 1));
  }

  /** Resolves when the store answers a read. */
  async ping(): Promise<void> {
    await this.call('get', undefined, () => this.keyv.get(CLEARED_KEY));
  }

  /** Disconnects the Keyv (once) when {@link KeyvTierOptions.ownsKeyv} is set. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsKeyv) await this.keyv.disconnect();
  }

  /**
   * `keyv.getMany`, except when a key already starts with `<namespace>:`: Keyv's single-key calls
   * leave such a key unprefixed but `getMany` prefixes it again, so those keys are read one by one.
   */
  private readMany(keys: readonly string[]): Promise<unknown[]> {
    const ns = this.keyv.namespace;
    if (ns && this.keyv.useKeyPrefix && keys.some((k) => k.startsWith(`${ns}:`))) {
      return Promise.all(keys.map((k) => this.keyv.get<StoredRecord>(k)));
    }
    return this.keyv.getMany<StoredRecord>([...keys]);
  }

  private toRecord(key: string, entry: CacheEntry): StoredRecord {
    const now = Date.now();
    let { freshUntil, staleUntil } = entry;
    if (this.maxTtlMs !== undefined && !this.lastTier) {
      const limit = now + this.maxTtlMs;
      if (staleUntil > limit) {
        staleUntil = limit;
        freshUntil = Math.min(freshUntil, limit);
      }
    }
    const record: StoredRecord = { v: encodeStoredValue(key, entry.value), f: freshUntil, s: staleUntil };
    if (entry.createdAt !== undefined) record.c = entry.createdAt;
    if (entry.version !== undefined) record.n = entry.version;
    if (entry.ttlMs !== undefined) record.t = entry.ttlMs;
    if (entry.meta !== undefined) record.m = { ...entry.meta };
    if (entry.tags !== undefined && entry.tags.length > 0) {
      const problem = validateTags(entry.tags);
      if (problem !== undefined)
        throw new InvalidValueError(`Cannot store the entry of ${showKey(key)}: ${problem}`);
      record.g = [...entry.tags];
    }
    return record;
  }

  private toEntry(raw: unknown, now: number): CacheEntry | undefined {
    if (!isRecord(raw) || raw.x === 1 || typeof raw.v !== 'string') return undefined;
    if (typeof raw.f !== 'number' || typeof raw.s !== 'number' || raw.s <= now) return undefined;
    if (raw.v.length > this.maxValueBytes) return undefined;
    const decoded = decodeStoredValue(raw.v, this.maxValueBytes);
    if (!decoded.ok) return undefined;
    const entry: CacheEntry = {
      value: decoded.value,
      freshUntil: raw.f,
      staleUntil: raw.s,
      size: raw.v.length,
    };
    if (typeof raw.c === 'number') entry.createdAt = raw.c;
    if (typeof raw.n === 'number') entry.version = raw.n;
    if (typeof raw.t === 'number') entry.ttlMs = raw.t;
    if (isFlatMeta(raw.m)) entry.meta = raw.m;
    // Tags decide invalidations: a record whose tags cannot be trusted is a miss, not an untagged entry.
    if (raw.g !== undefined) {
      if (validateTags(raw.g) !== undefined) return undefined;
      if (raw.g.length > 0) entry.tags = raw.g;
    }
    return entry;
  }

  /** Runs `fn` after every earlier operation on `key` in this process (read-compare-write stays whole). */
  private serialized<R>(key: string, fn: () => Promise<R>): Promise<R> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  /** Runs one store call; a failure becomes a {@link TierError} (code `E_KEYV`) naming the key, without the store's error object (it may carry connection strings). */
  private async call<R>(op: CacheOperation, key: string | undefined, fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (error) {
      if (BgcCacheError.isInstance(error)) throw error;
      const original = error instanceof Error ? error : new Error(String(error));
      const message = redact(original.message);
      const cause = new Error(message);
      cause.name = original.name;
      const what = key === undefined ? '' : ` of ${showKey(key)}`;
      throw new TierError(
        this.name,
        op,
        `the Keyv store failed${what}: ${message}. Check the store's backend; the cache skips this tier meanwhile`,
        { cause, code: 'E_KEYV', errorType: errorTypeOf(original) },
      );
    }
  }
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EPIPE',
  'EAI_AGAIN',
]);

/** The metrics `error_type` of a store failure: the drivers behind Keyv differ, so by code and message. */
function errorTypeOf(error: Error): CacheErrorType {
  const code = (error as { code?: unknown }).code;
  if (code === 'ETIMEDOUT' || /\btimed? ?out\b/i.test(error.message)) return 'timeout';
  if (
    (typeof code === 'string' && CONNECTION_CODES.has(code)) ||
    /ECONNREFUSED|ECONNRESET|connection (is )?closed/i.test(error.message)
  )
    return 'connection_error';
  return 'unknown';
}

function isRecord(v: unknown): v is StoredRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function live(r: StoredRecord, now: number): boolean {
  return typeof r.s !== 'number' || r.s > now;
}

function isFlatMeta(m: unknown): m is Record<string, string | number | boolean> {
  if (!isRecord(m)) return false;
  for (const v of Object.values(m)) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return false;
  }
  return true;
}
