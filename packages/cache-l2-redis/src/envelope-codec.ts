import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, gunzip, gzip } from 'node:zlib';
import { type CacheEntry, ConfigError, SerializationError } from '@bgc/cache-core';
import { decodeJson, encodeJson, parseJsonSafely, reviveTags } from './json-serializer.js';
import { MSGPACK_SERIALIZER, type Serializer, type SerializerOption } from './serializer.js';

/** Version of the stored envelope (`"v"` field). A reader treats any other version as a miss. */
export const ENVELOPE_VERSION = 1;

/** Compression algorithms, from node:zlib. */
export type CompressionAlgorithm = 'gzip' | 'brotli';

/** Options of {@link EnvelopeCodec}. */
export interface EnvelopeCodecOptions {
  /** Serializer the codec writes with (any built-in or this one can be read back). @default 'json' */
  serializer?: SerializerOption;
  /** Values whose serialized form is larger than this (bytes) are compressed. @default undefined (never) */
  compressThresholdBytes?: number;
  /** Algorithm used above {@link EnvelopeCodecOptions.compressThresholdBytes}. @default 'gzip' */
  compression?: CompressionAlgorithm;
}

const zip = {
  gzip: { compress: promisify(gzip), decompress: promisify(gunzip) },
  brotli: { compress: promisify(brotliCompress), decompress: promisify(brotliDecompress) },
} as const;

interface RawEnvelope {
  v?: unknown;
  f?: unknown;
  s?: unknown;
  c?: unknown;
  m?: unknown;
  t?: unknown;
  e?: unknown;
  z?: unknown;
  b?: unknown;
  d?: unknown;
}

/**
 * Encodes cache entries as the small versioned JSON envelope stored in Redis, and decodes them.
 *
 * With the default JSON serializer the value is embedded as JSON, readable with `redis-cli GET`:
 * `{"v":1,"f":<freshUntil>,"s":<staleUntil>,"c":<createdAt>,"m":{meta},"t":1,"d":<value>}`
 * (`t` present when the value holds `$bgc` tags). A binary serializer's bytes, or compressed
 * bytes, go base64-encoded in `"b"`, with `"e"` naming the serializer and `"z"` the compression.
 */
export class EnvelopeCodec {
  private readonly serializer: Serializer | undefined;
  private readonly threshold: number;
  private readonly compression: CompressionAlgorithm;

  constructor(options: EnvelopeCodecOptions = {}) {
    const s = options.serializer ?? 'json';
    this.serializer = s === 'json' ? undefined : s === 'msgpack' ? MSGPACK_SERIALIZER : s;
    if (this.serializer && this.serializer.name === 'json') {
      throw new ConfigError(
        'serializer',
        'the name "json" is reserved for the built-in JSON serializer; give yours another name',
      );
    }
    const threshold = options.compressThresholdBytes;
    if (threshold !== undefined && !(threshold >= 0)) {
      throw new ConfigError('compressThresholdBytes', `${threshold} must be a number of bytes >= 0`);
    }
    this.threshold = threshold ?? Number.POSITIVE_INFINITY;
    this.compression = options.compression ?? 'gzip';
    if (!(this.compression in zip))
      throw new ConfigError('compression', `${String(this.compression)} is not one of gzip, brotli`);
  }

  /**
   * Encodes an entry (its `size` is not stored).
   * @throws {InvalidValueError} when the value cannot be stored faithfully.
   */
  async encode(entry: CacheEntry): Promise<string> {
    let head = `{"v":${ENVELOPE_VERSION},"f":${entry.freshUntil},"s":${entry.staleUntil}`;
    if (entry.createdAt !== undefined) head += `,"c":${entry.createdAt}`;
    if (entry.meta !== undefined) head += `,"m":${JSON.stringify(entry.meta)}`;
    if (this.serializer === undefined) {
      const { text, tagged } = encodeJson(entry.value);
      if (tagged) head += ',"t":1';
      if (text.length <= this.threshold || Buffer.byteLength(text) <= this.threshold)
        return `${head},"d":${text}}`;
      const packed = await zip[this.compression].compress(Buffer.from(text));
      return `${head},"e":"json","z":"${this.compression}","b":"${packed.toString('base64')}"}`;
    }
    let bytes = this.serializer.serialize(entry.value);
    let z = '';
    if (bytes.length > this.threshold) {
      bytes = await zip[this.compression].compress(bytes);
      z = `,"z":"${this.compression}"`;
    }
    return `${head},"e":${JSON.stringify(this.serializer.name)}${z},"b":"${bytes.toString('base64')}"}`;
  }

  /**
   * Decodes a stored envelope; `size` is set to its length in bytes. Synchronous unless the
   * payload is compressed (then a promise), so that an L2 read costs no extra promise.
   * @throws {SerializationError} when the text is not an envelope this codec can read (foreign,
   *   corrupted, unsafe JSON, other version, unknown serializer or compression); a compressed
   *   payload rejects instead.
   */
  decode(text: string): CacheEntry | Promise<CacheEntry> {
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
    const { f, s, c, m } = raw;
    if (typeof f !== 'number' || typeof s !== 'number' || (c !== undefined && typeof c !== 'number')) {
      throw new SerializationError('Stored envelope has invalid expiry times');
    }
    if (m !== undefined && (typeof m !== 'object' || m === null || Array.isArray(m))) {
      throw new SerializationError('Stored envelope has invalid meta');
    }
    const entry: CacheEntry = {
      value: undefined,
      freshUntil: f,
      staleUntil: s,
      size: Buffer.byteLength(text),
    };
    if (c !== undefined) entry.createdAt = c as number;
    if (m !== undefined) entry.meta = m as Record<string, string | number | boolean>;
    if (raw.b === undefined) {
      if (!('d' in raw)) throw new SerializationError('Stored envelope holds no value');
      entry.value = raw.t === 1 ? reviveTags(raw.d) : raw.d;
      return entry;
    }
    if (typeof raw.b !== 'string') throw new SerializationError('Stored envelope has an invalid payload');
    const bytes = Buffer.from(raw.b, 'base64');
    if (raw.z === undefined) {
      entry.value = this.deserialize(raw.e, bytes, raw.t === 1);
      return entry;
    }
    const algo = zip[raw.z as CompressionAlgorithm];
    if (!Object.hasOwn(zip, raw.z as string) || !algo)
      throw new SerializationError(`Stored envelope uses unknown compression ${JSON.stringify(raw.z)}`);
    return algo.decompress(bytes).then(
      (plain) => {
        entry.value = this.deserialize(raw.e, plain, raw.t === 1);
        return entry;
      },
      (error: unknown) => {
        throw new SerializationError(
          `Stored ${String(raw.z)} payload is corrupted: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      },
    );
  }

  private deserialize(name: unknown, bytes: Buffer, tagged: boolean): unknown {
    if (name === 'json') return decodeJson(bytes.toString('utf8'), tagged);
    if (name === MSGPACK_SERIALIZER.name) return MSGPACK_SERIALIZER.deserialize(bytes);
    if (this.serializer !== undefined && name === this.serializer.name)
      return this.serializer.deserialize(bytes);
    throw new SerializationError(
      `Stored envelope was written with serializer ${JSON.stringify(name)}, which this tier does not know; configure it`,
    );
  }
}
