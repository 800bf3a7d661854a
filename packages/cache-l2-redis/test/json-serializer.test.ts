import { InvalidValueError, SerializationError } from '@bgc/cache-core';
import { describe, expect, it } from 'vitest';
import { decodeJson, encodeJson } from '../src/json-serializer.js';
import { MSGPACK_SERIALIZER } from '../src/serializer.js';

const roundTrip = (v: unknown) => {
  const { text, tagged } = encodeJson(v);
  return decodeJson(text, tagged);
};

describe('encodeJson / decodeJson', () => {
  it('writes plain JSON untagged', () => {
    const v = { a: [1, 'x', null, true], b: { c: 'São Paulo' } };
    expect(encodeJson(v)).toEqual({ text: JSON.stringify(v), tagged: false });
    expect(roundTrip(v)).toEqual(v);
  });

  it('keeps Date, BigInt, Map, Set, undefined vs null, NaN, Infinity and -0 faithful', () => {
    const v = {
      d: new Date('2024-03-01T12:00:00.123Z'),
      invalid: new Date(Number.NaN),
      big: 2n ** 70n,
      neg: -5n,
      m: new Map<unknown, unknown>([
        [1, { a: new Date(0) }],
        ['k', new Set([1n])],
      ]),
      s: new Set(['a', 2]),
      u: undefined,
      n: null,
      arr: [undefined, null, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0],
    };
    const { tagged } = encodeJson(v);
    expect(tagged).toBe(true);
    const back = roundTrip(v) as typeof v;
    expect(back.d).toBeInstanceOf(Date);
    expect(back.d.toISOString()).toBe('2024-03-01T12:00:00.123Z');
    expect(Number.isNaN(back.invalid.getTime())).toBe(true);
    expect(back.big).toBe(2n ** 70n);
    expect(back.neg).toBe(-5n);
    expect(back.m).toBeInstanceOf(Map);
    expect((back.m.get(1) as { a: Date }).a).toEqual(new Date(0));
    expect(back.m.get('k')).toEqual(new Set([1n]));
    expect(back.s).toEqual(new Set(['a', 2]));
    expect('u' in back).toBe(true);
    expect(back.u).toBeUndefined();
    expect(back.n).toBeNull();
    expect(back.arr[0]).toBeUndefined();
    expect(back.arr[1]).toBeNull();
    expect(back.arr[2]).toBeNaN();
    expect(back.arr.slice(3, 5)).toEqual([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    expect(Object.is(back.arr[5], -0)).toBe(true);
    expect(roundTrip(undefined)).toBeUndefined();
    expect(roundTrip(new Date(7))).toEqual(new Date(7));
  });

  it('keeps a user object that has a "$bgc" key distinct from a tag', () => {
    const v = { $bgc: 'Date', v: 'not a date', nested: [{ $bgc: 'undefined' }] };
    expect(roundTrip(v)).toEqual(v);
  });

  it('refuses functions, symbols, class instances, cycles and own __proto__ keys', () => {
    class Row {
      x = 1;
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeJson({ f: () => 1 })).toThrow(InvalidValueError);
    expect(() => encodeJson({ s: Symbol('x') })).toThrow(/symbol/);
    expect(() => encodeJson([new Row()])).toThrow(/instance of Row/);
    expect(() => encodeJson(Buffer.from('x'))).toThrow(InvalidValueError);
    expect(() => encodeJson(cyclic)).toThrow(/cycles/);
    expect(() => encodeJson(JSON.parse('{"__proto__":{"x":1}}'))).toThrow(/__proto__/);
  });

  it('rejects __proto__ and constructor.prototype on decode, leaving Object.prototype clean', () => {
    expect(() => decodeJson('{"__proto__":{"polluted":1}}', false)).toThrow(SerializationError);
    expect(() => decodeJson('{"constructor":{"prototype":{"polluted":1}}}', false)).toThrow(
      SerializationError,
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(() => decodeJson('{not json', false)).toThrow(SerializationError);
  });

  it('rejects unknown or malformed tags', () => {
    expect(() => decodeJson('{"$bgc":"Nope","v":1}', true)).toThrow(/unknown or malformed/);
    expect(() => decodeJson('{"$bgc":"BigInt","v":"12x"}', true)).toThrow(SerializationError);
    expect(() => decodeJson('{"$bgc":"Map","v":5}', true)).toThrow(SerializationError);
    expect(() => decodeJson('{"$bgc":"Set","v":5}', true)).toThrow(SerializationError);
    expect(() => decodeJson('{"$bgc":"Object","v":5}', true)).toThrow(SerializationError);
    expect(() => decodeJson('{"$bgc":"Date","v":5}', true)).toThrow(SerializationError);
  });
});

describe('MSGPACK_SERIALIZER', () => {
  it('keeps Date, Set, BigInt and undefined', () => {
    const v = {
      d: new Date(5),
      s: new Set([1, 'x']),
      b: 2n ** 70n,
      u: undefined,
      n: null,
      nested: [{ a: 1 }],
    };
    const back = MSGPACK_SERIALIZER.deserialize(MSGPACK_SERIALIZER.serialize(v)) as typeof v;
    expect(back).toEqual(v);
    expect('u' in back).toBe(true);
  });

  it('refuses Map, functions and class instances instead of changing them', () => {
    class Row {}
    expect(() => MSGPACK_SERIALIZER.serialize({ m: new Map() })).toThrow(/Map/);
    expect(() => MSGPACK_SERIALIZER.serialize([() => 1])).toThrow(InvalidValueError);
    expect(() => MSGPACK_SERIALIZER.serialize({ r: new Row() })).toThrow(/instance of Row/);
  });

  it('throws a SerializationError on garbage bytes', () => {
    expect(() => MSGPACK_SERIALIZER.deserialize(Buffer.from([0x93, 0x01]))).toThrow(SerializationError);
  });
});
