import type { CacheEntry } from './entry.js';
import type { Tier } from './tier.js';

/** A message on the invalidation bus: keys to drop from every other instance's local tiers. */
export type InvalidationMessage =
  /** Drop these keys from local tiers; `version` is the delete's or write's version. */
  | { type: 'delete'; keys: readonly string[]; version?: number }
  /** Turn these keys stale in local tiers (logical expiry: still there as fail-safe fallbacks). */
  | { type: 'expire'; keys: readonly string[]; version?: number }
  /** Drop everything local: sent on `clear()`. */
  | { type: 'clear'; version?: number }
  /**
   * Raised locally (never published) after the bus reconnects: messages sent meanwhile may have
   * been lost, so local entries are turned stale (not deleted: they stay as fail-safe fallbacks).
   */
  | { type: 'resync' };

/**
 * Cross-instance coherence: when one instance writes or deletes a key, every other instance drops
 * it from its local (L1) tier. Messages carry keys only, never values. Implemented by
 * `@bgc/cache-l2-redis` over Redis pub/sub.
 */
export interface InvalidationBus {
  /** Sends a message to every other instance. Must not deliver it back to this instance. */
  publish(message: InvalidationMessage): Promise<void>;
  /**
   * Registers the handler for messages from other instances. Implementations also call it with
   * `{ type: 'resync' }` after a reconnect, since messages sent meanwhile are lost (pub/sub is at-most-once).
   */
  subscribe(handler: (message: InvalidationMessage) => void): void;
  /** Stops listening and releases the connections the bus created. */
  close(): Promise<void>;
}

/** What {@link DistributedLock.tryAcquireAndRead} resolves. */
export interface LeaseAndEntry {
  /** The lease, when taken (and the entry was not fresh). */
  lease: Lease | undefined;
  /** The tier's entry for the key (`undefined` on a miss or a failed read). */
  entry: CacheEntry | undefined;
  /** The tier's read error, when the read failed (the lease may still have been taken). */
  readError?: unknown;
}

/** A held lease on a key, renewed in the background until released. */
export interface Lease {
  /** Releases the lease if this holder still owns it (compare-and-delete). Never rejects. */
  release(): Promise<void>;
}

/**
 * Cross-instance request coalescing: only the lease holder calls the loader for a key; the others
 * wait for its result to appear in the shared tier. Implemented by `@bgc/cache-l2-redis`.
 */
export interface DistributedLock {
  /** Tries to take the lease on `key` for `leaseMs`. Resolves `undefined` when another holder has it. */
  tryAcquire(key: string, leaseMs: number): Promise<Lease | undefined>;
  /** Resolves when the lease on `key` is released or expired, or after `timeoutMs`, whichever comes first. */
  waitForRelease(key: string, timeoutMs: number): Promise<void>;
  /**
   * Optional, the miss path in one round trip: tries to take the lease on `key` and reads `key`
   * from `tier` at the same time (e.g. both commands in one socket write). A lease taken while the
   * entry turned out to be fresh is given back, so a returned lease means "load". The orchestrator
   * uses it, when present, for its first shared tier right after a local L1 miss.
   * @throws when the lease cannot be attempted (the orchestrator then goes the ordinary way).
   */
  tryAcquireAndRead?(key: string, leaseMs: number, tier: Tier): Promise<LeaseAndEntry>;
  /** Connects, resolving once leases can be taken. */
  connect?(): Promise<void>;
  /** Releases what the lock created (connections, timers); held leases are released. */
  close?(): Promise<void>;
}
