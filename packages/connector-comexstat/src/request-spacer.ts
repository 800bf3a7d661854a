import { envInt } from '@bgc/cache-core';

/**
 * Default minimum interval between upstream calls, ms. The reference observed 429s 12 s after the
 * previous call and none at 16 s from a home IP, but 429s at 12 s and 65 s from a shared CI IP; it
 * advises 15-20 s. We take the upper end: a 429 costs a whole window, waiting 4 s more costs nothing.
 */
export const DEFAULT_MIN_INTERVAL_MS = 20_000;

/** The subset of an ioredis client the spacer uses. */
export interface SpacerRedis {
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** Options of {@link RequestSpacer}. */
export interface RequestSpacerOptions {
  /**
   * Minimum time between two upstream calls, ms. Default: `COMEXSTAT_MIN_INTERVAL_MS` from the
   * environment, else {@link DEFAULT_MIN_INTERVAL_MS}.
   * @default 20000
   */
  minIntervalMs?: number;
  /** An ioredis client: spaces calls across every instance sharing it (the spacer never closes it). */
  redis?: SpacerRedis;
  /** Redis key holding the next allowed call time. @default 'comexstat:spacer:next' */
  redisKey?: string;
  /** Called when Redis fails; the spacer then spaces this process only. */
  onError?: (error: unknown) => void;
  /** Environment read for `COMEXSTAT_MIN_INTERVAL_MS`. @default process.env */
  env?: Record<string, string | undefined>;
}

// Atomically: if the slot is free, take it and book the next one; else say how long to wait.
// Redis' own clock keeps instances with skewed clocks consistent.
const SLOT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nextAt = tonumber(redis.call('GET', KEYS[1]) or '0')
if now >= nextAt then
  redis.call('SET', KEYS[1], tostring(now + tonumber(ARGV[1])), 'PX', tonumber(ARGV[1]) * 2 + 1000)
  return 0
end
return nextAt - now
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

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Keeps upstream calls at least `minIntervalMs` apart: callers `await acquire()` before each
 * HTTP attempt and are served one at a time, in order. With a Redis client the slot is shared by
 * every instance (a Lua script books the next allowed time on the Redis clock).
 */
export class RequestSpacer {
  /** The enforced interval, ms. */
  readonly minIntervalMs: number;
  private readonly redis: SpacerRedis | undefined;
  private readonly redisKey: string;
  private readonly onError: ((error: unknown) => void) | undefined;
  private chain: Promise<void> = Promise.resolve();
  private last = Number.NEGATIVE_INFINITY;
  private queued = 0;
  private granted = 0;

  constructor(options: RequestSpacerOptions = {}) {
    this.minIntervalMs =
      options.minIntervalMs ??
      envInt(options.env ?? process.env, 'COMEXSTAT_MIN_INTERVAL_MS', DEFAULT_MIN_INTERVAL_MS, 0, 3_600_000);
    this.redis = options.redis;
    this.redisKey = options.redisKey ?? 'comexstat:spacer:next';
    this.onError = options.onError;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.queued;
  }

  /** Slots granted so far. */
  get grants(): number {
    return this.granted;
  }

  /**
   * Resolves when the caller may send one upstream call, with the grant time (epoch ms); the slot
   * is taken on resolution.
   */
  acquire(): Promise<number> {
    this.queued++;
    const turn = this.chain.then(() => this.take());
    this.chain = turn.then(
      () => {},
      () => {},
    );
    return turn.finally(() => {
      this.queued--;
    });
  }

  /**
   * Holds every caller (and, with Redis, every instance) back for at least `ms` from now: after a
   * 429 the whole IP is refused, so the next slot must wait for the announced time, not just the
   * failed call's retry.
   */
  async defer(ms: number): Promise<void> {
    this.last = Math.max(this.last, Date.now() + ms - this.minIntervalMs);
    if (!this.redis) return;
    try {
      await this.redis.eval(DEFER_SCRIPT, 1, this.redisKey, Math.round(ms), this.minIntervalMs);
    } catch (error) {
      this.onError?.(error);
    }
  }

  private async take(): Promise<number> {
    for (
      let wait = this.last + this.minIntervalMs - Date.now();
      wait > 0;
      wait = this.last + this.minIntervalMs - Date.now()
    ) {
      await sleep(wait);
    }
    if (this.redis) await this.takeShared(this.redis);
    this.last = Date.now();
    this.granted++;
    return this.last;
  }

  private async takeShared(redis: SpacerRedis): Promise<void> {
    for (;;) {
      let wait: number;
      try {
        wait = Number(await redis.eval(SLOT_SCRIPT, 1, this.redisKey, this.minIntervalMs));
      } catch (error) {
        this.onError?.(error);
        return;
      }
      if (!(wait > 0)) return;
      await sleep(wait);
    }
  }
}
