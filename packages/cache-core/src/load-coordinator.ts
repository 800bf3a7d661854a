import { performance } from 'node:perf_hooks';
import type { Lease, LeaseAndEntry } from './bus.js';
import type { CacheContext } from './cache-context.js';
import type { GetOrLoadOptions, Loader, LoadResult } from './cache-options.js';
import { coarseNow } from './clock.js';
import type { CacheEntry } from './entry.js';
import { InvalidValueError } from './errors/invalid-value-error.js';
import { TimeoutError } from './errors/timeout-error.js';
import { validateKey } from './key-pattern.js';
import { Level } from './level.js';
import type { ReadCascade } from './read-cascade.js';
import type { CascadeNotes, Cascaded, Found, RecentLoad } from './tier-read.js';
import { delay, withTimeout } from './timeout.js';
import { nextVersion } from './version.js';
import type { VersionGuard } from './coherence.js';
import { defaultPolicy, LoadContext, type LoadPolicy, resolvePolicy } from './loader-context.js';
import { checkTags, mergeTags } from './entry-tags.js';
import { NAMESPACE_TAGS, type NamespaceTagged } from './namespace.js';
import { makeEntry, writeAll } from './write-fanout.js';
import { EagerRefresher } from './eager-refresh.js';
import { acquireWithin } from './lease.js';
import type { CacheEmitter, EventSwitches } from './events.js';
import { channels, traced } from './instrumentation.js';
import type { TierLevel } from './level.js';
import { entryResult, uncachedResult } from './result.js';
import { nextSlice } from './turn-slicer.js';

const noop = (): void => {};

/** Where a load's second read looks (see LoadCoordinator.waitWithLateLook). */
interface LateLook<T> {
  endpoint: string;
  isStale: ((entry: CacheEntry<T>) => boolean) | undefined;
}

/**
 * Resolves once the event loop went through its I/O phase: bus messages already received by this
 * process are handled by then (an immediate queued from an immediate runs after the next poll).
 */
const yieldToIo = (): Promise<void> => new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

/**
 * The `isStale` of a `forceFresh` load: every entry written before the call counts as stale (the
 * fail-safe fallback), so only a value loaded after it, e.g. by another instance that held the
 * lock, is answered as fresh.
 */
function forcedStale<T>(
  isStale: ((entry: CacheEntry<T>) => boolean) | undefined,
): (entry: CacheEntry<T>) => boolean {
  const since = nextVersion();
  return (entry) => (entry.version ?? 0) < since || isStale?.(entry) === true;
}

/**
 * The load side of the orchestrator: coalescing of concurrent loads of a key (in this instance,
 * and across instances through the distributed lock), the loader run under soft and hard
 * timeouts, fail-safe (serving and keeping the stale entry), eager refresh, and the window in
 * which a settled load stays shareable. Internal to `@bgc/cache-core`.
 */
export class LoadCoordinator {
  /** The load in flight per key, joined by callers that arrive meanwhile. */
  private readonly inflight = new Map<string, Promise<LoadResult<unknown>>>();
  /** Flights started and not settled yet (a write or invalidation drops them from `inflight`, not from here). */
  private flights = 0;
  /** Eager refreshes (at most one per key here, one per key across instances with a lock). */
  private readonly refresher: EagerRefresher;
  /** Settled loads no tier could keep, shareable for `coalesceWindowMs`. */
  private readonly recent = new Map<string, RecentLoad>();
  /** The loads running, aborted on close. */
  private readonly loads = new Set<LoadContext<unknown>>();
  /** The cache's own load policy, for calls without per-call options. */
  private readonly policy: LoadPolicy;
  /** Where events go, and which have listeners. */
  private readonly events: CacheEmitter;
  private readonly listening: EventSwitches;

  constructor(
    private readonly ctx: CacheContext,
    private readonly reads: ReadCascade,
    private readonly versions: VersionGuard,
    /** Publishes the invalidation of a loaded key to the other instances. */
    private readonly publish: (key: string, version: number | undefined) => Promise<void>,
  ) {
    this.policy = defaultPolicy(ctx.opts);
    this.refresher = new EagerRefresher(
      ctx,
      reads,
      (key) => this.inflight.has(key),
      (key, loader, options, entry, lease) =>
        this.load(key, loader, options, resolvePolicy(options, this.policy), { entry, index: 0 }, lease),
    );
    this.events = ctx.events;
    this.listening = ctx.events.listening;
  }

