import type { CacheEntry } from './entry.js';
import type { TierLevel } from './level.js';

/** A key and the entry to store under it. */
export interface TierWrite<T = unknown> {
  key: string;
  entry: CacheEntry<T>;
}

/**
 * Options of {@link Tier.delete} and {@link Tier.deleteMany}.
 */
export interface TierDeleteOptions {
  /**
   * The version of the delete ({@link nextVersion}). A tier that keeps tombstones remembers it for
   * `tombstoneMs`, and refuses any later write of that key whose entry has a lower version.
   */
  version?: number;
  /** How long (ms) the tombstone lives. A tier without tombstones ignores it. */
  tombstoneMs?: number;
}

/** Options of {@link Tier.clear}. */
export interface TierClearOptions {
  /**
   * The clear's version ({@link nextVersion}). A shared tier remembers it (a "cleared at" marker)
   * and refuses later writes of entries with a lower version. @default a fresh `nextVersion()`
   */
  version?: number;
}

/** What the orchestrator tells a tier about its place when it is attached ({@link Tier.attach}). */
export interface TierAttachment {
  /** The tier's index among the orchestrator's tiers (0 = fastest). */
  index: number;
  /**
   * `true` when no tier below this one can refill it. Such a tier keeps an entry's own lifetime:
   * a cap ({@link Tier.maxTtlMs}) bounds staleness only where a slower tier can refill the entry.
   */
  lastTier: boolean;
}

/** Where a tier delivers the answer of {@link Tier.getWith} (call exactly one, once). */
export interface ReadCallbacks {
  ok(entry: CacheEntry | undefined): void;
  failed(error: unknown): void;
}

/**
 * The contract every cache tier implements. The orchestrator ({@link MultiLevelCache}) calls it;
 * applications rarely do.
 *
 * Rules every implementation follows:
 * - Entries carry absolute times. A tier never returns an entry whose `staleUntil` has passed,
 *   and never extends an entry's lifetime; it may shorten it to its own cap ({@link Tier.maxTtlMs}).
 * - Keys are opaque strings of any characters (unicode, `:`, `*`, spaces); a tier encodes or hashes
 *   them as its backend needs, and distinct keys stay distinct.
 * - A failing backend rejects with an error (the orchestrator reports it and skips the tier);
 *   a corrupted stored value is reported as a miss, not an error.
 * - A tier handed an existing client (ioredis, pg Pool) never closes it; one that created its
 *   client closes it in {@link Tier.close}.
 * - Versions ({@link CacheEntry.version}): a write never replaces an entry or a tombstone of a
 *   higher version; such a write is dropped silently (it lost a race, it is not an error). Shared
 *   tiers make the check atomic on the backend (a compare-and-set script, a conditional upsert);
 *   a delete with a `version` leaves a tombstone for `tombstoneMs` so that a load or promotion
 *   that started before the delete cannot resurrect the key. Local tiers may rely on the
 *   orchestrator's own per-key versions instead.
 * - Values: shared tiers store values with the core's value codec (`encodeValue`/`decodeValue`),
 *   so that every tier returns the same types (Date, Map, Set, BigInt, undefined in arrays...).
 */
export interface Tier {
  /** Short backend name used in logs and errors, e.g. `"memory"`, `"redis"`, `"postgres"`. */
  readonly name: string;
  /** The level this tier serves at: its `level` label in metrics and in `CacheResult.level`. */
  readonly level: TierLevel;
  /**
   * `'local'` for a per-process tier (memory): the orchestrator evicts its keys when another
   * instance writes (invalidation bus). `'shared'` for tiers every instance sees (Redis, PostgreSQL).
   */
  readonly scope: 'local' | 'shared';
  /** Longest lifetime (ms) this tier keeps an entry for; `undefined` keeps the entry's own. */
  readonly maxTtlMs?: number;

  /** Reads one entry. Resolves `undefined` on a miss, an expired entry or an unreadable value. */
  get(key: string): Promise<CacheEntry | undefined>;
  /** Stores (or overwrites) one entry, shortened to {@link Tier.maxTtlMs} if needed. */
  set(key: string, entry: CacheEntry): Promise<void>;
  /** Removes one key (leaving a tombstone when `options.version` is given and the tier keeps them). Resolves `true` if the key existed. */
  delete(key: string, options?: TierDeleteOptions): Promise<boolean>;
  /** Releases the tier's resources (timers, clients it created). Further calls may reject. */
  close(): Promise<void>;

  /**
   * Synchronous read for tiers that can answer without I/O (L1). Same semantics as
   * {@link Tier.get}. The orchestrator uses it on its hot path when present.
   */
  getSync?(key: string): CacheEntry | undefined;
  /**
   * For tiers with {@link Tier.getSync}: the value of a fresh entry (`freshUntil > now`), or
   * `undefined` when the key is absent, stale or expired, in which case nothing is recorded (the
   * orchestrator then reads through `getSync`, which counts the access). The orchestrator's
   * fastest path: no entry object is read or allocated.
   */
  getFreshValueSync?(key: string, now: number): unknown;
  /**
   * Synchronous write for local tiers that store without I/O (L1): same semantics as
   * {@link Tier.set}, throwing where `set` would reject. The orchestrator writes through it when
   * present, without a promise per tier.
   */
  setSync?(key: string, entry: CacheEntry): void;
  /**
   * Callback form of {@link Tier.get}: calls `callbacks.ok` with the entry (or `undefined`) or
   * `callbacks.failed` with the error, exactly once, without a promise of its own. The
   * orchestrator prefers it on its read path, where each promise or closure between the
   * backend's reply and the caller costs measurable throughput.
   */
  getWith?(key: string, callbacks: ReadCallbacks): void;
  /** Reads many keys in one round trip. Resolves an array aligned with `keys`, `undefined` on a miss. */
  getMany?(keys: readonly string[]): Promise<(CacheEntry | undefined)[]>;
  /** Stores many entries in one round trip. */
  setMany?(writes: readonly TierWrite[]): Promise<void>;
  /** Removes many keys in one round trip (tombstones as in {@link Tier.delete}). Resolves how many existed. */
  deleteMany?(keys: readonly string[], options?: TierDeleteOptions): Promise<number>;
  /**
   * Logical expiry: the entries of `keys` stop being fresh now (`freshUntil` = now) but keep their
   * `staleUntil`, so they stay available as fail-safe fallbacks. An entry with a version higher
   * than `version` (a newer write) is left alone. Resolves how many entries were expired.
   */
  expire?(keys: readonly string[], version?: number): Promise<number>;
  /**
   * Local tiers: turns every entry stale at once (as {@link Tier.expire}) — what the orchestrator
   * does when it can no longer vouch for them (the invalidation bus reconnected, a shared tier
   * recovered). Synchronous: no I/O.
   */
  expireAll?(): void;
  /** Connects to the backend, resolving once the tier can serve, or rejecting with a clear error. */
  connect?(): Promise<void>;
  /** Called once by the orchestrator that owns the tier, before any other call. */
  attach?(attachment: TierAttachment): void;
  /**
   * Removes every entry this tier holds (under its prefix or namespace), never others'. A shared
   * tier also refuses later writes of versions older than the clear (`options.version`, or a
   * version it takes when the clear starts).
   */
  clear?(options?: TierClearOptions): Promise<void>;
  /** Cheap health probe: resolves when the backend answers, rejects otherwise. */
  ping?(): Promise<void>;
}
