import { performance } from 'node:perf_hooks';
import type { CacheErrorEvent } from './cache-options.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { classifyError, isInvalidValue } from './classify-error.js';
import type { CacheEntry } from './entry.js';
import { CircuitOpenError } from './errors/circuit-open-error.js';
import type { Level } from './level.js';
import { type CacheOperation, type MetricsAdapter, NOOP_METRICS } from './metrics.js';
import type { Tier, TierDeleteOptions, TierWrite } from './tier.js';
import { type FailCall, SKIPPED, TierCall } from './tier-read.js';
import { armDeadline } from './timeout.js';

/**
 * What a {@link GuardedTier} needs from the orchestrator that owns it. Internal to `@bgc/cache-core`.
 */
export interface GuardHost {
  /** Latency and error counters. */
  readonly metrics: MetricsAdapter;
  /** Per-operation deadline of a shared tier, ms (grows by this per 1,000 keys of a batch); 0 = none. */
  readonly tierTimeoutMs: number;
  /** Most keys remembered for recovery per tier; the oldest is dropped beyond. */
  readonly recoveryMaxKeys: number;
  /** Counts and emits a failure of an operation (the orchestrator's `report`). */
  report(level: Level, op: CacheOperation, key: string | undefined, error: unknown, tier: string): void;
  /** Whether anyone listens to `'error'` events (an event is only built then). */
  listensForErrors(): boolean;
  /** Emits an `'error'` event. */
  emitError(event: CacheErrorEvent): void;
  /** Starts the recovery loop (a no-op when it runs or the cache is closed). */
  scheduleRecovery(): void;
  /** Whether a local write of this entry would undo a newer write or invalidation of its key. */
  superseded(key: string, entry: CacheEntry): boolean;
}

/** A value a tier refused as invalid ({@link isInvalidValue}): the caller's error, not the tier's. */
export class Refusal {
  constructor(readonly error: unknown) {}
}

/**
 * A timeout does not count towards opening a tier's circuit while the tier answered another
 * operation in time within this many ms (see {@link GuardedTier.failed}).
 */
export const ALIVE_MS = 1000;

/** Reports a failed tier call on its {@link GuardedTier}: one function for every {@link TierCall}. */
const failCall: FailCall = (state, op, key, error) => state.failed(op, key, error);

/**
 * One tier as the orchestrator guards it: its circuit breaker, the per-operation deadline, latency
 * and error metrics, whether its last operation failed, and the keys whose writes failed on it (to
 * invalidate once it is reachable again). Every operation on a tier goes through {@link call} (or
 * {@link admit} / {@link succeeded} / {@link failed} on the callback read path), which never rejects:
 * a failure is reported and answered as {@link SKIPPED}. Internal to `@bgc/cache-core`.
 */
export class GuardedTier {
  /** Whether the tier is shared between instances (`tier.scope === 'shared'`). */
  readonly shared: boolean;
  /**
   * Keys whose write or delete failed on this tier, to repair when it comes back: with the entry
   * of a failed write (written again if nothing superseded it meanwhile), `undefined` for a failed
   * delete (deleted). The last failure of a key wins.
   */
  readonly pending = new Map<string, CacheEntry | undefined>();
  /** Whether the tier's last operation failed. */
  lastError = false;
  /** When the tier last answered an operation in time (performance.now()). */
  private answeredAt = Number.NEGATIVE_INFINITY;
  /**
   * Whether writes go through {@link writeNow}: a local tier with {@link Tier.setSync} (no
   * deadline or breaker applies to it).
   */
  readonly syncWrites: boolean;
  private readonly metrics: MetricsAdapter;
  /** Whether latencies are measured (not when they would go to {@link NOOP_METRICS}). */
  private readonly timed: boolean;

  constructor(
    /** The guarded tier. */
    readonly tier: Tier,
    /** Its position, fastest first. */
    readonly index: number,
    /** Its circuit breaker; `undefined` for local tiers or when breakers are off. */
    readonly breaker: CircuitBreaker | undefined,
    private readonly host: GuardHost,
  ) {
    this.shared = tier.scope === 'shared';
    this.metrics = host.metrics;
    this.timed = host.metrics !== NOOP_METRICS;
    this.syncWrites = !this.shared && typeof tier.setSync === 'function';
  }

