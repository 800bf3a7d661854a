import type { DistributedLock, InvalidationBus } from './bus.js';
import type { CacheErrorEvent, MultiLevelCacheOptions } from './cache-options.js';
import type { CacheEmitter } from './events.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { classifyError } from './classify-error.js';
import type { CacheEntry } from './entry.js';
import { ConfigError } from './errors/config-error.js';
import { type GuardHost, GuardedTier } from './guarded-tier.js';
import { Level } from './level.js';
import { type CacheLogger, cacheLogger, errField, isCacheLogger } from './logger.js';
import { type CacheOperation, type CircuitState, type MetricsAdapter, NOOP_METRICS } from './metrics.js';
import { TagBook, TagCheckedTier, type TagOptions } from './tags.js';
import type { WriteHost } from './write-fanout.js';

/**
 * What every part of the orchestrator shares: the resolved options, the guarded tiers, metrics,
 * the bus and lock, error reporting and the tracked background work — plus the parts themselves
 * (read cascade, load coordinator, coherence, recovery), wired by the façade once built.
 * Internal to `@bgc/cache-core`.
 */

/** The options of a {@link MultiLevelCacheOptions} after defaults and validation. */
export type ResolvedOptions = Required<
  Pick<
    MultiLevelCacheOptions,
    | 'defaultTtlMs'
    | 'staleTtlMs'
    | 'negativeTtlMs'
    | 'ttlJitter'
    | 'coalesceWindowMs'
    | 'turnBudgetMs'
    | 'tierTimeoutMs'
    | 'softTimeoutMs'
    | 'hardTimeoutMs'
    | 'failSafeBackoffMs'
    | 'lockLeaseMs'
    | 'lockWaitMs'
    | 'recoveryMaxKeys'
    | 'recoveryIntervalMs'
    | 'tombstoneMs'
    | 'publishQueueMax'
    | 'backgroundWrites'
  >
> & { eagerRefreshThreshold: number | undefined };

/** Defaults and validation of the options; throws {@link ConfigError} naming the bad option. */
export function resolveOptions(options: MultiLevelCacheOptions): ResolvedOptions {
  if (!options || !Array.isArray(options.tiers))
    throw new ConfigError('tiers', 'expected an array of tiers, fastest first');
  const nonNeg = (name: keyof MultiLevelCacheOptions, v: number | undefined, d: number): number => {
    if (v === undefined) return d;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new ConfigError(name, `${String(v)} is not a non-negative number of milliseconds`);
    }
    return v;
  };
  const hard = nonNeg('hardTimeoutMs', options.hardTimeoutMs, 10_000);
  const jitter = options.ttlJitter ?? 0;
  if (!(jitter >= 0 && jitter < 1)) throw new ConfigError('ttlJitter', `${jitter} must be in [0, 1)`);
  const eager = options.eagerRefreshThreshold;
  if (options.logger !== undefined && !isCacheLogger(options.logger))
    throw new ConfigError(
      'logger',
      'is not pino-compatible: it needs child, debug, info, warn and error methods',
    );
  if (eager !== undefined && !(eager > 0 && eager < 1)) {
    throw new ConfigError('eagerRefreshThreshold', `${eager} must be a fraction in (0, 1)`);
  }
  const opts: ResolvedOptions = {
    defaultTtlMs: nonNeg('defaultTtlMs', options.defaultTtlMs, 300_000),
    staleTtlMs: nonNeg('staleTtlMs', options.staleTtlMs, 0),
    negativeTtlMs: nonNeg('negativeTtlMs', options.negativeTtlMs, 60_000),
    ttlJitter: jitter,
    coalesceWindowMs: nonNeg('coalesceWindowMs', options.coalesceWindowMs, 10_000),
    turnBudgetMs: nonNeg('turnBudgetMs', options.turnBudgetMs, 5),
    tierTimeoutMs: nonNeg('tierTimeoutMs', options.tierTimeoutMs, 1000),
    softTimeoutMs: nonNeg('softTimeoutMs', options.softTimeoutMs, 1000),
    hardTimeoutMs: hard,
    failSafeBackoffMs: nonNeg('failSafeBackoffMs', options.failSafeBackoffMs, 30_000),
    lockLeaseMs: nonNeg('lockLeaseMs', options.lockLeaseMs, 15_000),
    lockWaitMs: nonNeg('lockWaitMs', options.lockWaitMs, hard),
    recoveryMaxKeys: nonNeg('recoveryMaxKeys', options.recoveryMaxKeys, 10_000),
    recoveryIntervalMs: nonNeg('recoveryIntervalMs', options.recoveryIntervalMs, 2000),
    tombstoneMs: 0,
    publishQueueMax: nonNeg('publishQueueMax', options.publishQueueMax, 10_000),
    backgroundWrites: options.backgroundWrites ?? true,
    eagerRefreshThreshold: eager,
  };
  opts.tombstoneMs = nonNeg(
    'tombstoneMs',
    options.tombstoneMs,
    Math.max(60_000, 2 * (hard + opts.lockLeaseMs)),
  );
  return opts;
}

