import { describe, expect, it } from 'vitest';
import * as root from '../src/index.js';
import * as internal from '../src/internal.js';

describe('package entries', () => {
  it('exports the public API only from the root', () => {
    expect(Object.keys(root).sort()).toEqual([
      'AggregatesStore',
      'DEFAULT_MAX_KEY_BYTES',
      'DEFAULT_MAX_VALUE_BYTES',
      'DEFAULT_TOMBSTONE_MS',
      'DEFAULT_WRITE_BATCH_ROWS',
      'L3_ERROR_CODES',
      'PostgresTier',
      'createPgliteTier',
      'migrate',
    ]);
  });

  it('exports the connection opener, table names, key encoding, statements, error mapping and schedule from /internal', () => {
    expect(Object.keys(internal).sort()).toEqual([
      'COMEXSTAT_ROWS_TABLE',
      'ENTRIES_TABLE',
      'MIGRATIONS_TABLE',
      'STATE_TABLE',
      'TOP_VIEW',
      'defaultMigrationsDir',
      'entryStatements',
      'l3Tables',
      'nextDailyRun',
      'openConnection',
      'scheduleDaily',
      'storageKey',
      'toTierError',
      'validateSchemaName',
    ]);
  });
});