  /**
   * A write through {@link Tier.setSync} with the bookkeeping of {@link call}, without a promise
   * (see {@link syncWrites}). Returns 1 when stored, {@link SKIPPED} when the tier failed (reported),
   * or a {@link Refusal} when it refused the value as invalid (the caller's error, reported by the
   * caller).
   */
  writeNow(key: string, entry: CacheEntry): 1 | typeof SKIPPED | Refusal {
    if (!this.admit('set', key)) return SKIPPED;
    const t0 = this.timed ? performance.now() : 0;
    try {
      (this.tier as Required<Pick<Tier, 'setSync'>>).setSync(key, entry);
    } catch (error) {
      if (isInvalidValue(error)) return new Refusal(error);
      return this.failed('set', key, error);
    }
    if (this.timed) this.metrics.latency(this.tier.level, 'set', (performance.now() - t0) / 1000);
    if (this.lastError) {
      this.lastError = false;
      if (this.pending.size > 0) this.host.scheduleRecovery();
    }
    return 1;
  }

  /**
   * Runs one tier operation with its timeout and breaker. Never rejects: a failure is reported and
   * turned into {@link SKIPPED}.
   */
  call<R>(
    op: CacheOperation,
    key: string | undefined,
    fn: () => Promise<R>,
    /** Keys a batch operation carries: its timeout grows by tierTimeoutMs per 1,000 keys. */
    batchSize = 1,
  ): Promise<R | typeof SKIPPED> {
    if (!this.admit(op, key)) return Promise.resolve(SKIPPED);
    const t0 = performance.now();
    let p: Promise<R>;
    try {
      p = fn();
    } catch (error) {
      return Promise.resolve(this.failed(op, key, error));
    }
    const succeeded = (r: R) => this.succeeded(op, t0, r);
    const failed = (error: unknown): typeof SKIPPED => this.failed(op, key, error);
    const ms = this.host.tierTimeoutMs * Math.ceil(batchSize / 1000);
    if (!this.shared || !(ms > 0)) return p.then(succeeded, failed);
    // The deadline is folded into the one promise this call returns (no wrapper promise, and no
    // closure for the deadline): this runs on every L2/L3 write.
    return new Promise((resolve) => {
      const call = new TierCall<R>(failCall, this, op, key, ms, resolve);
      armDeadline(call, ms);
      p.then(
        (r) => {
          if (call.settle()) resolve(succeeded(r));
        },
        (error: unknown) => {
          if (call.settle()) resolve(failed(error));
        },
      );
    });
  }

  /**
   * One write through {@link Tier.set} with the bookkeeping of {@link call} (breaker, deadline,
   * metrics), in as few promises as {@link call} takes and no closure of the caller's. Never
   * rejects: resolves 1 when stored, {@link SKIPPED} when the tier failed or timed out (reported),
   * or a {@link Refusal} when it refused the value as invalid (not a failure of the tier).
   */
  write(key: string, entry: CacheEntry): Promise<1 | typeof SKIPPED | Refusal> {
    if (!this.admit('set', key)) return Promise.resolve(SKIPPED);
    const t0 = performance.now();
    let p: Promise<void>;
    try {
      p = this.tier.set(key, entry);
    } catch (error) {
      return Promise.resolve(this.writeFailed(key, t0, error));
    }
    const ms = this.host.tierTimeoutMs;
    if (!this.shared || !(ms > 0))
      return p.then(
        () => this.succeeded('set', t0, 1 as const),
        (error: unknown) => this.writeFailed(key, t0, error),
      );
    return new Promise((resolve) => {
      const call = new TierCall<1>(failCall, this, 'set', key, ms, resolve);
      armDeadline(call, ms);
      p.then(
        () => {
          if (call.settle()) resolve(this.succeeded('set', t0, 1 as const));
        },
        (error: unknown) => {
          if (call.settle()) resolve(this.writeFailed(key, t0, error));
        },
      );
    });
  }

  /** A write that threw or rejected: a refused value (a success as far as the tier's health goes) or a failure. */
  private writeFailed(key: string, t0: number, error: unknown): typeof SKIPPED | Refusal {
    if (isInvalidValue(error)) return this.succeeded('set', t0, new Refusal(error));
    return this.failed('set', key, error);
  }

  /** Whether the tier's circuit lets an operation through; reports the refusal when not. */
  admit(op: CacheOperation, key: string | undefined): boolean {
    const breaker = this.breaker;
    if (!breaker || breaker.allow()) return true;
    const level = this.tier.level;
    this.metrics.error(level, op, 'circuit_open');
    if (this.host.listensForErrors())
      this.host.emitError({
        level,
        tier: this.tier.name,
        operation: op,
        key,
        error: new CircuitOpenError(this.tier.name, breaker.retryInMs()),
      });
    return false;
  }

  /** Bookkeeping of an operation that succeeded: latency, breaker, recovery. Returns `r`. */
  succeeded<R>(op: CacheOperation, t0: number, r: R): R {
    const now = performance.now();
    this.metrics.latency(this.tier.level, op, (now - t0) / 1000);
    this.answeredAt = now;
    this.breaker?.success();
    if (this.lastError) {
      this.lastError = false;
      if (this.pending.size > 0) this.host.scheduleRecovery();
    }
    return r;
  }

