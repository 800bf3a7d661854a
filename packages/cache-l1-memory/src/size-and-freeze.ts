/** Bytes V8 spends on an object header plus its hidden-class pointer, roughly. */
const OBJECT_OVERHEAD = 24;
/** An array is a JS object plus a separate backing store with its own header. */
const ARRAY_OVERHEAD = 48;
/**
 * Strings up to this length that come from JSON.parse (values read back from L2/L3 or the upstream)
 * are internalized by V8 and shared by every value holding them; longer ones are not.
 */
const SHORT_STRING = 10;
/** Bytes per property or array slot (a tagged pointer plus amortised backing store). */
const SLOT_BYTES = 8;

/**
 * Walks a value once, estimating the heap bytes it occupies and (when `freeze` is set) deep
 * freezing it so that readers cannot mutate the cached copy. Strings count their length (one-byte
 * representation) plus a header; small integers nothing beyond their slot, other numbers 16 bytes; typed arrays and Buffers their
 * byte length (they cannot be frozen and are left as they are). Already frozen subtrees are neither
 * frozen again nor counted, which also ends cycles.
 */
export function sizeAndFreeze(value: unknown, freeze: boolean): number {
  switch (typeof value) {
    case 'string':
      // 16-byte header, characters in 8-byte words; short ones are often shared (see SHORT_STRING),
      // so they count half of their own size.
      return value.length <= SHORT_STRING ? 12 : 16 + Math.ceil(value.length / 8) * 8;
    case 'number':
      // small integers live in the slot itself (Smi, 31 bits on 64-bit Node); others are boxed heap numbers
      return Number.isInteger(value) && Math.abs(value) < 2 ** 30 ? 0 : 16;
    case 'bigint':
      return 16;
    case 'boolean':
    case 'undefined':
    case 'symbol':
      return 8;
    case 'function':
      return OBJECT_OVERHEAD;
    default:
      break;
  }
  if (value === null) return 8;
  const obj = value as object;
  if (ArrayBuffer.isView(obj)) return OBJECT_OVERHEAD + obj.byteLength;
  if (obj instanceof ArrayBuffer) return OBJECT_OVERHEAD + obj.byteLength;
  if (Object.isFrozen(obj)) return SLOT_BYTES;
  if (freeze) Object.freeze(obj);
  let bytes = OBJECT_OVERHEAD;
  if (Array.isArray(obj)) {
    bytes = ARRAY_OVERHEAD;
    for (let i = 0; i < obj.length; i++) bytes += SLOT_BYTES + sizeAndFreeze(obj[i], freeze);
    return bytes;
  }
  if (obj instanceof Map) {
    for (const [k, v] of obj) bytes += 2 * SLOT_BYTES + sizeAndFreeze(k, freeze) + sizeAndFreeze(v, freeze);
    return bytes;
  }
  if (obj instanceof Set) {
    for (const v of obj) bytes += SLOT_BYTES + sizeAndFreeze(v, freeze);
    return bytes;
  }
  for (const k in obj) {
    bytes += SLOT_BYTES + sizeAndFreeze((obj as Record<string, unknown>)[k], freeze);
  }
  return bytes;
}
