import { randomBytes } from 'node:crypto';
import { type CacheEntry, ConfigError, type DistributedLock, type Lease, type Tier } from '@bgc/cache-core';
import type { Cluster, Redis } from 'ioredis';
import {
  createRedisClient,
  isCluster,
  quitClient,
  type RedisConnectionOptions,
  waitForReady,
} from './redis-client.js';
import { cachedScript, evalCached } from './lua-scripts.js';
import { showKey, toTierError } from './redis-errors.js';

/**
 * Default prefix of lock keys: under the coordination namespace (`bgc:x:`), out of the reach of a
 * cache tier's `clear()` (whose default prefix is `bgc:cache:`).
 */
export const DEFAULT_LOCK_PREFIX = 'bgc:x:lock:';

/** Options of {@link RedisLock}. */
export interface RedisLockOptions extends RedisConnectionOptions {
  /** An existing ioredis client (never closed by the lock). When absent, one is built from the connection options. */
  client?: Redis | Cluster;
  /**
   * Prefix of lock keys. Keep it out of every cache tier's prefix (RedisTier refuses a prefix that
   * nests with its `coordinationPrefixes`). @default 'bgc:x:lock:'
   */
  prefix?: string;
  /** Pub/sub channel on which releases are announced to waiters. @default `${prefix}released` */
  channel?: string;
  /**
   * Fallback check for waiters (ms): a lease that expired without a release (its holder crashed) or
   * a lost release message is noticed within this long. Waiters are otherwise woken by the
   * release message, so Redis sees one `EXISTS` per waiting key per interval at most. @default 1000
   */
  pollIntervalMs?: number;
  /** How often a held lease is extended, as a fraction of its length. @default 1/3 */
  renewFraction?: number;
}

// Compare-and-delete, then announce the release: only the holder's token releases the lease.
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  redis.call('publish', ARGV[2], KEYS[1])
  return 1
