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
/** Nesting depth past which a value that is not frozen is no longer walked (ends cycles when not freezing). */
const MAX_UNFROZEN_DEPTH = 64;

/**
 * The cost of values stored at least twice, keyed by the value: a frozen value is immutable, so
 * storing it again (the same object cached under several keys) reuses its cost instead of walking
 * it, and never counts it as nothing. A value is remembered only from its second store on (it is
 * frozen by then): most values are stored once, and an entry of this map costs ~40 bytes of heap
 * per value, as much as the rest of the tier's bookkeeping. (The tier re-stores the same value
 * under the same key without calling this at all.)
 */
const frozenCosts = new WeakMap<object, number>();
/** Objects being walked (the current path from the root), to tell a cycle from a frozen subtree. */
const path: object[] = [];

/**
 * Walks a value once, estimating the heap bytes it occupies and (when `freeze` is set) deep
 * freezing it so that readers cannot mutate the cached copy. Strings count their length (one-byte
 * representation) plus a header; small integers nothing beyond their slot, other numbers 16 bytes;
 * typed arrays and Buffers their byte length (they cannot be frozen and are left as they are).
 *
 * A frozen value is walked and counted in full the first time it is seen frozen, then its cost is
 * remembered (in a WeakMap keyed by the value) and returned as is: a value frozen by this
 * function on its first store is walked once more on its second, and never again. A reference back to an object on the current path (a cycle) counts one
 * slot; an object reached twice by different paths is counted twice (an over-estimate, never an
 * under-estimate). Without `freeze`, nesting deeper than 64 levels is not counted (this also ends
 * cycles, which cannot be told from deep nesting without marking objects).
 */
export function sizeAndFreeze(value: unknown, freeze: boolean): number {
  if (typeof value !== 'object' || value === null) return primitiveCost(value);
  // Remembered: frozen (deeply) when remembered, so its cost cannot have changed. Looked up before
  // asking whether it is frozen, which costs a call into the runtime (~4x the lookup).
  const known = frozenCosts.get(value);
  if (known !== undefined) return known;
  // Frozen already: stored before (or frozen by its owner), so worth remembering.
  const again = Object.isFrozen(value);
  const bytes = walk(value, freeze, 0);
  if (freeze && again) frozenCosts.set(value, bytes);
  return bytes;
}

function primitiveCost(value: unknown): number {
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
    case 'function':
      return OBJECT_OVERHEAD;
    default:
      // boolean, undefined, symbol, null
      return 8;
  }
}

function child(value: unknown, freeze: boolean, depth: number): number {
  if (typeof value !== 'object' || value === null) return primitiveCost(value);
  const known = frozenCosts.get(value);
  if (known !== undefined) return known;
  if (path.includes(value)) return SLOT_BYTES;
  if (!freeze && depth >= MAX_UNFROZEN_DEPTH) return SLOT_BYTES;
  return walk(value, freeze, depth + 1);
}

function walk(obj: object, freeze: boolean, depth: number): number {
  if (ArrayBuffer.isView(obj)) return OBJECT_OVERHEAD + obj.byteLength;
  if (obj instanceof ArrayBuffer) return OBJECT_OVERHEAD + obj.byteLength;
  if (freeze) Object.freeze(obj);
  path.push(obj);
  try {
    let bytes = OBJECT_OVERHEAD;
    if (Array.isArray(obj)) {
      bytes = ARRAY_OVERHEAD;
      for (let i = 0; i < obj.length; i++) bytes += SLOT_BYTES + child(obj[i], freeze, depth);
    } else if (obj instanceof Map) {
      for (const [k, v] of obj) bytes += 2 * SLOT_BYTES + child(k, freeze, depth) + child(v, freeze, depth);
    } else if (obj instanceof Set) {
      for (const v of obj) bytes += SLOT_BYTES + child(v, freeze, depth);
    } else {
      for (const k in obj) bytes += SLOT_BYTES + child((obj as Record<string, unknown>)[k], freeze, depth);
    }
    return bytes;
  } finally {
    path.pop();
  }
}
