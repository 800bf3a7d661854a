import { InvalidValueError } from './errors/invalid-value-error.js';
import { SerializationError } from './errors/serialization-error.js';

/**
 * The value codec every shared tier (Redis, PostgreSQL) stores values with: JSON text with `$bgc`
 * tags for what plain JSON would change, so that every tier returns the same types.
 *
 * - `Date`, `BigInt`, `Map`, `Set`, `undefined` (in objects and arrays), `NaN`, `±Infinity` and
 *   `-0` are written as `{"$bgc":<type>,"v":...}`; a plain object that itself has a `$bgc` key is
 *   tagged too (`{"$bgc":"Object","v":[[key,value],...]}`), so the encoding stays unambiguous.
 * - Decoding refuses prototype poisoning: a `__proto__` key anywhere, or a `constructor` key
 *   holding `prototype`, is an error, and a revived tag never sets an object's prototype.
 */

/** The key marking a tagged value inside the encoding, e.g. `{"$bgc":"Date","v":"2024-01-01T00:00:00.000Z"}`. */
export const VALUE_TAG_KEY = '$bgc';
/** `"$bgc"` as it appears in the text of a tagged encoding (a string value can never produce it: its quotes are escaped). */
const TAG_MARK = '"$bgc"';
/** Longest decimal `BigInt` revived (digits). */
const MAX_BIGINT_DIGITS = 10_000;

/** Options of {@link decodeValue}. */
export interface DecodeValueOptions {
  /**
   * Largest text accepted, in UTF-8 bytes; a longer text is refused before it is parsed.
   * @default undefined (no limit)
   */
  maxBytes?: number;
}

/**
 * Encodes a value as JSON text, keeping what plain JSON would silently change (see the module
 * notes). Functions, symbols, class instances other than `Date`/`Map`/`Set`, objects with an own
 * `__proto__` key, and cycles are refused.
 * @returns the JSON text; it holds `"$bgc"` (see {@link hasValueTags}) only when a tag was written.
 * @throws {InvalidValueError} naming where the first value that cannot be stored is.
 */
export function encodeValue(value: unknown): string {
  return encodePlainValue(value) ?? encodeTaggedValue(value);
}

/**
 * {@link encodeValue} of plain JSON data (see `isPlainJson`): its `JSON.stringify` text, which
 * never needs {@link reviveValue}; `undefined` for any other value (then call
 * {@link encodeValue}). For writers that record whether a text holds tags without searching it.
 */
export function encodePlainValue(value: unknown): string | undefined {
  // Plain JSON data (the common case) needs no replacer: JSON.stringify without one is ~3x faster.
  return isPlainJson(value, 0) ? JSON.stringify(value) : undefined;
}

function encodeTaggedValue(value: unknown): string {
  try {
    return JSON.stringify(value, replacer) as string;
  } catch (error) {
    if (error instanceof InvalidValueError) throw error;
    throw new InvalidValueError(
      `Cannot cache this value: ${(error as Error).message}; remove cycles before caching`,
      { cause: error },
    );
  }
}

/** Deepest plain tree checked before falling back to the replacer (which also finds cycles). */
const MAX_PLAIN_DEPTH = 64;

/**
 * Whether `value` is data that `JSON.stringify` writes faithfully without tags: strings, booleans,
 * null, finite numbers other than -0, arrays of such, and plain objects of such without an own
 * `$bgc`, `__proto__` or `toJSON` key. Anything else (or a tree deeper than {@link MAX_PLAIN_DEPTH})
 * goes through the replacer.
 */
function isPlainJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth >= MAX_PLAIN_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const obj = value as Record<string, unknown>;
  for (const key in obj) {
    if (key === VALUE_TAG_KEY || key === 'toJSON' || key === '__proto__') return false;
    if (!isPlainJson(obj[key], depth + 1)) return false;
  }
  return true;
}

