import { randomUUID } from 'node:crypto';
import { ConfigError } from '@bgc/cache-core';
import { UpstreamBacklogError } from './admission-errors.js';

/**
 * Default minimum interval between upstream calls, ms. The reference observed 429s 12 s after the
 * previous call and none at 16 s from a home IP, but 429s at 12 s and 65 s from a shared CI IP; it
 * advises 15-20 s (docs/comexstat-api.md §6). We take the upper end: a 429 costs a whole window,
 * waiting 4 s more costs nothing.
 */
export const DEFAULT_MIN_INTERVAL_MS = 20_000;

/**
 * Default Redis key of the shared spacer: the gateway's (`CACHE_COORD_PREFIX` `bgc:x:` +
 * `comexstat:spacer`), so that the warming CLI and the gateway share one budget.
 */
export const DEFAULT_SPACER_KEY = 'bgc:x:comexstat:spacer';

/** Default of {@link RequestSpacerOptions.expectedReplicas}. */
export const DEFAULT_EXPECTED_REPLICAS = 3;

/**
 * What an upstream call is for, best first: the spacer always grants the best waiting priority
 * (across every instance sharing its Redis key), in arrival order within one priority.
 * - `user`: a request with nothing cached waits for it;
 * - `refresh`: eager refreshes and reloads of entries that can still be served stale;
 * - `metadata`: the release check and the countries table (never awaited by a request);
 * - `warming`: the warming job.
 */
export type SpacerPriority = 'user' | 'refresh' | 'metadata' | 'warming';

/** Rank of each priority (lower is served first). */
export const PRIORITY_RANK: Readonly<Record<SpacerPriority, number>> = Object.freeze({
  user: 0,
  refresh: 1,
  metadata: 2,
  warming: 3,
});

