import {
  type CacheEntry,
  type CacheOperation,
  ConfigError,
  InvalidValueError,
  type MetricsAdapter,
  NOOP_METRICS,
  type ReadCallbacks,
  type Tier,
  type TierDeleteOptions,
  type TierWrite,
} from '@bgc/cache-core';
import { capEntry, coarseNow, nextVersion } from '@bgc/cache-core/internal';
import type { Cluster, Redis } from 'ioredis';
import { type CompressionAlgorithm, EnvelopeCodec } from './envelope-codec.js';
import { groupBySlot, keySlot } from './key-slot.js';
import { DELETE, defineTierScripts, evalCached, isNoScript, SET, type TierScripts } from './lua-scripts.js';
import {
  batchWrites,
  createRedisClient,
  isCluster,
  quitClient,
  type RedisConnectionOptions,
  waitForReady,
} from './redis-client.js';
import { showKey, toTierError } from './redis-errors.js';
import type { SerializerOption } from './serializer.js';

/** Default key prefix of cache entries, the seed's. */
export const DEFAULT_PREFIX = 'bgc:cache:';

/**
 * Default prefix of coordination keys (load leases, the request spacer, pending cells): a
 * namespace of its own beside the entries', out of `clear()`'s reach. See the README's key layout.
 */
export const DEFAULT_COORDINATION_PREFIX = 'bgc:x:';

/** Default {@link RedisTierOptions.tombstoneMs}: 60 s. */
export const DEFAULT_TOMBSTONE_MS = 60_000;

/** Suffix of the "cleared at" marker key(s) after the prefix (a NUL: no valid cache key holds one). */
const MARKER_SUFFIX = '\u0000cleared';

/** Options of {@link RedisTier.clear}. */
export interface RedisClearOptions {
  /** The clear's version: later writes of lower versions are refused. @default nextVersion(Date.now() + 1) */
  version?: number;
}

/** Options of {@link RedisTier}. */
export interface RedisTierOptions extends RedisConnectionOptions {
  /**
   * An existing ioredis client (standalone, Cluster or Sentinel). The tier never closes it. When
   * absent, the tier builds one from the connection options and closes it in `close()`.
   */
  client?: Redis | Cluster;
  /** Prefix of every key the tier writes; `clear()` removes only keys under it. @default 'bgc:cache:' */
  prefix?: string;
  /**
   * Prefix(es) of the coordination keys (locks, spacer, pending cells) sharing this Redis. The
   * tier refuses (ConfigError) a `prefix` that starts with one of them or that one of them starts
   * with, since `clear()` would then remove coordination keys (or a coordination key could alias
   * an entry). @default ['bgc:x:']
   */
  coordinationPrefixes?: readonly string[];
  /**
   * How long a versioned delete's tombstone lives (ms) when the delete gives no `tombstoneMs`;
   * it must outlast the longest load or promotion in flight. @default 60000
   */
  tombstoneMs?: number;
  /** `'json'` (readable with `redis-cli GET`), `'msgpack'`, or a custom {@link Serializer}. @default 'json' */
  serializer?: SerializerOption;
  /** Serialized values larger than this (bytes) are compressed. @default undefined (never) */
  compressThresholdBytes?: number;
  /** Compression algorithm. @default 'gzip' */
  compression?: CompressionAlgorithm;
  /**
   * Largest stored envelope and largest serialized value before compression (bytes): a larger
   * value is refused before reaching Redis, and a larger stored envelope (or a compressed payload
   * that inflates past it) is read as a miss. @default 1048576 (1 MB)
   */
  maxValueBytes?: number;
  /** Longest lifetime (ms) of an entry in Redis, e.g. the seed's 7 days. @default undefined (the entry's own) */
  maxTtlMs?: number;
  /** Where corrupted values are reported (`error('l2', op, 'serialization_error')`). @default NOOP_METRICS */
  metrics?: MetricsAdapter;
  /** Keys per clear script (one batch) in `clear()`, and `COUNT` hint of its `SCAN`. @default 500 */
  clearBatchSize?: number;
}

