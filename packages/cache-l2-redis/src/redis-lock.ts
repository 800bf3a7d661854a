import { randomBytes } from 'node:crypto';
import { ConfigError, type DistributedLock, type Lease } from '@bgc/cache-core';
import type { Cluster, Redis } from 'ioredis';
import { createRedisClient, type RedisConnectionOptions } from './redis-client.js';
import { showKey, toTierError } from './redis-errors.js';

/** Default prefix of lock keys. */
export const DEFAULT_LOCK_PREFIX = 'bgc:lock:';

/** Options of {@link RedisLock}. */
export interface RedisLockOptions extends RedisConnectionOptions {
  /** An existing ioredis client (never closed by the lock). When absent, one is built from the connection options. */
  client?: Redis | Cluster;
  /** Prefix of lock keys. @default 'bgc:lock:' */
  prefix?: string;
  /** How often waiters check whether the lease is gone (ms). @default 20 */
  pollIntervalMs?: number;
  /** How often a held lease is extended, as a fraction of its length. @default 1/3 */
  renewFraction?: number;
}

// Compare-and-delete: only the holder's token releases the lease.
const RELEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
// Compare-and-extend: only the holder's token renews the lease.
const RENEW =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

interface Poller {
  until: number;
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());

/**
 * A distributed lease lock over Redis for cross-instance load coalescing: `SET key token NX PX`,
 * released by a compare-and-delete script, renewed in the background while held (a crashed holder
 * loses it after one lease). Waiters poll for the key to disappear; all waiters of one key in a
 * process share one poll loop.
 */
export class RedisLock implements DistributedLock {
  /** The ioredis client in use. */
  readonly client: Redis | Cluster;
  /** The lock key prefix. */
  readonly prefix: string;
  private readonly owned: boolean;
  private readonly pollMs: number;
  private readonly renewFraction: number;
  private readonly pollers = new Map<string, Poller>();
  private readonly held = new Set<ReturnType<typeof setInterval>>();

  constructor(options: RedisLockOptions = {}) {
    this.prefix = options.prefix ?? DEFAULT_LOCK_PREFIX;
    this.pollMs = options.pollIntervalMs ?? 20;
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
   * Takes the lease on `key` for `leaseMs` (ms) if nobody holds it; it is renewed every
   * `leaseMs * renewFraction` until released. Resolves `undefined` when another holder has it.
   * @throws {TierError} when Redis cannot be reached (callers usually load without the lock then).
   */
  async tryAcquire(key: string, leaseMs: number): Promise<Lease | undefined> {
    if (!(leaseMs > 0)) throw new ConfigError('leaseMs', `${leaseMs} must be > 0 ms`);
    const lockKey = this.prefix + key;
    const token = randomBytes(16).toString('hex');
    const ttl = Math.ceil(leaseMs);
    let ok: string | null;
    try {
      ok = await this.client.set(lockKey, token, 'PX', ttl, 'NX');
    } catch (error) {
      throw toTierError('load', `lock ${showKey(key)}`, error, undefined);
    }
    if (ok !== 'OK') return undefined;
    const timer = setInterval(
      () => {
        this.client.eval(RENEW, 1, lockKey, token, String(ttl)).then(
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
    this.held.add(timer);
    const stop = () => {
      clearInterval(timer);
      this.held.delete(timer);
    };
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        stop();
        try {
          await this.client.eval(RELEASE, 1, lockKey, token);
        } catch {
          // Never rejects: the lease expires by itself within leaseMs.
        }
      },
    };
  }

  /**
   * Resolves when the lease on `key` is released or expired, or after `timeoutMs` (ms), whichever
   * comes first; also resolves (early) when Redis cannot be reached. Never rejects.
   */
  waitForRelease(key: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + Math.max(0, timeoutMs);
    let poller = this.pollers.get(key);
    if (poller) {
      poller.until = Math.max(poller.until, until);
    } else {
      const p: Poller = { until, done: Promise.resolve() };
      p.done = this.poll(key, p).finally(() => this.pollers.delete(key));
      this.pollers.set(key, p);
      poller = p;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((r) => {
      timer = setTimeout(r, Math.max(0, timeoutMs));
    });
    return Promise.race([poller.done, timeout]).finally(() => clearTimeout(timer));
  }

  /** Stops renewing held leases and closes the client if the lock created it. */
  async close(): Promise<void> {
    for (const timer of this.held) clearInterval(timer);
    this.held.clear();
    if (!this.owned || this.client.status === 'end') return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private async poll(key: string, poller: Poller): Promise<void> {
    const lockKey = this.prefix + key;
    while (Date.now() < poller.until) {
      try {
        if ((await this.client.exists(lockKey)) === 0) return;
      } catch {
        return;
      }
      await sleep(this.pollMs);
    }
  }
}
