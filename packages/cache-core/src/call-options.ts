import { ConfigError } from './errors/config-error.js';
import type { GuardedTier } from './guarded-tier.js';
import { LEVELS, type Level } from './level.js';

/**
 * Per-call options of writes, deletes and expiries that are not about the entry itself: whether
 * the other instances are told, and which levels are left alone.
 */
export interface InvalidationCallOptions {
  /**
   * Do not publish this write, delete or expiry on the invalidation bus: the other instances'
   * local tiers keep their copy until it expires (e.g. a bulk warm-up every instance runs
   * itself). @default false
   */
  skipBus?: boolean;
}

/** Levels a call leaves alone. */
export interface LevelSkips {
  /** Levels not read (a lookup goes on with the next tier; a load's cascade too). */
  read?: readonly Level[];
  /** Levels not written or deleted (e.g. `['l1']` for a value this instance will not read again). */
  write?: readonly Level[];
}

/** The `skip` option of reads and loads. */
export interface ReadSkipOptions {
  /**
   * Levels this call does not read, e.g. `{ read: ['l1'] }` to look past this instance's copy.
   * Such a read does not promote what it finds; a load reads the other levels, and loads when
   * none holds a fresh value (the value found is its fail-safe fallback). @default none
   */
  skip?: Pick<LevelSkips, 'read'>;
}

/** The `skip` option of writes and deletes. */
export interface WriteSkipOptions {
  /** Levels this call does not write or delete. @default none */
  skip?: Pick<LevelSkips, 'write'>;
}

/** Per-call options of `set`, `setMany`, `delete`, `deleteMany`, `expire`... */
export type WriteCallOptions = InvalidationCallOptions & WriteSkipOptions;

/**
 * The tiers of `states` that `skip` leaves in, checked (`skip` must list levels).
 * @throws {ConfigError} when `skip` names something other than a level.
 */
export function tiersFor(
  states: readonly GuardedTier[],
  skip: readonly Level[] | undefined,
  what: 'skip.read' | 'skip.write',
): readonly GuardedTier[] {
  if (skip === undefined || skip.length === 0) return states;
  if (!Array.isArray(skip)) throw new ConfigError(what, 'expected an array of levels, e.g. ["l1"]');
  for (const level of skip)
    if (!LEVELS.includes(level))
      throw new ConfigError(what, `${JSON.stringify(level)} is not a level (l1, l2, l3)`);
  return states.filter((s) => !skip.includes(s.tier.level));
}