interface PreparedWrite {
  /** The cache key (without the prefix). */
  key: string;
  redisKey: string;
  /** The envelope; empty when the entry is already expired (the write deletes instead). */
  text: string;
  /** PX (ms); 0 when the entry is already expired. */
  ttlMs: number;
  version: number;
  /** `'1'` for a versioned entry (checked against the cleared-at marker), `'0'` otherwise. */
  checkMarker: string;
}

/** The answer of a compare-and-set, written or refused (a lost race is not an error). */
const written = (): undefined => undefined;

/**
 * Keys remembered as read absent ({@link RedisTier}'s fill path): the last 5,000 to 10,000 (two
 * generations of 5,000; the older one is dropped whole when the newer one fills).
 */
const ABSENT_GENERATION = 5_000;
/**
 * Entries per compare-and-set run of a batch write (`RedisTier.setMany`): one script call holds
 * Redis for all of them (~1.5 ms for 50 on a VM where an entry took ~28 us), and other clients'
 * commands wait at most that long between two runs.
 */
const SET_MANY_CHUNK = 50;

/**
 * `entry` unless it is versioned and below `cleared` (a clear's version): such an entry was
 * written by a load that started before the clear and landed after it.
 */
function visible(entry: CacheEntry | undefined, cleared: number): CacheEntry | undefined {
  return entry !== undefined && entry.version !== undefined && entry.version < cleared ? undefined : entry;
}

