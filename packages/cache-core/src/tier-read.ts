import type { CacheResult, LoadResult } from './cache-options.js';
import type { CacheEntry } from './entry.js';
import type { GuardedTier } from './guarded-tier.js';
import { TimeoutError } from './errors/timeout-error.js';
import type { Level } from './level.js';
import type { CacheOperation } from './metrics.js';
import { entryResult, missResult } from './result.js';
import type { ReadCallbacks } from './tier.js';
import { cancelDeadline, Deadline } from './timeout.js';

/**
 * The per-operation objects of its read path: a tier call's
 * deadline ({@link TierCall}) and a single-key read through the tiers ({@link TierRead}: a
 * {@link ResultRead} or a {@link CascadeRead}, with a {@link ReadAttempt} per tier after the first). Internal to `@bgc/cache-core`.
 */

/** An entry and the index of the tier it came from. */
export interface Found<T> {
  entry: CacheEntry<T>;
  index: number;
}

/** What a cascade found: the first fresh entry, or the freshest stale one. */
export interface Cascaded<T> {
  best: Found<T>;
  fresh: boolean;
}

/** What a cascade tells besides what it found (filled when it settles). */
export interface CascadeNotes {
  /** A tier did not answer (failed, timed out, or skipped by an open circuit). */
  unread: boolean;
}

/** A settled load kept shareable for the coalescing window. */
export interface RecentLoad {
  result: LoadResult<unknown>;
  until: number;
}

/** What a tier call resolves when the tier was skipped (failed, timed out, circuit open). */
export const SKIPPED = Symbol('skipped');
/** Reports a failed tier call and answers {@link SKIPPED}. */
export type FailCall = (
  state: GuardedTier,
  op: CacheOperation,
  key: string | undefined,
  error: unknown,
) => typeof SKIPPED;

/** A deadline guarding one tier operation, answered once: by the tier or by the expiry. */
export abstract class OperationDeadline extends Deadline {
  /** Whether the operation has been answered (or has timed out). */
  settled = false;

  /** Marks the operation answered (disarming the deadline); `false` if it already was. */
  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    cancelDeadline(this);
    return true;
  }
}

/** The deadline of one tier operation: on expiry it answers the operation as a timed-out failure. */
export class TierCall<R> extends OperationDeadline {
  constructor(
    private readonly fail: FailCall,
    private readonly state: GuardedTier,
    private readonly op: CacheOperation,
    private readonly key: string | undefined,
    private readonly ms: number,
    private readonly onResult: (r: R | typeof SKIPPED) => void,
  ) {
    super();
  }

  expire(): void {
    if (!this.settle()) return;
    const error = new TimeoutError(`${this.state.tier.name} ${this.op}`, this.ms);
    this.onResult(this.fail(this.state, this.op, this.key, error));
  }
}

/** The orchestrator's side of a {@link TierRead}. */
export interface ReadHost {
  answered(read: TierRead<unknown>, entry: CacheEntry | undefined): void;
  failed(read: TierRead<unknown>, error: unknown): void;
  timeoutMs(): number;
  /** The level of tier `index`. */
  levelOf(index: number): Level;
  /** Counts a miss everywhere (the `external` miss metric) of a `get`. */
  missedEverywhere(endpoint: string): void;
}

/**
 * A single-key read through the tiers in progress: where the cascade is, the freshest stale entry
 * seen, and the deadline of the current tier call. It is also the callbacks the tier answers
 * ({@link ReadCallbacks}), so a read allocates one object besides its promise. Subclasses say how
 * it settles: {@link ResultRead} (`get`) and {@link CascadeRead} (the load paths).
 */
export abstract class TierRead<T> extends OperationDeadline implements ReadCallbacks {
  index = 0;
  state: GuardedTier | undefined = undefined;
  t0 = 0;
  staleEntry: CacheEntry<T> | undefined;
  /** Tier index of `staleEntry`, -1 when none. */
  staleIndex: number;
  /** Whether the read object itself already served as a tier call's callbacks. */
  asked = false;
  /** Whether a tier did not answer (failed, timed out, or skipped by an open circuit). */
  unread = false;