  /** Bookkeeping of an operation that failed or timed out; the caller skips the tier. */
  failed(op: CacheOperation, key: string | undefined, error: unknown): typeof SKIPPED {
    const breaker = this.breaker;
    // A write that timed out while the circuit is closed does not count towards opening it: a
    // burst's writes (a merged answer's thousands of keys, a big batch) can outlast the deadline
    // while the tier answers reads in time, and an open circuit would skip those reads (other
    // instances' waiters then find nothing and load again). A tier that is down fails its reads
    // too; a probe (half-open) that times out still counts.
    //
    // Nor does a timeout while the tier answered another operation within ALIVE_MS: the tier is up,
    // and the replies are late because this process or the tier is starved of CPU for a moment
    // (a burst on a small machine). Skipping its reads then turns hits into misses (loads, and
    // upstream calls that may be rationed). A tier that hangs (SIGSTOP, a black hole) answers
    // nothing: its timeouts count once ALIVE_MS has passed since its last answer.
    if (
      breaker !== undefined &&
      !(
        classifyError(error) === 'timeout' &&
        breaker.state === 'closed' &&
        (op === 'set' || op === 'set_many' || performance.now() - this.answeredAt < ALIVE_MS)
      )
    )
      breaker.failure();
    this.lastError = true;
    this.host.report(this.tier.level, op, key, error, this.tier.name);
    return SKIPPED;
  }

  /**
   * Writes many entries, in one batch when the tier has `setMany`. Resolves `undefined` when
   * written, {@link SKIPPED} when the tier failed (a breaker failure), or the error when the tier
   * refused a value as invalid (the caller's error: not a breaker failure, see {@link refusedValue}).
   * A local tier gets no entry older than its key's last write or invalidation here.
   */
  writeMany(all: readonly TierWrite[]): Promise<unknown> {
    const tier = this.tier;
    const writes = this.shared ? all : all.filter((w) => !this.host.superseded(w.key, w.entry));
    if (writes.length === 0) return Promise.resolve(undefined);
    return this.call(
      'set_many',
      undefined,
      async () => {
        try {
          if (tier.setMany) await tier.setMany(writes);
          else await Promise.all(writes.map((w) => tier.set(w.key, w.entry)));
          return undefined;
        } catch (error) {
          if (this.refusedValue(error) === false) return error;
          throw error;
        }
      },
      writes.length,
    );
  }

  /**
   * A write the tier refused: an invalid value (E_INVALID_VALUE, E_VALUE_TOO_LARGE,
   * E_SERIALIZATION) is counted as `invalid_value` and resolves `false` (the call succeeded as far
   * as the tier's health goes); any other error is rethrown (a tier failure).
   */
  refusedValue(error: unknown): false {
    if (!isInvalidValue(error)) throw error;
    this.metrics.error(this.tier.level, 'set', 'invalid_value');
    return false;
  }

  /** Deletes many keys, in one batch when the tier has `deleteMany`; resolves how many existed. */
  removeMany(keys: readonly string[], options?: TierDeleteOptions): Promise<number | typeof SKIPPED> {
    const tier = this.tier;
    return this.call(
      'delete',
      undefined,
      async () => {
        if (tier.deleteMany) return tier.deleteMany(keys, options);
        return (await Promise.all(keys.map((k) => tier.delete(k, options)))).filter(Boolean).length;
      },
      keys.length,
    );
  }

  /**
   * {@link removeMany} for a removal that must reach the tier eventually: when the tier fails (or
   * its circuit is open) the keys are remembered for recovery ({@link remember}) and 0 is answered.
   */
  removeOrRemember(keys: readonly string[], options?: TierDeleteOptions): Promise<number> {
    return this.removeMany(keys, options).then((r) => {
      if (r !== SKIPPED) return r;
      for (const k of keys) this.remember(k, undefined);
      return 0;
    });
  }

  /**
   * Remembers a key whose write (`entry`) or delete (`undefined`) failed on this (shared) tier, to
   * repair it once the tier is back (see `Recovery`); the oldest key is dropped beyond
   * `recoveryMaxKeys`. No-op on a local tier.
   */
  remember(key: string, entry: CacheEntry | undefined): void {
    if (!this.shared) return;
    if (!this.pending.delete(key) && this.pending.size >= this.host.recoveryMaxKeys) {
      const oldest = this.pending.keys().next().value as string;
      this.pending.delete(oldest);
    }
    this.pending.set(key, entry);
    this.host.scheduleRecovery();
  }
}
