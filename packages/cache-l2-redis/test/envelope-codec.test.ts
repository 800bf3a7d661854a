import { ConfigError, SerializationError } from '@bgc/cache-core';
import { describe, expect, it } from 'vitest';
import { EnvelopeCodec, ENVELOPE_VERSION } from '../src/envelope-codec.js';
import type { Serializer } from '../src/serializer.js';

const entry = {
  value: { rows: [1, 2, 3], when: new Date(1000) },
  freshUntil: 2000,
  staleUntil: 3000,
  createdAt: 1000,
  meta: { negative: false },
};

describe('EnvelopeCodec', () => {
  it('writes a readable JSON envelope with times, meta and the value inline', async () => {
    const codec = new EnvelopeCodec();
    const text = await codec.encode({
      value: { a: 1 },
      freshUntil: 2000,
      staleUntil: 3000,
      createdAt: 1000,
      meta: { negative: true },
    });
    expect(JSON.parse(text)).toEqual({
      v: ENVELOPE_VERSION,
      f: 2000,
      s: 3000,
      c: 1000,
      m: { negative: true },
      d: { a: 1 },
    });
    const back = await codec.decode(text);
    expect(back).toEqual({
      value: { a: 1 },
      freshUntil: 2000,
      staleUntil: 3000,
      createdAt: 1000,
      meta: { negative: true },
      size: text.length,
    });
  });

  it('flags tagged values and restores them', async () => {
    const codec = new EnvelopeCodec();
    const text = await codec.encode(entry);
    expect(JSON.parse(text).t).toBe(1);
    expect((await codec.decode(text)).value).toEqual(entry.value);
  });

  it.each(['gzip', 'brotli'] as const)(
    'compresses above the threshold with %s, flagged so any reader decodes it',
    async (compression) => {
      const big = { text: 'soja '.repeat(2000), d: new Date(3) };
      const writer = new EnvelopeCodec({ compressThresholdBytes: 1000, compression });
      const text = await writer.encode({ ...entry, value: big });
      const parsed = JSON.parse(text);
      expect(parsed.z).toBe(compression);
      expect(parsed.e).toBe('json');
      expect(text.length).toBeLessThan(2000);
      // A reader configured differently (no compression) still reads it.
      expect((await new EnvelopeCodec().decode(text)).value).toEqual(big);
      const small = await writer.encode({ ...entry, value: 'tiny' });
      expect(JSON.parse(small).d).toBe('tiny');
    },
  );

  it('writes msgpack (optionally compressed) readable by a JSON-configured reader', async () => {
    const writer = new EnvelopeCodec({ serializer: 'msgpack', compressThresholdBytes: 100 });
    const value = { rows: Array.from({ length: 50 }, (_, i) => ({ i, s: new Set([i]) })) };
    const text = await writer.encode({ ...entry, value });
    const parsed = JSON.parse(text);
    expect(parsed.e).toBe('msgpack');
    expect(parsed.z).toBe('gzip');
    expect((await new EnvelopeCodec().decode(text)).value).toEqual(value);
    const plain = await new EnvelopeCodec({ serializer: 'msgpack' }).encode({ ...entry, value: 1 });
    expect(JSON.parse(plain).z).toBeUndefined();
    expect((await writer.decode(plain)).value).toBe(1);
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
    expect((await codec.decode(text)).value).toBe('abc');
    expect(() => new EnvelopeCodec().decode(text)).toThrow(/serializer "upper"/);
    expect(() => new EnvelopeCodec({ serializer: { ...upper, name: 'json' } })).toThrow(ConfigError);
    expect(() => new EnvelopeCodec({ compressThresholdBytes: -1 })).toThrow(ConfigError);
    expect(() => new EnvelopeCodec({ compression: 'zstd' as 'gzip' })).toThrow(ConfigError);
  });

  it.each([
    ['not JSON', 'hello'],
    ['a foreign JSON value', '{"name":"other app"}'],
    ['another version', '{"v":2,"f":1,"s":2,"d":1}'],
    ['bad times', '{"v":1,"f":"x","s":2,"d":1}'],
    ['bad meta', '{"v":1,"f":1,"s":2,"m":[1],"d":1}'],
    ['no value', '{"v":1,"f":1,"s":2}'],
    ['a bad payload', '{"v":1,"f":1,"s":2,"b":5}'],
    ['unknown compression', '{"v":1,"f":1,"s":2,"e":"json","z":"lz4","b":"AAAA"}'],
    ['inherited compression name', '{"v":1,"f":1,"s":2,"e":"json","z":"toString","b":"AAAA"}'],
    ['corrupted gzip', '{"v":1,"f":1,"s":2,"e":"json","z":"gzip","b":"AAAA"}'],
    ['prototype pollution', '{"v":1,"f":1,"s":2,"d":{"__proto__":{"x":1}}}'],
    ['escaped prototype pollution', '{"v":1,"f":1,"s":2,"d":{"\\u005f_proto__":{"x":1}}}'],
    ['constructor.prototype', '{"v":1,"f":1,"s":2,"d":{"constructor":{"prototype":{"x":1}}}}'],
    ['escaped constructor.prototype', '{"v":1,"f":1,"s":2,"d":{"\\u0063onstructor":{"prototype":{"x":1}}}}'],
    ['a JSON null', 'null'],
  ])('refuses %s with a SerializationError', async (_label, text) => {
    // Synchronous errors for plain envelopes, a rejection for compressed ones: both are refusals.
    await expect(Promise.resolve().then(() => new EnvelopeCodec().decode(text))).rejects.toThrow(
      SerializationError,
    );
  });

  it('decodes uncompressed envelopes synchronously, compressed ones through a promise', async () => {
    const plain = new EnvelopeCodec();
    const text = await plain.encode({ value: { constructor: 'ok', n: 1 }, freshUntil: 10, staleUntil: 20 });
    const entry = plain.decode(text);
    expect(entry).not.toBeInstanceOf(Promise);
    expect((entry as { value: unknown }).value).toEqual({ constructor: 'ok', n: 1 });
    // Harmless uses of the words take the careful path and still decode.
    const words = { note: 'a prototype of __proto__ handling', constructor: { name: 'x' } };
    const back = plain.decode(await plain.encode({ value: words, freshUntil: 10, staleUntil: 20 }));
    expect((back as { value: unknown }).value).toEqual(words);
    const zipped = new EnvelopeCodec({ compressThresholdBytes: 0 });
    const z = zipped.decode(await zipped.encode({ value: 'x'.repeat(100), freshUntil: 10, staleUntil: 20 }));
    expect(z).toBeInstanceOf(Promise);
    expect((await z).value).toBe('x'.repeat(100));
  });
});
