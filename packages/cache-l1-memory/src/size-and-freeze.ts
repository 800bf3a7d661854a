/** Bytes V8 spends on an object header plus its hidden-class pointer, roughly. */
const OBJECT_OVERHEAD = 24;
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
      return 12 + value.length;
    case 'number':
      // small integers live in the slot itself (Smi); others are boxed heap numbers
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