  /** `MultiLevelCache.getOrLoad`. */
  getOrLoad<T>(key: string, loader: Loader<T>, options: GetOrLoadOptions<T>): Promise<LoadResult<T>> {
    // Not an async function: a miss answers with the flight's own promise (no wrapper promise
    // and its two extra ticks), a hit with a resolved one.
    try {
      const endpoint = options.endpoint ?? this.ctx.endpoint;
      const now = coarseNow();
      const fast = this.reads.readL1Sync<T>(key, now, endpoint);
      const force = options.forceFresh === true;
      if (fast && fast.freshUntil > now && !force && !options.isStale?.(fast)) {
        this.refresher.maybe(key, fast, loader, options, now);
        if (this.listening.hit) this.reads.hit(key, Level.L1, false);
        return Promise.resolve(entryResult(fast, Level.L1, false));
      }
      validateKey(key);
      const policy = resolvePolicy(options, this.policy);
      const shared = this.inflight.get(key) ?? (force ? undefined : this.sharedRecent(key, now));
      // 'hit'/'miss' once per caller (joiners too), from what it is answered.
      const told = this.listening.hit || this.listening.miss;
      if (shared)
        return told ? this.told(key, shared as Promise<LoadResult<T>>) : (shared as Promise<LoadResult<T>>);
      // A write or delete meanwhile may have replaced this flight by a newer one: leave that be.
      this.flights++;
      const settle = () => {
        this.flights--;
        if (this.inflight.get(key) === (flight as Promise<LoadResult<unknown>>)) this.inflight.delete(key);
      };
      const flight: Promise<LoadResult<T>> = this.resolveMiss(
        key,
        loader,
        options,
        policy,
        endpoint,
        fast,
      ).then(
        (result) => {
          settle();
          return result;
        },
        (error: unknown) => {
          settle();
          throw error;
        },
      );
      this.inflight.set(key, flight as Promise<LoadResult<unknown>>);
      return told ? this.told(key, flight) : flight;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The answer of a caller that waited (for a load, or for another instance's through the lock),
   * through the turn's budget (see `turnBudgetMs`): a burst of such answers (a call that lands for
   * thousands of waiters, a release message that wakes them) goes on over several turns of the
   * event loop, with I/O read in between. A hit read from a tier without waiting goes on at once:
   * it is the answer the requests arriving meanwhile expect in milliseconds.
   */
  private afterWait<T>(result: LoadResult<T>): LoadResult<T> | Promise<LoadResult<T>> {
    const slice = nextSlice(this.ctx.opts.turnBudgetMs);
    return slice === undefined ? result : slice.then(() => result);
  }

  /** `p`, emitting `'hit'` or `'miss'` for `key` once it answers. */
  private told<T>(key: string, p: Promise<LoadResult<T>>): Promise<LoadResult<T>> {
    return p.then((r) => {
      this.reads.announce(key, r);
      return r;
    });
  }

  /** Emits `'timeout'` (a listener exists: the caller checked). */
  private timedOut(key: string, kind: 'soft' | 'hard', ms: number, stale: boolean): void {
    this.events.tell('timeout', { key, kind, ms, stale });
  }

  /** A load's hard timeout with no stale value to answer: told, and the caller's error. */
  private hardTimedOut(key: string, hard: number): TimeoutError {
    if (this.listening.timeout) this.timedOut(key, 'hard', hard, false);
    return new TimeoutError(`Loading key ${JSON.stringify(key)} (no stale value to fall back on)`, hard);
  }

  /** A write or invalidation of `key`: callers that come next start a new load, never join an older one. */
  forget(key: string): void {
    this.inflight.delete(key);
    this.recent.delete(key);
  }

  /**
   * Whether no flight runs: nothing read before now can still be written by a load (a flight's
   * stale entry, its load and its fail-safe re-store all happen before it settles or while its
   * load is background work).
   */
  get idle(): boolean {
    return this.flights === 0;
  }

  /** A clear: no load in flight or settled is shared any more. */
  forgetAll(): void {
    this.inflight.clear();
    this.recent.clear();
  }

  /** Local entries can no longer be vouched for: settled loads are no longer shared. */
  forgetRecent(): void {
    this.recent.clear();
  }

  /** Aborts every running loader (their `signal`), on close. */
  abortAll(reason: Error): void {
    for (const load of this.loads) load.abort(reason);
  }

  private async resolveMiss<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    policy: LoadPolicy,
    endpoint: string,
    l1Stale: CacheEntry<T> | undefined,
  ): Promise<LoadResult<T>> {
    // A fail-safe entry in its back-off window is served without calling the loader again.
    const retryAt = l1Stale?.meta?.failSafe === true ? (l1Stale.meta.retryAt as number) : 0;
    if (l1Stale && retryAt > Date.now() && !policy.forceFresh) return entryResult(l1Stale, Level.L1, true);
    const isStale = policy.forceFresh ? forcedStale(options.isStale) : options.isStale;
    // With a lock that reads while it takes the lease: one round trip for both.
    // No promise of readWithLease's own without a lock that offers it (the plain miss path).
    const combined = this.ctx.lock?.tryAcquireAndRead
      ? await this.readWithLease<T>(key, endpoint, l1Stale, isStale)
      : undefined;
    const notes: CascadeNotes = { unread: false };
    const found = combined
      ? combined.found
      : await this.reads.cascade<T>(key, endpoint, this.reads.start, l1Stale, isStale, 0, notes);
    if (found?.fresh) return entryResult(found.best.entry, this.ctx.levelOf(found.best.index), false);
    const stale = found?.best;
    this.ctx.metrics.miss(Level.External, this.ctx.connector, endpoint);
    // Nothing servable known because a tier did not answer: the load looks again (lateLook).
    const late: LateLook<T> | undefined =
      stale === undefined && notes.unread ? { endpoint, isStale } : undefined;
    // The tier was read after the lease was taken: no other instance's load can land unseen.
    if (combined?.lease) return this.load(key, loader, options, policy, stale, combined.lease);
    if (!this.ctx.lock) return this.load(key, loader, options, policy, stale, undefined, late);
    return this.loadWithLock(key, loader, options, policy, isStale, endpoint, stale, !!combined, late);
  }

  /**
   * The first step of a miss with a lock offering {@link DistributedLock.tryAcquireAndRead}, after
   * a synchronous L1 miss: the lease and the first shared tier's read in one round trip, then the
   * tiers after it as usual. Resolves what the tiers hold and the lease (given back when a fresh
   * entry was found), or `undefined` when this does not apply (no such lock, no synchronous L1,
   * the tier's circuit not closed, the lock unreachable): the caller then takes the ordinary way.
   */
  private async readWithLease<T>(
    key: string,
    endpoint: string,
    l1Stale: CacheEntry<T> | undefined,
    isStale: ((entry: CacheEntry<T>) => boolean) | undefined,
  ): Promise<{ found: Cascaded<T> | undefined; lease: Lease | undefined } | undefined> {
    const ctx = this.ctx;
    const lock = ctx.lock;
    const i = this.reads.start;
    const state = ctx.states[i];
    if (!lock?.tryAcquireAndRead || i !== 1 || !state?.shared) return undefined;
    if (state.breaker && state.breaker.state !== 'closed') return undefined;
    const opts = ctx.opts;
    const t0 = performance.now();
    const attempt = lock.tryAcquireAndRead(key, opts.lockLeaseMs, state.tier);
    let r: LeaseAndEntry;
    try {
      r = await withTimeout(attempt, opts.tierTimeoutMs, 'lock acquire and read');
    } catch {
      // A lease that arrives after the deadline is given back; the ordinary way reports the failure.
      attempt.then((late) => late.lease?.release(), noop);
      return undefined;
    }
    const metrics = ctx.metrics;
    metrics.miss(Level.L1, ctx.connector, endpoint);
    if (r.readError !== undefined) state.failed('get', key, r.readError);
    else state.succeeded('get', t0, r.entry);
    const e = r.entry as CacheEntry<T> | undefined;
    let stale = l1Stale;
    let staleIndex = 0;
    const now = Date.now();
    if (e && e.staleUntil > now) {
      if (e.freshUntil > now && !isStale?.(e)) {
        metrics.hit(state.tier.level, ctx.connector, endpoint);
        this.reads.promote(key, e, i);
        await r.lease?.release();
        return { found: { best: { entry: e, index: i }, fresh: true }, lease: undefined };
      }
      if (!stale || e.staleUntil > stale.staleUntil) {
        stale = e;
        staleIndex = i;
      }
    }
    metrics.miss(state.tier.level, ctx.connector, endpoint);
    let found: Cascaded<T> | undefined;
    try {
      found = await this.reads.cascade<T>(key, endpoint, i + 1, stale, isStale, staleIndex);
    } catch (error) {
      await r.lease?.release();
      throw error;
    }
    if (found?.fresh) {
      await r.lease?.release();
      return { found, lease: undefined };
    }
    return { found, lease: r.lease };
  }

  /** The fresh result of a cascade, or `undefined`. */
  private freshOf<T>(found: Cascaded<T> | undefined): LoadResult<T> | undefined {
    if (!found?.fresh) return undefined;
    return entryResult(found.best.entry, this.ctx.levelOf(found.best.index), false);
  }

  private async loadWithLock<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    policy: LoadPolicy,
    isStale: ((entry: CacheEntry<T>) => boolean) | undefined,
    endpoint: string,
    stale: Found<T> | undefined,
    /** Another holder was found by {@link readWithLease}: wait for it before trying again. */
    heldElsewhere = false,
    late?: LateLook<T>,
  ): Promise<LoadResult<T>> {
    const lock = this.ctx.lock;
    if (!lock) return this.load(key, loader, options, policy, stale, undefined, late);
    const opts = this.ctx.opts;
    const started = Date.now();
    const deadline = started + policy.lockWaitMs;
    // With a stale value at hand, another instance's load is waited for no longer than this
    // caller would wait for its own (softTimeoutMs): then the stale value is answered, and that
    // load's value reaches this instance when it lands (its write and invalidation).
    const soft = Math.min(policy.softTimeoutMs, policy.hardTimeoutMs);
    const softAt = stale && !policy.forceFresh ? started + soft : Number.POSITIVE_INFINITY;
    let tryFirst = !heldElsewhere;
    for (;;) {
      let lease: Lease | undefined;
      try {
        if (tryFirst) lease = await acquireWithin(lock, key, opts.lockLeaseMs, opts.tierTimeoutMs);
        tryFirst = true;
      } catch (error) {
        // No lock service: load here rather than fail the request.
        this.ctx.report(Level.L2, 'load', key, error);
        return this.load(key, loader, options, policy, stale, undefined, late);
      }
      if (lease) {
        // Another instance may have finished its load between our read and the lease.
        const again = this.freshOf(
          await this.reads.cascade<T>(key, endpoint, this.reads.start, undefined, isStale),
        );
        if (again) {
          await lease.release();
          return again;
        }
        return this.load(key, loader, options, policy, stale, lease, late);
      }
      const now = Date.now();
      const remaining = deadline - now;
      if (remaining <= 0) return this.load(key, loader, options, policy, stale, undefined, late);
      if (stale && now >= softAt) {
        if (this.listening.timeout) this.timedOut(key, 'soft', soft, true);
        const answer = entryResult(stale.entry, this.ctx.levelOf(stale.index), true);
        return soft > 0 ? this.afterWait(answer) : answer;
      }
      await lock
        .waitForRelease(key, Math.min(remaining, opts.lockLeaseMs, softAt - now))
        .catch(() => delay(Math.min(50, Math.max(0, softAt - Date.now()))));
      const after = this.freshOf(
        await this.reads.cascade<T>(key, endpoint, this.reads.start, undefined, isStale),
      );
      if (after) return this.afterWait(after);
    }
  }

