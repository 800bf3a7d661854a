import { type CacheEntry, ConfigError, InvalidValueError, SerializationError } from '@bgc/cache-core';
import {
  encodePlainValue,
  encodeValue,
  hasValueTags,
  parseJsonSafely,
  reviveValue,
} from '@bgc/cache-core/internal';
import { COMPRESSORS, type CompressionAlgorithm } from './compression.js';
import { readMeta, readTags, validateMeta, validateTags } from '@bgc/cache-core/internal';
import { MSGPACK_SERIALIZER, type Serializer, type SerializerOption } from './serializer.js';

export type { CompressionAlgorithm } from './compression.js';

/** Version of the stored envelope (`"v"` field). A reader treats any other version as unreadable. */
export const ENVELOPE_VERSION = 1;

/** Default {@link EnvelopeCodecOptions.maxValueBytes}: 1 MB. */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/** Options of {@link EnvelopeCodec}. */
export interface EnvelopeCodecOptions {
  /**
   * Serializer the codec writes with, and the only one it reads: an envelope written with another
   * serializer is unreadable (a miss). @default 'json'
   */
  serializer?: SerializerOption;
  /**
   * Values whose serialized form is larger than this (bytes) are compressed. Without it the codec
   * never compresses, and a compressed envelope is unreadable. @default undefined (never)
   */
  compressThresholdBytes?: number;
  /** Algorithm used above {@link EnvelopeCodecOptions.compressThresholdBytes}, and the only one read. @default 'gzip' */
  compression?: CompressionAlgorithm;
  /**
   * Largest envelope (bytes) read, and largest serialized value before compression: a stored
   * envelope over it is unreadable before it is parsed, and a compressed payload is never inflated
   * past it (zlib's `maxOutputLength`). @default 1048576 (1 MB)
   */
  maxValueBytes?: number;
}

interface RawEnvelope {
  v?: unknown;
  n?: unknown;
  f?: unknown;
  s?: unknown;
  c?: unknown;
  l?: unknown;
  m?: unknown;
  g?: unknown;
  t?: unknown;
  x?: unknown;
  e?: unknown;
  z?: unknown;
  b?: unknown;
  d?: unknown;
}

/** `{"v":1,"n":` — every envelope and tombstone starts with it; the Lua scripts read the version after it. */
export const ENVELOPE_HEAD = `{"v":${ENVELOPE_VERSION},"n":`;

/** A version as written into an envelope: a non-negative safe integer (0 when absent). */
function versionOf(version: number | undefined): number {
  if (version === undefined) return 0;
  if (!Number.isSafeInteger(version) || version < 0)
    throw new InvalidValueError(
      `Entry version ${version} is not a non-negative integer; take versions from nextVersion()`,
    );
  return version;
}

function time(value: number, what: string): number {
  if (!Number.isFinite(value))
    throw new InvalidValueError(`Entry ${what} ${value} is not a finite time (epoch ms)`);
  return value;
}

/**
 * Encodes cache entries as the small versioned JSON envelope stored in Redis, and decodes them,
 * treating the stored text as untrusted.
 *
 * With the default JSON serializer the value is embedded with the core's value codec, readable with
 * `redis-cli GET`:
 * `{"v":1,"n":<version>,"f":<freshUntil>,"s":<staleUntil>,"c":<createdAt>,"l":<ttlMs>,"m":{meta},"g":[tags],"t":1,"d":<value>}`
 * (`t` present when the value holds `$bgc` tags). A binary serializer's bytes, or compressed
 * bytes, go base64-encoded in `"b"`, with `"e"` naming the serializer and `"z"` the compression.
 * A delete's tombstone is `{"v":1,"n":<version>,"x":1}`. The version always comes first, so the
 * tier's compare-and-set scripts read it with `GETRANGE` without parsing the value.
 */
export class EnvelopeCodec {
  /** Largest envelope read and largest serialized value (bytes). */
  readonly maxValueBytes: number;
  private readonly serializer: Serializer | undefined;
  private readonly serializerName: string;
  private readonly threshold: number;
  private readonly compression: CompressionAlgorithm | undefined;

