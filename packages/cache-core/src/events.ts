import { EventEmitter } from 'node:events';
import type { InvalidationMessage } from './bus.js';
import type { CacheErrorEvent } from './cache-options.js';
import type { TierLevel } from './level.js';
import type { CircuitState } from './metrics.js';

/** `'hit'`: a lookup answered a cached value. */
export interface CacheHitEvent {
  key: string;
  /** The tier that answered. */
  level: TierLevel;
  /** Whether the value was past its fresh-until (`allowStale`, a soft timeout, fail-safe). */
  stale: boolean;
}

/** `'miss'`: a lookup found no value to answer in any tier (a `getOrLoad` then loads or waits for a load). */
export interface CacheMissEvent {
  key: string;
}

/** `'set'`: values were written by this instance. */
export interface CacheSetEvent {
  keys: readonly string[];
  /** `'set'` for `set`/`setMany`, `'load'` for the value a loader returned. */
  source: 'set' | 'load';
}

/** `'delete'` and `'expire'`: keys (or tags) invalidated by this instance. */
export interface CacheInvalidationEvent {
  /** The keys of `delete`/`deleteMany`/`pull`/`expire`/`expireMany`; empty for a tag invalidation. */
  keys: readonly string[];
  /** The tags of `deleteByTag`/`expireByTag`. */
  tags?: readonly string[];
}

/** `'clear'`: this instance cleared the cache or one namespace. */
export interface CacheClearEvent {
  /** The prefix of the namespace cleared (`'users:'`); `undefined` for `cache.clear()`. */
  namespace?: string;
}

/** `'failsafe'`: a load failed and the stale value of the key is kept as its fallback. */
export interface CacheFailSafeEvent {
  key: string;
  /** The tier the stale value came from. */
  level: TierLevel;
  /** Why the load failed. */
  error: unknown;
}

/** `'timeout'`: a caller stopped waiting for a load. */
export interface CacheTimeoutEvent {
  key: string;
  /**
   * `'soft'`: a stale value was at hand and answered once the load took `softTimeoutMs` (the load
   * goes on in the background); `'hard'`: the load took `hardTimeoutMs`, the caller got the stale
   * value (`stale: true`) or a `TimeoutError` (`stale: false`).
   */
  kind: 'soft' | 'hard';
  /** The timeout that expired, ms. */
  ms: number;
  /** Whether the caller was answered a stale value. */
  stale: boolean;
}

/** `'bus:published'` and `'bus:received'`: an invalidation message sent to or received from the bus. */
export interface CacheBusEvent {
  message: InvalidationMessage;
}

/** `'circuit'`: a shared tier's circuit breaker changed state. */
export interface CacheCircuitEvent {
  level: TierLevel;
  tier: string;
  state: CircuitState;
}

/** `'recovered'`: keys whose writes failed while a tier was down were invalidated there once it came back. */
export interface CacheRecoveredEvent {
  level: TierLevel;
  tier: string;
  keys: number;
}

/**
 * The events of {@link MultiLevelCache} and their payloads (`cache.on(name, listener)`), each
 * emitted only while it has a listener: the cache checks one boolean per event kind and builds no
 * payload otherwise.
 */
export interface CacheEvents {
  /** A lookup (`get`, `getMany` per key, `getOrLoad`, a hit of `getSync`) answered a cached value. */
  hit: [event: CacheHitEvent];
  /** A lookup found nothing to answer (`get`, `getMany` per key, `getOrLoad`); not `getSync`. */
  miss: [event: CacheMissEvent];
  /** `set`, `setMany` (one event per call) or a load stored a value. */
  set: [event: CacheSetEvent];
  /** `delete`, `deleteMany`, `pull` or `deleteByTag` on this instance. */
  delete: [event: CacheInvalidationEvent];
  /** `expire`, `expireMany` or `expireByTag` on this instance. */
  expire: [event: CacheInvalidationEvent];
  /** `clear()` or a namespace's `clear()` on this instance. */
  clear: [event: CacheClearEvent];
  /** A load failed (error, `ctx.fail`) and the key's stale value is kept as the fallback. */
  failsafe: [event: CacheFailSafeEvent];
  /** A caller stopped waiting for a load (soft or hard timeout). */
  timeout: [event: CacheTimeoutEvent];
  /** An invalidation was published to the other instances. */
  'bus:published': [event: CacheBusEvent];
  /** An invalidation (or a `resync`) was received from the bus. */
  'bus:received': [event: CacheBusEvent];
  /** A tier or background failure (tier error, loader error, circuit refusal, bus failure). */
  error: [event: CacheErrorEvent];
  /** A shared tier's circuit breaker changed state. */
  circuit: [event: CacheCircuitEvent];
  /** Keys whose writes failed while a tier was down were invalidated there once it came back. */
  recovered: [event: CacheRecoveredEvent];
}