  private async load<T>(
    key: string,
    loader: Loader<T>,
    options: GetOrLoadOptions<T>,
    policy: LoadPolicy,
    stale: Found<T> | undefined,
    lease: Lease | undefined,
    /** No stale value known because a tier did not answer its read: look again while waiting. */
    late?: LateLook<T>,
  ): Promise<LoadResult<T>> {
    const ctx = this.ctx;
    const opts = ctx.opts;
    const load = new LoadContext<T>(key, stale?.entry);
    this.loads.add(load as LoadContext<unknown>);
    const t0 = performance.now();
    // The load's version is taken before the loader reads the upstream: any write or delete after
    // this point is newer than what the loader may return, and wins over it in every tier.
    const version = nextVersion();
    this.versions.loadStarted(version);
    let leaseHandedOff = false;
    const run = (async (): Promise<LoadResult<T>> => {
      try {
        const loaderChannel = channels.load;
        let value = (
          loaderChannel.hasSubscribers
            ? await traced(loaderChannel, { operation: 'load', key }, async () => loader(load))
            : await loader(load)
        ) as T;
        ctx.metrics.latency(Level.External, 'load', (performance.now() - t0) / 1000);
        // ctx.notModified(): the stale value, stored again with a new lifetime and version.
        if (load.kept) value = (stale as Found<T>).entry.value;
        if (value === undefined) {
          throw new InvalidValueError(
            `The loader for key ${JSON.stringify(key)} returned undefined; return null for "not found" or a value to cache`,
          );
        }
        // ctx.skip(): answered, not cached.
        if (load.skipped) return uncachedResult(value, Date.now());
        const ttl =
          load.ttlMs ??
          (value === null
            ? opts.negativeTtlMs
            : typeof options.ttlMs === 'function'
              ? options.ttlMs(value)
              : (options.ttlMs ?? opts.defaultTtlMs));
        const entry = makeEntry(opts, value, ttl, load.staleTtlMs ?? options.staleTtlMs);
        entry.version = version;
        const meta = load.entryMeta();
        if (meta !== undefined) entry.meta = meta;
        // The loader's tags (ctx.setTags), else the call's, else a kept stale entry's; plus a namespace's.
        const tags = mergeTags(
          load.tags ?? checkTags(options.tags) ?? (load.kept ? stale?.entry.tags : undefined),
          (options as NamespaceTagged)[NAMESPACE_TAGS],
        );
        if (tags !== undefined && tags.length > 0) entry.tags = tags;
        const background = opts.backgroundWrites && ctx.local.length > 0 && ctx.shared.length > 0;
        // Background writes: answer once the local tiers hold the value; the shared tiers' writes
        // (and the lease, held until they land) finish in the background. Invalidations that
        // reached this process meanwhile are applied first (one turn of the event loop): a
        // write or delete on another instance during the load keeps the older value out of L1,
        // as the shared tiers' compare-and-set keeps it out of theirs.
        if (background && ctx.bus) await yieldToIo();
        const stored = await writeAll(ctx.writeHost, background ? ctx.local : ctx.states, key, entry);
        if (this.listening.set && stored > 0) this.events.tell('set', { keys: [key], source: 'load' });
        const result = entryResult(entry, Level.External, false);
        if (background) {
          leaseHandedOff = true;
          ctx.track(this.finishSharedWrites(key, entry, lease));
          return result;
        }
        // Callers arriving just after find the value in a tier; when no tier could keep it (all
        // down), the settled result stays shareable for the window so the upstream is not hit again.
        if (stored === 0 && opts.coalesceWindowMs > 0) {
          this.recent.set(key, { result, until: Date.now() + opts.coalesceWindowMs });
          if (this.recent.size > 10_000) this.pruneRecent();
        }
        if (!this.versions.superseded(key, entry)) await this.publish(key, version);
        return result;
      } catch (error) {
        ctx.metrics.error(Level.External, 'load', error instanceof TimeoutError ? 'timeout' : 'loader_error');
        throw error;
      } finally {
        this.loads.delete(load as LoadContext<unknown>);
        this.versions.loadEnded(version);
        if (!leaseHandedOff) await lease?.release();
      }
    })();
    // Keeps a background load (after a soft or hard timeout) from becoming an unhandled rejection.
    const settled = run.then(
      () => undefined,
      (error: unknown) => {
        if (stale) {
          ctx.track(this.keepStale(key, stale.entry, policy.failSafeBackoffMs));
          if (this.listening.failsafe)
            this.events.tell('failsafe', { key, level: ctx.levelOf(stale.index) as TierLevel, error });
        }
        ctx.report(Level.External, 'load', key, error);
      },
    );
    ctx.track(settled);

    if (late !== undefined && stale === undefined && !policy.forceFresh)
      return this.waitWithLateLook(key, run, policy, late);
    const hard = policy.hardTimeoutMs;
    // forceFresh: the cached value is only the fallback of a failed or hard-timed-out load.
    const soft = stale && !policy.forceFresh ? Math.min(policy.softTimeoutMs, hard) : hard;
    // softTimeoutMs 0: answer stale at once (withTimeout treats 0 as "no timeout").
    if (stale && soft <= 0) {
      if (this.listening.timeout) this.timedOut(key, 'soft', 0, true);
      return entryResult(stale.entry, ctx.levelOf(stale.index), true);
    }
    try {
      // The message is built only if the deadline passes.
      return this.afterWait(await withTimeout(run, soft, () => `Loading key ${JSON.stringify(key)}`));
    } catch (error) {
      if (error instanceof TimeoutError && stale) {
        if (this.listening.timeout) this.timedOut(key, soft < hard ? 'soft' : 'hard', soft, true);
        return this.afterWait(entryResult(stale.entry, ctx.levelOf(stale.index), true));
      }
      if (error instanceof TimeoutError) throw this.hardTimedOut(key, hard);
      if (stale) return entryResult(stale.entry, ctx.levelOf(stale.index), true);
      throw error;
    }
  }