  constructor(options: EnvelopeCodecOptions = {}) {
    const s = options.serializer ?? 'json';
    this.serializer = s === 'json' ? undefined : s === 'msgpack' ? MSGPACK_SERIALIZER : s;
    if (this.serializer && this.serializer.name === 'json') {
      throw new ConfigError(
        'serializer',
        'the name "json" is reserved for the built-in JSON serializer; give yours another name',
      );
    }
    this.serializerName = this.serializer?.name ?? 'json';
    const threshold = options.compressThresholdBytes;
    if (threshold !== undefined && !(threshold >= 0)) {
      throw new ConfigError('compressThresholdBytes', `${threshold} must be a number of bytes >= 0`);
    }
    this.threshold = threshold ?? Number.POSITIVE_INFINITY;
    const compression = options.compression ?? 'gzip';
    if (!Object.hasOwn(COMPRESSORS, compression))
      throw new ConfigError('compression', `${String(compression)} is not one of gzip, brotli`);
    this.compression = threshold === undefined ? undefined : compression;
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    if (!(this.maxValueBytes > 0))
      throw new ConfigError('maxValueBytes', `${options.maxValueBytes} must be > 0 bytes`);
  }

  /**
   * Encodes an entry (its `size` is not stored).
   * @throws {InvalidValueError} when the value cannot be stored faithfully, its serialized form is
   *   over `maxValueBytes`, or the entry's times, version or meta are invalid.
   */
  async encode(entry: CacheEntry): Promise<string> {
    return this.encodeNow(entry);
  }

  /**
   * {@link encode}, answering the text synchronously unless compression runs (the common write:
   * no promise of its own). Throws where `encode` rejects.
   */
  encodeNow(entry: CacheEntry): string | Promise<string> {
    let head = `${ENVELOPE_HEAD}${versionOf(entry.version)},"f":${time(entry.freshUntil, 'freshUntil')},"s":${time(entry.staleUntil, 'staleUntil')}`;
    if (entry.createdAt !== undefined) head += `,"c":${time(entry.createdAt, 'createdAt')}`;
    if (entry.ttlMs !== undefined) head += `,"l":${time(entry.ttlMs, 'ttlMs')}`;
    if (entry.meta !== undefined) {
      const problem = validateMeta(entry.meta);
      if (problem !== undefined) throw new InvalidValueError(`Cannot store this entry: ${problem}`);
      head += `,"m":${JSON.stringify(entry.meta)}`;
    }
    if (entry.tags !== undefined && entry.tags.length > 0) {
      const problem = validateTags(entry.tags);
      if (problem !== undefined) throw new InvalidValueError(`Cannot store this entry: ${problem}`);
      head += `,"g":${JSON.stringify(entry.tags)}`;
    }
    if (this.serializer === undefined) {
      // Plain data (the common case) holds no tags: no search of its text for one.
      let text = encodePlainValue(entry.value);
      if (text === undefined) {
        text = encodeValue(entry.value);
        if (hasValueTags(text)) head += ',"t":1';
      }
      if (text.length <= this.threshold && text.length * 3 <= this.maxValueBytes)
        return `${head},"d":${text}}`;
      const bytes = Buffer.from(text);
      this.checkSize(bytes.length);
      if (this.compression === undefined || bytes.length <= this.threshold) return `${head},"d":${text}}`;
      const compression = this.compression;
      return COMPRESSORS[compression]
        .compress(bytes)
        .then((packed) => `${head},"e":"json","z":"${compression}","b":"${packed.toString('base64')}"}`);
    }
    const bytes = this.serializer.serialize(entry.value);
    this.checkSize(bytes.length);
    const name = JSON.stringify(this.serializer.name);
    if (this.compression !== undefined && bytes.length > this.threshold) {
      const compression = this.compression;
      return COMPRESSORS[compression]
        .compress(bytes)
        .then((packed) => `${head},"e":${name},"z":"${compression}","b":"${packed.toString('base64')}"}`);
    }
    return `${head},"e":${name},"b":"${bytes.toString('base64')}"}`;
  }

  /** The tombstone a versioned delete leaves: `{"v":1,"n":<version>,"x":1}`. */
  encodeTombstone(version: number): string {
    return `${ENVELOPE_HEAD}${versionOf(version)},"x":1}`;
  }

  private checkSize(bytes: number): void {
    if (bytes > this.maxValueBytes) {
      throw new InvalidValueError(
        `Value is ${bytes} bytes serialized, over the Redis tier's limit of ${this.maxValueBytes} bytes; cache a smaller value or raise maxValueBytes`,
      );
    }
  }

