import { type CacheEntry, MAX_TAG_LENGTH, MAX_TAGS, SerializationError } from '@bgc/cache-core';
import { readTags } from '@bgc/cache-core/internal';
import { decodeMeta } from './meta.js';
import { decodeValue, parseJsonSafely, reviveValue } from './value-codec.js';

type Num = number | string | bigint;

/**
 * A row of `bgc_cache_entries` as the tier's read statements return it: an array in this column
 * order (`READ_COLUMNS` in statements.ts), values as the server's text (pg) or typed (PGlite).
 * `getMany` appends the storage key.
 */
export type StoredRow = readonly [
  /** The original key of a hashed row, else `null`. */
  fullKey: string | null,
  /** The value's text; `null` when it is over the reader's `maxValueBytes` (the statement leaves it out). */
  value: string | null,
  freshUntil: Num,
  staleUntil: Num,
  createdAt: Num,
  /** JSON text of the entry's flat meta record, or `null`. */
  meta: string | null,
  version: Num,
  ttlMs: Num | null,
  /** 0: plain JSON (rows from before migration 0003); 1: the value codec. */
  encoding: Num,
  /** JSON text of the entry's tag list, or `null` (migration 0004). */
  tags?: string | null,
  /** The storage key (`getMany` only). */
  key?: string,
];

/** Index of the storage key in a `getMany` row. */
export const ROW_KEY = 10;

/**
 * Decodes a stored row into an entry. Every field is treated as untrusted: the value is refused
 * over `maxValueBytes` before it is parsed, prototype keys are refused, only known `$bgc` tags are
 * revived, `meta` must be a flat bounded record and the times must be numbers.
 * @throws {SerializationError} naming what is wrong; the tier turns it into a miss and reports it.
 */
export function decodeRow(row: StoredRow, maxValueBytes: number): CacheEntry {
  const text = row[1];
  if (typeof text !== 'string')
    throw new SerializationError(`the stored value is over maxValueBytes (${maxValueBytes} bytes)`);
  // The server's text ('1', '0') on pg, numbers on PGlite: the common forms compared without converting.
  const code = row[8];
  const encoding = code === '1' || code === 1 ? 1 : Number(code);
  let value: unknown;
  if (encoding === 1) value = decodeStoredValue(text, maxValueBytes);
  else if (encoding === 0) {
    if (text.length > maxValueBytes)
      throw new SerializationError(`the stored value is over ${maxValueBytes} bytes`);
    try {
      value = parseJsonSafely(text);
    } catch (error) {
      throw new SerializationError(`stored JSON is invalid or unsafe: ${(error as Error).message}`, {
        cause: error,
      });
    }
  } else throw new SerializationError(`unknown value encoding ${String(row[8]).slice(0, 20)}`);
  const entry: CacheEntry = {
    value,
    freshUntil: Number(row[2]),
    staleUntil: Number(row[3]),
    createdAt: Number(row[4]),
    size: Buffer.byteLength(text, 'utf8'),
  };
  if (!Number.isFinite(entry.freshUntil) || !Number.isFinite(entry.staleUntil))
    throw new SerializationError('stored expiry times are not numbers');
  const stored = row[6];
  const version = stored === '0' || stored === 0 ? 0 : Number(stored);
  if (version !== 0) {
    if (!Number.isSafeInteger(version) || version < 0)
      throw new SerializationError('stored version is not a version');
    entry.version = version;
  }
  if (row[7] !== null) entry.ttlMs = Number(row[7]);
  const meta = row[5];
  if (meta !== null) {
    try {
      const decoded = decodeMeta(meta);
      if (decoded !== undefined) entry.meta = decoded;
    } catch (error) {
      throw new SerializationError((error as Error).message, { cause: error });
    }
  }
  const tags = row[9];
  if (tags !== null && tags !== undefined) {
    if (tags.length > MAX_TAGS_TEXT) throw new SerializationError('stored tags are too large');
    try {
      const decoded = readTags(parseJsonSafely(tags));
      if (decoded !== undefined) entry.tags = decoded;
    } catch (error) {
      throw new SerializationError(`stored tags: ${(error as Error).message}`, { cause: error });
    }
  }
  return entry;
}

/** Longest stored tags text read at all: the largest valid list, JSON-escaped. */
const MAX_TAGS_TEXT = MAX_TAGS * (MAX_TAG_LENGTH + 3) * 6;

/**
 * The core's `decodeValue`, with the same result, at the cost of one JSON.parse for the common
 * row. Its pre-checks search `"$bgc"` and `proto`, patterns too short for V8's skipping search and
 * starting with characters JSON is full of; these search `\\` and `$` (rare characters, found by
 * a memchr-like scan) and `__proto__` / `prototype` (long enough to be searched by skips). Text
 * holding any of the first three goes through `decodeValue` itself.
 * @throws {SerializationError} as `decodeValue`.
 */
export function decodeStoredValue(text: string, maxBytes: number): unknown {
  try {
    if (text.indexOf('\\') !== -1 || text.indexOf('__proto__') !== -1 || text.indexOf('prototype') !== -1)
      return decodeValue(text, { maxBytes });
    if (text.length * 3 > maxBytes) {
      const bytes = text.length > maxBytes ? text.length : Buffer.byteLength(text, 'utf8');
      if (bytes > maxBytes)
        throw new SerializationError(
          `Stored value is over ${maxBytes} bytes (at least ${bytes}); refused unread`,
        );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new SerializationError(`Stored JSON is invalid: ${(error as Error).message}`, { cause: error });
    }
    return text.indexOf('$bgc') === -1 ? parsed : reviveValue(parsed);
  } catch (error) {
    // e.g. a RangeError from a tree nested deeper than the stack: still a bad row, not a crash.
    if (error instanceof SerializationError) throw error;
    throw new SerializationError(`the stored value cannot be decoded: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
