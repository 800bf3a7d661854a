export {
  PostgresTier,
  type PostgresTierOptions,
  type SweepResult,
  type ClearOptions,
  DEFAULT_MAX_VALUE_BYTES,
  DEFAULT_TOMBSTONE_MS,
  DEFAULT_WRITE_BATCH_ROWS,
} from './postgres-tier.js';
export { createPgliteTier, type PgliteTierOptions } from './pglite-tier.js';
export {
  AggregatesStore,
  type AggregatesStoreOptions,
  type ComexStatRow,
  type TopNcm,
  type TopCountry,
  type TopPair,
  type TopQueryOptions,
  type RefreshResult,
} from './aggregates-store.js';
export { migrate, type MigrateOptions, type MigrateResult } from './migrate.js';
export type { L3ConnectionOptions, L3Database } from './connection.js';
export type { ComexStatFlow } from './schema.js';
export type { DailyScheduleOptions } from './daily-schedule.js';
export { L3_ERROR_CODES } from './postgres-errors.js';
export { DEFAULT_MAX_KEY_BYTES } from './key-encoding.js';
