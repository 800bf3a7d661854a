import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidValueError, SerializationError } from '../src/index.js';
import {
  decodeValue,
  encodePlainValue,
  encodeValue,
  hasValueTags,
  parseJsonSafely,
  reviveValue,
} from '../src/internal.js';

const roundTrip = (v: unknown) => decodeValue(encodeValue(v));

describe('encodeValue / decodeValue', () => {
  it('writes plain JSON untagged', () => {
    const v = { a: [1, 'x', null, true], b: { c: 'São Paulo', quote: '"$bgc"' } };
    const text = encodeValue(v);
    expect(text).toBe(JSON.stringify(v));
    expect(hasValueTags(text)).toBe(false);
    expect(roundTrip(v)).toEqual(v);
  });

  it('keeps Date, BigInt, Map, Set, undefined vs null, NaN, ±Infinity and -0 faithful', () => {
    const v = {
      d: new Date('2024-03-01T12:00:00.123Z'),
      invalid: new Date(Number.NaN),
      big: 2n ** 70n,
      neg: -5n,
      m: new Map<unknown, unknown>([
        [1, { a: new Date(0) }],
        ['k', new Set([1n])],
        [{ objKey: true }, undefined],
      ]),
      s: new Set(['a', 2]),
      u: undefined,
      n: null,
      arr: [undefined, null, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0],
    };
    const text = encodeValue(v);
    expect(hasValueTags(text)).toBe(true);
    const back = decodeValue(text) as typeof v;
    expect(back.d).toBeInstanceOf(Date);
    expect(back.d.toISOString()).toBe('2024-03-01T12:00:00.123Z');
    expect(Number.isNaN(back.invalid.getTime())).toBe(true);
    expect(back.big).toBe(2n ** 70n);
    expect(back.neg).toBe(-5n);
    expect(back.m).toBeInstanceOf(Map);
    expect((back.m.get(1) as { a: Date }).a).toEqual(new Date(0));
    expect(back.m.get('k')).toEqual(new Set([1n]));
    expect([...back.m.keys()][2]).toEqual({ objKey: true });
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
    expect(roundTrip(Number.NaN)).toBeNaN();
  });

  it('writes plain data exactly as JSON.stringify (fast path), and falls back for the rest', () => {
    let deep: unknown = { leaf: [1, 'x', null] };
    for (let i = 0; i < 100; i++) deep = { d: deep };
    for (const v of [
      deep,
      Object.assign(Object.create(null), { a: 1 }),
      { toJSON: 1, a: 2 },
      [[], {}, ''],
      0,
      'x',
    ]) {
      expect(encodeValue(v)).toBe(JSON.stringify(v));
      expect(roundTrip(v)).toEqual(JSON.parse(JSON.stringify(v)));
    }
    // A toJSON method is not plain data: refused like any function.
    expect(() => encodeValue({ toJSON: () => 'x' })).toThrow(InvalidValueError);
    // A cycle below the fast path's depth limit is still found.
    let chain: Record<string, unknown> = {};
    const top = chain;
    for (let i = 0; i < 100; i++) chain = chain.next = {};
    chain.next = top;
    expect(() => encodeValue(top)).toThrow(/cycles/);
  });

  it('encodePlainValue: the JSON text of plain data only, undefined for what needs tags or checks', () => {
    const plain = { a: [1, 'x', null, true], '"$bgc': 'a key that only looks like a tag', n: -1.5 };
    expect(encodePlainValue(plain)).toBe(JSON.stringify(plain));
    expect(encodePlainValue(plain)).toBe(encodeValue(plain));
    // Its text may even contain the tag mark (an escaped quote before $bgc): still plain, no revive needed.
    expect(hasValueTags(encodePlainValue(plain) as string)).toBe(true);
    expect(decodeValue(encodePlainValue(plain) as string)).toEqual(plain);
    let deep: unknown = 1;
    for (let i = 0; i < 70; i++) deep = [deep];
    for (const v of [
      new Date(0),
      new Map(),
      new Set(),
      1n,
      -0,
      Number.NaN,
      { $bgc: 1 },
      { a: undefined },
      deep,
      () => 1,
    ])
      expect(encodePlainValue(v)).toBeUndefined();
  });

  it('keeps a user object that has a "$bgc" key distinct from a tag', () => {
    const v = { $bgc: 'Date', v: 'not a date', nested: [{ $bgc: 'undefined' }] };
    expect(roundTrip(v)).toEqual(v);
  });

  it('round-trips any JSON-like value with the extra types (property)', () => {
    const extra = fc.oneof(
      fc.date({ noInvalidDate: true }),
      fc.bigInt(),
      fc.constant(undefined),
      fc.double(),
      fc.constant(-0),
    );
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.jsonValue({ maxDepth: 1 }),
        extra,
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string({ maxLength: 6 }), tie('node'), { maxKeys: 4 }),
        fc.array(tie('node'), { maxLength: 3 }).map((items) => new Set(items)),
        fc.array(fc.tuple(fc.string({ maxLength: 4 }), tie('node')), { maxLength: 3 }).map((e) => new Map(e)),
      ),
    })).node;
    fc.assert(
      fc.property(value, (v) => {
        // `__proto__` keys are refused on write (they would be refused on read): skip those cases.
        let text: string;
        try {
          text = encodeValue(v);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidValueError);
          expect((error as Error).message).toMatch(/__proto__/);
          return;
        }
        expect(decodeValue(text)).toEqual(v);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses functions, symbols, class instances, cycles and own __proto__ keys', () => {
    class Row {
      x = 1;
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeValue({ f: () => 1 })).toThrow(InvalidValueError);
    expect(() => encodeValue({ s: Symbol('x') })).toThrow(/symbol/);
    expect(() => encodeValue([new Row()])).toThrow(/instance of Row/);
    expect(() => encodeValue(Buffer.from('x'))).toThrow(InvalidValueError);
    expect(() => encodeValue(cyclic)).toThrow(/cycles/);
    expect(() => encodeValue(JSON.parse('{"__proto__":{"x":1}}'))).toThrow(/__proto__/);
    expect(() => encodeValue({ ['k'.repeat(80)]: () => 1 })).toThrow(/…/);
  });
});

