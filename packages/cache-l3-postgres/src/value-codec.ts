/**
 * The value codec of the L3 tier: text in the `value` column, same types in and out as the L2 tier.
 *
 * The coherence contract puts one codec for every shared tier in `@bgc/cache-core`
 * (`encodeValue` / `decodeValue`). Until the core exports it, this module implements the same
 * encoding (JSON with `$bgc` tags, as `@bgc/cache-l2-redis` writes them); once it does, this file
 * becomes a re-export and nothing else in the package changes.
 */
import { InvalidValueError, SerializationError } from '@bgc/cache-core';
import sjson from 'secure-json-parse';

/** The key marking a tagged value, e.g. `{"$bgc":"Date","v":"2024-01-01T00:00:00.000Z"}`. */
const TAG_KEY = '$bgc';
const TAG_MARK = '"$bgc"';

/** Options of {@link decodeValue}. */
export interface DecodeValueOptions {
  /** Largest text accepted, in UTF-8 bytes; a longer text is refused before it is parsed. */
  maxBytes?: number;
}

/**
 * Encodes a value as JSON text, keeping what plain JSON would change: `Date`, `BigInt`, `Map`,
 * `Set`, `undefined` (in objects and arrays), `NaN`, `±Infinity` and `-0` become `$bgc` tags; a
 * plain object with its own `$bgc` key is tagged too. Functions, symbols, class instances other
 * than those, own `__proto__` keys and cycles are refused.
 * @throws {InvalidValueError} naming where the first value that cannot be stored is.
 */
export function encodeValue(value: unknown): string {
  function replacer(this: Record<string, unknown>, key: string): unknown {
    const raw = this[key];
    switch (typeof raw) {
      case 'string':
      case 'boolean':
        return raw;
      case 'number':
        if (Number.isFinite(raw) && !Object.is(raw, -0)) return raw;
        return { [TAG_KEY]: 'Number', v: Object.is(raw, -0) ? '-0' : String(raw) };
      case 'bigint':
        return { [TAG_KEY]: 'BigInt', v: raw.toString() };
      case 'undefined':
        return { [TAG_KEY]: 'undefined' };
      case 'function':
      case 'symbol':
        throw new InvalidValueError(
          `Cannot cache a ${typeof raw} (at ${describeKey(key)}): only data (JSON values, Date, BigInt, Map, Set) can be stored`,
        );
    }
    if (raw === null || Array.isArray(raw)) return raw;
    if (raw instanceof Date)
      return { [TAG_KEY]: 'Date', v: Number.isNaN(raw.getTime()) ? null : raw.toISOString() };
    if (raw instanceof Map) return { [TAG_KEY]: 'Map', v: [...raw.entries()] };
    if (raw instanceof Set) return { [TAG_KEY]: 'Set', v: [...raw.values()] };
    const proto = Object.getPrototypeOf(raw);
    if (proto !== Object.prototype && proto !== null) {
      throw new InvalidValueError(
        `Cannot cache an instance of ${(raw as object).constructor?.name ?? 'unknown'} (at ${describeKey(key)}): convert it to plain data (objects, arrays, Date, Map, Set) first`,
      );
    }
    if (Object.hasOwn(raw as object, '__proto__'))
      throw new InvalidValueError(
        `Cannot cache an object with an own "__proto__" key (at ${describeKey(key)}): it would be refused when read back`,
      );
    if (Object.hasOwn(raw as object, TAG_KEY))
      return { [TAG_KEY]: 'Object', v: Object.entries(raw as object) };
    return raw;
  }
  try {
    return JSON.stringify(value, replacer);
  } catch (error) {
    if (error instanceof InvalidValueError) throw error;
    throw new InvalidValueError(
      `Cannot cache this value: ${(error as Error).message}; remove cycles before caching`,
      { cause: error },
    );
  }
}

function describeKey(key: string): string {
  return key === ''
    ? 'the top level'
    : `key ${JSON.stringify(key.length > 50 ? `${key.slice(0, 50)}…` : key)}`;
}

/**
 * `JSON.parse` refusing prototype poisoning (`__proto__`, `constructor.prototype`). Text with
 * neither a `\u` escape nor `proto` cannot hold either and skips the scans.
 * @throws {SyntaxError} on invalid or unsafe JSON.
 */
export function parseJsonSafely(text: string): unknown {
  if (text.indexOf('\\u') === -1 && text.indexOf('proto') === -1) return JSON.parse(text);
  return sjson.parse(text, null, { protoAction: 'error', constructorAction: 'error' });
}

/**
 * Decodes what {@link encodeValue} wrote: refuses text over `maxBytes` before parsing it, refuses
 * prototype poisoning, and revives `$bgc` tags (only when the text holds one).
 * @throws {SerializationError} when the text is too large, not JSON, unsafe, or holds a bad tag.
 */
export function decodeValue(text: string, options: DecodeValueOptions = {}): unknown {
  const max = options.maxBytes;
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
  if (text.indexOf(TAG_MARK) === -1) return parsed;
  try {
    return reviveTags(parsed);
  } catch (error) {
    if (error instanceof SerializationError) throw error;
    throw new SerializationError(`Stored value cannot be revived: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function reviveTags(node: unknown): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = reviveTags(node[i]);
    return node;
  }
  const obj = node as Record<string, unknown>;
  const tag = obj[TAG_KEY];
  if (tag === undefined) {
    for (const key of Object.keys(obj)) obj[key] = reviveTags(obj[key]);
    return obj;
  }
  const v = obj.v;
  switch (tag) {
    case 'undefined':
      return undefined;
    case 'Number':
      if (v === '-0' || v === 'NaN' || v === 'Infinity' || v === '-Infinity') return Number(v);
      break;
    case 'BigInt':
      if (typeof v === 'string' && /^-?\d{1,10000}$/.test(v)) return BigInt(v);
      break;
    case 'Date':
      if (v === null) return new Date(Number.NaN);
      if (typeof v === 'string') return new Date(v);
      break;
    case 'Map':
      if (Array.isArray(v) && v.every((pair) => Array.isArray(pair) && pair.length === 2))
        return new Map((reviveTags(v) as [unknown, unknown][]).map((pair) => [pair[0], pair[1]]));
      break;
    case 'Set':
      if (Array.isArray(v)) return new Set(reviveTags(v) as unknown[]);
      break;
    case 'Object':
      if (Array.isArray(v) && v.every((pair) => Array.isArray(pair) && typeof pair[0] === 'string')) {
        const out: Record<string, unknown> = {};
        for (const pair of v as [string, unknown][]) {
          if (pair[0] === '__proto__') throw new SerializationError('Stored value revives a "__proto__" key');
          out[pair[0]] = reviveTags(pair[1]);
        }
        return out;
      }
      break;
  }
  throw new SerializationError(`Stored JSON holds an unknown or malformed ${TAG_KEY} tag`);
}
