/** Most keys an entry's `meta` record may have. */
export const MAX_META_KEYS = 32;
/** Longest `meta` key, in characters. */
export const MAX_META_KEY_LENGTH = 64;
/** Longest `meta` string value, in characters. */
export const MAX_META_STRING_LENGTH = 1024;

/** Keys the orchestrator reads, with the type each must have. */
const KNOWN: Readonly<Record<string, 'boolean' | 'number'>> = {
  failSafe: 'boolean',
  retryAt: 'number',
  negative: 'boolean',
};

/**
 * Keys that only mean something in the process that wrote them (the orchestrator's fail-safe
 * back-off): never taken from a shared tier, where any writer could forge them.
 */
const LOCAL_ONLY = new Set(['failSafe', 'retryAt']);

/**
 * Why `meta` cannot be stored or trusted, or `undefined` when it can: a flat plain object of at most
 * {@link MAX_META_KEYS} keys (each at most {@link MAX_META_KEY_LENGTH} characters, never
 * `__proto__`, `constructor` or `prototype`) whose values are booleans, finite numbers or strings
 * of at most {@link MAX_META_STRING_LENGTH} characters; the keys the orchestrator reads
 * (`failSafe`, `retryAt`, `negative`) have their type.
 */
export function validateMeta(meta: unknown): string | undefined {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return 'meta must be a plain object';
  const proto = Object.getPrototypeOf(meta);
  if (proto !== Object.prototype && proto !== null) return 'meta must be a plain object';
  const keys = Object.keys(meta);
  if (keys.length > MAX_META_KEYS) return `meta has ${keys.length} keys, over ${MAX_META_KEYS}`;
  for (const key of keys) {
    if (key.length > MAX_META_KEY_LENGTH)
      return `meta key of ${key.length} characters, over ${MAX_META_KEY_LENGTH}`;
    if (key === '__proto__' || key === 'constructor' || key === 'prototype')
      return `meta key "${key}" is not allowed`;
    const value = (meta as Record<string, unknown>)[key];
    const type = typeof value;
    const want = Object.hasOwn(KNOWN, key) ? KNOWN[key] : undefined;
    if (want !== undefined && type !== want) return `meta "${key}" must be a ${want}`;
    if (type === 'boolean') continue;
    if (type === 'number') {
      if (!Number.isFinite(value)) return `meta "${key}" is not a finite number`;
      continue;
    }
    if (type === 'string') {
      if ((value as string).length > MAX_META_STRING_LENGTH)
        return `meta "${key}" is ${(value as string).length} characters, over ${MAX_META_STRING_LENGTH}`;
      continue;
    }
    return `meta "${key}" is ${value === null ? 'null' : type}; only strings, numbers and booleans`;
  }
  return undefined;
}

/**
 * A stored `meta` record as the tier hands it out: validated ({@link validateMeta}), without the
 * local-only fail-safe keys. `undefined` when nothing is left.
 * @throws {Error} naming the problem when the record is invalid.
 */
export function readMeta(meta: unknown): Readonly<Record<string, string | number | boolean>> | undefined {
  const problem = validateMeta(meta);
  if (problem !== undefined) throw new Error(problem);
  const record = meta as Record<string, string | number | boolean>;
  if (!Object.hasOwn(record, 'failSafe') && !Object.hasOwn(record, 'retryAt')) return record;
  const out: Record<string, string | number | boolean> = {};
  for (const key of Object.keys(record)) if (!LOCAL_ONLY.has(key)) out[key] = record[key] as string;
  return Object.keys(out).length > 0 ? out : undefined;
}
