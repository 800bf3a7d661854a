import { type CacheEntry, SerializationError } from '@bgc/cache-core';
import { decodeMeta } from './meta.js';
import { decodeValue, parseJsonSafely } from './value-codec.js';

/** A row of `bgc_cache_entries` as the tier's read statements return it (pg gives bigints as strings). */
export interface StoredRow {
  /** The storage key (selected by `getMany` only). */
  key?: string;
  /** The original key of a hashed row, else `null`. */
  full_key: string | null;
  /** The value's text; `null` when it is over the reader's `maxValueBytes` (the statement leaves it out). */
  value: string | null;
  /** The stored value's size in UTF-8 bytes. */
  bytes: number | string;
  fresh_until: number | string;
  stale_until: number | string;
  created_at: number | string;
  /** JSON text of the entry's flat meta record, or `null`. */
  meta: string | null;
  version: number | string;
  ttl_ms: number | string | null;
  /** 0: plain JSON (rows from before migration 0003); 1: the value codec. */
  encoding: number | string;
}

/**
 * Decodes a stored row into an entry. Every field is treated as untrusted: the value is refused
 * over `maxValueBytes` before it is parsed, prototype keys are refused, only known `$bgc` tags are
 * revived, `meta` must be a flat bounded record and the times must be numbers.
 * @throws {SerializationError} naming what is wrong; the tier turns it into a miss and reports it.
 */
export function decodeRow(row: StoredRow, maxValueBytes: number): CacheEntry {
  const text = row.value;
  if (typeof text !== 'string')
    throw new SerializationError(
      `the stored value is ${row.bytes} bytes, over maxValueBytes (${maxValueBytes})`,
    );
  const encoding = Number(row.encoding);
  let value: unknown;
  if (encoding === 1) value = decodeValue(text, { maxBytes: maxValueBytes });
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
  } else throw new SerializationError(`unknown value encoding ${String(row.encoding).slice(0, 20)}`);
  const entry: CacheEntry = {
    value,
    freshUntil: Number(row.fresh_until),
    staleUntil: Number(row.stale_until),
    createdAt: Number(row.created_at),
    size: Number(row.bytes),
  };
  if (!Number.isFinite(entry.freshUntil) || !Number.isFinite(entry.staleUntil))
    throw new SerializationError('stored expiry times are not numbers');
  const version = Number(row.version);
  if (version !== 0) {
    if (!Number.isSafeInteger(version) || version < 0)
      throw new SerializationError('stored version is not a version');
    entry.version = version;
  }
  if (row.ttl_ms !== null) entry.ttlMs = Number(row.ttl_ms);
  if (row.meta !== null) {
    try {
      entry.meta = decodeMeta(row.meta);
    } catch (error) {
      throw new SerializationError((error as Error).message, { cause: error });
    }
  }
  return entry;
}
