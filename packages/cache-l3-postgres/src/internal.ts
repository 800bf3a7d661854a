/**
 * `@bgc/cache-l3-postgres/internal`: the tier's building blocks, shared with its command line, its
 * tests, the gateway's end-to-end tests and the benchmarks: the connection opener, the schema's
 * table names, the stored key's encoding, the entry statements (the benchmarks run the tier's own
 * getMany statement on a bare pool), the error mapping and the daily schedule. They follow the
 * tier's needs, not semver: an application imports `PostgresTier`, `createPgliteTier`,
 * `AggregatesStore` and `migrate` from `@bgc/cache-l3-postgres`.
 */
export { openConnection, type L3Connection } from './connection.js';
export { defaultMigrationsDir } from './migrate.js';
export {
  l3Tables,
  validateSchemaName,
  type L3Tables,
  ENTRIES_TABLE,
  COMEXSTAT_ROWS_TABLE,
  TOP_VIEW,
  MIGRATIONS_TABLE,
  STATE_TABLE,
} from './schema.js';
export { toTierError } from './postgres-errors.js';
export { entryStatements, type EntryStatements } from './statements.js';
export { storageKey } from './key-encoding.js';
export { nextDailyRun, scheduleDaily } from './daily-schedule.js';
