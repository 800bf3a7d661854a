import type { CacheEntry } from './entry.js';
import { InvalidValueError } from './errors/invalid-value-error.js';
import { isInvalidValue } from './classify-error.js';
import type { GuardedTier } from './guarded-tier.js';
import { Level, type TierLevel } from './level.js';
import type { MetricsAdapter } from './metrics.js';
import { SKIPPED } from './tier-read.js';

/**
 * The write side of the orchestrator: checking a value, building its entry, and writing it to
 * every tier with the invalid-value rollback. Internal to `@bgc/cache-core`.
 */

/** What {@link writeAll} needs from the orchestrator. */
export interface WriteHost {
  /** Counts the `invalid_value` error of a refused write. */
  readonly metrics: MetricsAdapter;
  /** Whether a local write of this entry would undo a newer write or invalidation of its key. */
  superseded(key: string, entry: CacheEntry): boolean;
  /** Removes keys from every tier (with tombstones of `version` on shared tiers). */
  removeEverywhere(keys: readonly string[], version: number | undefined): Promise<void>;
}

/** The entry lifetimes an orchestrator resolved from its options. */
export interface EntryPolicy {
  /** Fraction in [0, 1) by which a fresh lifetime is shortened at random. */
  readonly ttlJitter: number;
  /** Stale lifetime after fresh-until when a write names none, ms. */
  readonly staleTtlMs: number;
}

/** Throws {@link InvalidValueError} for a value no tier can cache (`undefined`, a function, a symbol). */
export function assertValue(key: string, value: unknown): void {
  if (value === undefined) {
    throw new InvalidValueError(
      `Cannot cache undefined under ${JSON.stringify(key)}; use null for "no value" or delete the key`,
    );
  }
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new InvalidValueError(
      `Cannot cache a ${typeof value} under ${JSON.stringify(key)}; cache plain data`,
    );
  }
}

/**
 * A new entry fresh for `ttlMs` (less the policy's jitter) and stale for `staleTtlMs` (default the
 * policy's) after that. Throws {@link InvalidValueError} for a negative or non-finite `ttlMs` or
 * `staleTtlMs`.
 */
export function makeEntry<T>(
  policy: EntryPolicy,
  value: T,
  ttlMs: number,
  staleTtlMs: number | undefined,
): CacheEntry<T> {
  if (!Number.isFinite(ttlMs) || ttlMs < 0)
    throw new InvalidValueError(`ttlMs must be a non-negative number of ms, got ${ttlMs}`);
  const stale = staleTtlMs ?? policy.staleTtlMs;
  if (!Number.isFinite(stale) || stale < 0)
    throw new InvalidValueError(`staleTtlMs must be a non-negative number of ms, got ${stale}`);
  const now = Date.now();
  const jitter = policy.ttlJitter;
  const ttl = jitter > 0 ? Math.round(ttlMs * (1 - Math.random() * jitter)) : ttlMs;
  const freshUntil = now + ttl;
  return {
    value,
    freshUntil,
    staleUntil: freshUntil + stale,
    createdAt: now,
    ttlMs: ttl,
  };
}

/**
 * Writes to every tier of `states`; resolves how many tiers stored the entry. A value a tier
 * refuses as invalid (not serializable, too large) is the caller's error, not the tier's: the key
 * is removed from every tier, so none keeps an entry the others lack, and the error is thrown.
 */
export async function writeAll(
  host: WriteHost,
  states: readonly GuardedTier[],
  key: string,
  entry: CacheEntry,
): Promise<number> {
  let invalid: unknown;
  let invalidLevel: TierLevel = Level.L1;
  const stale = host.superseded(key, entry);
  const writeOne = (state: GuardedTier): number | Promise<number> =>
    !state.shared && stale
      ? 0
      : state
          .call('set', key, () =>
            state.tier.set(key, entry).catch((error: unknown) => {
              if (!isInvalidValue(error)) throw error;
              invalid = error;
              invalidLevel = state.tier.level;
              return SKIPPED;
            }),
          )
          .then((r) => {
            if (r !== SKIPPED) return 1;
            if (invalid === undefined) state.remember(key);
            return 0;
          });
  // One tier (a load's L1, or its shared tier in the background): no Promise.all around it.
  const stored =
    states.length === 1
      ? [await writeOne(states[0] as GuardedTier)]
      : await Promise.all(states.map(writeOne));
  if (invalid !== undefined) {
    host.metrics.error(invalidLevel, 'set', 'invalid_value');
    await host.removeEverywhere([key], entry.version);
    throw invalid;
  }
  // A superseded entry counts as not stored: it must not be shared as a recent load either.
  return stale ? 0 : stored.reduce<number>((a, b) => a + b, 0);
}
