import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateKey } from '../src/index.js';

// The definition the scan in validateKey implements: C0 controls, DEL and C1 controls.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe('validateKey control characters', () => {
  it('refuses a key exactly when it holds a C0 control, DEL or a C1 control', () => {
    const char = fc.oneof(
      fc.integer({ min: 0, max: 0xa0 }).map((c) => String.fromCharCode(c)),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(fc.array(char, { minLength: 1, maxLength: 40 }), (chars) => {
        const key = chars.join('');
        fc.pre(key.length <= 1024);
        if (CONTROL.test(key)) expect(() => validateKey(key)).toThrow(/control/);
        else expect(validateKey(key)).toBe(key);
      }),
      { numRuns: 2000 },
    );
  });

  it('checks the bounds of both ranges', () => {
    for (const c of [0x00, 0x1f, 0x7f, 0x85, 0x9f])
      expect(() => validateKey(`a${String.fromCharCode(c)}`)).toThrow();
    for (const c of [0x20, 0x7e, 0xa0, 0x2028])
      expect(validateKey(`a${String.fromCharCode(c)}`)).toHaveLength(2);
  });
});