/** The subset of an ioredis client the spacer uses. */
export interface SpacerRedis {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** A clock the spacer waits on (tests pass a controllable one). */
export interface SpacerClock {
  /** Epoch ms. */
  now(): number;
  /** Resolves after `ms` of this clock. */
  sleep(ms: number): Promise<void>;
  /**
   * Calls `fn` after `ms` of this clock unless cancelled (the returned function); must not keep
   * the process alive. @default an unref'd setTimeout
   */
  setTimer?(fn: () => void, ms: number): () => void;
}

/** {@link SpacerClock.setTimer} of a clock, or an unref'd setTimeout. */
export function clockTimer(clock: SpacerClock, fn: () => void, ms: number): () => void {
  if (clock.setTimer) return clock.setTimer(fn, ms);
  const t = setTimeout(fn, ms);
  t.unref?.();
  return () => clearTimeout(t);
}

/** Options of {@link RequestSpacer}. */
export interface RequestSpacerOptions {
  /**
   * Minimum time between two upstream calls, ms, an integer >= 1. Default: `COMEXSTAT_MIN_INTERVAL_MS`
   * from the environment, else {@link DEFAULT_MIN_INTERVAL_MS}. 0, negative and non-integer values
   * are refused with a `ConfigError`.
   * @default 20000
   */
  minIntervalMs?: number;
  /** An ioredis client: spaces calls across every instance sharing it (the spacer never closes it). */
  redis?: SpacerRedis;
  /**
   * Redis key holding the next allowed call time (`<key>:want` holds the instances' waiting
   * priorities). Keep it out of any prefix a cache `clear()` removes. @default DEFAULT_SPACER_KEY ('bgc:x:comexstat:spacer')
   */
  redisKey?: string;
  /**
   * Instances expected to share the upstream budget. When Redis cannot be reached the spacer fails
   * closed: this instance spaces its own calls `minIntervalMs × expectedReplicas` apart, so that
   * the replicas together still stay within the rate. Default: `COMEXSTAT_EXPECTED_REPLICAS`, else 3.
   * @default 3
   */
  expectedReplicas?: number;
  /** Most callers waiting at once; past it `acquire` rejects with `UpstreamBacklogError`. @default 256 */
  maxWaiting?: number;
  /** Called when Redis fails (the spacer then spaces this process at interval × expectedReplicas). */
  onError?: (error: unknown) => void;
  /** Environment read for `COMEXSTAT_MIN_INTERVAL_MS` and `COMEXSTAT_EXPECTED_REPLICAS`. @default process.env */
  env?: Record<string, string | undefined>;
  /** The clock. @default Date.now and setTimeout */
  clock?: SpacerClock;
}

/** Options of one {@link RequestSpacer.acquire}. */
export interface AcquireOptions {
  /** The call's priority, or a function read each time the spacer chooses (a batch's priority can rise). @default 'user' */
  priority?: SpacerPriority | (() => SpacerPriority);
  /**
   * Whether the call is a flow's leftovers (a call of its flow was sealed while its demand waited,
   * or shortly before): within one priority such calls go after calls whose flow had none, read
   * each time the spacer chooses. @default false
   */
  leftover?: () => boolean;
  /**
   * How long the call's oldest (uncovered) waiter has waited, ms, read each time the spacer
   * chooses: within one priority (and leftover class) the oldest goes first, across instances too.
   * @default the time since `acquire`
   */
  age?: () => number;
  /** Aborting withdraws the caller from the queue (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

// Atomically, on the Redis clock: forget expired wishes; grant when the slot is free and no other
// instance waits with a better rank, or with the same rank for longer (oldest first: a call that
// lost the race for one slot is not overtaken by younger ones at the next); else record this
// instance's wish (rank:expiry:since:ticket, `since` = now - the caller's age, so that the age of
// the call's oldest waiter counts, not when the instance first asked) and say how long to wait
// (-1: the slot is free but a better or older wish waits elsewhere). A rank is the priority's
// PRIORITY_RANK × 2, + 1 for a flow's leftovers.
const SLOT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local me = ARGV[2]
local rank = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local ticket = ARGV[5]
local since = now - math.max(0, tonumber(ARGV[6]) or 0)
local function parse(v)
  local r, exp, since, tk = string.match(v, '^(%-?%d+):(%d+):?(%d*):?(.*)$')
  r = tonumber(r)
  exp = tonumber(exp)
  return r, exp, tonumber(since) or exp, tk
end
local all = redis.call('HGETALL', KEYS[2])
local better = false
for i = 1, #all, 2 do
  local r, exp, s = parse(all[i + 1])
  if not r or exp < now then
    redis.call('HDEL', KEYS[2], all[i])
  elseif all[i] ~= me and (r < rank or (r == rank and s < since)) then
    better = true
  end
end
local nextAt = tonumber(redis.call('GET', KEYS[1]) or '0')
if now >= nextAt and not better then
  redis.call('SET', KEYS[1], tostring(now + interval), 'PX', interval * 2 + 1000)
  redis.call('HDEL', KEYS[2], me)
  return 0
end
redis.call('HSET', KEYS[2], me, rank .. ':' .. (now + ttl) .. ':' .. since .. ':' .. ticket)
redis.call('PEXPIRE', KEYS[2], ttl * 2)
if now < nextAt then return nextAt - now end
return -1
`;

// Pushes the shared next allowed time to at least now + ARGV[1] ms.
const DEFER_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nextAt = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = now + tonumber(ARGV[1])
if wanted > nextAt then
  redis.call('SET', KEYS[1], tostring(wanted), 'PX', tonumber(ARGV[1]) + tonumber(ARGV[2]) * 2 + 1000)
end
return 0
`;

const WITHDRAW_SCRIPT = `redis.call('HDEL', KEYS[1], ARGV[1]); return 0`;

/** The real clock. */
export const SYSTEM_CLOCK: SpacerClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise<void>((r) => setTimeout(r, ms)),
};

interface Ticket {
  seq: number;
  /** When `acquire` was called (this clock). */
  at: number;
  priority: () => SpacerPriority;
  leftover: (() => boolean) | undefined;
  age: (() => number) | undefined;
  resolve(at: number): void;
  reject(error: unknown): void;
  done: boolean;
}

function positiveInt(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigError(
      name,
      `expected an integer from 1 to ${max}, got ${JSON.stringify(value)}${
        value === 0 ? ' (0 would disable spacing and get the whole IP refused)' : ''
      }`,
    );
  }
  return value;
}

function fromEnv(env: Record<string, string | undefined>, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const text = raw.trim();
  if (!/^\d+$/.test(text))
    throw new ConfigError(name, `expected a positive integer, got ${JSON.stringify(raw)}`);
  return Number(text);
}

/**
 * Keeps upstream calls at least `minIntervalMs` apart: callers `await acquire({ priority })` before
 * each HTTP attempt; the best waiting priority is served first (user cold misses, eager refreshes,
 * metadata, warming), in arrival order within one. With a Redis client the slot and the priorities
 * are shared by every instance (a Lua script on the Redis clock). When Redis cannot be reached it
 * fails closed: this instance spaces its calls `minIntervalMs × expectedReplicas` apart.
 */
