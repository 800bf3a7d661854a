import { InvalidValueError } from '@bgc/cache-core';
import { decodeValue, encodeValue } from '@bgc/cache-core/internal';

/** Longest key shown in error messages (characters). */
const SHOWN_KEY = 100;

/** A key quoted for an error message, truncated. */
export function showKey(key: string): string {
  return JSON.stringify(key.length > SHOWN_KEY ? `${key.slice(0, SHOWN_KEY)}…` : key);
}

/** `message` with the credentials of any URL in it (`scheme://user:password@`) replaced by `***`. */
export function redact(message: string): string {
  return message.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@');
}

/**
 * Encodes a value for a {@link KeyvTier} record with the core's value codec (`Date`, `Map`, `Set`,
 * `BigInt`, `undefined`, `NaN`, `-0` kept).
 * @throws {InvalidValueError} naming the key, when the value cannot be stored.
 */
export function encodeStoredValue(key: string, value: unknown): string {
  try {
    return encodeValue(value);
  } catch (error) {
    throw new InvalidValueError(
      `Cannot store the value of ${showKey(key)} in a Keyv tier: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/**
 * Decodes a stored value with the core's value codec (bounded by `maxBytes`, prototype keys refused);
 * `{ ok: false }` when it is unreadable (the tier reports a miss).
 */
export function decodeStoredValue(
  text: string,
  maxBytes: number,
): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: decodeValue(text, { maxBytes }) };
  } catch {
    return { ok: false };
  }
}
