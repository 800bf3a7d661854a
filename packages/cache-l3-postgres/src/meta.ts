import { parseJsonSafely } from './value-codec.js';

/** Most keys a stored `meta` record may have. */
export const MAX_META_KEYS = 32;
/** Longest `meta` key, in characters. */
export const MAX_META_KEY_LENGTH = 64;
/** Longest `meta` string value, in characters. */
export const MAX_META_STRING_LENGTH = 1024;

/**
 * Why `meta` cannot be stored, or `undefined` when it can: a flat plain object of at most
 * {@link MAX_META_KEYS} keys (each at most {@link MAX_META_KEY_LENGTH} characters, never
 * `__proto__`, `constructor` or `prototype`) whose values are booleans, finite numbers or strings
 * of at most {@link MAX_META_STRING_LENGTH} characters.
 */
export function validateMeta(meta: unknown): string | undefined {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return 'meta must be a plain object';
  const proto = Object.getPrototypeOf(meta);
  if (proto !== Object.prototype && proto !== null) return 'meta must be a plain object';
  const keys = Object.keys(meta);
  if (keys.length > MAX_META_KEYS) return `meta has ${keys.length} keys, over ${MAX_META_KEYS}`;
  for (const key of keys) {
    if (key.length > MAX_META_KEY_LENGTH)
      return `meta key of ${key.length} characters, over ${MAX_META_KEY_LENGTH}`;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype')
      return `meta key "${key}" is not allowed`;
    const value = (meta as Record<string, unknown>)[key];
    if (typeof value === 'boolean') continue;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) return `meta "${key}" is not a finite number`;
      continue;
    }
    if (typeof value === 'string') {
      if (value.length > MAX_META_STRING_LENGTH)
        return `meta "${key}" is ${value.length} characters, over ${MAX_META_STRING_LENGTH}`;
      continue;
    }
    return `meta "${key}" is ${value === null ? 'null' : typeof value}; only strings, numbers and booleans`;
  }
  return undefined;
}

/**
 * Parses and validates a stored `meta` text (see {@link validateMeta}): a flat record
 * that never carries prototype keys.
 * @throws {Error} when the text is not a valid `meta` record.
 */
export function decodeMeta(text: string): Readonly<Record<string, string | number | boolean>> {
  if (text.length > MAX_META_KEYS * (MAX_META_KEY_LENGTH + MAX_META_STRING_LENGTH + 8) * 6)
    throw new Error('stored meta is too large');
  const parsed = parseJsonSafely(text);
  const problem = validateMeta(parsed);
  if (problem) throw new Error(`stored ${problem}`);
  return parsed as Record<string, string | number | boolean>;
}
