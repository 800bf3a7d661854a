import type { InvalidationMessage } from './bus.js';
import type { CacheContext } from './cache-context.js';
import { tiersFor } from './call-options.js';
import type { CacheEntry } from './entry.js';
import { coarseNow } from './clock.js';
import { InvalidValueError } from './errors/invalid-value-error.js';
import { type GuardedTier, Refusal } from './guarded-tier.js';
import { validateKey } from './key-pattern.js';
import { entryTags, type SetCallOptions } from './namespace.js';
import { Level, type TierLevel } from './level.js';
import type { MetricsAdapter } from './metrics.js';
import type { TierWrite } from './tier.js';
import { SKIPPED } from './tier-read.js';
import { nextVersion } from './version.js';

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
  /**
   * Whether a shared tier's single writes may be coalesced into batches ({@link writeOne}): only
   * when deletes leave tombstones (`tombstoneMs` > 0), which keep a write that reaches the tier
   * after a newer delete from bringing its key back.
   */
  readonly coalesce?: boolean;
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

/** Resolved promises the synchronous write paths answer with (a resolved promise is immutable). */
const STORED: readonly Promise<number>[] = [Promise.resolve(0), Promise.resolve(1), Promise.resolve(2)];
const DONE: Promise<void> = Promise.resolve();

/**
 * Writes to every tier of `states`; resolves how many tiers stored the entry. A value a tier
 * refuses as invalid (not serializable, too large) is the caller's error, not the tier's: the key
 * is removed from every tier, so none keeps an entry the others lack, and the error is thrown.
 */
export function writeAll(
  host: WriteHost,
  states: readonly GuardedTier[],
  key: string,
  entry: CacheEntry,
): Promise<number> {
  const r = writeNow(host, states, key, entry);
  return typeof r === 'number' ? (STORED[r] ?? Promise.resolve(r)) : r;
}

/**
 * {@link writeAll}, answering synchronously (the number of tiers that stored the entry) when every
 * tier of `states` writes synchronously ({@link GuardedTier.syncWrites}: the memory tier): no
 * promise at all on that path.
 */
export function writeNow(
  host: WriteHost,
  states: readonly GuardedTier[],
  key: string,
  entry: CacheEntry,
): number | Promise<number> {
  const stale = host.superseded(key, entry);
  const n = states.length;
  if (!localOnly(states)) return writeAsync(host, states, key, entry, stale);
  // Local tiers only, each synchronous: a superseded entry is written nowhere.
  if (stale) return 0;
  let stored = 0;
  let refused: Refusal | undefined;
  let refusedLevel: TierLevel = Level.L1;
  for (let i = 0; i < n; i++) {
    const state = states[i] as GuardedTier;
    const r = state.writeNow(key, entry);
    if (r === 1) stored++;
    else if (r instanceof Refusal && refused === undefined) {
      refused = r;
      refusedLevel = state.tier.level;
    }
  }
  if (refused !== undefined) return rollBack(host, key, entry, refused.error, refusedLevel);
  return stored;
}

/** Whether every tier of `states` writes synchronously ({@link GuardedTier.syncWrites}: local tiers with `setSync`). */
function localOnly(states: readonly GuardedTier[]): boolean {
  for (let i = 0; i < states.length; i++) if (!(states[i] as GuardedTier).syncWrites) return false;
  return true;
}

/** The write of a refused value: counted, the key removed from every tier, the error thrown. */
async function rollBack(
  host: WriteHost,
  key: string,
  entry: CacheEntry,
  error: unknown,
  level: TierLevel,
): Promise<never> {
  host.metrics.error(level, 'set', 'invalid_value');
  await host.removeEverywhere([key], entry.version);
  throw error;
}

/** {@link writeAll} when a tier writes asynchronously (a shared tier, or a local one without `setSync`). */
function writeAsync(
  host: WriteHost,
  states: readonly GuardedTier[],
  key: string,
  entry: CacheEntry,
  stale: boolean,
): Promise<number> {
  const n = states.length;
  // One tier (a load's shared tier in the background): one promise, no array.
  if (n === 1) {
    const state = states[0] as GuardedTier;
    if (!state.shared && stale) return STORED[0] as Promise<number>;
    return writeOne(host, state, key, entry).then((r) => settleWrites(host, states, [r], key, entry, stale));
  }
  const results = new Array<WriteResult | Promise<WriteResult>>(n);
  for (let i = 0; i < n; i++) {
    const state = states[i] as GuardedTier;
    results[i] =
      !state.shared && stale
        ? 0
        : state.syncWrites
          ? state.writeNow(key, entry)
          : writeOne(host, state, key, entry);
  }
  return Promise.all(results).then((r) => settleWrites(host, states, r, key, entry, stale));
}

/**
 * Single writes to one shared tier in one turn of the event loop (one reading of the coarse clock)
 * beyond which the next ones are coalesced into one `setMany` (one Redis pipeline, one PostgreSQL
 * statement) at the end of the turn. A lone write, or a few, go at once as before.
 */
export const DIRECT_WRITES_PER_TURN = 16;
/** Most writes in one coalesced `setMany` (its deadline grows by the tier timeout per 1,000 keys). */
export const COALESCED_MAX = 1000;

/** A shared tier's single writes queued to go as one `setMany`. */
interface Coalescer {
  /** The coarse clock reading of the current turn, and how many writes went in it. */
  turn: number;
  count: number;
  queue: { key: string; entry: CacheEntry; resolve: (r: 1 | typeof SKIPPED | Refusal) => void }[];
}

const coalescers = new WeakMap<GuardedTier, Coalescer>();

