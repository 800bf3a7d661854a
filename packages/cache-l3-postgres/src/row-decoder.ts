import { type CacheEntry, MAX_TAG_LENGTH, MAX_TAGS, SerializationError } from '@bgc/cache-core';
import { readTags } from '@bgc/cache-core/internal';
import { decodeMeta } from './meta.js';
import { decodeValue, parseJsonSafely, reviveValue } from './value-codec.js';

/**
 * The SQL of a read's `numbers` column: `fresh_until,stale_until,created_at,version,ttl_ms,encoding`
 * as one text (`ttl_ms` empty when NULL), e.g. `1764567890123,1764571490123,1764567890120,0,,1`.
 */
export const NUMBERS_TEXT = `fresh_until || ',' || stale_until || ',' || created_at || ',' || version || ',' || COALESCE(ttl_ms::text, '') || ',' || encoding`;

/**
 * A row of `bgc_cache_entries` as the tier's read statements return it: an array in this column
 * order (`READ_COLUMNS` in statements.ts), as the server's text. `getMany` appends the storage key.
 */
export type StoredRow = readonly [
  /** The original key of a hashed row, else `null`. */
  fullKey: string | null,
  /** The value's text; `null` when it is over the reader's `maxValueBytes` (the statement leaves it out). */
  value: string | null,
  /** {@link NUMBERS_TEXT}; `null` only if a column it joins is NULL (a corrupted row). */
  numbers: string | null,
  /** JSON text of the entry's flat meta record, or `null`. */
  meta: string | null,
  /** JSON text of the entry's tag list, or `null` (migration 0004). */
  tags?: string | null,
  /** The storage key (`getMany` only). */
  key?: string,
];

/** Index of the storage key in a `getMany` row. */
export const ROW_KEY = 5;

/**
 * Fields of {@link NUMBERS_TEXT}, parsed into a reused scratch array (the decoder is synchronous):
 * a `Float64Array`, so no field is boxed on the way; `NaN` marks an empty field.
 */
const NUMBERS = 6;
const scratch = new Float64Array(NUMBERS);

/**
 * Parses {@link NUMBERS_TEXT} into `scratch` without slicing: each field is an optional `-` and
 * digits, as PostgreSQL prints integers, or empty (`NaN`). Values past 2^53 are read by `Number`
 * of their text, as before; every other field is the same number `Number` gives.
 * @throws {SerializationError} when the text is not six such fields.
 */
function parseNumbers(text: string | null): void {
  if (typeof text !== 'string') throw new SerializationError('stored expiry times are not numbers');
  const end = text.length;
  let field = 0;
  let i = 0;
  for (;;) {
    const start = i;
    let negative = false;
    if (i < end && text.charCodeAt(i) === 45 /* - */) {
      negative = true;
      i++;
    }
    let n = 0;
    const first = i;
    for (; i < end; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    if (i === first) {
      if (negative) throw new SerializationError('stored numbers are not integers');
      scratch[field] = Number.NaN;
    } else {
      // Exact while below 2^53 (every partial sum is an integer below the result).
      if (n > Number.MAX_SAFE_INTEGER) n = Number(text.slice(negative ? start + 1 : start, i));
      scratch[field] = negative ? -n : n;
    }
    field++;
    if (i === end) break;
    if (text.charCodeAt(i) !== 44 /* , */ || field === NUMBERS)
      throw new SerializationError('stored numbers are not integers');
    i++;
  }
  if (field !== NUMBERS) throw new SerializationError('stored numbers are not integers');
}

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
  parseNumbers(row[2]);
  const freshUntil = scratch[0] as number;
  const staleUntil = scratch[1] as number;
  const createdAt = scratch[2] as number;
  const version = scratch[3] as number;
  const ttlMs = scratch[4] as number;
  const encoding = scratch[5] as number;
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
  } else throw new SerializationError(`unknown value encoding ${String(encoding)}`);
  // NaN (an empty field) is not finite either.
  if (!Number.isFinite(freshUntil) || !Number.isFinite(staleUntil))
    throw new SerializationError('stored expiry times are not numbers');
  const entry: CacheEntry = {
    value,
    freshUntil,
    staleUntil,
    createdAt,
    size: Buffer.byteLength(text, 'utf8'),
  };
  if (version !== 0) {
    if (!Number.isSafeInteger(version) || version < 0)
      throw new SerializationError('stored version is not a version');
    entry.version = version;
  }
  if (!Number.isNaN(ttlMs)) entry.ttlMs = ttlMs;
  const meta = row[3];
  if (meta !== null) {
    try {
      const decoded = decodeMeta(meta);
      if (decoded !== undefined) entry.meta = decoded;
    } catch (error) {
      throw new SerializationError((error as Error).message, { cause: error });
    }
  }
  const tags = row[4];
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
