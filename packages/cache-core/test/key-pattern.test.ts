import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidKeyError, KeyPattern, MAX_KEY_LENGTH, validateKey } from '../src/index.js';

describe('KeyPattern', () => {
  const seed = new KeyPattern('comexstat:exp:{ano}:{mes}:{ncm}:{pais}');

  it("builds the seed's keys", () => {
    expect(seed.placeholders).toEqual(['ano', 'mes', 'ncm', 'pais']);
    expect(seed.build({ ano: 2024, mes: 3, ncm: '12019000', pais: '160' })).toBe(
      'comexstat:exp:2024:3:12019000:160',
    );
  });

  it('names a missing placeholder', () => {
    expect(() => seed.build({ ano: 2024, mes: 3, ncm: '12019000' } as never)).toThrow(
      /\{pais\} has no value/,
    );
    expect(() => seed.build({ ano: 2024, mes: 3, ncm: '', pais: '1' })).toThrow(InvalidKeyError);
  });

  it('rejects malformed patterns', () => {
    expect(() => new KeyPattern('')).toThrow(InvalidKeyError);
    expect(() => new KeyPattern('a:{b')).toThrow(/malformed/);
    expect(() => new KeyPattern('a:{1x}')).toThrow(/malformed/);
  });

  it('encodes separators so distinct inputs give distinct keys (property)', () => {
    const p = new KeyPattern('t:{a}:{b}');
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.string({ minLength: 1, maxLength: 20 }),
        (a1, b1, a2, b2) => {
          fc.pre(a1 !== a2 || b1 !== b2);
          let k1: string;
          let k2: string;
          try {
            k1 = p.build({ a: a1, b: b1 });
            k2 = p.build({ a: a2, b: b2 });
          } catch (e) {
            expect(e).toBeInstanceOf(InvalidKeyError);
            return;
          }
          expect(k1).not.toBe(k2);
        },
      ),
      { numRuns: 2000 },
    );
    expect(p.build({ a: 'x:y', b: 'z' })).toBe('t:x%3ay:z');
    expect(p.build({ a: 'x*', b: '[?]' })).toBe('t:x%2a:%5b%3f%5d');
  });
});

describe('validateKey', () => {
  it('accepts unicode and rejects empty, long, control characters and non-strings', () => {
    expect(validateKey('São Paulo:日本')).toBe('São Paulo:日本');
    expect(() => validateKey('')).toThrow(/empty/);
    expect(() => validateKey('x'.repeat(MAX_KEY_LENGTH + 1))).toThrow(/over the limit/);
    expect(() => validateKey('a\u0000b')).toThrow(/control/);
    expect(() => validateKey('a\u0085b')).toThrow(/control/);
    expect(() => validateKey(42)).toThrow(/expected a string/);
    try {
      validateKey('y'.repeat(5000));
    } catch (e) {
      expect((e as InvalidKeyError).key.length).toBeLessThanOrEqual(201);
      expect((e as InvalidKeyError).code).toBe('E_INVALID_KEY');
    }
  });
});
