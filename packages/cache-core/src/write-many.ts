import type { CacheContext } from './cache-context.js';
import { tiersFor, type WriteCallOptions } from './call-options.js';
import type { CacheEntry } from './entry.js';
import type { GuardedTier } from './guarded-tier.js';
import type { Invalidator } from './invalidator.js';
import { validateKey } from './key-pattern.js';
import { entryTags, NAMESPACE_TAGS, type SetManyCallOptions, type TaggedSetManyItem } from './namespace.js';
import type { TierDeleteOptions, TierWrite } from './tier.js';
import { SKIPPED } from './tier-read.js';
import { nextVersion } from './version.js';
import { assertValue, makeEntry } from './write-fanout.js';

/*
 * The orchestrator's batch writes and invalidations (setMany, deleteMany, expireMany): one version
 * for the batch, recorded before any tier is written, one round trip per tier, one bus message.
 * The façade (multi-level-cache.ts) validates nothing more and emits the events.
 */

/**
 * Writes many values to every tier (one round trip per tier that has `setMany`) and publishes one
 * delete of the keys. Resolves the keys written, `undefined` for an empty batch; throws a tier's
 * invalid-value refusal after removing the batch everywhere.
 */
export async function writeMany<T>(
  ctx: CacheContext,
  coherence: Invalidator,
  allStates: readonly GuardedTier[],
  items: readonly TaggedSetManyItem<T>[],
  options: SetManyCallOptions,
): Promise<string[] | undefined> {
  if (items.length === 0) return undefined;
  const states = tiersFor(allStates, options.skip?.write, 'skip.write');
  const prepared = items.map((it) => {
    validateKey(it.key);
    assertValue(it.key, it.value);
    const entry = makeEntry(ctx.opts, it.value, it.ttlMs ?? ctx.opts.defaultTtlMs, it.staleTtlMs);
    const tags = entryTags(it, options[NAMESPACE_TAGS]);
    if (tags !== undefined) entry.tags = tags;
    return entry;
  });
  const version = nextVersion();
  const writes: TierWrite[] = items.map((it, i) => {
    coherence.invalidate(it.key, version);
    const entry = prepared[i] as CacheEntry;
    entry.version = version;
    return { key: it.key, entry };
  });
  let invalid: unknown;
  await Promise.all(
    states.map((state) =>
      state.writeMany(writes).then((r) => {
        if (r === SKIPPED) for (const w of writes) state.remember(w.key, w.entry);
        else if (r !== undefined && invalid === undefined) invalid = r;
      }),
    ),
  );
  const keys = writes.map((w) => w.key);
  if (invalid !== undefined) {
    // A tier refused the batch as invalid: no tier keeps entries the others lack.
    await coherence.removeEverywhere(keys, version);
    await coherence.publish({ type: 'delete', keys, version });
    throw invalid;
  }
  if (options.skipBus !== true) await coherence.publish({ type: 'delete', keys, version });
  return keys;
}

/** Removes keys from every tier (tombstones at one new version) and publishes one delete. Resolves how many tier-keys existed at most. */
export async function removeMany(
  ctx: CacheContext,
  coherence: Invalidator,
  allStates: readonly GuardedTier[],
  keys: readonly string[],
  options: WriteCallOptions,
): Promise<number> {
  for (const k of keys) validateKey(k);
  const states = tiersFor(allStates, options.skip?.write, 'skip.write');
  const version = nextVersion();
  for (const k of keys) coherence.invalidate(k, version);
  const deleteOptions: TierDeleteOptions = { version, tombstoneMs: ctx.opts.tombstoneMs };
  const counts = await Promise.all(states.map((state) => state.removeOrRemember(keys, deleteOptions)));
  if (options.skipBus !== true) await coherence.publish({ type: 'delete', keys, version });
  return Math.max(0, ...counts);
}

/** Logical expiry of keys on every tier (see MultiLevelCache.expire); one expire message on the bus. */
export async function expireMany(
  ctx: CacheContext,
  coherence: Invalidator,
  allStates: readonly GuardedTier[],
  keys: readonly string[],
  options: WriteCallOptions,
): Promise<number> {
  for (const k of keys) validateKey(k);
  const states = tiersFor(allStates, options.skip?.write, 'skip.write');
  const version = nextVersion();
  for (const k of keys) coherence.invalidate(k, version);
  // Local tiers drop the keys when a shared tier keeps the stale entry (see Invalidator.dropLocal).
  const sharedKeeps = states.some((s) => s.shared);
  const counts = await Promise.all(
    states.map((state) => {
      const tier = state.tier;
      if (!tier.expire || (sharedKeeps && !state.shared))
        return state.removeOrRemember(keys, { version, tombstoneMs: ctx.opts.tombstoneMs });
      const expire = tier.expire.bind(tier);
      return state
        .call('delete', undefined, () => expire(keys, version), keys.length)
        .then((n) => {
          if (n !== SKIPPED) return n;
          for (const k of keys) state.remember(k, undefined);
          return 0;
        });
    }),
  );
  if (options.skipBus !== true) await coherence.publish({ type: 'expire', keys, version });
  return Math.max(0, ...counts);
}