export class RequestSpacer {
  /** The enforced interval, ms. */
  readonly minIntervalMs: number;
  /** Instances assumed to share the budget when Redis is unreachable. */
  readonly expectedReplicas: number;
  /** This instance's id in the shared wish list. */
  readonly instanceId: string = randomUUID();
  /** The clock. */
  readonly clock: SpacerClock;
  private readonly redis: SpacerRedis | undefined;
  private readonly redisKey: string;
  private readonly maxWaiting: number;
  private readonly onError: ((error: unknown) => void) | undefined;
  private readonly tickets: Ticket[] = [];
  private seq = 0;
  private pumping = false;
  private last = Number.NEGATIVE_INFINITY;
  /** Earliest next grant known from Redis (epoch ms of our clock). */
  private sharedNext = 0;
  private heldUntil = 0;
  private granted = 0;
  private failures = 0;
  private wished = false;

  constructor(options: RequestSpacerOptions = {}) {
    const env = options.env ?? process.env;
    this.minIntervalMs = positiveInt(
      options.minIntervalMs !== undefined ? 'minIntervalMs' : 'COMEXSTAT_MIN_INTERVAL_MS',
      options.minIntervalMs ?? fromEnv(env, 'COMEXSTAT_MIN_INTERVAL_MS') ?? DEFAULT_MIN_INTERVAL_MS,
      3_600_000,
    );
    this.expectedReplicas = positiveInt(
      options.expectedReplicas !== undefined ? 'expectedReplicas' : 'COMEXSTAT_EXPECTED_REPLICAS',
      options.expectedReplicas ?? fromEnv(env, 'COMEXSTAT_EXPECTED_REPLICAS') ?? DEFAULT_EXPECTED_REPLICAS,
      1000,
    );
    this.maxWaiting = positiveInt('maxWaiting', options.maxWaiting ?? 256, 1_000_000);
    this.redis = options.redis;
    this.redisKey = options.redisKey ?? DEFAULT_SPACER_KEY;
    this.onError = options.onError;
    this.clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.tickets.length;
  }

  /** Slots granted so far. */
  get grants(): number {
    return this.granted;
  }

  /** Grants made while Redis could not be reached (spaced at interval × expectedReplicas). */
  get failedClosed(): number {
    return this.failures;
  }

  /**
   * How long a new caller of `priority` would wait for its slot, ms (an estimate from this
   * instance's queue and the last known shared slot; other instances' queues are not counted).
   */
  expectedWaitMs(priority: SpacerPriority = 'user'): number {
    const rank = PRIORITY_RANK[priority];
    const ahead = this.tickets.filter((t) => PRIORITY_RANK[t.priority()] <= rank).length;
    const now = this.clock.now();
    const next = Math.max(this.last + this.minIntervalMs, this.sharedNext, this.heldUntil, now);
    return next - now + ahead * this.minIntervalMs;
  }