/** The name of an event of {@link CacheEvents}. */
export type CacheEventName = keyof CacheEvents;

/**
 * Whether each event kind has a listener, kept by {@link CacheEmitter} from `newListener` and
 * `removeListener`: what the cache checks before building an event. Internal to `@bgc/cache-core`.
 */
export class EventSwitches {
  hit = false;
  miss = false;
  set = false;
  delete = false;
  expire = false;
  clear = false;
  failsafe = false;
  timeout = false;
  busPublished = false;
  busReceived = false;
  error = false;
  circuit = false;
  recovered = false;
}

const SWITCH: Readonly<Record<CacheEventName, keyof EventSwitches>> = {
  hit: 'hit',
  miss: 'miss',
  set: 'set',
  delete: 'delete',
  expire: 'expire',
  clear: 'clear',
  failsafe: 'failsafe',
  timeout: 'timeout',
  'bus:published': 'busPublished',
  'bus:received': 'busReceived',
  error: 'error',
  circuit: 'circuit',
  recovered: 'recovered',
};

const switchOf = (name: string | symbol): keyof EventSwitches | undefined =>
  typeof name === 'string' && Object.hasOwn(SWITCH, name) ? SWITCH[name as CacheEventName] : undefined;

/**
 * Typed `on`/`once`/`off`/`emit` over {@link CacheEvents}: `cache.on('hit', (e) => ...)` gets `e`
 * as a {@link CacheHitEvent}.
 */
export interface CacheEmitter {
  on<K extends CacheEventName>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  addListener<K extends CacheEventName>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  prependListener<K extends CacheEventName>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  once<K extends CacheEventName>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  prependOnceListener<K extends CacheEventName>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  off<K extends CacheEventName>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  removeListener<K extends CacheEventName>(event: K, listener: (...args: CacheEvents[K]) => void): this;
  emit<K extends CacheEventName>(event: K, ...args: CacheEvents[K]): boolean;
}

/**
 * The event emitter of the cache: an `EventEmitter` typed by {@link CacheEvents} that keeps
 * {@link EventSwitches} up to date as listeners come and go (also through `once` and
 * `removeAllListeners`).
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: typed overloads of the inherited EventEmitter methods
export class CacheEmitter extends EventEmitter {
  /** Which event kinds have a listener. @internal */
  readonly listening = new EventSwitches();

  private readonly added = (name: string | symbol): void => {
    const s = switchOf(name);
    if (s !== undefined) this.listening[s] = true;
  };

  private readonly removed = (name: string | symbol): void => {
    const s = switchOf(name);
    if (s !== undefined) this.listening[s] = this.listenerCount(name) > 0;
  };

  /**
   * Where a listener's exception goes (the cache logs it at `warn`): never into the operation that
   * emitted the event. @internal
   */
  listenerFailed: (event: CacheEventName, error: unknown) => void = () => {};

  constructor() {
    super();
    this.watch();
  }

  /**
   * Emits one of the cache's own events. A listener that throws does not change what the cache
   * does (an invalidation is still applied, a load still stored, a caller still answered): its
   * exception goes to {@link listenerFailed}. @internal
   */
  tell<K extends CacheEventName>(event: K, ...args: CacheEvents[K]): void {
    try {
      this.emit(event, ...args);
    } catch (error) {
      this.listenerFailed(event, error);
    }
  }

  /** Listens to listeners coming and going (again after a `removeAllListeners()`). */
  private watch(): void {
    const raw = EventEmitter.prototype;
    if (!this.listeners('newListener').includes(this.added)) raw.on.call(this, 'newListener', this.added);
    if (!this.listeners('removeListener').includes(this.removed))
      raw.on.call(this, 'removeListener', this.removed);
    for (const name of Object.keys(SWITCH) as CacheEventName[])
      this.listening[SWITCH[name]] = this.listenerCount(name) > 0;
  }

  override removeAllListeners(event?: string | symbol): this {
    // EventEmitter tells "every event" by the number of arguments, not by an undefined one.
    if (event === undefined) super.removeAllListeners();
    else super.removeAllListeners(event);
    this.watch();
    return this;
  }
}
