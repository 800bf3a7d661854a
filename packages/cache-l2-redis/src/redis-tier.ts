import {
  type CacheEntry,
  type CacheOperation,
  capEntry,
  ConfigError,
  coarseNow,
  InvalidValueError,
  type MetricsAdapter,
  NOOP_METRICS,
  type ReadCallbacks,
  type Tier,
  type TierWrite,
} from '@bgc/cache-core';
import type { Cluster, Redis } from 'ioredis';
import { type CompressionAlgorithm, EnvelopeCodec } from './envelope-codec.js';
import { groupBySlot } from './key-slot.js';
import { createRedisClient, isCluster, type RedisConnectionOptions, waitForReady } from './redis-client.js';
import { showKey, toTierError } from './redis-errors.js';
import type { SerializerOption } from './serializer.js';

/** Default key prefix, the seed's. */
export const DEFAULT_PREFIX = 'bgc:cache:';

/** Options of {@link RedisTier}. */
export interface RedisTierOptions extends RedisConnectionOptions {
  /**
   * An existing ioredis client (standalone, Cluster or Sentinel). The tier never closes it. When
   * absent, the tier builds one from the connection options and closes it in `close()`.
   */
  client?: Redis | Cluster;
  /** Prefix of every key the tier writes; `clear()` removes only keys under it. @default 'bgc:cache:' */
  prefix?: string;
  /** `'json'` (readable with `redis-cli GET`), `'msgpack'`, or a custom {@link Serializer}. @default 'json' */
  serializer?: SerializerOption;
  /** Serialized values larger than this (bytes) are compressed. @default undefined (never) */
  compressThresholdBytes?: number;
  /** Compression algorithm. @default 'gzip' */
  compression?: CompressionAlgorithm;
  /** Largest stored envelope (bytes); a larger value is refused before reaching Redis. @default 1048576 (1 MB) */
  maxValueBytes?: number;
  /** Longest lifetime (ms) of an entry in Redis, e.g. the seed's 7 days. @default undefined (the entry's own) */
  maxTtlMs?: number;
  /** Where corrupted values are reported (`error('l2', op, 'serialization_error')`). @default NOOP_METRICS */
  metrics?: MetricsAdapter;
  /** Keys per `UNLINK` in `clear()`, and `COUNT` hint of its `SCAN`. @default 500 */
  clearBatchSize?: number;
}

/** Escapes the glob characters of `SCAN MATCH` (`* ? [ ] \`), so a prefix matches only itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The shared L2 tier over Redis (ioredis). Each key is stored under `prefix + key` as a small
 * versioned JSON envelope with its expiry times; its Redis TTL is the entry's remaining
 * stale-until time. A corrupted or foreign value is a miss plus an error metric.
 *
 * ```ts
 * const tier = new RedisTier({ url: 'redis://127.0.0.1:6379' });
 * ```
 */
export class RedisTier implements Tier {
  /** `"redis"`. */
  readonly name = 'redis';
  /** `'l2'`. */
  readonly level = 'l2' as const;
  /** `'shared'`: every instance sees the same Redis. */
  readonly scope = 'shared' as const;
  /** See {@link RedisTierOptions.maxTtlMs}. */
  readonly maxTtlMs: number | undefined;
  /** The key prefix. */
  readonly prefix: string;
  /** The ioredis client in use (given or created). */
  readonly client: Redis | Cluster;

  private readonly owned: boolean;
  private readonly codec: EnvelopeCodec;
  private readonly metrics: MetricsAdapter;
  private readonly maxValueBytes: number;
  private readonly batch: number;
  private readonly cluster: boolean;
  private readonly timeoutMs: number | undefined;

