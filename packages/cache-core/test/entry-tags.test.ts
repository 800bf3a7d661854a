import { describe, expect, it } from 'vitest';
import { BgcCacheError, checkTags, InvalidTagError, MAX_TAG_LENGTH, MAX_TAGS } from '../src/index.js';
import { INTERNAL_TAG_MARK, readTags, validateTags } from '../src/internal.js';
import { mergeTags } from '../src/entry-tags.js';

describe('validateTags / readTags (stored tags)', () => {
  it("accepts strings, unicode and the cache's own tags (opened by U+0001)", () => {
    expect(validateTags(['a', 'São Paulo 🚢', `${INTERNAL_TAG_MARK}ns:tenant:`])).toBeUndefined();
    expect(readTags(['a'])).toEqual(['a']);
    expect(readTags([])).toBeUndefined();
  });

  it.each([
    ['not an array', 'array of strings'],
    [[1], 'must be a string'],
    [[null], 'got null'],
    [[''], 'empty'],
    [['x'.repeat(MAX_TAG_LENGTH + 1)], `over the limit of ${MAX_TAG_LENGTH}`],
    [['a\nb'], 'control characters'],
    [[`${INTERNAL_TAG_MARK}a\u0001`], 'control characters'],
  ])('refuses %j (%s)', (tags, problem) => {
    expect(validateTags(tags)).toContain(problem);
    expect(() => readTags(tags)).toThrow(problem);
  });

  it('refuses more than MAX_TAGS tags', () => {
    expect(validateTags(Array.from({ length: MAX_TAGS + 1 }, (_, i) => `t${i}`))).toContain(
      `over ${MAX_TAGS}`,
    );
  });
});

describe('checkTags (tags given by an application)', () => {
  it('returns the tags without duplicates, undefined for none', () => {
    expect(checkTags(['a', 'b', 'a'])).toEqual(['a', 'b']);
    expect(checkTags(['a'])).toEqual(['a']);
    expect(checkTags([])).toBeUndefined();
    expect(checkTags(undefined)).toBeUndefined();
  });

  it('throws InvalidTagError (E_INVALID_TAG) naming the tag and what to do', () => {
    const error = (() => {
      try {
        checkTags(['ok', 'bad\r\nHeader: x']);
      } catch (e) {
        return e;
      }
    })() as InvalidTagError;
    expect(error).toBeInstanceOf(InvalidTagError);
    expect(BgcCacheError.isInstance(error)).toBe(true);
    expect(error.code).toBe('E_INVALID_TAG');
    expect(error.tag).toBe('bad\r\nHeader: x');
    expect(error.message).toContain('remove or encode them');
  });

  it('refuses the internal mark, non-arrays, non-strings and too many tags', () => {
    expect(() => checkTags([`${INTERNAL_TAG_MARK}ns:x:`])).toThrow(InvalidTagError);
    expect(() => checkTags('a')).toThrow(/expected an array of strings, got string/);
    expect(() => checkTags([42])).toThrow(/must be a string, got number/);
    expect(() => checkTags(Array.from({ length: MAX_TAGS + 1 }, (_, i) => `t${i}`))).toThrow(
      `over the limit of ${MAX_TAGS}`,
    );
    const long = 'x'.repeat(300);
    const e = (() => {
      try {
        checkTags([long]);
      } catch (err) {
        return err as InvalidTagError;
      }
    })();
    expect(e?.tag?.length).toBe(201);
  });

  it('mergeTags joins without duplicates and keeps either side alone as is', () => {
    const a = ['a', 'b'];
    expect(mergeTags(a, undefined)).toBe(a);
    expect(mergeTags(undefined, a)).toBe(a);
    expect(mergeTags([], [])).toBeUndefined();
    expect(mergeTags(a, ['b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(() =>
      mergeTags(
        Array.from({ length: 40 }, (_, i) => `a${i}`),
        Array.from({ length: 40 }, (_, i) => `b${i}`),
      ),
    ).toThrow(InvalidTagError);
  });
});
