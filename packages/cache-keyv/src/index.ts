export { KeyvStore, type KeyvStoreOptions, type KeyvLockOnMissOptions } from './keyv-store.js';