end
return 0`;
// Compare-and-extend: only the holder's token renews the lease.
const RENEW =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

/** The lock's scripts, run by SHA (`EVAL` when a node answers `NOSCRIPT`: {@link evalCached}). */
const RELEASE_SCRIPT = cachedScript(RELEASE);
const RENEW_SCRIPT = cachedScript(RENEW);

/** Lease tokens: 128 random bits per process, then a counter (unique, and no crypto call per lease). */
const TOKEN_BASE = randomBytes(16).toString('hex');
let tokenCounter = 0;
const newToken = () => `${TOKEN_BASE}:${(tokenCounter++).toString(36)}`;

/** The waiters of one lock key in this process. */
interface Waiting {
  wake: Set<() => void>;
}

/** What {@link RedisLock.tryAcquireAndRead} resolves. */
export interface LeaseAndEntry {
  /** The lease, when taken. */
  lease: Lease | undefined;
  /** The tier's entry for the key, read in the same round trip (`undefined` on a miss or a failed read). */
  entry: CacheEntry | undefined;
  /** The tier's read error, if the read failed (the lease may still have been taken). */
  readError?: unknown;
}

/**
 * A distributed lease lock over Redis for cross-instance load coalescing: `SET key token NX PX`,
 * released by a compare-and-delete script that also publishes the release, renewed in the
 * background only while held (a crashed holder loses it after one lease).
 *
 * Waiters do not poll: one subscriber connection per lock (created on the first wait) listens on
 * one channel for every key, and wakes the waiters of the released key. A slow fallback check
 * (`pollIntervalMs`, one pipelined `EXISTS` per waiting key) catches leases that expired without a
 * release and lost messages, so thousands of waiting keys keep Redis load flat.
 */
export class RedisLock implements DistributedLock {
  /** The ioredis client in use. */
  readonly client: Redis | Cluster;
  /** The lock key prefix. */
  readonly prefix: string;
  /** The release channel. */
  readonly channel: string;
  private readonly owned: boolean;
  private readonly pollMs: number;
  private readonly renewFraction: number;
  private readonly waiting = new Map<string, Waiting>();
  private readonly held = new Map<ReturnType<typeof setInterval>, () => Promise<void>>();
  private subscriber: Redis | Cluster | undefined;
  private subscribed: Promise<boolean> | undefined;
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(options: RedisLockOptions = {}) {
    this.prefix = options.prefix ?? DEFAULT_LOCK_PREFIX;
    if (this.prefix === '')
      throw new ConfigError('prefix', 'the lock prefix must not be empty, e.g. "bgc:x:lock:"');
    this.channel = options.channel ?? `${this.prefix}released`;
    this.pollMs = options.pollIntervalMs ?? 1000;
    this.renewFraction = options.renewFraction ?? 1 / 3;
    if (!(this.pollMs > 0))
      throw new ConfigError('pollIntervalMs', `${options.pollIntervalMs} must be > 0 ms`);
    if (!(this.renewFraction > 0 && this.renewFraction < 1)) {
      throw new ConfigError('renewFraction', `${options.renewFraction} must be between 0 and 1 (exclusive)`);
    }
    this.owned = options.client === undefined;
    this.client = options.client ?? createRedisClient(options);
    // A client we created reports failures through rejected commands; keep ioredis from logging each reconnect error.
    if (this.owned) this.client.on('error', () => {});
  }

  /**
   * Resolves once the client is connected (and the release subscriber, if waiting has started).
   * @throws {TimeoutError} when not connected within `timeoutMs` (ms, default 5000).
   */
  async connect(timeoutMs = 5000): Promise<void> {
    await waitForReady(this.client, timeoutMs);
    if (this.subscriber) await waitForReady(this.subscriber, timeoutMs);
  }

  /**
   * Takes the lease on `key` for `leaseMs` (ms) if nobody holds it; it is renewed every
   * `leaseMs * renewFraction` until released. Resolves `undefined` when another holder has it.
   * @throws {TierError} when Redis cannot be reached (callers usually load without the lock then).
   */
  async tryAcquire(key: string, leaseMs: number): Promise<Lease | undefined> {
    const ttl = this.leaseTtl(leaseMs);
    const lockKey = this.prefix + key;
    const token = newToken();
    let ok: string | null;
    try {
      ok = await this.client.set(lockKey, token, 'PX', ttl, 'NX');
    } catch (error) {
      this.abandon(lockKey, token);
      throw toTierError('load', `lock ${showKey(key)}`, error, undefined);
    }
    return ok === 'OK' ? this.hold(lockKey, token, ttl) : undefined;
  }

  /**
   * The miss path in one round trip: takes the lease on `key` (as {@link RedisLock.tryAcquire}) and
   * reads `key` from `tier` at the same time (on one client both commands leave in the same socket
   * write; on two clients, e.g. a coordination Redis of its own, they overlap). A lease taken
   * while the entry turned out to be there already is given back at once, so a caller holding a
   * lease knows it must load.
   * @throws {TierError} when the lease cannot be attempted (Redis unreachable).
   */
  async tryAcquireAndRead(key: string, leaseMs: number, tier: Tier): Promise<LeaseAndEntry> {
    const ttl = this.leaseTtl(leaseMs);
    const lockKey = this.prefix + key;
    const token = newToken();
    // Both commands leave in the same tick: on one client they share the socket write and the round
    // trip (cheaper than an ioredis pipeline object); on two clients they overlap.
    const [set, read] = await Promise.allSettled([
      this.client.set(lockKey, token, 'PX', ttl, 'NX'),
      tier.get(key),
    ]);
    if (set.status === 'rejected') {
      this.abandon(lockKey, token);
      throw toTierError('load', `lock ${showKey(key)}`, set.reason, undefined);
    }
    const ok = set.value;
    let entry: CacheEntry | undefined;
    let readError: unknown;
    if (read.status === 'fulfilled') entry = read.value;
    else readError = read.reason;
    if (ok !== 'OK') return { lease: undefined, entry, readError };
    const lease = this.hold(lockKey, token, ttl);
    if (entry !== undefined && entry.freshUntil > Date.now()) {
      await lease.release();
      return { lease: undefined, entry };
    }
    return { lease, entry, readError };
  }

  /**
   * Resolves when the lease on `key` is released (woken by the release message) or expired
   * (noticed by the fallback check), or after `timeoutMs` (ms), whichever comes first; also
   * resolves (early) when Redis cannot be reached. Never rejects.
   */
  async waitForRelease(key: string, timeoutMs: number): Promise<void> {
    if (this.closed) return;
    const lockKey = this.prefix + key;
    let wake!: () => void;
    const done = new Promise<void>((resolve) => {
      wake = resolve;
    });
    const timer = setTimeout(wake, Math.max(0, timeoutMs));
    let w = this.waiting.get(lockKey);
    if (!w) this.waiting.set(lockKey, (w = { wake: new Set() }));
    w.wake.add(wake);
    this.startPolling();
    // Subscribed first, then checked: a release between the caller's failed tryAcquire and the
    // subscription is not missed. Without pub/sub (e.g. an ACL denying it) the fallback check alone
    // wakes the waiter; with Redis unreachable the caller goes on without the lock.
    this.subscribe()
      .then(() => this.client.exists(lockKey))
      .then(
        (n) => {
          if (n === 0) wake();
        },
        () => wake(),
      );
    await done;
    clearTimeout(timer);
    const still = this.waiting.get(lockKey);
    if (still) {
      still.wake.delete(wake);
      if (still.wake.size === 0) this.waiting.delete(lockKey);
    }
    if (this.waiting.size === 0) this.stopPolling();
  }

  /**
   * Releases held leases, stops renewing them and the fallback checks, wakes every waiter, closes
   * the release subscriber, and the client if the lock created it.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.held.values()].map((release) => release()));
    for (const timer of this.held.keys()) clearInterval(timer);
    this.held.clear();
    this.stopPolling();
    for (const w of this.waiting.values()) for (const wake of w.wake) wake();
    this.waiting.clear();
    await quitClient(this.subscriber);
    if (this.owned) await quitClient(this.client);
  }

  /**
   * After a lease attempt whose reply failed (e.g. ioredis' commandTimeout under load), the SET may
   * still have run on the server: the lease would then be held by nobody for its whole time and
   * every instance's waiters would wait for it. Gives it back by its token (a no-op when the SET
   * did not run), best effort: sent after the SET on the same connection.
   */
  private abandon(lockKey: string, token: string): void {
    if (this.closed) return;
    evalCached(this.client, RELEASE_SCRIPT, 1, lockKey, token, this.channel).catch(() => {
      // The lease, if it was taken, expires by itself within its time.
    });
  }

  private leaseTtl(leaseMs: number): number {
    if (!(leaseMs > 0) || !Number.isFinite(leaseMs))
      throw new ConfigError('leaseMs', `${leaseMs} must be > 0 ms`);
    return Math.ceil(leaseMs);
  }

  private hold(lockKey: string, token: string, ttl: number): Lease {
    const timer = setInterval(
      () => {
        evalCached(this.client, RENEW_SCRIPT, 1, lockKey, token, ttl).then(
          (renewed) => {
            if (renewed === 0) stop();
          },
          () => {
            // Redis unreachable: keep trying until released; the lease expires by itself otherwise.
          },
        );
      },
      Math.max(1, Math.floor(ttl * this.renewFraction)),
    );
    timer.unref?.();
    const stop = () => {
      clearInterval(timer);
      this.held.delete(timer);
    };
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      stop();
      try {
        await evalCached(this.client, RELEASE_SCRIPT, 1, lockKey, token, this.channel);
      } catch {
        // Never rejects: the lease expires by itself within leaseMs.
      }
    };
    this.held.set(timer, release);
    return { release };
  }

  /** Starts the release subscriber once; resolves whether it listens. */
  private subscribe(): Promise<boolean> {
    if (this.subscribed) return this.subscribed;
    const sub = isCluster(this.client)
      ? (this.client as Cluster).duplicate(undefined, { enableOfflineQueue: true })
      : (this.client as Redis).duplicate({
          enableOfflineQueue: true,
          commandTimeout: undefined,
          connectionName: 'bgc-cache-lock',
        });
    this.subscriber = sub;
    sub.on('error', () => {
      // Reconnects by itself; the fallback check covers messages lost meanwhile.
    });
    sub.on('message', (channel: string, lockKey: string) => {
      if (channel !== this.channel) return;
      const w = this.waiting.get(lockKey);
      if (w) for (const wake of w.wake) wake();
    });
    this.subscribed = sub.subscribe(this.channel).then(
      () => true,
      () => false,
    );
    return this.subscribed;
  }

  private startPolling(): void {
    if (this.pollTimer) return;
    this.pollTimer = setInterval(() => void this.check(), this.pollMs);
    this.pollTimer.unref?.();
  }

  private stopPolling(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  /** The fallback check: one `EXISTS` per waiting key, pipelined (concurrent under Cluster). */
  private async check(): Promise<void> {
    const keys = [...this.waiting.keys()];
    if (keys.length === 0) return;
    let gone: boolean[];
    try {
      if (isCluster(this.client)) {
        gone = (await Promise.all(keys.map((k) => this.client.exists(k)))).map((n) => n === 0);
      } else {
        const pipeline = this.client.pipeline();
        for (const k of keys) pipeline.exists(k);
        gone = ((await pipeline.exec()) ?? []).map(([error, n]) => error !== null || n === 0);
      }
    } catch {
      gone = keys.map(() => true); // Redis unreachable: nobody waits for it.
    }
    keys.forEach((k, i) => {
      if (!gone[i]) return;
      const w = this.waiting.get(k);
      if (w) for (const wake of w.wake) wake();
    });
  }
}
