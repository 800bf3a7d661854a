export {
  PostgresTier,
  type PostgresTierOptions,
  type SweepResult,
  type ClearOptions,
  DEFAULT_MAX_VALUE_BYTES,
  DEFAULT_TOMBSTONE_MS,
  DEFAULT_WRITE_BATCH_ROWS,
} from './postgres-tier.js';
export { MAX_META_KEYS, MAX_META_KEY_LENGTH, MAX_META_STRING_LENGTH } from './meta.js';
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
export { migrate, defaultMigrationsDir, type MigrateOptions, type MigrateResult } from './migrate.js';
export {
  openConnection,
  type L3Connection,
  type L3ConnectionOptions,
  type L3Database,
} from './connection.js';
export {
  l3Tables,
  validateSchemaName,
  type L3Tables,
  type ComexStatFlow,
  ENTRIES_TABLE,
  COMEXSTAT_ROWS_TABLE,
  TOP_VIEW,
  MIGRATIONS_TABLE,
  STATE_TABLE,
} from './schema.js';
export { L3_ERROR_CODES, toTierError } from './postgres-errors.js';
export { storageKey, DEFAULT_MAX_KEY_BYTES } from './key-encoding.js';
export { nextDailyRun, scheduleDaily, type DailyScheduleOptions } from './daily-schedule.js';
