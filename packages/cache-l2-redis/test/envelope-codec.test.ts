import { gzipSync } from 'node:zlib';
import { ConfigError, InvalidValueError, SerializationError } from '@bgc/cache-core';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { COMPRESSORS } from '../src/compression.js';
import { ENVELOPE_VERSION, EnvelopeCodec } from '../src/envelope-codec.js';
import type { Serializer } from '../src/serializer.js';

const entry = {
  value: { rows: [1, 2, 3], when: new Date(1000) },
  freshUntil: 2000,
  staleUntil: 3000,
  createdAt: 1000,
  meta: { negative: false },
};

/** Decodes, turning a synchronous throw into a rejection (both are refusals). */
const decode = (codec: EnvelopeCodec, text: string) => Promise.resolve().then(() => codec.decode(text));

afterEach(() => {
  vi.restoreAllMocks();
});

describe('EnvelopeCodec', () => {
  it('flags tagged values only: plain data is written without "t", whatever its text holds', async () => {
    const codec = new EnvelopeCodec();
    const times = { freshUntil: 2000, staleUntil: 3000 };
    // A key spelled like the tag mark: plain data, its text holds "$bgc" but it needs no revive.
    const plain = { '"$bgc': { v: 1 }, rows: [1, 2] };
    const plainText = await codec.encode({ value: plain, ...times });
    expect(JSON.parse(plainText).t).toBeUndefined();
    expect((await codec.decode(plainText)).value).toEqual(plain);
    const tagged = { when: new Date(5), set: new Set([1]) };
    const taggedText = await codec.encode({ value: tagged, ...times });
    expect(JSON.parse(taggedText).t).toBe(1);
    expect((await codec.decode(taggedText)).value).toEqual(tagged);
  });

  it('writes a readable JSON envelope with version, times, ttlMs, meta and the value inline', async () => {
    const codec = new EnvelopeCodec();
    const text = await codec.encode({
      value: { a: 1 },
      freshUntil: 2000,
      staleUntil: 3000,
      createdAt: 1000,
      ttlMs: 1000,
      version: 123_456_789,
      meta: { negative: true },
    });
    expect(text.startsWith('{"v":1,"n":123456789,"f":2000,')).toBe(true);
    expect(JSON.parse(text)).toEqual({
      v: ENVELOPE_VERSION,
      n: 123_456_789,
      f: 2000,
      s: 3000,
      c: 1000,
      l: 1000,
      m: { negative: true },
      d: { a: 1 },
    });
    expect(await codec.decode(text)).toEqual({
      value: { a: 1 },
      freshUntil: 2000,
      staleUntil: 3000,
      createdAt: 1000,
      ttlMs: 1000,
      version: 123_456_789,
      meta: { negative: true },
      size: text.length,
    });
    // No version is written as 0 and read back as none.
    const unversioned = await codec.encode({ value: 1, freshUntil: 2, staleUntil: 3 });
    expect(unversioned).toBe('{"v":1,"n":0,"f":2,"s":3,"d":1}');
    expect(await codec.decode(unversioned)).toEqual({
      value: 1,
      freshUntil: 2,
      staleUntil: 3,
      size: unversioned.length,
    });
  });

  it('keeps tags in "g" (after meta, before the value) and refuses invalid ones both ways', async () => {
    const codec = new EnvelopeCodec();
    const tags = ['comexstat:ncm:12019000', '\u0001ns:tenant:'];
    const text = await codec.encode({
      value: 1,
      freshUntil: 2,
      staleUntil: 3,
      meta: { negative: true },
      tags,
    });
    expect(text).toBe(`{"v":1,"n":0,"f":2,"s":3,"m":{"negative":true},"g":${JSON.stringify(tags)},"d":1}`);
    expect((await codec.decode(text))?.tags).toEqual(tags);
    // An empty list is not written, and reads back as none.
    expect(await codec.encode({ value: 1, freshUntil: 2, staleUntil: 3, tags: [] })).toBe(
      '{"v":1,"n":0,"f":2,"s":3,"d":1}',
    );
    expect((await codec.decode('{"v":1,"n":0,"f":2,"s":3,"g":[],"d":1}'))?.tags).toBeUndefined();
    await expect(codec.encode({ value: 1, freshUntil: 2, staleUntil: 3, tags: ['a\nb'] })).rejects.toThrow(
      InvalidValueError,
    );
    for (const g of ['"x"', '[1]', '[""]', '["a\\nb"]'])
      await expect(decode(codec, `{"v":1,"n":0,"f":2,"s":3,"g":${g},"d":1}`)).rejects.toThrow(/invalid tags/);
  });

  it('refuses invalid versions, times and meta on write', async () => {
    const codec = new EnvelopeCodec();
    for (const version of [-1, 1.5, Number.NaN, 2 ** 60])
      await expect(codec.encode({ ...entry, version })).rejects.toThrow(InvalidValueError);
    await expect(codec.encode({ ...entry, freshUntil: Number.NaN })).rejects.toThrow(/finite time/);
    await expect(codec.encode({ ...entry, meta: { x: {} as unknown as string } })).rejects.toThrow(
      /only strings/,
    );
    await expect(codec.encode({ ...entry, meta: { failSafe: 'yes' as unknown as boolean } })).rejects.toThrow(
      /must be a boolean/,
    );
    expect(() => codec.encodeTombstone(-5)).toThrow(InvalidValueError);
  });

  it('reads a tombstone as a miss (undefined)', async () => {
    const codec = new EnvelopeCodec();
    const tomb = codec.encodeTombstone(42);
    expect(tomb).toBe('{"v":1,"n":42,"x":1}');
    expect(codec.decode(tomb)).toBeUndefined();
    await expect(decode(codec, '{"v":1,"n":42,"x":2}')).rejects.toThrow(/tombstone/);
  });

  it('flags tagged values and restores them', async () => {
    const codec = new EnvelopeCodec();
    const text = await codec.encode(entry);
    expect(JSON.parse(text).t).toBe(1);
    expect((await codec.decode(text))?.value).toEqual(entry.value);
  });

  it.each(['gzip', 'brotli'] as const)(
    'compresses above the threshold with %s, read only by a reader configured to',
    async (compression) => {
      const big = { text: 'soja '.repeat(2000), d: new Date(3) };
      const writer = new EnvelopeCodec({ compressThresholdBytes: 1000, compression });
      const text = await writer.encode({ ...entry, value: big });
      const parsed = JSON.parse(text);
      expect(parsed.z).toBe(compression);
      expect(parsed.e).toBe('json');
      expect(text.length).toBeLessThan(2000);
      expect((await writer.decode(text))?.value).toEqual(big);
      // Issue 22: a tier that never compresses never inflates, nor one configured with the other algorithm.
      await expect(decode(new EnvelopeCodec(), text)).rejects.toThrow(/reads no compression/);
      const other = compression === 'gzip' ? 'brotli' : 'gzip';
      await expect(
        decode(new EnvelopeCodec({ compressThresholdBytes: 1000, compression: other }), text),
      ).rejects.toThrow(SerializationError);
      const small = await writer.encode({ ...entry, value: 'tiny' });
      expect(JSON.parse(small).d).toBe('tiny');
    },
  );

  it('reads only the configured serializer: msgpack under JSON and JSON under msgpack are refused', async () => {
    const writer = new EnvelopeCodec({ serializer: 'msgpack', compressThresholdBytes: 100 });
    const value = { rows: Array.from({ length: 50 }, (_, i) => ({ i, s: new Set([i]) })) };
    const text = await writer.encode({ ...entry, value });
    const parsed = JSON.parse(text);
    expect(parsed.e).toBe('msgpack');
    expect(parsed.z).toBe('gzip');
    expect((await writer.decode(text))?.value).toEqual(value);
    await expect(decode(new EnvelopeCodec({ compressThresholdBytes: 100 }), text)).rejects.toThrow(
      /serializer "msgpack"; this tier reads only "json"/,
    );
    const plain = await new EnvelopeCodec({ serializer: 'msgpack' }).encode({ ...entry, value: 1 });
    expect(JSON.parse(plain).z).toBeUndefined();
    expect((await writer.decode(plain))?.value).toBe(1);
    const json = await new EnvelopeCodec().encode({ ...entry, value: 1 });
    await expect(decode(writer, json)).rejects.toThrow(/inline JSON/);
  });

  it('refuses msgpack extension types no writer of this tier produces (RegExp, Error, Map, binary)', async () => {
    const codec = new EnvelopeCodec({ serializer: 'msgpack' });
    const packr = new Packr({ structuredClone: true, useRecords: false, moreTypes: true });
    for (const planted of [/x/g, new Error('boom'), new Uint8Array([1, 2]), { nested: [new Error('e')] }]) {
      const b = packr.pack(planted).toString('base64');
      await expect(
        decode(codec, `{"v":1,"n":0,"f":1,"s":${Date.now() + 1e6},"e":"msgpack","b":"${b}"}`),
      ).rejects.toThrow(/never writes/);
    }
  });

  it('uses a custom serializer by name and refuses the reserved name', async () => {
    const upper: Serializer = {
      name: 'upper',
      serialize: (v) => Buffer.from(String(v).toUpperCase()),
      deserialize: (b) => b.toString().toLowerCase(),
    };
    const codec = new EnvelopeCodec({ serializer: upper });
    const text = await codec.encode({ ...entry, value: 'abc' });
    expect(JSON.parse(text).e).toBe('upper');
    expect((await codec.decode(text))?.value).toBe('abc');
    expect(() => new EnvelopeCodec().decode(text)).toThrow(/serializer "upper"/);
    expect(() => new EnvelopeCodec({ serializer: { ...upper, name: 'json' } })).toThrow(ConfigError);
    expect(() => new EnvelopeCodec({ compressThresholdBytes: -1 })).toThrow(ConfigError);
    expect(() => new EnvelopeCodec({ compression: 'zstd' as 'gzip' })).toThrow(ConfigError);
    expect(() => new EnvelopeCodec({ maxValueBytes: 0 })).toThrow(ConfigError);
  });

  it('refuses on write a value whose serialized form is over maxValueBytes, compressed or not', async () => {
    const codec = new EnvelopeCodec({ maxValueBytes: 1000, compressThresholdBytes: 100 });
    await expect(codec.encode({ ...entry, value: 'x'.repeat(2000) })).rejects.toThrow(
      /over the Redis tier's limit/,
    );
    const msgpack = new EnvelopeCodec({ maxValueBytes: 1000, serializer: 'msgpack' });
    await expect(msgpack.encode({ ...entry, value: 'x'.repeat(2000) })).rejects.toThrow(InvalidValueError);
    // Under the bound it compresses and reads back.
    const ok = await codec.encode({ ...entry, value: 'y'.repeat(900) });
    expect((await codec.decode(ok))?.value).toBe('y'.repeat(900));
  });

  it('refuses a stored envelope over maxValueBytes before parsing it', async () => {
    const codec = new EnvelopeCodec({ maxValueBytes: 100 });
    const text = await new EnvelopeCodec().encode({ ...entry, value: 'x'.repeat(200) });
    await expect(decode(codec, text)).rejects.toThrow(/over 100 bytes/);
    // Multi-byte characters count as bytes: 60 characters, 180 bytes.
    const wide = await new EnvelopeCodec().encode({ value: '€'.repeat(50), freshUntil: 1, staleUntil: 2 });
    expect(wide.length).toBeLessThan(100);
    await expect(decode(codec, wide)).rejects.toThrow(SerializationError);
  });

  it.each(['gzip', 'brotli'] as const)(
    'never inflates a %s bomb past maxValueBytes (zlib maxOutputLength)',
    async (compression) => {
      const bound = 64 * 1024;
      const codec = new EnvelopeCodec({ compressThresholdBytes: 1024, compression, maxValueBytes: bound });
      const spy = vi.spyOn(COMPRESSORS[compression], 'decompress');
      // 20 MB of zeros: ~20 KB gzip, a few bytes brotli, under the envelope bound.
      const zeros = Buffer.alloc(20 * 1024 * 1024);
      const packed = await COMPRESSORS[compression].compress(zeros);
      expect(packed.length).toBeLessThan(bound);
      const text = `{"v":1,"n":0,"f":1,"s":2,"e":"json","z":"${compression}","b":"${packed.toString('base64')}"}`;
      const before = process.memoryUsage().arrayBuffers;
      await expect(decode(codec, text)).rejects.toThrow(/inflates past 65536 bytes/);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(spy.mock.calls[0]?.[1]).toBe(bound);
      // Nothing near the inflated 20 MB was kept.
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(10 * 1024 * 1024);
    },
  );

  it('validates meta: flat record of strings, numbers and booleans, bounded, typed known keys', async () => {
    const codec = new EnvelopeCodec();
    const far = Date.now() + 1e6;
    const env = (m: string) => `{"v":1,"n":0,"f":1,"s":${far},"m":${m},"d":1}`;
    for (const bad of [
      '[1]',
      'null',
      '{"a":{"b":1}}',
      '{"a":[1]}',
      '{"a":null}',
      '{"retryAt":"later"}',
      '{"failSafe":1}',
      '{"negative":"yes"}',
      `{"a":"${'x'.repeat(2000)}"}`,
      `{"${'k'.repeat(100)}":1}`,
      `{${Array.from({ length: 40 }, (_, i) => `"k${i}":1`).join(',')}}`,
      '{"constructor":1}',
      '{"prototype":1}',
    ]) {
      await expect(decode(codec, env(bad)), bad).rejects.toThrow(/invalid meta/);
    }
    // The fail-safe markers are local to the writing process: never taken from Redis (review finding 19).
    expect((await codec.decode(env('{"failSafe":true,"retryAt":9e15,"negative":true}')))?.meta).toEqual({
      negative: true,
    });
    expect((await codec.decode(env('{"failSafe":true,"retryAt":9e15}')))?.meta).toBeUndefined();
  });

  it.each([
    ['not JSON', 'hello'],
    ['a foreign JSON value', '{"name":"other app"}'],
    ['another version', '{"v":2,"f":1,"s":2,"d":1}'],
    ['a bad entry version', '{"v":1,"n":-1,"f":1,"s":2,"d":1}'],
    ['a fractional entry version', '{"v":1,"n":1.5,"f":1,"s":2,"d":1}'],
    ['bad times', '{"v":1,"f":"x","s":2,"d":1}'],
    ['a bad ttlMs', '{"v":1,"f":1,"s":2,"l":"x","d":1}'],
    ['bad meta', '{"v":1,"f":1,"s":2,"m":[1],"d":1}'],
    ['no value', '{"v":1,"f":1,"s":2}'],
    ['a bad payload', '{"v":1,"f":1,"s":2,"b":5}'],
    ['an inline value with a payload name', '{"v":1,"f":1,"s":2,"e":"json","d":1}'],
    ['unknown compression', '{"v":1,"f":1,"s":2,"e":"json","z":"lz4","b":"AAAA"}'],
    ['inherited compression name', '{"v":1,"f":1,"s":2,"e":"json","z":"toString","b":"AAAA"}'],
    ['corrupted gzip', '{"v":1,"f":1,"s":2,"e":"json","z":"gzip","b":"AAAA"}'],
    ['prototype pollution', '{"v":1,"f":1,"s":2,"d":{"__proto__":{"x":1}}}'],
    ['escaped prototype pollution', '{"v":1,"f":1,"s":2,"d":{"\\u005f_proto__":{"x":1}}}'],
    ['constructor.prototype', '{"v":1,"f":1,"s":2,"d":{"constructor":{"prototype":{"x":1}}}}'],
    ['escaped constructor.prototype', '{"v":1,"f":1,"s":2,"d":{"\\u0063onstructor":{"prototype":{"x":1}}}}'],
    [
      'an Object tag setting __proto__',
      '{"v":1,"f":1,"s":2,"t":1,"d":{"$bgc":"Object","v":[["__proto__",{"isAdmin":true}]]}}',
    ],
    ['a JSON null', 'null'],
  ])('refuses %s with a SerializationError', async (_label, text) => {
    const codec = new EnvelopeCodec({ compressThresholdBytes: 10 });
    await expect(decode(codec, text)).rejects.toThrow(SerializationError);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('decodes uncompressed envelopes synchronously, compressed ones through a promise', async () => {
    const plain = new EnvelopeCodec();
    const text = await plain.encode({ value: { constructor: 'ok', n: 1 }, freshUntil: 10, staleUntil: 20 });
    const decoded = plain.decode(text);
    expect(decoded).not.toBeInstanceOf(Promise);
    expect((decoded as { value: unknown }).value).toEqual({ constructor: 'ok', n: 1 });
    // Harmless uses of the words take the careful path and still decode.
    const words = { note: 'a prototype of __proto__ handling', constructor: { name: 'x' } };
    const back = plain.decode(await plain.encode({ value: words, freshUntil: 10, staleUntil: 20 }));
    expect((back as { value: unknown }).value).toEqual(words);
    const zipped = new EnvelopeCodec({ compressThresholdBytes: 0 });
    const z = zipped.decode(await zipped.encode({ value: 'x'.repeat(100), freshUntil: 10, staleUntil: 20 }));
    expect(z).toBeInstanceOf(Promise);
    expect((await z)?.value).toBe('x'.repeat(100));
  });
});

describe('EnvelopeCodec fuzz (issue 22): arbitrary and adversarial stored bytes', () => {
  const bound = 32 * 1024;
  const far = 9e15;
  /** Pieces of real envelopes, to reach deep into the decoder. */
  const adversarial = fc.oneof(
    // Well-formed heads with arbitrary JSON payloads, tags and meta.
    fc
      .record({
        n: fc.oneof(fc.nat(), fc.double(), fc.string()),
        t: fc.constantFrom(undefined, 1, 2),
        m: fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 })),
        d: fc.jsonValue({ maxDepth: 4 }),
      })
      .map(({ n, t, m, d }) =>
        JSON.stringify({ v: 1, n, f: 1, s: far, ...(m === undefined ? {} : { m }), ...(t ? { t } : {}), d }),
      ),
    // Forged $bgc tags, including prototype keys.
    fc
      .tuple(
        fc.constantFrom('Object', 'Map', 'Set', 'BigInt', 'Date', 'Number', 'undefined', 'Nope'),
        fc.jsonValue({ maxDepth: 3 }),
        fc.constantFrom('__proto__', 'constructor', 'prototype', 'x'),
      )
      .map(([tag, v, key]) =>
        JSON.stringify({ v: 1, f: 1, s: far, t: 1, d: { $bgc: tag, v: tag === 'Object' ? [[key, v]] : v } }),
      ),
    // Payloads: wrong serializer, wrong or unconfigured compression, bombs, garbage base64.
    fc
      .tuple(
        fc.constantFrom('json', 'msgpack', 'other', undefined),
        fc.constantFrom('gzip', 'brotli', 'lz4', undefined),
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          fc.integer({ min: 1, max: 4 * 1024 * 1024 }).map((size) => gzipSync(Buffer.alloc(size, 0x5b))),
        ),
      )
      .map(([e, z, bytes]) =>
        JSON.stringify({
          v: 1,
          f: 1,
          s: far,
          ...(e ? { e } : {}),
          ...(z ? { z } : {}),
          b: bytes.toString('base64'),
        }),
      ),
    // Huge or hostile meta.
    fc
      .dictionary(
        fc.string({ maxLength: 80 }),
        fc.oneof(fc.string({ maxLength: 1500 }), fc.double(), fc.boolean()),
        {
          maxKeys: 40,
        },
      )
      .map((m) => JSON.stringify({ v: 1, f: 1, s: far, m, d: 1 })),
  );
  const anyText = fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('utf8')),
    adversarial,
  );

  it.each([
    ['json + gzip', { compressThresholdBytes: 1024, compression: 'gzip' as const }],
    ['json, no compression', {}],
    [
      'msgpack + brotli',
      { serializer: 'msgpack' as const, compressThresholdBytes: 1024, compression: 'brotli' as const },
    ],
  ])(
    '%s: a decode only ever resolves an entry or refuses with a SerializationError, within the bound',
    async (_l, options) => {
      const codec = new EnvelopeCodec({ ...options, maxValueBytes: bound });
      const spies = [vi.spyOn(COMPRESSORS.gzip, 'decompress'), vi.spyOn(COMPRESSORS.brotli, 'decompress')];
      await fc.assert(
        fc.asyncProperty(anyText, async (text) => {
          let result: unknown;
          try {
            result = await codec.decode(text);
          } catch (error) {
            expect(error).toBeInstanceOf(SerializationError);
            return;
          }
          if (result !== undefined) {
            const e = result as { freshUntil: unknown; size: number };
            expect(typeof e.freshUntil).toBe('number');
            expect(e.size).toBeLessThanOrEqual(bound);
          }
          expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
        }),
        { numRuns: 400 },
      );
      for (const spy of spies) {
        for (const call of spy.mock.calls) expect(call[1]).toBe(bound);
        for (const r of spy.mock.results) {
          if (r.type === 'return') {
            const out = await (r.value as Promise<Buffer>).catch(() => Buffer.alloc(0));
            expect(out.length).toBeLessThanOrEqual(bound);
          }
        }
      }
    },
  );
});