/**
 * One write of `entry` to a tier that writes asynchronously, through {@link GuardedTier.write}; on a
 * shared tier with `setMany`, a write past {@link DIRECT_WRITES_PER_TURN} in one turn of the event
 * loop is queued and goes with the turn's others as one batch (a merged load's answer resolves
 * thousands of loads in one turn, each writing its key: one command or statement each had the
 * shared tiers time out and their circuits open). The same outcome per key: 1, `SKIPPED` when the
 * batch failed (every key remembered for recovery by the caller), or the key's own {@link Refusal}
 * (a batch holding a refused value is written again key by key). Versions are checked by the tier
 * per entry, as on a single write.
 */
function writeOne(
  host: WriteHost,
  state: GuardedTier,
  key: string,
  entry: CacheEntry,
): Promise<1 | typeof SKIPPED | Refusal> {
  if (host.coalesce !== true || !state.shared || state.tier.setMany === undefined)
    return state.write(key, entry);
  let c = coalescers.get(state);
  if (c === undefined) {
    c = { turn: 0, count: 0, queue: [] };
    coalescers.set(state, c);
  }
  const now = coarseNow();
  if (c.turn !== now) {
    c.turn = now;
    c.count = 0;
  }
  if (++c.count <= DIRECT_WRITES_PER_TURN && c.queue.length === 0) return state.write(key, entry);
  const co = c;
  return new Promise((resolve) => {
    if (co.queue.length === 0) setImmediate(() => flush(state, co));
    co.queue.push({ key, entry, resolve });
  });
}

/** Sends the queued writes of a tier as batches of at most {@link COALESCED_MAX}. */
function flush(state: GuardedTier, c: Coalescer): void {
  const queue = c.queue;
  c.queue = [];
  for (let i = 0; i < queue.length; i += COALESCED_MAX) {
    const part = queue.slice(i, i + COALESCED_MAX);
    const writes: TierWrite[] = part.map((q) => ({ key: q.key, entry: q.entry }));
    state.writeMany(writes).then((r) => {
      if (r === undefined || r === SKIPPED) {
        const out = r === undefined ? 1 : SKIPPED;
        for (const q of part) q.resolve(out);
        return;
      }
      // A value of the batch was refused (nothing of it written): each key alone finds which.
      for (const q of part) state.write(q.key, q.entry).then(q.resolve);
    });
  }
}

/** What one tier's write came to: stored (1), skipped by staleness (0), failed, or refused. */
type WriteResult = 0 | 1 | typeof SKIPPED | Refusal;

/**
 * How many tiers stored the entry (0 when it was superseded); tiers that failed remember the key
 * for recovery; a refusal removes the key everywhere and rejects with it (the first one's error).
 */
function settleWrites(
  host: WriteHost,
  states: readonly GuardedTier[],
  results: readonly WriteResult[],
  key: string,
  entry: CacheEntry,
  stale: boolean,
): number | Promise<number> {
  let stored = 0;
  let refused = -1;
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r === 1) stored++;
    else if (r === SKIPPED) (states[i] as GuardedTier).remember(key, entry);
    else if (r instanceof Refusal && refused === -1) refused = i;
  }
  if (refused !== -1) {
    const level = (states[refused] as GuardedTier).tier.level;
    return rollBack(host, key, entry, (results[refused] as Refusal).error, level);
  }
  // A superseded entry counts as not stored: it must not be shared as a recent load either.
  return stale ? 0 : stored;
}

/** What {@link setValue} needs from the orchestrator's coherence side (the `Invalidator`). */
export interface SetCoherence {
  /** Records a write of `key` at `version` (older loads no longer write it locally); returns the version. */
  invalidate(key: string, version: number): number;
  /** Publishes an invalidation on the bus (a no-op without one). */
  publish(message: InvalidationMessage): Promise<void>;
}

/**
 * `MultiLevelCache.set`: checks the key and value, builds the entry at a new version, writes it to
 * every tier `options` leaves in and publishes its invalidation (unless `skipBus`, or without a
 * bus). Not an async function: when every tier writes synchronously and there is no bus, the
 * answer is an already resolved promise, and no other promise is made. Rejects (never throws) on
 * an invalid key, value, lifetime or option.
 */
export function setValue<T>(
  ctx: CacheContext,
  coherence: SetCoherence,
  key: string,
  value: T,
  options: SetCallOptions,
): Promise<void> {
  let written: number | Promise<number>;
  let version: number;
  try {
    validateKey(key);
    assertValue(key, value);
    const tags = entryTags(options);
    const skip = options.skip;
    const states = skip === undefined ? ctx.states : tiersFor(ctx.states, skip.write, 'skip.write');
    const opts = ctx.opts;
    const entry = makeEntry(opts, value, options.ttlMs ?? opts.defaultTtlMs, options.staleTtlMs);
    if (tags !== undefined) entry.tags = tags;
    // The entry's creation time is now: no second clock read for the version.
    version = coherence.invalidate(key, nextVersion(entry.createdAt));
    entry.version = version;
    // Every tier local and synchronous (a memory-only cache): nothing changes the entry from here
    // on, and frozen, the memory tier keeps this very object (with its tags) instead of a copy of
    // it. Shared tiers get it unfrozen, as before. An entry without tags is not frozen: the memory
    // tier stores such an entry's value and numbers without any entry object (it builds one only
    // when asked for the entry), so freezing it would be wasted work (a call into the runtime).
    if (tags !== undefined && localOnly(states)) Object.freeze(entry);
    written = writeNow(ctx.writeHost, states, key, entry);
  } catch (error) {
    return Promise.reject(error);
  }
  const publish = options.skipBus !== true && ctx.bus !== undefined;
  if (typeof written === 'number') {
    return publish ? coherence.publish({ type: 'delete', keys: [key], version }) : DONE;
  }
  return written.then(() =>
    publish ? coherence.publish({ type: 'delete', keys: [key], version }) : undefined,
  );
}