  /**
   * The wait for a load that started with nothing servable known because a tier did not answer
   * its read (it failed, timed out or was skipped by an open circuit: a stale value may be there).
   * Once the soft timeout passes, or as soon as the load fails, the tiers are read again: a value
   * found then is answered (stale; or fresh, when another load landed meanwhile) while the load
   * goes on in the background, instead of waiting for the hard timeout or failing. Else the wait
   * goes on to the hard timeout, as without a stale value.
   */
  private async waitWithLateLook<T>(
    key: string,
    run: Promise<LoadResult<T>>,
    policy: LoadPolicy,
    late: LateLook<T>,
  ): Promise<LoadResult<T>> {
    const hard = policy.hardTimeoutMs;
    const hardAt = performance.now() + hard;
    const soft = Math.min(policy.softTimeoutMs, hard);
    const message = () => `Loading key ${JSON.stringify(key)}`;
    let first: unknown;
    if (soft > 0) {
      try {
        return this.afterWait(await withTimeout(run, soft, message));
      } catch (error) {
        first = error;
      }
    } else first = new TimeoutError(message(), 0);
    const look = this.reads
      .cascade<T>(key, late.endpoint, this.reads.start, undefined, late.isStale)
      .catch(() => undefined);
    let found: Cascaded<T> | undefined;
    if (first instanceof TimeoutError) {
      // The load may answer while the tier is read again (a tier still failing takes its
      // deadline): whichever comes first.
      const outcome = await Promise.race([
        run.then(
          (result) => ({ result }),
          (error: unknown) => ({ error }),
        ),
        look.then((again) => ({ again })),
      ]);
      if ('result' in outcome) return this.afterWait(outcome.result);
      if ('error' in outcome) {
        first = outcome.error;
        found = await look;
      } else found = outcome.again;
    } else found = await look;
    if (found) {
      const level = this.ctx.levelOf(found.best.index);
      if (found.fresh) return this.afterWait(entryResult(found.best.entry, level, false));
      if (first instanceof TimeoutError && this.listening.timeout) this.timedOut(key, 'soft', soft, true);
      return this.afterWait(entryResult(found.best.entry, level, true));
    }
    if (!(first instanceof TimeoutError)) throw first;
    try {
      // hardTimeoutMs 0: no hard timeout (withTimeout treats 0 as none).
      const left = hard > 0 ? hardAt - performance.now() : 0;
      if (hard > 0 && left <= 0) throw new TimeoutError(message(), hard);
      return this.afterWait(await withTimeout(run, left, message));
    } catch (error) {
      if (error instanceof TimeoutError) throw this.hardTimedOut(key, hard);
      throw error;
    }
  }

