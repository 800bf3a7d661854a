/**
 * The value codec of the L3 tier: the one every shared tier uses, from `@bgc/cache-core` (JSON with
 * `$bgc` tags for Date, Map, Set, BigInt, undefined, NaN, ±Infinity and -0), so that a value reads
 * back with the same types whichever tier answers.
 */
export {
  type DecodeValueOptions,
  decodeValue,
  encodeValue,
  parseJsonSafely,
  reviveValue,
} from '@bgc/cache-core/internal';