function replacer(this: Record<string, unknown>, key: string): unknown {
  // `this[key]` is the raw value, before `toJSON` (Date) ran; the root's holder is `{ '': value }`.
  const raw = this[key];
  switch (typeof raw) {
    case 'string':
    case 'boolean':
      return raw;
    case 'number':
      if (Number.isFinite(raw) && !Object.is(raw, -0)) return raw;
      return { [VALUE_TAG_KEY]: 'Number', v: Object.is(raw, -0) ? '-0' : String(raw) };
    case 'bigint':
      return { [VALUE_TAG_KEY]: 'BigInt', v: raw.toString() };
    case 'undefined':
      return { [VALUE_TAG_KEY]: 'undefined' };
    case 'function':
    case 'symbol':
      throw new InvalidValueError(
        `Cannot cache a ${typeof raw} (at ${describeKey(key)}): only data (JSON values, Date, BigInt, Map, Set) can be stored in a shared tier`,
      );
  }
  if (raw === null || Array.isArray(raw)) return raw;
  if (raw instanceof Date)
    return { [VALUE_TAG_KEY]: 'Date', v: Number.isNaN(raw.getTime()) ? null : raw.toISOString() };
  if (raw instanceof Map) return { [VALUE_TAG_KEY]: 'Map', v: [...raw.entries()] };
  if (raw instanceof Set) return { [VALUE_TAG_KEY]: 'Set', v: [...raw.values()] };
  const proto = Object.getPrototypeOf(raw);
  if (proto !== Object.prototype && proto !== null) {
    throw new InvalidValueError(
      `Cannot cache an instance of ${(raw as object).constructor?.name ?? 'unknown'} (at ${describeKey(key)}): convert it to plain data (objects, arrays, Date, Map, Set) first`,
    );
  }
  if (Object.hasOwn(raw as object, '__proto__')) {
    throw new InvalidValueError(
      `Cannot cache an object with an own "__proto__" key (at ${describeKey(key)}): it would be refused when read back`,
    );
  }
  // Entries (an array) rather than the object itself, so the replacer does not tag it again.
  if (Object.hasOwn(raw as object, VALUE_TAG_KEY))
    return { [VALUE_TAG_KEY]: 'Object', v: Object.entries(raw as object) };
  return raw;
}

function describeKey(key: string): string {
  return key === ''
    ? 'the top level'
    : `key ${JSON.stringify(key.length > 50 ? `${key.slice(0, 50)}…` : key)}`;
}

/**
 * Whether text written by {@link encodeValue} holds `$bgc` tags and needs {@link reviveValue}
 * after a plain parse. A false positive only costs a revive pass.
 */
export function hasValueTags(text: string): boolean {
  return text.indexOf(TAG_MARK) !== -1;
}

/** Refuses `__proto__` keys and `constructor` objects holding `prototype` (prototype poisoning). */
function poisonCheck(this: unknown, key: string, value: unknown): unknown {
  if (key === '__proto__') throw new SyntaxError('Object contains forbidden prototype property');
  if (
    key === 'constructor' &&
    typeof value === 'object' &&
    value !== null &&
    Object.hasOwn(value, 'prototype')
  ) {
    throw new SyntaxError('Object contains forbidden prototype property');
  }
  return value;
}

/**
 * `JSON.parse` refusing prototype poisoning: a `__proto__` key anywhere, or a `constructor` key
 * holding an object with a `prototype` key, is an error (escaped spellings such as `"\u005f_proto__"`
 * included). `__proto__` and `prototype` both contain `proto`, so text with neither a `\u` escape
 * nor `proto` cannot carry either and is parsed without the check (the common case on every read).
 * @throws {SyntaxError} on invalid or unsafe JSON.
 */
export function parseJsonSafely(text: string): unknown {
  if (text.indexOf('\\u') === -1 && text.indexOf('proto') === -1) return JSON.parse(text);
  return JSON.parse(text, poisonCheck);
}