/** Escapes the glob characters of `SCAN MATCH` (`* ? [ ] \`), so a prefix matches only itself. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * The shared L2 tier over Redis (ioredis). Each key is stored under `prefix + key` as a small
 * versioned JSON envelope with its expiry times; its Redis TTL is the entry's remaining
 * stale-until time. A corrupted, foreign or oversized value is a miss plus an error metric.
 *
 * Coherence: every write is a compare-and-set script that never replaces an entry or tombstone of
 * a higher version ({@link CacheEntry.version}) and refuses a versioned entry older than the last
 * `clear()`; a versioned delete leaves a tombstone (`{"v":1,"n":<version>,"x":1}`, PX
 * `tombstoneMs`) read as a miss. The write that fills a key this tier just read as absent is a
 * plain `SET NX` instead (the script only when the key exists by then), and every read fetches the
 * "cleared at" marker with the entry (one `MGET`): a versioned entry below it is a miss. The "cleared at" marker is `prefix + "\\0cleared"` (one per hash
 * slot under Cluster, `prefix + "\\0cleared{<tag>}"`), never removed by `clear()`.
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
  private readonly tombstoneMs: number;
  private readonly scripts: TierScripts;
  /** Cluster: the marker key of each hash slot (built on first use). */
  private slotMarkers: string[] | undefined;
  /** The standalone marker key, built once (every read sends it). */
  private readonly marker: string;
  /**
   * Cache keys this tier read as absent (no entry, no tombstone) and has not written since: their
   * next `set` is a plain `SET NX` (see {@link RedisTier.set}). Two generations, so that bounding
   * them costs O(1) (evicting a Set's first entry one by one walks its deleted slots every time:
   * ~20 µs per eviction at 10,000 entries).
   */
  private absent = new Set<string>();
  private absentBefore = new Set<string>();
  /** The last marker text read and its number (a clear is rare: the parse is cached). */
  private markerText = '';
  private markerVersion = 0;

  constructor(options: RedisTierOptions = {}) {
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    if (this.prefix === '')
      throw new ConfigError('prefix', 'the key prefix must not be empty, e.g. "bgc:c:"');
    for (const coordination of options.coordinationPrefixes ?? [DEFAULT_COORDINATION_PREFIX]) {
      if (
        coordination !== '' &&
        (this.prefix.startsWith(coordination) || coordination.startsWith(this.prefix))
      ) {
        throw new ConfigError(
          'prefix',
          `${JSON.stringify(this.prefix)} and the coordination prefix ${JSON.stringify(coordination)} overlap (one starts with the other), so clear() would remove locks and spacer state; use separate namespaces such as "bgc:c:" for entries and "bgc:x:" for coordination`,
        );
      }
    }
    this.marker = this.prefix + MARKER_SUFFIX;
    this.maxTtlMs = options.maxTtlMs;
    this.maxValueBytes = options.maxValueBytes ?? 1024 * 1024;
    if (!(this.maxValueBytes > 0))
      throw new ConfigError('maxValueBytes', `${options.maxValueBytes} must be > 0 bytes`);
    if (this.maxTtlMs !== undefined && !(this.maxTtlMs > 0))
      throw new ConfigError('maxTtlMs', `${this.maxTtlMs} must be > 0 ms`);
    this.tombstoneMs = options.tombstoneMs ?? DEFAULT_TOMBSTONE_MS;
    if (!(this.tombstoneMs >= 0))
      throw new ConfigError('tombstoneMs', `${options.tombstoneMs} must be >= 0 ms (0: no tombstones)`);
    this.batch = options.clearBatchSize ?? 500;
    this.metrics = options.metrics ?? NOOP_METRICS;
    this.codec = new EnvelopeCodec({
      serializer: options.serializer,
      compressThresholdBytes: options.compressThresholdBytes,
      compression: options.compression,
      maxValueBytes: this.maxValueBytes,
    });
    this.owned = options.client === undefined;
    this.client = options.client ?? createRedisClient(options);
    // A client we created reports failures through rejected commands; keep ioredis from logging each reconnect error.
    if (this.owned) this.client.on('error', () => {});
    this.cluster = isCluster(this.client);
    this.timeoutMs = options.client ? undefined : (options.commandTimeoutMs ?? 100);
    defineTierScripts(this.client);
    this.scripts = this.client as unknown as TierScripts;
  }

  /**
   * Resolves once the client is connected. With the offline queue off, commands sent before that
   * reject at once (and the orchestrator skips L2), so await this at startup when it matters.
   * @throws {TimeoutError} when not connected within `timeoutMs` (ms, default 5000).
   */
  connect(timeoutMs = 5000): Promise<void> {
    return waitForReady(this.client, timeoutMs);
  }

  /**
   * Alias of {@link RedisTier.connect}.
   * @deprecated use `connect()`, the one connect verb of every tier.
   */
  ready(timeoutMs = 5000): Promise<void> {
    return this.connect(timeoutMs);
  }

  /** Reads one entry. Resolves `undefined` on a miss, an expired entry or an unreadable value. */
  get(key: string): Promise<CacheEntry | undefined> {
    // One `.then` on the client's promise: no async frame of our own on the L2-hit path.
    batchWrites(this.client);
    const redisKey = this.prefix + key;
    return this.client.mget(redisKey, this.markerOf(redisKey)).then(
      (reply) => this.answer(key, reply, 'get', Date.now()),
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
    batchWrites(this.client);
    const redisKey = this.prefix + key;
    this.client.mget(redisKey, this.markerOf(redisKey)).then(
      (reply) => {
        // A coarse clock (~1 ms, no clock read here): Redis has expired the key by then anyway
        // (its PX is the entry's stale-until), and the orchestrator checks the entry's times again.
        const entry = this.answer(key, reply, 'get', coarseNow());
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
   * The entry of one read's reply (`[entry text, cleared-at marker]`): a missing key is a miss and
   * remembered as absent (its next `set` is a plain `SET NX`); a versioned entry below the marker
   * is a miss (a write that started before a `clear()` and landed after it, see {@link RedisTier.set}).
   */
  private answer(
    key: string,
    reply: (string | null)[],
    operation: CacheOperation,
    now: number,
  ): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    const text = reply[0] ?? null;
    if (text === null) {
      this.rememberAbsent(key);
      return undefined;
    }
    const entry = this.decode(text, operation, now);
    const marker = reply[1] ?? null;
    if (marker === null || entry === undefined) return entry;
    const cleared = this.markerNumber(marker);
    if (entry instanceof Promise) return entry.then((e) => visible(e, cleared));
    return visible(entry, cleared);
  }

  /**
   * Remembers that `key` was read absent (the last 5,000 to 10,000 keys). By cache key, not Redis
   * key: the caller's own string comes back in the `set` (its hash is computed once).
   */
  private rememberAbsent(key: string): void {
    if (this.absent.size >= ABSENT_GENERATION) {
      this.absentBefore = this.absent;
      this.absent = new Set();
    }
    this.absent.add(key);
  }

  /** The version in a cleared-at marker's text (0 when unreadable: nothing hidden). */
  private markerNumber(text: string): number {
    if (text !== this.markerText) {
      const n = Number(text);
      this.markerVersion = Number.isFinite(n) ? n : 0;
      this.markerText = text;
    }
    return this.markerVersion;
  }

  /**
   * Stores one entry with a Redis TTL (PX) equal to its remaining stale-until time, through the
   * compare-and-set script: nothing is written when the stored entry or tombstone has a higher
   * version, or when the entry is versioned and older than the last `clear()` (a lost race, not an
   * error). An already expired entry deletes the stored one instead (same conditions).
   *
   * A key this tier just read as absent (a miss being filled) is written with a plain `SET NX PX`
   * first (~2-3 µs of Redis time instead of ~15 µs for the script); when the key exists by then
   * (another write or a delete's tombstone landed meanwhile), the compare-and-set decides as above.
   * On an absent key the two differ only by the cleared-at marker, which the plain write does not
   * check: every read checks it instead (a versioned entry below the marker is a miss).
   * @throws {InvalidValueError} when the value cannot be serialized or its envelope is over
   *   `maxValueBytes` (the previous value under the key is deleted, so no outdated value remains).
   */
  set(key: string, entry: CacheEntry): Promise<void> {
    // Not async, and the entry encoded without a promise unless compression runs: a write is the
    // client's command promise and one `.then` (the background half of every miss).
    let write: PreparedWrite | Promise<PreparedWrite>;
    try {
      write = this.prepareNow(key, entry, Date.now());
    } catch (error) {
      return Promise.reject(error);
    }
    if (write instanceof Promise) return write.then((w) => this.storeFirst(key, w));
    return this.storeFirst(key, write);
  }

  /**
   * A prepared write: `SET NX` when the key was read absent (and the write is a plain store of a
   * version other than an explicit 0, which the marker check of the script would treat apart),
   * the compare-and-set otherwise or when the key exists by then.
   */
  private storeFirst(key: string, write: PreparedWrite): Promise<void> {
    if (!this.takeFill(write)) return this.store(key, write);
    batchWrites(this.client);
    return this.client.set(write.redisKey, write.text, 'PX', write.ttlMs, 'NX').then(
      (ok) => (ok === null ? this.store(key, write) : undefined),
      (error: unknown) => {
        throw this.fail('set', `key ${showKey(key)}`, error);
      },
    );
  }

  /**
   * Whether `write` fills a key this tier read as absent (and forgets that read): a plain store of
   * a version other than an explicit 0 (which the script's marker check treats apart).
   */
  private takeFill(write: PreparedWrite): boolean {
    return (
      (this.absent.delete(write.key) ||
        (this.absentBefore.size !== 0 && this.absentBefore.delete(write.key))) &&
      write.ttlMs > 0 &&
      !(write.version === 0 && write.checkMarker === '1')
    );
  }

  /**
   * The compare-and-set of a prepared write (see {@link RedisTier.set}): `EVALSHA` on the client
   * itself, `EVAL` on `NOSCRIPT` (a node that lost or never had the script), in the one `.then`.
   */
  private store(key: string, write: PreparedWrite): Promise<void> {
    batchWrites(this.client);
    const marker = this.markerOf(write.redisKey);
    return this.client
      .evalsha(SET.sha, 2, write.redisKey, marker, write.version, write.text, write.ttlMs, write.checkMarker)
      .then(written, (error: unknown) => {
        if (!isNoScript(error)) throw this.fail('set', `key ${showKey(key)}`, error);
        return this.client
          .eval(SET.lua, 2, write.redisKey, marker, write.version, write.text, write.ttlMs, write.checkMarker)
          .then(written, (retryError: unknown) => {
            throw this.fail('set', `key ${showKey(key)}`, retryError);
          });
      });
  }

  /**
   * Removes one key. With `options.version`, atomically: an entry or tombstone of a higher version
   * is left alone, otherwise a tombstone of that version replaces the key for `options.tombstoneMs`
   * (default {@link RedisTierOptions.tombstoneMs}; 0: no tombstone), so that no write of a lower
   * version lands meanwhile. Resolves `true` if an entry existed.
   */
  async delete(key: string, options?: TierDeleteOptions): Promise<boolean> {
    try {
      batchWrites(this.client);
      if (options?.version === undefined) return (await this.client.unlink(this.prefix + key)) > 0;
      const { version, tombstone, px } = this.tombstoneOf(options);
      return (
        ((await evalCached(this.client, DELETE, 1, this.prefix + key, version, tombstone, px)) as number) > 0
      );
    } catch (error) {
      throw this.fail('delete', `key ${showKey(key)}`, error);
    }
  }

  /**
   * Reads many keys with `MGET` (one per hash slot under Cluster, each with its slot's cleared-at
   * marker, checked as in {@link RedisTier.get}), aligned with `keys`.
   */
  async getMany(keys: readonly string[]): Promise<(CacheEntry | undefined)[]> {
    if (keys.length === 0) return [];
    const redisKeys = keys.map((k) => this.prefix + k);
    const texts: (string | null)[] = new Array(keys.length).fill(null);
    const markers: (string | null)[] = new Array(keys.length).fill(null);
    try {
      if (this.cluster) {
        // One MGET per hash slot, with that slot's cleared-at marker last.
        const groups = [...groupBySlot(redisKeys).values()];
        const replies = await Promise.all(
          groups.map((g) => this.client.mget([...g.keys, this.markerOf(g.keys[0] as string)])),
        );
        groups.forEach((g, gi) => {
          const reply = replies[gi] as (string | null)[];
          const marker = reply[g.keys.length] ?? null;
          g.indexes.forEach((index, j) => {
            texts[index] = reply[j] ?? null;
            markers[index] = marker;
          });
        });
      } else {
        // An array, not spread arguments: a batch may hold more keys than a call takes arguments.
        const reply = await this.client.mget([...redisKeys, this.markerOf('')]);
        const marker = reply[keys.length] ?? null;
        for (let i = 0; i < keys.length; i++) {
          texts[i] = reply[i] ?? null;
          markers[i] = marker;
        }
      }
    } catch (error) {
      throw this.fail('get_many', `${keys.length} keys`, error);
    }
    const now = Date.now();
    return Promise.all(
      texts.map((t, i) => this.answer(keys[i] as string, [t, markers[i] ?? null], 'get_many', now)),
    );
  }

  /**
   * Stores many entries in one pipeline (concurrent commands under Cluster).
   * @throws {InvalidValueError} as {@link RedisTier.set}, before anything is written.
   */
  async setMany(writes: readonly TierWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const now = Date.now();
    // Encoded without a promise per write unless one compresses or is refused (every write is
    // still prepared, and a refused one's key dropped, before the batch rejects).
    let pending = false;
    const ready = writes.map((w): PreparedWrite | Promise<PreparedWrite> => {
      try {
        const p = this.prepareNow(w.key, w.entry, now);
        if (p instanceof Promise) pending = true;
        return p;
      } catch (error) {
        pending = true;
        return Promise.reject(error);
      }
    });
    const prepared = pending ? await Promise.all(ready) : (ready as PreparedWrite[]);
    try {
      // All in one socket write (batchWrites; no pipeline object): fills of keys read absent as
      // SET NX, first, then the rest through the compare-and-set script, one run per hash slot
      // for up to SET_MANY_CHUNK entries (as RedisTier.set decides each); a fill whose key exists
      // by then goes through the single script once SET NX answers.
      batchWrites(this.client);
      const calls: Promise<unknown>[] = [];
      const scripted: PreparedWrite[] = [];
      for (const p of prepared) {
        if (!this.takeFill(p)) {
          scripted.push(p);
          continue;
        }
        calls.push(
          this.client
            .set(p.redisKey, p.text, 'PX', p.ttlMs, 'NX')
            .then((ok) => (ok === null ? this.storeScripted(p) : undefined)),
        );
      }
      this.storeScriptedMany(scripted, calls);
      await Promise.all(calls);
    } catch (error) {
      throw this.fail('set_many', `${writes.length} keys`, error);
    }
  }

  /**
   * The compare-and-set of many prepared writes: one `SET_MANY_SCRIPT` (lua-scripts.ts) run per
   * hash slot (its cleared-at marker) and {@link SET_MANY_CHUNK} writes, in their order; a lone
   * write runs the single script. Appends the calls to `calls`.
   */
  private storeScriptedMany(writes: readonly PreparedWrite[], calls: Promise<unknown>[]): void {
    if (writes.length === 0) return;
    const bySlot = new Map<string, PreparedWrite[]>();
    for (const p of writes) {
      const marker = this.markerOf(p.redisKey);
      const group = bySlot.get(marker);
      if (group === undefined) bySlot.set(marker, [p]);
      else group.push(p);
    }
    for (const [marker, group] of bySlot) {
      for (let from = 0; from < group.length; from += SET_MANY_CHUNK) {
        const chunk = group.slice(from, from + SET_MANY_CHUNK);
        if (chunk.length === 1) {
          calls.push(this.storeScripted(chunk[0] as PreparedWrite));
          continue;
        }
        const args: (string | number)[] = [marker];
        for (const p of chunk) args.push(p.redisKey);
        for (const p of chunk) args.push(p.version, p.text, p.ttlMs, p.checkMarker);
        calls.push(this.scripts.bgcL2SetMany(chunk.length + 1, ...args));
      }
    }
  }

  /** The compare-and-set of one prepared write through the client's defined command. */
  private storeScripted(p: PreparedWrite): Promise<number> {
    return this.scripts.bgcL2Set(
      p.redisKey,
      this.markerOf(p.redisKey),
      p.version,
      p.text,
      p.ttlMs,
      p.checkMarker,
    );
  }

  /**
   * Removes many keys: `UNLINK` (one per hash slot under Cluster) without a version, the versioned
   * delete script of {@link RedisTier.delete} per key (one pipeline) with one. Resolves how many
   * entries existed.
   */
  async deleteMany(keys: readonly string[], options?: TierDeleteOptions): Promise<number> {
    if (keys.length === 0) return 0;
    try {
      if (options?.version === undefined)
        return await this.unlinkGrouped(
          this.client,
          keys.map((k) => this.prefix + k),
        );
      const { version, tombstone, px } = this.tombstoneOf(options);
      if (this.cluster) {
        const counts = await Promise.all(
          keys.map((k) => this.scripts.bgcL2Delete(this.prefix + k, version, tombstone, px)),
        );
        return counts.reduce((a, b) => a + b, 0);
      }
      const pipeline = this.client.pipeline() as unknown as TierScripts & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const k of keys) pipeline.bgcL2Delete(this.prefix + k, version, tombstone, px);
      let count = 0;
      for (const [error, n] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        count += n as number;
      }
      return count;
    } catch (error) {
      throw this.fail('delete', `${keys.length} keys`, error);
    }
  }

  /**
   * Logical expiry: the entries of `keys` stop being fresh now (freshUntil rewritten atomically by
   * a script, stale-until and Redis TTL kept), so they stay available as fail-safe fallbacks.
   * Entries of a higher version than `version` (newer writes), already stale ones and tombstones
   * are left alone; an envelope from before versions is deleted. Resolves how many were expired.
   */
  async expire(keys: readonly string[], version?: number): Promise<number> {
    if (keys.length === 0) return 0;
    const now = String(Date.now());
    const v = version === undefined ? '' : String(version);
    try {
      if (this.cluster) {
        const counts = await Promise.all(
          keys.map((k) => this.scripts.bgcL2Expire(this.prefix + k, Number(now), v)),
        );
        return counts.reduce((a, b) => a + b, 0);
      }
      const pipeline = this.client.pipeline() as unknown as TierScripts & {
        exec(): Promise<[Error | null, unknown][] | null>;
      };
      for (const k of keys) pipeline.bgcL2Expire(this.prefix + k, Number(now), v);
      let count = 0;
      for (const [error, n] of (await pipeline.exec()) ?? []) {
        if (error) throw error;
        count += n as number;
      }
      return count;
    } catch (error) {
      throw this.fail('delete', `${keys.length} keys`, error);
    }
  }

  /**
   * Removes every entry and tombstone under the prefix older than the clear: first raises the
   * "cleared at" marker(s) to the clear's version (so a load that started before cannot land
   * afterwards), then `SCAN MATCH <escaped prefix>*` on every master under Cluster, and per batch
   * (per hash slot under Cluster) one Lua script unlinks the keys whose stored version is below the
   * clear's. Entries and tombstones of an equal or higher version stay: a delete or write that
   * reached Redis before an older clear is not undone (else an older load could resurrect a
   * deleted key). Never `KEYS` or `FLUSHDB`; keys outside the prefix, and the markers, are untouched.
   */
  async clear(options: RedisClearOptions = {}): Promise<void> {
    // Without a version: one taken 1 ms ahead, so that it orders after every version taken before
    // the call in this process, even by another copy of the core's clock (a bundled duplicate).
    const version = options.version ?? nextVersion(Date.now() + 1);
    const pattern = `${escapeGlob(this.prefix)}*`;
    const nodes: (Redis | Cluster)[] = this.cluster
      ? (this.client as Cluster).nodes('master')
      : [this.client];
    try {
      if (this.cluster) {
        await Promise.all(this.allMarkers().map((marker) => this.scripts.bgcL2ClearMark(marker, version)));
      } else {
        await this.scripts.bgcL2ClearMark(this.markerOf(''), version);
      }
      await Promise.all(
        nodes.map(async (node) => {
          let cursor = '0';
          // One batch's scripts in flight while the next SCAN runs (at most one batch ahead).
          let pending: Promise<void> = Promise.resolve();
          do {
            const [next, found] = await (node as Redis).scan(cursor, 'MATCH', pattern, 'COUNT', this.batch);
            cursor = next;
            const entries = found.filter((k) => !k.startsWith(this.prefix + MARKER_SUFFIX));
            await pending;
            pending = (async () => {
              for (let i = 0; i < entries.length; i += this.batch)
                await this.clearBatch(entries.slice(i, i + this.batch), version);
            })();
            // Rejection observed by the `await pending` above or below, not reported as unhandled.
            pending.catch(() => {});
          } while (cursor !== '0');
          await pending;
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
    if (this.owned) await quitClient(this.client);
  }

  private async unlinkGrouped(node: Redis | Cluster, redisKeys: string[]): Promise<number> {
    if (redisKeys.length === 0) return 0;
    if (!this.cluster) return node.unlink(...redisKeys);
    const counts = await Promise.all([...groupBySlot(redisKeys).values()].map((g) => node.unlink(...g.keys)));
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * Removes those of `redisKeys` stored with a version below `version` (one script per hash slot,
   * atomic per call, sent through the tier's client so Cluster routes it). Returns how many went.
   */
  private async clearBatch(redisKeys: string[], version: number): Promise<number> {
    if (redisKeys.length === 0) return 0;
    if (!this.cluster) return this.scripts.bgcL2ClearBatch(redisKeys.length, ...redisKeys, version);
    const counts = await Promise.all(
      [...groupBySlot(redisKeys).values()].map((g) =>
        this.scripts.bgcL2ClearBatch(g.keys.length, ...g.keys, version),
      ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /**
   * The prepared write of `entry`, without a promise unless compression runs or the value is
   * refused (the key's stored value is then deleted before the rejection). Throws for an invalid
   * version or lifetime.
   */
  private prepareNow(key: string, entry: CacheEntry, now: number): PreparedWrite | Promise<PreparedWrite> {
    const redisKey = this.prefix + key;
    const version = entry.version ?? 0;
    if (!Number.isSafeInteger(version) || version < 0) {
      throw new InvalidValueError(
        `Entry version ${entry.version} of key ${showKey(key)} is not a non-negative integer; take versions from nextVersion()`,
      );
    }
    const checkMarker = entry.version === undefined ? '0' : '1';
    const capped = capEntry(entry, this.maxTtlMs, now);
    const ttlMs = Math.ceil(capped.staleUntil - now);
    if (!(ttlMs > 0)) return { key, redisKey, text: '', ttlMs: 0, version, checkMarker };
    if (!Number.isFinite(ttlMs))
      throw new InvalidValueError(
        `Entry of key ${showKey(key)} has no finite staleUntil; give it a lifetime`,
      );
    let text: string | Promise<string>;
    try {
      text = this.codec.encodeNow(capped);
    } catch (error) {
      return this.refuse(redisKey, error);
    }
    if (typeof text === 'string') return this.checked(key, redisKey, text, ttlMs, version, checkMarker);
    return text.then(
      (t) => this.checked(key, redisKey, t, ttlMs, version, checkMarker),
      (error: unknown) => this.refuse(redisKey, error),
    );
  }

  /** The prepared write of an encoded entry, or the refusal of one over `maxValueBytes`. */
  private checked(
    key: string,
    redisKey: string,
    text: string,
    ttlMs: number,
    version: number,
    checkMarker: string,
  ): PreparedWrite | Promise<never> {
    // text.length * 3 bounds the UTF-8 size: skip the exact count for small values.
    if (text.length * 3 > this.maxValueBytes) {
      const bytes = Buffer.byteLength(text);
      if (bytes > this.maxValueBytes) {
        return this.refuse(
          redisKey,
          new InvalidValueError(
            `Value for key ${showKey(key)} is ${bytes} bytes serialized, over the Redis tier's limit of ${this.maxValueBytes} bytes; ` +
              'cache a smaller value, raise maxValueBytes, or enable compressThresholdBytes',
          ),
        );
      }
    }
    return { key, redisKey, text, ttlMs, version, checkMarker };
  }

  /** A refused write: the key's stored value is deleted (best effort), then `error` is thrown. */
  private async refuse(redisKey: string, error: unknown): Promise<never> {
    await this.dropQuietly(redisKey);
    throw error;
  }

  /** The version, tombstone text and its PX (0: no tombstone) of a versioned delete. */
  private tombstoneOf(options: TierDeleteOptions): { version: number; tombstone: string; px: number } {
    const version = options.version as number;
    const ms = options.tombstoneMs ?? this.tombstoneMs;
    return {
      version,
      tombstone: this.codec.encodeTombstone(version),
      px: ms > 0 && Number.isFinite(ms) ? Math.ceil(ms) : 0,
    };
  }

  /** The "cleared at" marker key governing `redisKey` (its hash slot's under Cluster). */
  private markerOf(redisKey: string): string {
    if (!this.cluster) return this.marker;
    return (this.allMarkers()[keySlot(redisKey)] as string) ?? this.marker;
  }

  /**
   * Cluster: one marker key per hash slot, `prefix + "\\0cleared{<n>}"` with the smallest `n`
   * landing in that slot. When the prefix holds a hash tag, every key (markers included) is in
   * one slot and one marker serves.
   */
  private allMarkers(): string[] {
    if (this.slotMarkers) return this.slotMarkers;
    const marker = (i: number) => `${this.prefix}${MARKER_SUFFIX}{${i}}`;
    const first = keySlot(marker(0));
    if (keySlot(marker(1)) === first && keySlot(marker(2)) === first) {
      // A hash tag in the prefix: every key, markers included, is in one slot.
      this.slotMarkers = new Array<string>(16384).fill(marker(0));
      return this.slotMarkers;
    }
    const markers = new Array<string>(16384);
    let filled = 0;
    for (let i = 0; filled < 16384; i++) {
      const m = marker(i);
      const slot = keySlot(m);
      if (markers[slot] === undefined) {
        markers[slot] = m;
        filled++;
      }
    }
    this.slotMarkers = markers;
    return this.slotMarkers;
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
    let decoded: CacheEntry | undefined | Promise<CacheEntry | undefined>;
    try {
      decoded = this.codec.decode(text);
    } catch {
      return this.unreadable(operation);
    }
    // `undefined`: a tombstone, a miss.
    if (decoded === undefined) return undefined;
    if (decoded instanceof Promise)
      return decoded.then(
        (entry) => (entry !== undefined && entry.staleUntil > now ? entry : undefined),
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
