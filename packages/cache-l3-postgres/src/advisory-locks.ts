import { sql, type SQL } from 'drizzle-orm';

/** First half of every advisory lock key of the package ("bgc3"); the second is hashtext(schema). */
const NAMESPACE = 0x62676333;

/** What an advisory lock guards. Each purpose and schema gets its own lock. */
export type LockPurpose = 'migrate' | 'sweep' | 'refresh';

const OFFSETS: Record<LockPurpose, number> = { migrate: 0, sweep: 1, refresh: 2 };

/** `pg_advisory_xact_lock` (waits) or `pg_try_advisory_xact_lock` (does not) for `purpose` in `schema`. */
export function advisoryXactLock(purpose: LockPurpose, schema: string, wait: boolean): SQL {
  const key1 = NAMESPACE + OFFSETS[purpose];
  return wait
    ? sql`SELECT pg_advisory_xact_lock(${sql.raw(String(key1))}, hashtext(${schema})) AS locked`
    : sql`SELECT pg_try_advisory_xact_lock(${sql.raw(String(key1))}, hashtext(${schema})) AS locked`;
}
