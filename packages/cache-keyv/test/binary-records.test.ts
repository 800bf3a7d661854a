import { MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
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
