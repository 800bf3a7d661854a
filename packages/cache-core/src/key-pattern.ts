import { InvalidKeyError } from './errors/invalid-key-error.js';

/** Longest key accepted, in characters. Redis allows 512 MB; we cap far lower (resilience guide: ≤ 1 KB). */
export const MAX_KEY_LENGTH = 1024;

/**
 * Validates a cache key and returns it unchanged.
 * @throws {InvalidKeyError} when the key is not a string, is empty, is longer than
 *   {@link MAX_KEY_LENGTH} or holds control characters.
 */
export function validateKey(key: unknown, maxLength = MAX_KEY_LENGTH): string {
  if (typeof key !== 'string') throw new InvalidKeyError(String(key), `expected a string, got ${typeof key}`);
  if (key.length === 0) throw new InvalidKeyError(key, 'the key is empty; build keys with a KeyPattern');
  if (key.length > maxLength) {
    throw new InvalidKeyError(
      key,
      `${key.length} characters is over the limit of ${maxLength}; hash long inputs before using them as keys`,
    );
  }
  if (hasControlChar(key))
    throw new InvalidKeyError(
      key,
      'it contains control characters (e.g. CR, LF, NUL); remove or encode them',
    );
  return key;
}

/**
 * Whether `key` holds a C0 control (U+0000-U+001F), DEL or a C1 control (U+007F-U+009F): they
 * break logs, protocols and `redis-cli` output. A scan of its char codes, faster than a regular
 * expression on a typical key (every read and write validates its key).
 */
function hasControlChar(key: string): boolean {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

/** A value a placeholder can take. */
export type KeyPart = string | number | bigint | boolean;

/**
 * A key pattern like `comexstat:exp:{ano}:{mes}:{ncm}:{pais}`. `build()` fills the placeholders,
 * encoding the separator and braces inside values so that distinct inputs give distinct keys.
 */
export class KeyPattern<P extends string = string> {
  /** The pattern as given. */
  readonly pattern: string;
  /** Placeholder names in order of appearance. */
  readonly placeholders: readonly P[];
  private readonly parts: readonly string[];

  constructor(pattern: string) {
    if (typeof pattern !== 'string' || pattern.length === 0)
      throw new InvalidKeyError(String(pattern), 'the key pattern is empty');
    const parts: string[] = [];
    const names: P[] = [];
    const re = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
    let last = 0;
    for (let m = re.exec(pattern); m !== null; m = re.exec(pattern)) {
      parts.push(pattern.slice(last, m.index));
      names.push(m[1] as P);
      last = m.index + m[0].length;
    }
    parts.push(pattern.slice(last));
    for (const literal of parts) {
      if (literal.includes('{') || literal.includes('}')) {
        throw new InvalidKeyError(
          pattern,
          'unbalanced or malformed placeholder; use {name} with letters, digits and _',
        );
      }
    }
    this.pattern = pattern;
    this.parts = parts;
    this.placeholders = names;
  }

  /**
   * Fills the placeholders.
   * @throws {InvalidKeyError} when a placeholder has no value (or an empty one), or the result is invalid.
   */
  build(values: Readonly<Record<P, KeyPart | null | undefined>>): string {
    let out = this.parts[0] ?? '';
    for (let i = 0; i < this.placeholders.length; i++) {
      const name = this.placeholders[i] as P;
      const v = values[name];
      if (v === undefined || v === null || v === '') {
        throw new InvalidKeyError(this.pattern, `placeholder {${name}} has no value`);
      }
      out += encodePart(String(v)) + (this.parts[i + 1] ?? '');
    }
    return validateKey(out);
  }
}

/** Percent-encodes `%`, `:`, `{`, `}`, `*`, `?`, `[`, `]` and whitespace so a value cannot forge another key's shape. */
function encodePart(v: string): string {
  return /[%:{}*?[\]\s]/.test(v)
    ? v.replace(/[%:{}*?[\]\s]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    : v;
}