/**
 * Replaces the `$bgc` tags of a tree parsed from {@link encodeValue}'s text with the values they
 * stand for, in place where possible. Objects revived from an `Object` tag get their keys with
 * `Object.defineProperty`, so a stored value can never set a prototype.
 * @throws {SerializationError} on an unknown or malformed tag, or a `__proto__` key in an `Object` tag.
 */
export function reviveValue(node: unknown): unknown {
  try {
    return revive(node);
  } catch (error) {
    if (error instanceof SerializationError) throw error;
    // e.g. RangeError from a tree nested deeper than the stack.
    throw new SerializationError(`Stored value cannot be revived: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function revive(node: unknown): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = revive(node[i]);
    return node;
  }
  const obj = node as Record<string, unknown>;
  if (!Object.hasOwn(obj, VALUE_TAG_KEY)) {
    for (const key of Object.keys(obj)) obj[key] = revive(obj[key]);
    return obj;
  }
  const tag = obj[VALUE_TAG_KEY];
  const v = obj.v;
  switch (tag) {
    case 'undefined':
      return undefined;
    case 'Number':
      if (v === '-0' || v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
      break;
    case 'BigInt':
      if (typeof v === 'string' && v.length <= MAX_BIGINT_DIGITS + 1 && /^-?\d+$/.test(v)) return BigInt(v);
      break;
    case 'Date':
      if (v === null) return new Date(Number.NaN);
      if (typeof v === 'string') return new Date(v);
      break;
    case 'Map':
      if (Array.isArray(v) && v.every(isPair)) {
        const map = new Map<unknown, unknown>();
        for (const pair of v as unknown[][]) map.set(revive(pair[0]), revive(pair[1]));
        return map;
      }
      break;
    case 'Set':
      if (Array.isArray(v)) {
        const set = new Set<unknown>();
        for (const item of v) set.add(revive(item));
        return set;
      }
      break;
    case 'Object':
      if (Array.isArray(v) && v.every((pair) => isPair(pair) && typeof pair[0] === 'string')) {
        const out: Record<string, unknown> = {};
        for (const pair of v as [string, unknown][]) {
          if (pair[0] === '__proto__')
            throw new SerializationError('Stored value revives a "__proto__" key; refused');
          Object.defineProperty(out, pair[0], {
            value: revive(pair[1]),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      }
      break;
  }
  throw new SerializationError(
    `Stored value holds an unknown or malformed ${VALUE_TAG_KEY} tag ${JSON.stringify(String(tag).slice(0, 40))}`,
  );
}

function isPair(item: unknown): boolean {
  return Array.isArray(item) && item.length === 2;
}

/**
 * Decodes what {@link encodeValue} wrote: refuses text over `maxBytes` before parsing it, refuses
 * prototype poisoning ({@link parseJsonSafely}), and revives `$bgc` tags (only when the text holds one).
 * @throws {SerializationError} when the text is too large, not JSON, unsafe, or holds a bad tag.
 */
export function decodeValue(text: string, options: DecodeValueOptions = {}): unknown {
  const max = options.maxBytes;
  // text.length * 3 bounds the UTF-8 size: skip the exact count for small texts.
  if (max !== undefined && text.length * 3 > max) {
    const bytes = text.length > max ? text.length : Buffer.byteLength(text, 'utf8');
    if (bytes > max)
      throw new SerializationError(`Stored value is over ${max} bytes (at least ${bytes}); refused unread`);
  }
  let parsed: unknown;
  try {
    parsed = parseJsonSafely(text);
  } catch (error) {
    throw new SerializationError(`Stored JSON is invalid or unsafe: ${(error as Error).message}`, {
      cause: error,
    });
  }
  // An escaped tag key (`"\u0024bgc"`) is revived too: the text was not written by encodeValue, but
  // the result must not depend on the spelling.
  return hasValueTags(text) || text.indexOf('\\u') !== -1 ? reviveValue(parsed) : parsed;
}