  constructor(
    protected readonly host: ReadHost,
    readonly key: string,
    readonly endpoint: string,
    staleSoFar: CacheEntry<T> | undefined,
    readonly isStale: ((entry: CacheEntry<T>) => boolean) | undefined,
    readonly reject: (error: unknown) => void,
  ) {
    super();
    this.settled = true; // no tier call yet: readFrom opens each
    this.staleEntry = staleSoFar;
    this.staleIndex = staleSoFar ? 0 : -1;
  }

  /**
   * Settles the read: `entry` from tier `index` is the first fresh one (`fresh`), the freshest
   * stale one, or `undefined` (nothing servable anywhere).
   */
  abstract finish(entry: CacheEntry<T> | undefined, index: number, fresh: boolean): void;

  ok(entry: CacheEntry | undefined): void {
    if (this.settle()) this.host.answered(this as TierRead<unknown>, entry);
  }

  failed(error: unknown): void {
    if (this.settle()) this.host.failed(this as TierRead<unknown>, error);
  }

  expire(): void {
    const ms = this.host.timeoutMs();
    this.failed(new TimeoutError(`${this.state?.tier.name ?? 'tier'} get`, ms));
  }
}

/** The read of a `get`: settles with a {@link CacheResult} (a stale entry only with `allowStale`). */
export class ResultRead<T> extends TierRead<T> {
  constructor(
    host: ReadHost,
    key: string,
    endpoint: string,
    staleSoFar: CacheEntry<T> | undefined,
    readonly allowStale: boolean,
    private readonly resolve: (result: CacheResult<T>) => void,
    reject: (error: unknown) => void,
  ) {
    super(host, key, endpoint, staleSoFar, undefined, reject);
  }

  finish(entry: CacheEntry<T> | undefined, index: number, fresh: boolean): void {
    if (entry && (fresh || this.allowStale)) {
      this.resolve(entryResult(entry, this.host.levelOf(index), !fresh));
      return;
    }
    this.host.missedEverywhere(this.endpoint);
    this.resolve(missResult<T>());
  }
}

/** The read of a load path: settles with a {@link Cascaded} (or `undefined`: nothing servable). */
export class CascadeRead<T> extends TierRead<T> {
  constructor(
    host: ReadHost,
    key: string,
    endpoint: string,
    staleSoFar: CacheEntry<T> | undefined,
    isStale: ((entry: CacheEntry<T>) => boolean) | undefined,
    private readonly resolve: (found: Cascaded<T> | undefined) => void,
    reject: (error: unknown) => void,
    private readonly notes?: CascadeNotes,
  ) {
    super(host, key, endpoint, staleSoFar, isStale, reject);
  }

  finish(entry: CacheEntry<T> | undefined, index: number, fresh: boolean): void {
    if (this.notes !== undefined) this.notes.unread = this.unread;
    this.resolve(entry ? { best: { entry, index }, fresh } : undefined);
  }
}

/**
 * The callbacks and deadline of one tier call of a {@link TierRead} after its first: answered once,
 * by its own tier or by its own deadline, never by another tier's late reply.
 */
export class ReadAttempt extends OperationDeadline implements ReadCallbacks {
  constructor(
    private readonly read: TierRead<unknown>,
    private readonly host: ReadHost,
  ) {
    super();
  }

  ok(entry: CacheEntry | undefined): void {
    if (this.settle()) this.host.answered(this.read, entry);
  }

  failed(error: unknown): void {
    if (this.settle()) this.host.failed(this.read, error);
  }

  expire(): void {
    this.failed(new TimeoutError(`${this.read.state?.tier.name ?? 'tier'} get`, this.host.timeoutMs()));
  }
}