  /**
   * Resolves when the caller may send one upstream call, with the grant time (epoch ms); the slot
   * is taken on resolution.
   * @throws {UpstreamBacklogError} when `maxWaiting` callers already wait
   */
  acquire(options: AcquireOptions = {}): Promise<number> {
    if (this.tickets.length >= this.maxWaiting) {
      return Promise.reject(
        new UpstreamBacklogError(
          `${this.tickets.length} upstream calls already wait for the ComexStat rate limit; retry later`,
          this.expectedWaitMs(),
          false,
        ),
      );
    }
    const p = options.priority ?? 'user';
    const priority = typeof p === 'function' ? p : () => p;
    return new Promise<number>((resolve, reject) => {
      const ticket: Ticket = {
        seq: this.seq++,
        at: this.clock.now(),
        priority,
        leftover: options.leftover,
        age: options.age,
        resolve,
        reject,
        done: false,
      };
      const signal = options.signal;
      if (signal) {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        const onAbort = () => {
          if (ticket.done) return;
          ticket.done = true;
          this.tickets.splice(this.tickets.indexOf(ticket), 1);
          reject(signal.reason);
          // The last waiting caller left: take this instance's wish back at once (a wish left
          // behind would hold the other instances' same-priority callers until it expires).
          if (this.tickets.length === 0) void this.withdraw();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        const settle = ticket.resolve;
        ticket.resolve = (at) => {
          signal.removeEventListener('abort', onAbort);
          settle(at);
        };
      }
      this.tickets.push(ticket);
      void this.pump();
    });
  }

  /** Rejects every waiting caller with `error` (shutdown). */
  rejectAll(error: unknown): void {
    for (const t of this.tickets.splice(0)) {
      t.done = true;
      t.reject(error);
    }
  }

  /**
   * Holds every caller (and, with Redis, every instance) back for at least `ms` from now: after a
   * 429 the whole IP is refused, so the next slot must wait for the announced time, not just the
   * failed call's retry.
   */
  async defer(ms: number): Promise<void> {
    this.heldUntil = Math.max(this.heldUntil, this.clock.now() + ms);
    if (!this.redis) return;
    try {
      await this.redis.eval(DEFER_SCRIPT, 1, this.redisKey, Math.max(1, Math.round(ms)), this.minIntervalMs);
    } catch (error) {
      this.onError?.(error);
    }
  }

  /** Removes this instance's wish from the shared list. */
  private async withdraw(): Promise<void> {
    if (!this.redis || !this.wished) return;
    this.wished = false;
    await this.redis
      .eval(WITHDRAW_SCRIPT, 1, `${this.redisKey}:want`, this.instanceId)
      .catch((error: unknown) => this.onError?.(error));
  }

  /** The ticket's rank in the shared wish list: the priority's rank × 2, + 1 for leftovers. */
  private rankOf(t: Ticket): number {
    return PRIORITY_RANK[t.priority()] * 2 + (t.leftover?.() === true ? 1 : 0);
  }

  /** How long the ticket's call has waited, ms (its oldest waiter's, when the caller tells). */
  private ageOf(t: Ticket, now: number): number {
    return Math.max(0, t.age ? t.age() : now - t.at);
  }

  /** The best rank first, the oldest within one (arrival order on ties). */
  private best(): Ticket | undefined {
    let best: Ticket | undefined;
    let bestRank = Number.POSITIVE_INFINITY;
    let bestAge = 0;
    const now = this.clock.now();
    for (const t of this.tickets) {
      const r = this.rankOf(t);
      if (r > bestRank) continue;
      const age = this.ageOf(t, now);
      if (r < bestRank || age > bestAge) {
        best = t;
        bestRank = r;
        bestAge = age;
      }
    }
    return best;
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let ticket = this.best(); ticket; ticket = this.best()) {
        const wait = Math.max(this.last + this.minIntervalMs, this.heldUntil) - this.clock.now();
        if (wait > 0) {
          await this.clock.sleep(wait);
          continue;
        }
        if (this.redis) {
          const shared = await this.takeShared(this.redis, ticket);
          if (shared === 'retry') continue;
        }
        // The best ticket may have changed (or left) while Redis answered: grant the best now.
        const chosen = this.best();
        if (!chosen) break;
        this.tickets.splice(this.tickets.indexOf(chosen), 1);
        chosen.done = true;
        this.last = this.clock.now();
        this.granted++;
        chosen.resolve(this.last);
      }
      if (this.wished) await this.withdraw();
    } finally {
      this.pumping = false;
    }
    if (this.tickets.length > 0) void this.pump();
  }

  /** 'ok' when Redis granted the slot (or failed: then spaced closed), 'retry' after a wait. */
  private async takeShared(redis: SpacerRedis, ticket: Ticket): Promise<'ok' | 'retry'> {
    let wait: number;
    try {
      wait = Number(
        await redis.eval(
          SLOT_SCRIPT,
          2,
          this.redisKey,
          `${this.redisKey}:want`,
          this.minIntervalMs,
          this.instanceId,
          this.rankOf(ticket),
          Math.max(2000, this.minIntervalMs * 2),
          ticket.seq,
          Math.round(this.ageOf(ticket, this.clock.now())),
        ),
      );
      if (!Number.isFinite(wait)) throw new Error(`the spacer script answered ${String(wait)}`);
    } catch (error) {
      this.onError?.(error);
      // Fail closed: without the shared booking, space this instance for every expected replica.
      const closed = this.last + this.minIntervalMs * this.expectedReplicas - this.clock.now();
      if (closed > 0) {
        await this.clock.sleep(Math.min(closed, this.minIntervalMs));
        return 'retry';
      }
      this.failures++;
      return 'ok';
    }
    if (wait === 0) {
      this.wished = false;
      return 'ok';
    }
    this.wished = true;
    const ms = wait > 0 ? wait : Math.min(1000, Math.ceil(this.minIntervalMs / 4));
    if (wait > 0) this.sharedNext = this.clock.now() + wait;
    await this.clock.sleep(ms);
    return 'retry';
  }
}