/** The parts of the orchestrator, for one another (set by the façade after construction). */
export interface CacheParts {
  /** Starts the recovery loop (a no-op when it runs or the cache is closed). */
  scheduleRecovery(): void;
  /** Local tiers: every entry stale at once (a shared tier came back, the bus resynced). */
  expireLocal(): void;
  /** Whether a local write of `entry` would undo a newer write or invalidation of `key`. */
  superseded(key: string, entry: CacheEntry): boolean;
  /** Removes `keys` from every tier (tombstones at `version` in shared tiers). */
  removeEverywhere(keys: readonly string[], version: number | undefined): Promise<void>;
}

/** The state every part of one orchestrator shares. */
export class CacheContext {
  /** Every tier, fastest first. */
  readonly states: GuardedTier[];
  /** The tiers private to this instance (`scope: 'local'`). */
  readonly local: GuardedTier[];
  /** The tiers shared between instances. */
  readonly shared: GuardedTier[];
  readonly metrics: MetricsAdapter;
  /** The `logger` option's child (`{ pkg: '@bgc/cache-core' }`); `undefined` logs nothing. */
  readonly log: CacheLogger | undefined;
  /** `connector` label of hit/miss metrics. */
  readonly connector: string;
  /** Default `endpoint` label of hit/miss metrics. */
  readonly endpoint: string;
  readonly bus: InvalidationBus | undefined;
  readonly lock: DistributedLock | undefined;
  /** The orchestrator's side of {@link writeAll}. */
  readonly writeHost: WriteHost;
  /** Background work (promotions, refreshes, shared writes, recoveries), awaited by `flush()`. */
  readonly background = new Set<Promise<unknown>>();
  /** Set by `close()`: no new timers start. */
  closed = false;
  /** Tag invalidations: what is known of them here, and the local tiers' tagged keys. */
  readonly tags: TagBook;
  /** The other parts; set once by the façade. */
  parts!: CacheParts;

