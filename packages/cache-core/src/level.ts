/**
 * Where a value was found. The string values are the `level` label values of the metrics.
 *
 * A miss in every tier is `Level.External`: the value came (or must come) from the upstream.
 */
export const Level = {
  /** In-process memory tier (per pod). */
  L1: 'l1',
  /** Shared tier, usually Redis. */
  L2: 'l2',
  /** Persistent tier, usually PostgreSQL. */
  L3: 'l3',
  /** Not cached: the upstream (the loader) answered. */
  External: 'external',
} as const;

/** One of `'l1' | 'l2' | 'l3' | 'external'`. */
export type Level = (typeof Level)[keyof typeof Level];

/** The levels a tier can occupy. */
export type TierLevel = Exclude<Level, 'external'>;

/** Every level, fastest first. */
export const LEVELS: readonly Level[] = [Level.L1, Level.L2, Level.L3, Level.External];
