import { InvalidTagError } from './errors/invalid-tag-error.js';

/** Most tags one entry may carry (the namespace tags included). */
export const MAX_TAGS = 64;
/** Longest tag, in characters. */
export const MAX_TAG_LENGTH = 256;

/**
 * The first character of the tags the cache adds itself (one per namespace level, see
 * `cache.namespace()`). Tags given by applications never hold control characters, so the two
 * cannot collide.
 */
export const INTERNAL_TAG_MARK = '\u0001';

// C0 controls, DEL and C1 controls, as in cache keys.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why `tags` cannot be stored with an entry or trusted when read back, or `undefined` when they
 * can: an array of at most {@link MAX_TAGS} non-empty strings of at most {@link MAX_TAG_LENGTH}
 * characters, without control characters except the {@link INTERNAL_TAG_MARK} that opens the
 * cache's own tags. Shared tiers check stored tags with it, as they check `meta`.
 */
export function validateTags(tags: unknown): string | undefined {
  if (!Array.isArray(tags)) return 'tags must be an array of strings';
  if (tags.length > MAX_TAGS) return `${tags.length} tags, over ${MAX_TAGS}`;
  for (const tag of tags) {
    const problem = tagProblem(tag, true);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * Stored tags as a tier hands them out: validated ({@link validateTags}); `undefined` for an
 * empty list.
 * @throws {Error} naming the problem when the list is invalid.
 */
export function readTags(tags: unknown): readonly string[] | undefined {
  const problem = validateTags(tags);
  if (problem !== undefined) throw new Error(problem);
  return (tags as string[]).length > 0 ? (tags as string[]) : undefined;
}

/**
 * The tags an application passed (`set`, `getOrLoad`, `ctx.setTags`, `deleteByTag`...), checked
 * and without duplicates; `undefined` for an empty or absent list.
 * @throws {InvalidTagError} when the list is not an array of valid tags (control characters,
 *   empty, longer than {@link MAX_TAG_LENGTH}, more than {@link MAX_TAGS}).
 */
export function checkTags(tags: unknown): readonly string[] | undefined {
  if (tags === undefined) return undefined;
  if (!Array.isArray(tags))
    throw new InvalidTagError(undefined, `expected an array of strings, got ${typeof tags}`);
  if (tags.length === 0) return undefined;
  for (const tag of tags) {
    const problem = tagProblem(tag, false);
    if (problem !== undefined)
      throw new InvalidTagError(typeof tag === 'string' ? tag : String(tag), problem);
  }
  const unique = tags.length === 1 ? (tags as string[]) : [...new Set(tags as string[])];
  if (unique.length > MAX_TAGS)
    throw new InvalidTagError(undefined, `${unique.length} tags, over the limit of ${MAX_TAGS}`);
  return unique;
}

/** Joins an entry's own tags and the ones its namespace adds, without duplicates. */
export function mergeTags(
  a: readonly string[] | undefined,
  b: readonly string[] | undefined,
): readonly string[] | undefined {
  if (a === undefined || a.length === 0) return b !== undefined && b.length > 0 ? b : undefined;
  if (b === undefined || b.length === 0) return a;
  const merged = [...new Set([...a, ...b])];
  if (merged.length > MAX_TAGS)
    throw new InvalidTagError(undefined, `${merged.length} tags, over the limit of ${MAX_TAGS}`);
  return merged;
}

function tagProblem(tag: unknown, internalAllowed: boolean): string | undefined {
  if (typeof tag !== 'string') return `a tag must be a string, got ${tag === null ? 'null' : typeof tag}`;
  if (tag.length === 0) return 'the tag is empty';
  if (tag.length > MAX_TAG_LENGTH) return `${tag.length} characters is over the limit of ${MAX_TAG_LENGTH}`;
  const body = internalAllowed && tag.startsWith(INTERNAL_TAG_MARK) ? tag.slice(1) : tag;
  if (CONTROL_CHARS.test(body)) return 'it contains control characters; remove or encode them';
  return undefined;
}