  /**
   * The background half of a load with `backgroundWrites`: the shared tiers' writes (failures go
   * to auto-recovery; a refused value is removed everywhere and reported), then the invalidation
   * and the lease's release.
   */
  private async finishSharedWrites(key: string, entry: CacheEntry, lease: Lease | undefined): Promise<void> {
    try {
      await writeAll(this.ctx.writeHost, this.ctx.shared, key, entry);
      if (this.ctx.bus !== undefined && !this.versions.superseded(key, entry))
        await this.publish(key, entry.version);
    } catch (error) {
      this.ctx.report(Level.External, 'load', key, error);
    } finally {
      if (lease !== undefined) await lease.release();
    }
  }

  /** After a failed load, keep the stale entry and hold off further loads for failSafeBackoffMs. */
  private async keepStale(key: string, entry: CacheEntry, backoffMs: number): Promise<void> {
    const retryAt = Date.now() + backoffMs;
    const kept: CacheEntry = { ...entry, meta: { ...entry.meta, failSafe: true, retryAt } };
    // The stale entry's own version: a write or delete since then wins.
    if (this.versions.superseded(key, kept)) return;
    await Promise.all(this.ctx.local.map((state) => state.call('set', key, () => state.tier.set(key, kept))));
  }

  private sharedRecent(key: string, now: number): Promise<LoadResult<unknown>> | undefined {
    const r = this.recent.get(key);
    if (!r) return undefined;
    if (r.until <= now) {
      this.recent.delete(key);
      return undefined;
    }
    return Promise.resolve(r.result);
  }

  private pruneRecent(): void {
    const now = Date.now();
    for (const [k, r] of this.recent) if (r.until <= now) this.recent.delete(k);
  }
}
