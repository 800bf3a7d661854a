import { InvalidValueError, SerializationError } from '@bgc/cache-core';
import sjson from 'secure-json-parse';

/** The key marking a tagged value inside the JSON encoding, e.g. `{"$bgc":"Date","v":"2024-01-01T00:00:00.000Z"}`. */
export const TAG_KEY = '$bgc';

/** What {@link encodeJson} returns: the JSON text and whether it holds tagged values. */
export interface EncodedJson {
  /** The JSON text of the value. */
  text: string;
  /** `true` when the text holds `$bgc` tags and must be decoded with {@link reviveTags}. */
  tagged: boolean;
}

/**
 * Encodes a value as JSON, keeping what plain JSON would silently change: `Date`, `BigInt`, `Map`,
 * `Set`, `undefined` (in objects and arrays), `NaN`, `±Infinity` and `-0` are written as
 * `{"$bgc":<type>,"v":...}` tags; a plain object that itself has a `$bgc` key is tagged too, so
 * the encoding stays unambiguous. Functions, symbols, class instances other than those, and
 * cycles are refused.
 * @throws {InvalidValueError} naming the path of the first value that cannot be stored.
 */
export function encodeJson(value: unknown): EncodedJson {
  let tagged = false;
  function replacer(this: Record<string, unknown>, key: string): unknown {
    // `this[key]` is the raw value, before `toJSON` (Date) ran; the root's holder is `{ '': value }`.
    const raw = this[key];
    switch (typeof raw) {
      case 'string':
      case 'boolean':
        return raw;
      case 'number':
        if (Number.isFinite(raw) && !Object.is(raw, -0)) return raw;
        tagged = true;
        return { [TAG_KEY]: 'Number', v: String(Object.is(raw, -0) ? '-0' : raw) };
      case 'bigint':
        tagged = true;
        return { [TAG_KEY]: 'BigInt', v: raw.toString() };
      case 'undefined':
        tagged = true;
        return { [TAG_KEY]: 'undefined' };
      case 'function':
      case 'symbol':
        throw new InvalidValueError(
          `Cannot cache a ${typeof raw} (at ${describeKey(key)}): only data (JSON values, Date, BigInt, Map, Set) can be stored in Redis`,
        );
    }
    if (raw === null) return null;
    if (Array.isArray(raw)) return raw;
    if (raw instanceof Date) {
      tagged = true;
      return { [TAG_KEY]: 'Date', v: Number.isNaN(raw.getTime()) ? null : raw.toISOString() };
    }
    if (raw instanceof Map) {
      tagged = true;
      return { [TAG_KEY]: 'Map', v: [...raw.entries()] };
    }
    if (raw instanceof Set) {
      tagged = true;
      return { [TAG_KEY]: 'Set', v: [...raw.values()] };
    }
    const proto = Object.getPrototypeOf(raw);
    if (proto !== Object.prototype && proto !== null) {
      const name = (raw as object).constructor?.name ?? 'unknown';
      throw new InvalidValueError(
        `Cannot cache an instance of ${name} (at ${describeKey(key)}): convert it to plain data (objects, arrays, Date, Map, Set) first`,
      );
    }
    if (Object.hasOwn(raw as object, '__proto__')) {
      throw new InvalidValueError(
        `Cannot cache an object with an own "__proto__" key (at ${describeKey(key)}): it would be rejected when read back`,
      );
    }
    if (Object.hasOwn(raw as object, TAG_KEY)) {
      tagged = true;
      // Entries (arrays) rather than the object itself, so the replacer does not tag it again.
      return { [TAG_KEY]: 'Object', v: Object.entries(raw as object) };
    }
    return raw;
  }
  let text: string;
  try {
    text = JSON.stringify(value, replacer);
  } catch (error) {
    if (error instanceof InvalidValueError) throw error;
    throw new InvalidValueError(
      `Cannot cache this value: ${(error as Error).message}; remove cycles before caching`,
      { cause: error },
    );
  }
  return { text, tagged };
}

function describeKey(key: string): string {
  return key === ''
    ? 'the top level'
    : `key ${JSON.stringify(key.length > 50 ? `${key.slice(0, 50)}…` : key)}`;
}

/**
 * `JSON.parse` that refuses prototype poisoning: a `__proto__` key, or a `constructor` key holding
 * `prototype`, is an error (`secure-json-parse` rules). `__proto__` and `prototype` both contain
 * `proto`, so text with neither a `\u` escape nor `proto` cannot carry either and skips
 * `secure-json-parse`'s two regular-expression scans (the common case on every L2 read).
 * @throws {SyntaxError} on invalid or unsafe JSON.
 */
export function parseJsonSafely(text: string): unknown {
  if (text.indexOf('\\u') === -1 && text.indexOf('proto') === -1) return JSON.parse(text);
  return sjson.parse(text, null, { protoAction: 'error', constructorAction: 'error' });
}

/**
 * Parses JSON text refusing prototype poisoning ({@link parseJsonSafely}) and, when `tagged`,
 * restores the `$bgc` tags written by {@link encodeJson}.
 * @throws {SerializationError} when the text is not valid JSON, is unsafe, or holds unknown tags.
 */
export function decodeJson(text: string, tagged: boolean): unknown {
  let parsed: unknown;
  try {
    parsed = parseJsonSafely(text);
  } catch (error) {
    throw new SerializationError(`Stored JSON is invalid or unsafe: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return tagged ? reviveTags(parsed) : parsed;
}

/**
 * Replaces `$bgc` tags in a parsed JSON tree with the values they stand for.
 * @throws {SerializationError} on an unknown or malformed tag.
 */
export function reviveTags(node: unknown): unknown {
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
      return Number(v);
    case 'BigInt':
      if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
      break;
    case 'Date':
      if (v === null) return new Date(Number.NaN);
      if (typeof v === 'string') return new Date(v);
      break;
    case 'Map':
      if (Array.isArray(v))
        return new Map((reviveTags(v) as [unknown, unknown][]).map((pair) => [pair[0], pair[1]]));
      break;
    case 'Set':
      if (Array.isArray(v)) return new Set(reviveTags(v) as unknown[]);
      break;
    case 'Object':
      if (Array.isArray(v)) {
        const out: Record<string, unknown> = {};
        for (const pair of v as [string, unknown][]) out[pair[0]] = reviveTags(pair[1]);
        return out;
      }
      break;
  }
  throw new SerializationError(
    `Stored JSON holds an unknown or malformed ${TAG_KEY} tag ${JSON.stringify(tag)}`,
  );
}
