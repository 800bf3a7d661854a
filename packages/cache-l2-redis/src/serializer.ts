import { InvalidValueError, SerializationError } from '@bgc/cache-core';
import { Packr } from 'msgpackr';

/**
 * Turns values into bytes and back. The name is written into every envelope, so a reader picks
 * the serializer the writer used; give a custom serializer a stable, unique name.
 */
export interface Serializer {
  /** Stable name stored in the envelope, e.g. `"msgpack"`. `"json"` is reserved for the built-in JSON encoding. */
  readonly name: string;
  /**
   * Encodes a value.
   * @throws {InvalidValueError} when the value cannot be stored faithfully.
   */
  serialize(value: unknown): Buffer;
  /**
   * Decodes bytes written by {@link Serializer.serialize}.
   * @throws {SerializationError} (or any error) when the bytes are not readable; the tier turns it into a miss.
   */
  deserialize(data: Buffer): unknown;
}

/** Which serializer a tier writes with: the built-in `'json'` (default), `'msgpack'`, or a custom one. */
export type SerializerOption = 'json' | 'msgpack' | Serializer;

const packr = new Packr({ structuredClone: true, useRecords: false, useBigIntExtension: true });

/**
 * Refuses what msgpack would silently change: functions, symbols, `Map` (unpacked as a plain
 * object), and class instances other than `Date` and `Set`.
 */
function assertMsgpackable(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'function':
    case 'symbol':
      throw new InvalidValueError(
        `Cannot cache a ${typeof value} (at ${path}): only data can be stored in Redis`,
      );
    case 'object':
      break;
    default:
      return;
  }
  if (value === null || value instanceof Date) return;
  if (seen.has(value)) return;
  seen.add(value);
  if (Array.isArray(value) || value instanceof Set) {
    let i = 0;
    for (const item of value) assertMsgpackable(item, `${path}[${i++}]`, seen);
    return;
  }
  if (value instanceof Map) {
    throw new InvalidValueError(
      `Cannot cache a Map with the msgpack serializer (at ${path}): use the json serializer or a plain object`,
    );
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    throw new InvalidValueError(
      `Cannot cache an instance of ${(value as object).constructor?.name ?? 'unknown'} (at ${path}): convert it to plain data first`,
    );
  }
  for (const [key, item] of Object.entries(value)) assertMsgpackable(item, `${path}.${key}`, seen);
}

/**
 * The binary serializer (msgpackr, structured clone on): faster and smaller than JSON for large
 * values; keeps `Date`, `Set`, `BigInt` and `undefined`, refuses `Map` and class instances.
 */
export const MSGPACK_SERIALIZER: Serializer = Object.freeze({
  name: 'msgpack',
  serialize(value: unknown): Buffer {
    assertMsgpackable(value, '$', new Set());
    try {
      return packr.pack(value);
    } catch (error) {
      throw new InvalidValueError(`Cannot cache this value with msgpack: ${(error as Error).message}`, {
        cause: error,
      });
    }
  },
  deserialize(data: Buffer): unknown {
    let value: unknown;
    try {
      value = packr.unpack(data);
    } catch (error) {
      throw new SerializationError(`Stored msgpack bytes are unreadable: ${(error as Error).message}`, {
        cause: error,
      });
    }
    // Only what serialize() accepts comes back: msgpackr's extensions (RegExp, Error, typed
    // arrays, Map...) planted by another writer are refused, not handed to the application.
    try {
      assertMsgpackable(value, '$', new Set());
    } catch (error) {
      throw new SerializationError(
        `Stored msgpack value holds a type this tier never writes: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    return value;
  },
});