  constructor(options: RedisTierOptions = {}) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    this.maxTtlMs = options.maxTtlMs;
    this.maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
    if (!(this.maxValueBytes > 0))
      throw new ConfigError('maxValueBytes', `${options.maxValueBytes} must be > 0 bytes`);
    if (this.maxTtlMs !== undefined && !(this.maxTtlMs > 0))
      throw new ConfigError('maxTtlMs', `${this.maxTtlMs} must be > 0 ms`);
    this.batch = options.clearBatchSize ?? 500;
    this.metrics = options.metrics ?? NOOP_METRICS;
    this.codec = new EnvelopeCodec({
      serializer: options.serializer,
      compressThresholdBytes: options.compressThresholdBytes,
      compression: options.compression,
    });
    this.owned = options.client === undefined;
    this.client = options.client ?? createRedisClient(options);
    // A client we created reports failures through rejected commands; keep ioredis from logging each reconnect error.
    if (this.owned) this.client.on('error', () => {});
    this.cluster = isCluster(this.client);
    this.timeoutMs = options.client ? undefined : (options.commandTimeoutMs ?? 100);
  }

  /**
   * Resolves once the client is connected. With the offline queue off, commands sent before that
   * reject at once (and the orchestrator skips L2), so await this at startup when it matters.
   * @throws {TimeoutError} when not connected within `timeoutMs` (ms, default 5000).
   */
  ready(timeoutMs = 5000): Promise<void> {
    return waitForReady(this.client, timeoutMs);
  }

  /** Reads one entry. Resolves `undefined` on a miss, an expired entry or an unreadable value. */
  get(key: string): Promise<CacheEntry | undefined> {
    // One `.then` on the client's promise: no async frame of our own on the L2-hit path.
    return this.client.get(this.prefix + key).then(
      (text) => (text === null ? undefined : this.decode(text, 'get', Date.now())),
      (error: unknown) => {
        throw this.fail('get', `key ${showKey(key)}`, error);
      },
    );
  }

  /**
   * {@link RedisTier.get} delivering to callbacks straight from the client's reply (the
   * orchestrator's read path: no promise of ours in between).
   */
  getWith(key: string, callbacks: ReadCallbacks): void {
    this.client.get(this.prefix + key).then(
      (text) => {
        // A coarse clock (~1 ms, no clock read here): Redis has expired the key by then anyway
        // (its PX is the entry's stale-until), and the orchestrator checks the entry's times again.
        const entry = text === null ? undefined : this.decode(text, 'get', coarseNow());
        if (entry instanceof Promise)
          entry.then(
            (e) => callbacks.ok(e),
            (error: unknown) => callbacks.failed(error),
          );
        else callbacks.ok(entry);
      },
      (error: unknown) => callbacks.failed(this.fail('get', `key ${showKey(key)}`, error)),
    );
  }

  /**
   * Stores one entry with a Redis TTL (PX) equal to its remaining stale-until time; an already
   * expired entry deletes the key instead.
   * @throws {InvalidValueError} when the value cannot be serialized or its envelope is over
   *   `maxValueBytes` (the previous value under the key is deleted, so no outdated value remains).
   */
  async set(key: string, entry: CacheEntry): Promise<void> {
    const now = Date.now();
    const write = await this.prepare(key, entry, now);
    try {
      if (write.text === undefined) await this.client.del(write.redisKey);
      else await this.client.set(write.redisKey, write.text, 'PX', write.ttlMs);
    } catch (error) {
      throw this.fail('set', `key ${showKey(key)}`, error);
    }
  }

  /** Removes one key. Resolves `true` if it existed. */
  async delete(key: string): Promise<boolean> {
    try {
      return (await this.client.unlink(this.prefix + key)) > 0;
    } catch (error) {
      throw this.fail('delete', `key ${showKey(key)}`, error);
    }
  }

  /**
   * Reads many keys with `MGET` (one per hash slot under Cluster), aligned with `keys`.
   */
  async getMany(keys: readonly string[]): Promise<(CacheEntry | undefined)[]> {
    if (keys.length === 0) return [];
    const redisKeys = keys.map((k) => this.prefix + k);
    const texts: (string | null)[] = new Array(keys.length).fill(null);
    try {
      if (this.cluster) {
        const groups = [...groupBySlot(redisKeys).values()];
        const replies = await Promise.all(groups.map((g) => this.client.mget(g.keys)));
        groups.forEach((g, gi) => {
          const reply = replies[gi] as (string | null)[];
          g.indexes.forEach((index, j) => {
            texts[index] = reply[j] ?? null;
          });
        });
      } else {
        const reply = await this.client.mget(redisKeys);
        for (let i = 0; i < reply.length; i++) texts[i] = reply[i] ?? null;
      }
    } catch (error) {
      throw this.fail('get_many', `${keys.length} keys`, error);
    }
    const now = Date.now();
    return Promise.all(texts.map((t) => (t === null ? undefined : this.decode(t, 'get_many', now))));
  }

  /**
   * Stores many entries in one pipeline (concurrent commands under Cluster).
   * @throws {InvalidValueError} as {@link RedisTier.set}, before anything is written.
   */
  async setMany(writes: readonly TierWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const now = Date.now();
    const prepared = await Promise.all(writes.map((w) => this.prepare(w.key, w.entry, now)));
    try {
      if (this.cluster) {
        await Promise.all(
          prepared.map((p) =>
            p.text === undefined
              ? this.client.del(p.redisKey)
              : this.client.set(p.redisKey, p.text, 'PX', p.ttlMs),
          ),
        );
        return;
      }
      const pipeline = this.client.pipeline();
      for (const p of prepared) {
        if (p.text === undefined) pipeline.del(p.redisKey);
        else pipeline.set(p.redisKey, p.text, 'PX', p.ttlMs);
      }
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0];
    } catch (error) {
      throw this.fail('set_many', `${writes.length} keys`, error);
    }
  }

  /** Removes many keys with `UNLINK` (one per hash slot under Cluster). Resolves how many existed. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    try {
      return await this.unlinkGrouped(
        this.client,
        keys.map((k) => this.prefix + k),
      );
    } catch (error) {
      throw this.fail('delete', `${keys.length} keys`, error);
    }
  }

  /**
   * Removes every key under the prefix: `SCAN MATCH <escaped prefix>*` and `UNLINK` in batches, on
   * every master under Cluster. Never `KEYS` or `FLUSHDB`; keys outside the prefix are untouched.
   */
  async clear(): Promise<void> {
    const pattern = `${escapeGlob(this.prefix)}*`;
    const nodes: (Redis | Cluster)[] = this.cluster
      ? (this.client as Cluster).nodes('master')
      : [this.client];
    try {
      await Promise.all(
        nodes.map(async (node) => {
          let cursor = '0';
          do {
            const [next, found] = await (node as Redis).scan(cursor, 'MATCH', pattern, 'COUNT', this.batch);
            cursor = next;
            for (let i = 0; i < found.length; i += this.batch)
              await this.unlinkGrouped(node, found.slice(i, i + this.batch));
          } while (cursor !== '0');
        }),
      );
    } catch (error) {
      throw this.fail('clear', `prefix ${showKey(this.prefix)}`, error);
    }
  }

  /** Resolves when Redis (every master under Cluster) answers `PING`. */
  async ping(): Promise<void> {
    try {
      if (this.cluster) await Promise.all((this.client as Cluster).nodes('master').map((n) => n.ping()));
      else await this.client.ping();
    } catch (error) {
      throw this.fail('get', 'PING', error);
    }
  }

  /** Closes the client if the tier created it; a given client is left open. */
  async close(): Promise<void> {
    if (!this.owned || this.client.status === 'end') return;
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
  }

  private async unlinkGrouped(node: Redis | Cluster, redisKeys: string[]): Promise<number> {
    if (redisKeys.length === 0) return 0;
    if (!this.cluster) return node.unlink(...redisKeys);
    const counts = await Promise.all([...groupBySlot(redisKeys).values()].map((g) => node.unlink(...g.keys)));
    return counts.reduce((a, b) => a + b, 0);
  }

  private async prepare(
    key: string,
    entry: CacheEntry,
    now: number,
  ): Promise<{ redisKey: string; text?: string; ttlMs: number }> {
    const redisKey = this.prefix + key;
    const capped = capEntry(entry, this.maxTtlMs, now);
    const ttlMs = Math.ceil(capped.staleUntil - now);
    if (!(ttlMs > 0)) return { redisKey, ttlMs: 0 };
    let text: string;
    try {
      text = await this.codec.encode(capped);
    } catch (error) {
      await this.dropQuietly(redisKey);
      throw error;
    }
    // text.length * 3 bounds the UTF-8 size: skip the exact count for small values.
    if (text.length * 3 > this.maxValueBytes) {
      const bytes = Buffer.byteLength(text);
      if (bytes > this.maxValueBytes) {
        await this.dropQuietly(redisKey);
        throw new InvalidValueError(
          `Value for key ${showKey(key)} is ${bytes} bytes serialized, over the Redis tier's limit of ${this.maxValueBytes} bytes; ` +
            'cache a smaller value, raise maxValueBytes, or enable compressThresholdBytes',
        );
      }
    }
    return { redisKey, text, ttlMs };
  }

  private async dropQuietly(redisKey: string): Promise<void> {
    try {
      await this.client.unlink(redisKey);
    } catch {
      // Best effort: the write is refused either way.
    }
  }

  /**
   * The entry stored as `text` if still servable at `now`; a value that cannot be decoded is a
   * miss (with a metric). Synchronous unless the payload is compressed.
   */
  private decode(
    text: string,
    operation: CacheOperation,
    now: number,
  ): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    let decoded: CacheEntry | Promise<CacheEntry>;
    try {
      decoded = this.codec.decode(text);
    } catch {
      return this.unreadable(operation);
    }
    if (decoded instanceof Promise)
      return decoded.then(
        (entry) => (entry.staleUntil > now ? entry : undefined),
        () => this.unreadable(operation),
      );
    return decoded.staleUntil > now ? decoded : undefined;
  }

  private unreadable(operation: CacheOperation): undefined {
    this.metrics.error('l2', operation, 'serialization_error');
    return undefined;
  }

  private fail(operation: CacheOperation, what: string, error: unknown): Error {
    return toTierError(operation, what, error, this.timeoutMs);
  }
}
