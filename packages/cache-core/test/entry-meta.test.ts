import { describe, expect, it } from 'vitest';
import { MAX_META_KEYS, MAX_META_STRING_LENGTH, readMeta, validateMeta } from '../src/internal.js';

describe('validateMeta (the one rule for meta in shared tiers)', () => {
  it('accepts a flat record of strings, finite numbers and booleans', () => {
    expect(validateMeta({ negative: true, etag: '"abc"', n: 3 })).toBeUndefined();
    expect(validateMeta(Object.assign(Object.create(null), { a: 1 }))).toBeUndefined();
  });

  it.each([
    [null, 'plain object'],
    [[1], 'plain object'],
    [new Map(), 'plain object'],
    [{ nested: {} }, 'only strings, numbers and booleans'],
    [{ n: Number.NaN }, 'finite number'],
    [{ s: 'x'.repeat(MAX_META_STRING_LENGTH + 1) }, 'characters, over'],
    [{ ['k'.repeat(65)]: 1 }, 'meta key of 65 characters'],
    [JSON.parse('{"__proto__":{"polluted":1}}'), 'not allowed'],
    [{ constructor: 1 }, 'not allowed'],
    [{ failSafe: 'yes' }, 'must be a boolean'],
    [{ retryAt: '1' }, 'must be a number'],
  ])('refuses %j (%s)', (meta, problem) => {
    expect(validateMeta(meta)).toContain(problem);
  });

  it('refuses more than MAX_META_KEYS keys', () => {
    const big = Object.fromEntries(Array.from({ length: MAX_META_KEYS + 1 }, (_, i) => [`k${i}`, i]));
    expect(validateMeta(big)).toContain(`over ${MAX_META_KEYS}`);
  });
});

describe('readMeta (meta as a shared tier hands it out)', () => {
  it('drops the process-local fail-safe keys any writer of a shared store could forge', () => {
    expect(readMeta({ failSafe: true, retryAt: 9e15, negative: true })).toEqual({ negative: true });
    expect(readMeta({ failSafe: true })).toBeUndefined();
  });

  it('returns a record without local keys as it is, and throws on an invalid one', () => {
    const meta = { negative: false, etag: 'x' };
    expect(readMeta(meta)).toBe(meta);
    expect(() => readMeta({ a: {} })).toThrow(/only strings, numbers and booleans/);
  });
});