  /**
   * Decodes a stored envelope; `size` is set to its length in bytes. Resolves `undefined` for a
   * tombstone. Synchronous unless the payload is compressed (then a promise), so that an L2 read
   * costs no extra promise.
   * @throws {SerializationError} when the text is not an envelope this codec accepts: too large,
   *   foreign, corrupted, unsafe JSON, other envelope version, invalid times, version or meta,
   *   another serializer or compression than the configured ones, or a payload that inflates past
   *   `maxValueBytes`; a compressed payload rejects instead.
   */
  decode(text: string): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    // text.length * 3 bounds the UTF-8 size: skip the exact count for small texts.
    let size = text.length;
    if (size * 3 > this.maxValueBytes) {
      size = size > this.maxValueBytes ? size : Buffer.byteLength(text);
      if (size > this.maxValueBytes)
        throw new SerializationError(`Stored envelope is over ${this.maxValueBytes} bytes; refused unread`);
    } else {
      size = Buffer.byteLength(text);
    }
    let raw: RawEnvelope;
    try {
      raw = parseJsonSafely(text) as RawEnvelope;
    } catch (error) {
      throw new SerializationError(`Stored value is not a bgc-cache envelope: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (typeof raw !== 'object' || raw === null || raw.v !== ENVELOPE_VERSION) {
      throw new SerializationError(`Stored value is not a version ${ENVELOPE_VERSION} bgc-cache envelope`);
    }
    const { n, f, s, c, l, m } = raw;
    if (n !== undefined && !(typeof n === 'number' && Number.isSafeInteger(n) && n >= 0))
      throw new SerializationError('Stored envelope has an invalid version');
    if (raw.x !== undefined) {
      if (raw.x === 1) return undefined;
      throw new SerializationError('Stored envelope has an invalid tombstone mark');
    }
    if (
      typeof f !== 'number' ||
      typeof s !== 'number' ||
      (c !== undefined && typeof c !== 'number') ||
      (l !== undefined && typeof l !== 'number')
    ) {
      throw new SerializationError('Stored envelope has invalid expiry times');
    }
    const entry: CacheEntry = { value: undefined, freshUntil: f, staleUntil: s, size };
    if (c !== undefined) entry.createdAt = c as number;
    if (l !== undefined) entry.ttlMs = l as number;
    if ((n as number) > 0) entry.version = n as number;
    if (m !== undefined) {
      let meta: CacheEntry['meta'];
      try {
        meta = readMeta(m);
      } catch (error) {
        throw new SerializationError(`Stored envelope has invalid meta: ${(error as Error).message}`);
      }
      if (meta !== undefined) entry.meta = meta;
    }
    if (raw.g !== undefined) {
      let tags: readonly string[] | undefined;
      try {
        tags = readTags(raw.g);
      } catch (error) {
        throw new SerializationError(`Stored envelope has invalid tags: ${(error as Error).message}`);
      }
      if (tags !== undefined) entry.tags = tags;
    }
    if (raw.b === undefined) {
      if (this.serializer !== undefined)
        throw new SerializationError(
          `Stored envelope holds inline JSON, but this tier reads only serializer ${JSON.stringify(this.serializerName)}`,
        );
      if (raw.e !== undefined || raw.z !== undefined || !('d' in raw))
        throw new SerializationError('Stored envelope holds no value');
      entry.value = raw.t === 1 ? reviveValue(raw.d) : raw.d;
      return entry;
    }
    if (typeof raw.b !== 'string') throw new SerializationError('Stored envelope has an invalid payload');
    if (raw.e !== this.serializerName)
      throw new SerializationError(
        `Stored envelope was written with serializer ${JSON.stringify(String(raw.e).slice(0, 40))}; this tier reads only ${JSON.stringify(this.serializerName)}`,
      );
    const bytes = Buffer.from(raw.b, 'base64');
    if (raw.z === undefined) {
      entry.value = this.deserialize(bytes, raw.t === 1);
      return entry;
    }
    if (this.compression === undefined || raw.z !== this.compression)
      throw new SerializationError(
        `Stored envelope is compressed with ${JSON.stringify(String(raw.z).slice(0, 40))}; this tier reads ${this.compression ?? 'no compression'}`,
      );
    return COMPRESSORS[this.compression].decompress(bytes, this.maxValueBytes).then(
      (plain) => {
        entry.value = this.deserialize(plain, raw.t === 1);
        return entry;
      },
      (error: unknown) => {
        throw new SerializationError(
          `Stored ${String(raw.z)} payload is corrupted or inflates past ${this.maxValueBytes} bytes: ${(error as Error).message}`,
          { cause: error },
        );
      },
    );
  }

  private deserialize(bytes: Buffer, tagged: boolean): unknown {
    if (this.serializer === undefined) {
      let parsed: unknown;
      try {
        parsed = parseJsonSafely(bytes.toString('utf8'));
      } catch (error) {
        throw new SerializationError(`Stored JSON is invalid or unsafe: ${(error as Error).message}`, {
          cause: error,
        });
      }
      return tagged ? reviveValue(parsed) : parsed;
    }
    return this.serializer.deserialize(bytes);
  }
}
