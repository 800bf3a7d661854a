import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { holdsBinary, unwrapBinary, wrapBinary } from '../src/binary-records.js';
import { createKeyv } from '../src/index.js';

describe('binary data in records that reach the cache as objects', () => {
  it('finds bytes anywhere in plain objects, arrays, Maps and Sets', () => {
    expect(holdsBinary({ a: [1, { b: 'x' }], m: new Map([['k', 1]]), s: new Set([1]) })).toBe(false);
    expect(holdsBinary({ a: [1, { b: Buffer.from('x') }] })).toBe(true);
    expect(holdsBinary(new Map([['k', new Uint8Array(2)]]))).toBe(true);
    expect(holdsBinary(new Map([[new ArrayBuffer(1), 1]]))).toBe(true);
    expect(holdsBinary(new Set([new Float32Array(1)]))).toBe(true);
    expect(holdsBinary('text')).toBe(false);
  });

  it('answers as a plain recursive walk does, on any nesting of objects, arrays, Maps, Sets and bytes (depth bound included)', () => {
    // The walk as first written: one call per member, primitives included.
    const reference = (value: unknown, depth = 0): boolean => {
      if (typeof value !== 'object' || value === null) return false;
      if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return true;
      if (depth > 64) return false;
      if (Array.isArray(value)) return value.some((v) => reference(v, depth + 1));
      if (value instanceof Map) {
        for (const [k, v] of value) if (reference(k, depth + 1) || reference(v, depth + 1)) return true;
        return false;
      }
      if (value instanceof Set) {
        for (const v of value) if (reference(v, depth + 1)) return true;
        return false;
      }
      for (const k in value) if (reference((value as Record<string, unknown>)[k], depth + 1)) return true;
      return false;
    };
    const tree = fc.letrec((tie) => ({
      leaf: fc.oneof(
        fc.string(),
        fc.integer(),
        fc.constant(null),
        fc.constant(undefined),
        fc.constant(Buffer.from('b')),
        fc.constant(new Uint8Array(1)),
        fc.constant(new ArrayBuffer(1)),
      ),
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        tie('leaf'),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 4 }),
        fc.array(fc.tuple(tie('node'), tie('node')), { maxLength: 3 }).map((pairs) => new Map(pairs)),
        fc.array(tie('node'), { maxLength: 3 }).map((items) => new Set(items)),
      ),
    })).node;
    fc.assert(
      fc.property(tree, (value) => {
        expect(holdsBinary(value)).toBe(reference(value));
      }),
      { numRuns: 2000 },
    );
    // Bytes below the depth bound are found; past it they are not (both walks stop at 64).
    const nest = (levels: number, inner: unknown): unknown => {
      let v = inner;
      for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { a: v };
      return v;
    };
    for (const levels of [64, 65, 66, 100]) {
      const value = nest(levels, Buffer.from('x'));
      expect(holdsBinary(value)).toBe(reference(value));
    }
    expect(holdsBinary(nest(64, Buffer.from('x')))).toBe(true);
    expect(holdsBinary(nest(66, Buffer.from('x')))).toBe(false);
  });

  it('wraps only records holding bytes, and unwraps them with Buffers', () => {
    const plain = { value: { a: 1 }, expires: 5 };
    expect(wrapBinary(plain)).toBe(plain);
    expect(wrapBinary('text')).toBe('text');
    const record = {
      value: { buf: Buffer.from('bar'), u8: new Uint8Array([1, 2]), ab: new Uint8Array([3]).buffer },
    };
    const wrapped = wrapBinary(record) as Record<string, unknown>;
    expect(Object.keys(wrapped)).toEqual(['$keyvBinary']);
    expect(unwrapBinary(wrapped)).toEqual({
      value: { buf: Buffer.from('bar'), u8: Buffer.from([1, 2]), ab: Buffer.from([3]) },
    });
    expect(unwrapBinary({ $keyvBinary: '{broken' })).toBeUndefined();
    expect(unwrapBinary(plain)).toBe(plain);
    expect(unwrapBinary(undefined)).toBeUndefined();
  });

  it('createKeyv stores and returns Buffers through a memory tier (which deep-freezes objects)', async () => {
    const cache = new MultiLevelCache({ tiers: [new MemoryTier()] });
    try {
      const keyv = createKeyv(cache);
      await keyv.set('img', { name: 'a.png', bytes: Buffer.from([137, 80, 78, 71]) });
      const got = (await keyv.get('img')) as { name: string; bytes: Buffer };
      expect(Buffer.isBuffer(got.bytes)).toBe(true);
      expect([...got.bytes]).toEqual([137, 80, 78, 71]);
      await keyv.set('raw', Buffer.from('x'));
      expect(await keyv.getMany(['raw', 'none'])).toEqual([Buffer.from('x'), undefined]);
    } finally {
      await cache.close();
    }
  });
});
