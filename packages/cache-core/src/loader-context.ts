import type { LoadCallOptions, LoaderContext, LoaderEntryOptions } from './cache-options.js';
import type { ResolvedOptions } from './cache-context.js';
import type { CacheEntry } from './entry.js';
import { validateMeta } from './entry-meta.js';
import { checkTags } from './entry-tags.js';
import { ConfigError } from './errors/config-error.js';
import { InvalidValueError } from './errors/invalid-value-error.js';

/**
 * One load's side of the loader: the {@link LoaderContext} a loader receives (what it set for its
 * entry, whether it skipped caching or kept the stale value), and the per-call options of a load
 * resolved against the cache's. Internal to `@bgc/cache-core`.
 */

/** Meta keys the orchestrator writes itself (fail-safe back-off): a loader may not set them. */
const RESERVED_META = ['failSafe', 'retryAt'];

function checkMs(what: string, ms: unknown): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
    throw new InvalidValueError(`${what} must be a non-negative number of ms, got ${String(ms)}`);
  return ms;
}

/** The {@link LoaderContext} of one load. */
export class LoadContext<T> implements LoaderContext<T> {
  /** Set by {@link setTtl} / {@link setOptions}. */
  ttlMs: number | undefined = undefined;
  staleTtlMs: number | undefined = undefined;
  meta: Readonly<Record<string, string | number | boolean>> | undefined = undefined;
  /** Set by {@link setTags}. */
  tags: readonly string[] | undefined = undefined;
  /** {@link skip} was called: answer without caching. */
  skipped = false;
  /** {@link notModified} was called: the stale value is stored again. */
  kept = false;
  private controller: AbortController | undefined;
  private abortedWith: unknown = undefined;
  private aborted = false;

  constructor(
    readonly key: string,
    readonly stale: CacheEntry<T> | undefined,
  ) {}

  /** Created on first use: most loaders never look at it. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortedWith);
    }
    return this.controller.signal;
  }

  /** Aborts the load's signal (now, or as soon as the loader asks for it). */
  abort(reason: unknown): void {
    this.aborted = true;
    this.abortedWith = reason;
    this.controller?.abort(reason);
  }

  setTags(tags: readonly string[]): void {
    this.tags = checkTags(tags) ?? [];
  }

  setTtl(ttlMs: number): void {
    this.ttlMs = checkMs('ctx.setTtl(ttlMs)', ttlMs);
  }

  setOptions(options: LoaderEntryOptions): void {
    if (typeof options !== 'object' || options === null)
      throw new InvalidValueError('ctx.setOptions() takes an object, e.g. { ttlMs: 60000 }');
    if (options.ttlMs !== undefined) this.ttlMs = checkMs('ctx.setOptions({ ttlMs })', options.ttlMs);
    if (options.staleTtlMs !== undefined)
      this.staleTtlMs = checkMs('ctx.setOptions({ staleTtlMs })', options.staleTtlMs);
    if (options.meta !== undefined) {
      const problem = validateMeta(options.meta);
      if (problem !== undefined) throw new InvalidValueError(`ctx.setOptions({ meta }): ${problem}`);
      for (const k of RESERVED_META)
        if (Object.hasOwn(options.meta, k))
          throw new InvalidValueError(
            `ctx.setOptions({ meta }): "${k}" is reserved for the cache's fail-safe`,
          );
      this.meta = { ...options.meta };
    }
  }

  skip(): void {
    this.skipped = true;
  }

  fail(error: unknown): never {
    throw error;
  }

  notModified(): T {
    const stale = this.stale;
    if (!stale)
      throw new InvalidValueError(
        `ctx.notModified() for key ${JSON.stringify(this.key)}: there is no cached value to keep; return a value instead (ctx.stale is undefined)`,
      );
    this.kept = true;
    return stale.value;
  }

  /**
   * The meta of the entry this load stores: the loader's, over the stale entry's when the stale
   * value is kept ({@link notModified}); never the fail-safe keys.
   */
  entryMeta(): Readonly<Record<string, string | number | boolean>> | undefined {
    if (!this.kept) return this.meta;
    const before = this.stale?.meta;
    if (!before) return this.meta;
    const out: Record<string, string | number | boolean> = {};
    for (const k of Object.keys(before)) if (!RESERVED_META.includes(k)) out[k] = before[k] as string;
    if (this.meta) Object.assign(out, this.meta);
    return Object.keys(out).length > 0 ? out : undefined;
  }
}

/** The per-call options of one load, resolved against the cache's. */
export interface LoadPolicy {
  readonly softTimeoutMs: number;
  readonly hardTimeoutMs: number;
  readonly failSafeBackoffMs: number;
  readonly lockWaitMs: number;
  readonly forceFresh: boolean;
}

/** The cache's own {@link LoadPolicy} (no per-call option). */
export function defaultPolicy(opts: ResolvedOptions): LoadPolicy {
  return {
    softTimeoutMs: opts.softTimeoutMs,
    hardTimeoutMs: opts.hardTimeoutMs,
    failSafeBackoffMs: opts.failSafeBackoffMs,
    lockWaitMs: opts.lockWaitMs,
    forceFresh: false,
  };
}

function callMs(name: keyof LoadCallOptions, v: number | undefined, d: number): number {
  if (v === undefined) return d;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new ConfigError(
      `getOrLoad options.${name}`,
      `${String(v)} is not a non-negative number of milliseconds`,
    );
  return v;
}

/**
 * The policy of a call with `options`: `fallback` (the cache's) when it sets none, else each
 * option over the cache's. Without its own `lockWaitMs`, a call with its own `hardTimeoutMs` waits
 * for another instance's load at most that long. @throws {ConfigError} (`E_CONFIG`) on a bad value.
 */
export function resolvePolicy(options: LoadCallOptions, fallback: LoadPolicy): LoadPolicy {
  if (
    options.softTimeoutMs === undefined &&
    options.hardTimeoutMs === undefined &&
    options.failSafeBackoffMs === undefined &&
    options.lockWaitMs === undefined &&
    options.forceFresh === undefined
  )
    return fallback;
  const hard = callMs('hardTimeoutMs', options.hardTimeoutMs, fallback.hardTimeoutMs);
  return {
    softTimeoutMs: callMs('softTimeoutMs', options.softTimeoutMs, fallback.softTimeoutMs),
    hardTimeoutMs: hard,
    failSafeBackoffMs: callMs('failSafeBackoffMs', options.failSafeBackoffMs, fallback.failSafeBackoffMs),
    lockWaitMs: callMs(
      'lockWaitMs',
      options.lockWaitMs,
      options.hardTimeoutMs === undefined ? fallback.lockWaitMs : Math.min(fallback.lockWaitMs, hard),
    ),
    forceFresh: options.forceFresh === true,
  };
}
