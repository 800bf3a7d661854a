import { decodeValue, encodeValue, hasValueTags, reviveValue, VALUE_TAG_KEY } from '@bgc/cache-core/internal';

/**
 * The key marking a tagged value inside the JSON encoding, e.g. `{"$bgc":"Date","v":"2024-01-01T00:00:00.000Z"}`.
 * @deprecated use `VALUE_TAG_KEY` from `@bgc/cache-core` (the codec moved there).
 */
export const TAG_KEY = VALUE_TAG_KEY;

/** What {@link encodeJson} returns: the JSON text and whether it holds tagged values. */
export interface EncodedJson {
  /** The JSON text of the value. */
  text: string;
  /** `true` when the text holds `$bgc` tags and must be decoded with {@link reviveTags}. */
  tagged: boolean;
}

/**
 * `encodeValue` of `@bgc/cache-core`, with whether the text holds tags.
 * @deprecated use `encodeValue` from `@bgc/cache-core`.
 * @throws {InvalidValueError} naming the path of the first value that cannot be stored.
 */
export function encodeJson(value: unknown): EncodedJson {
  const text = encodeValue(value);
  return { text, tagged: hasValueTags(text) };
}

/**
 * `decodeValue` of `@bgc/cache-core` (`tagged` is ignored: tags are found in the text).
 * @deprecated use `decodeValue` from `@bgc/cache-core`.
 * @throws {SerializationError} when the text is not valid JSON, is unsafe, or holds unknown tags.
 */
export function decodeJson(text: string, _tagged?: boolean): unknown {
  return decodeValue(text);
}

/**
 * `reviveValue` of `@bgc/cache-core`.
 * @deprecated use `reviveValue` from `@bgc/cache-core`.
 * @throws {SerializationError} on an unknown or malformed tag.
 */
export function reviveTags(node: unknown): unknown {
  return reviveValue(node);
}
