import { createHash } from 'node:crypto';

/** Keys longer than this many UTF-8 bytes are stored hashed. @default 512 */
export const DEFAULT_MAX_KEY_BYTES = 512;

/**
 * The value of the `key` column for a cache key: the key itself, or `sha256:<hex>` of it when it
 * is longer than `maxKeyBytes` (a btree index entry holds at most ~2.7 kB). `full` is what the
 * `full_key` column keeps: the original key when hashed, `null` otherwise.
 */
export function storageKey(
  key: string,
  maxKeyBytes = DEFAULT_MAX_KEY_BYTES,
): { id: string; full: string | null } {
  // A string of n UTF-16 units is at most 3n UTF-8 bytes: skip measuring short keys.
  if (key.length * 3 <= maxKeyBytes || Buffer.byteLength(key, 'utf8') <= maxKeyBytes)
    return { id: key, full: null };
  return { id: `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`, full: key };
}