describe('decodeValue on untrusted text', () => {
  it('refuses __proto__ and constructor.prototype, escaped or not, leaving Object.prototype clean', () => {
    for (const text of [
      '{"__proto__":{"polluted":1}}',
      '{"a":[{"__proto__":{"polluted":1}}]}',
      '{"\\u005f_proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"polluted":1}}}',
      '{"constructor":{"\\u0070rototype":{"polluted":1}}}',
      '{"$bgc":"Map","v":[["k",{"__proto__":{"polluted":1}}]]}',
    ]) {
      expect(() => decodeValue(text), text).toThrow(SerializationError);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // A harmless constructor key and a "prototype" string pass.
    expect(decodeValue('{"constructor":"x","p":"prototype"}')).toEqual({ constructor: 'x', p: 'prototype' });
  });

  it('never lets an Object tag set a prototype', () => {
    // Built by hand: the tag route to `__proto__` is refused.
    expect(() => reviveValue({ $bgc: 'Object', v: [['__proto__', { polluted: 1 }]] })).toThrow(/__proto__/);
    const out = reviveValue({
      $bgc: 'Object',
      v: [
        ['$bgc', 1],
        ['constructor', 2],
      ],
    }) as object;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(out).toEqual({ $bgc: 1, constructor: 2 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('revives tags spelled with escapes like the plain spelling', () => {
    expect(decodeValue('{"\\u0024bgc":"BigInt","v":"12"}')).toBe(12n);
  });

  it('rejects unknown or malformed tags and invalid JSON with a SerializationError', () => {
    for (const text of [
      '{"$bgc":"Nope","v":1}',
      '{"$bgc":"BigInt","v":"12x"}',
      `{"$bgc":"BigInt","v":"${'9'.repeat(10_002)}"}`,
      '{"$bgc":"Number","v":"12"}',
      '{"$bgc":"Map","v":5}',
      '{"$bgc":"Map","v":[[1]]}',
      '{"$bgc":"Set","v":5}',
      '{"$bgc":"Object","v":5}',
      '{"$bgc":"Object","v":[[1,2]]}',
      '{"$bgc":"Date","v":5}',
      '{"$bgc":null}',
      '{not json',
    ]) {
      expect(() => decodeValue(text), text).toThrow(SerializationError);
    }
  });

  it('refuses text over maxBytes before parsing it, counting UTF-8 bytes', () => {
    expect(() => decodeValue(JSON.stringify('x'.repeat(100)), { maxBytes: 50 })).toThrow(/over 50 bytes/);
    // 20 characters, 60 bytes.
    expect(() => decodeValue(JSON.stringify('€'.repeat(20)), { maxBytes: 50 })).toThrow(SerializationError);
    expect(decodeValue(JSON.stringify('€'.repeat(10)), { maxBytes: 50 })).toBe('€'.repeat(10));
    expect(decodeValue('"ok"', { maxBytes: 50 })).toBe('ok');
  });

  it('turns a stack overflow of a deeply nested tagged tree into a SerializationError', () => {
    const depth = 200_000;
    let deep: unknown = { $bgc: 'undefined' };
    for (let i = 0; i < depth; i++) deep = [deep];
    expect(() => reviveValue(deep)).toThrow(SerializationError);
  });

  it('never throws anything but SerializationError on arbitrary text (property)', () => {
    const pieces = fc.constantFrom(
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      '"$bgc"',
      '"v"',
      '"Map"',
      '"Set"',
      '"Object"',
      '"BigInt"',
      '"Date"',
      '"Number"',
      '"__proto__"',
      '"constructor"',
      '"prototype"',
      '1',
      'null',
      '"x"',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(pieces).map((p) => p.join('')),
        ),
        (text) => {
          try {
            decodeValue(text);
          } catch (error) {
            expect(error).toBeInstanceOf(SerializationError);
          }
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('parseJsonSafely parses plain text without the check and refuses poisoning with it', () => {
    expect(parseJsonSafely('{"a":1}')).toEqual({ a: 1 });
    expect(() => parseJsonSafely('{"__proto__":1}')).toThrow(SyntaxError);
  });
});
