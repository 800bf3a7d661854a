import type { MultiLevelCache } from '@bgc/cache-core';
import { Keyv } from 'keyv';
import { KeyvStore, type KeyvStoreOptions } from './keyv-store.js';

/** Options of {@link createKeyv}: the store's options plus the Keyv's own. */
export interface CreateKeyvOptions extends KeyvStoreOptions {
  /** Keyv's namespace (key prefix `<namespace>:`; `clear()` removes this namespace only). @default 'keyv' */
  namespace?: string;
  /** Keyv's default TTL (ms) for writes without one. @default undefined (the store's `defaultTtlMs`) */
  ttl?: number;
}

/**
 * A Keyv over a {@link KeyvStore}, configured for it: Keyv's records reach the cache as objects
 * (`serialize`/`deserialize` off), so no JSON text is built or parsed on the way — the cache's
 * tiers encode values themselves (the Redis and PostgreSQL tiers with the core's value codec,
 * which also keeps `Date`, `Map`, `Set`, `BigInt`), and a memory L1 hands back its stored object.
 * Records holding binary data (`Buffer`, typed arrays) are stored by the {@link KeyvStore} as JSON
 * text with the bytes in base64, and come back with `Buffer`s.
 *
 * Values read from a memory L1 are the stored objects, deep-frozen by `MemoryTier` (its `freeze`
 * option): copy before mutating. `new Keyv({ store: new KeyvStore(cache) })` keeps Keyv's JSON
 * serialization instead (fresh objects on every read, at the cost of a parse).
 *
 * ```ts
 * const cache = createCache({ stores: [createKeyv(multiLevelCache, { namespace: 'app' })] });
 * ```
 */
export function createKeyv(cache: MultiLevelCache, options: CreateKeyvOptions = {}): Keyv {
  const { namespace, ttl, ...storeOptions } = options;
  return new Keyv({
    store: new KeyvStore(cache, storeOptions),
    namespace: namespace ?? 'keyv',
    ...(ttl === undefined ? {} : { ttl }),
    serialize: undefined,
    deserialize: undefined,
  });
}
