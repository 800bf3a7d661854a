import { InvalidValueError } from '@bgc/cache-core';

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
 * Encodes a value for a {@link KeyvTier} record.
 * @throws {InvalidValueError} when the value cannot be stored.
 */
export function encodeStoredValue(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new InvalidValueError(`Cannot store the value of ${showKey(key)} in a Keyv tier: ${String(error)}`);
  }
  if (text === undefined) {
    throw new InvalidValueError(
      `Cannot store the value of ${showKey(key)} in a Keyv tier: it has no JSON form`,
    );
  }
  return text;
}

/** Decodes a stored value; `{ ok: false }` when it is unreadable (the tier reports a miss). */
export function decodeStoredValue(
  _key: string,
  text: string,
  _maxBytes: number,
): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text, (k, v) => (k === '__proto__' ? undefined : v)) };
  } catch {
    return { ok: false };
  }
}
