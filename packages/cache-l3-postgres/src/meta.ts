import {
  MAX_META_KEY_LENGTH,
  MAX_META_KEYS,
  MAX_META_STRING_LENGTH,
  readMeta,
} from '@bgc/cache-core/internal';
import { parseJsonSafely } from './value-codec.js';

export {
  MAX_META_KEYS,
  MAX_META_KEY_LENGTH,
  MAX_META_STRING_LENGTH,
  validateMeta,
} from '@bgc/cache-core/internal';

/** Longest stored `meta` text read at all: the largest valid record, JSON-escaped. */
const MAX_META_TEXT = MAX_META_KEYS * (MAX_META_KEY_LENGTH + MAX_META_STRING_LENGTH + 8) * 6;

/**
 * Parses and validates a stored `meta` text with the core's rule for shared tiers (`readMeta`): a
 * flat bounded record that never carries prototype keys, with the orchestrator's keys typed and its
 * process-local fail-safe keys dropped (any writer of the table could forge them). `undefined` when
 * nothing is left.
 * @throws {Error} when the text is not a valid `meta` record.
 */
export function decodeMeta(text: string): Readonly<Record<string, string | number | boolean>> | undefined {
  if (text.length > MAX_META_TEXT) throw new Error('stored meta is too large');
  try {
    return readMeta(parseJsonSafely(text));
  } catch (error) {
    throw new Error(`stored ${(error as Error).message}`);
  }
}