  constructor(
    /** Where `'error'`, `'circuit'` and `'recovered'` are emitted (the cache itself). */
    readonly events: CacheEmitter,
    options: MultiLevelCacheOptions,
    readonly opts: ResolvedOptions,
  ) {
    this.metrics = options.metrics ?? NOOP_METRICS;
    const log = cacheLogger(options.logger);
    this.log = log;
    this.connector = options.connector ?? 'default';
    this.endpoint = options.endpoint ?? 'default';
    this.bus = options.bus;
    this.lock = options.lock;
    this.writeHost = {
      metrics: this.metrics,
      superseded: (key, entry) => this.parts.superseded(key, entry),
      removeEverywhere: (keys, version) => this.parts.removeEverywhere(keys, version),
      coalesce: opts.tombstoneMs > 0,
    };
    const ms = (name: keyof TagOptions, v: number | undefined, d: number, min = 0): number => {
      if (v === undefined) return d;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
        throw new ConfigError(name, `${String(v)} is not a number >= ${min}`);
      return v;
    };
    const tagOptions = options as TagOptions;
    this.tags = new TagBook({
      recordTtlMs: ms('tagRecordTtlMs', tagOptions.tagRecordTtlMs, 30 * 86_400_000, 1),
      cacheMs: ms('tagRecordCacheMs', tagOptions.tagRecordCacheMs, 10_000),
      keepMs: opts.tombstoneMs,
      timeoutMs: opts.tierTimeoutMs,
      maxIndexedKeys: ms('maxIndexedTagKeys', tagOptions.maxIndexedTagKeys, 1_000_000),
    });
    const breakerOpts = options.circuitBreaker === false ? undefined : (options.circuitBreaker ?? {});
    const guardHost: GuardHost = {
      metrics: this.metrics,
      tierTimeoutMs: opts.tierTimeoutMs,
      recoveryMaxKeys: opts.recoveryMaxKeys,
      report: (level, op, key, error, tier) => this.report(level, op, key, error, tier),
      listensForErrors: () => events.listenerCount('error') > 0,
      emitError: (event) => events.emit('error', event),
      scheduleRecovery: () => this.parts.scheduleRecovery(),
      superseded: (key, entry) => this.parts.superseded(key, entry),
    };
    const seen = new Set<string>();
    this.states = options.tiers.map((tier, index) => {
      if (!tier || typeof tier.get !== 'function' || typeof tier.set !== 'function') {
        throw new ConfigError(`tiers[${index}]`, 'is not a Tier (needs get, set, delete and close)');
      }
      if (seen.has(tier.level))
        throw new ConfigError(`tiers[${index}]`, `two tiers declare level ${tier.level}`);
      seen.add(tier.level);
      const shared = tier.scope === 'shared';
      // Shared tiers' reads hand out tagged entries as the tag records say.
      const checked = shared ? new TagCheckedTier(tier, this.tags) : tier;
      const breaker =
        shared && breakerOpts
          ? new CircuitBreaker({
              ...breakerOpts,
              onStateChange: (s: CircuitState) => {
                this.metrics.circuitState?.(tier.level, s);
                if (events.listening.circuit)
                  events.emit('circuit', { level: tier.level, tier: tier.name, state: s });
                if (log) {
                  const fields = { level: tier.level, tier: tier.name, state: s };
                  if (s === 'open') log.error(fields, 'cache tier circuit opened: the tier is skipped');
                  else
                    log.info(
                      fields,
                      s === 'closed' ? 'cache tier circuit closed' : 'cache tier circuit probing',
                    );
                }
                // Back from an outage: local entries may have missed invalidations meanwhile.
                if (s === 'closed') this.parts.expireLocal();
              },
            })
          : undefined;
      return new GuardedTier(checked, index, breaker, guardHost);
    });
    this.local = this.states.filter((s) => !s.shared);
    this.shared = this.states.filter((s) => s.shared);
    this.tags.sources = this.shared.map((s) => (s.tier as TagCheckedTier).inner);
  }

  /** Counts a failure (metrics, unless the loader's) and emits it as `'error'` when anyone listens. */
  report(
    level: Level,
    operation: CacheOperation,
    key: string | undefined,
    error: unknown,
    tier?: string,
  ): void {
    const errorType = level === Level.External ? 'loader_error' : classifyError(error, tier);
    if (level !== Level.External) this.metrics.error(level, operation, errorType);
    const log = this.log;
    if (log) {
      const fields = { level, tier, operation, key, errorType, err: errField(error) };
      // Refusals by an open circuit are not reported here (GuardedTier.admit): the opening is logged once.
      if (level === Level.External) log.warn(fields, 'cache loader failed');
      else log.warn(fields, 'cache tier operation failed');
    }
    if (this.events.listenerCount('error') > 0)
      this.events.emit('error', { level, tier, operation, key, error } satisfies CacheErrorEvent);
  }

  /** The level of tier `index`. */
  levelOf(index: number): Level {
    return (this.states[index] as GuardedTier).tier.level;
  }

  /** Keeps `p` as background work (its failure is swallowed: report it before). */
  track(p: Promise<unknown>): void {
    // One promise per tracked task (a catch and a finally would take four).
    const done = (): void => {
      this.background.delete(q);
    };
    const q: Promise<void> = p.then(done, done);
    this.background.add(q);
  }
}
