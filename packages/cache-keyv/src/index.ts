export { KeyvStore, type KeyvStoreOptions, type KeyvLockOnMissOptions } from './keyv-store.js';
export { KeyvTier, type KeyvTierOptions } from './keyv-tier.js';
export { createKeyv, type CreateKeyvOptions } from './create-keyv.js';
