import { EventEmitter } from 'node:events';
import {
  type CacheErrorEvent,
  type CacheResult,
  ConfigError,
  type DistributedLock,
  type Lease,
  type MultiLevelCache,
  type Tier,
} from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import { unwrapBinary, wrapBinary } from './binary-records.js';

/** Options of {@link KeyvStore}'s opt-in cross-instance miss lock ({@link KeyvStoreOptions.lockOnMiss}). */
export interface KeyvLockOnMissOptions {
  /** The distributed lock, e.g. `new RedisLock({ client })` from `@bgc/cache-l2-redis`. */
  lock: DistributedLock;
  /**
   * Longest time (ms) a miss holds the lease when no `set` of the key follows (the function of a
   * `wrap` failed, or a plain `get` missed): the lease is released then. @default 15000
   */
  leaseMs?: number;
  /** Longest time (ms) another instance's `get` waits for the lease holder's `set`. @default leaseMs */
  waitMs?: number;
}

/** Options of {@link KeyvStore}. */
export interface KeyvStoreOptions {
  /**
   * Prefix of every key this store writes to the cache, before the namespace generation and
   * Keyv's own `namespace:` prefix. Two stores over one cache with different prefixes never see
   * each other's keys. @default 'keyv/'
   */
  prefix?: string;
  /**
   * Lifetime (ms) of entries Keyv writes without a TTL (`keyv.set(k, v)` with no `ttl` option on
   * the Keyv or the call). A cache always expires: Keyv's "no TTL" means this long here.
   * @default the cache's `defaultTtlMs`
   */
  defaultTtlMs?: number;
  /**
   * Fail-safe window (ms) kept past each entry's TTL on the tiers (`staleTtlMs` of the cache's
   * `set`). Keyv reads never return stale entries; the window serves the cache's own
   * `getOrLoad` callers that share the keys. @default the cache's `staleTtlMs`
   */
  staleTtlMs?: number;
  /**
   * How long (ms) this process may keep using a namespace generation it read from a cache that has
   * no local (L1) tier. With an L1 in front, the generation lives there and another instance's
   * `clear()` reaches this one through the invalidation bus at once. @default 1000
   */
  namespaceCheckMs?: number;
  /**
   * Opt-in cross-instance coalescing of get-then-set patterns (cache-manager's `wrap`): a miss takes
   * a distributed lease on the key; the `set` of that key from this instance releases it; another
   * instance's `get` of the key waits for the release (at most `waitMs`) and then reads the value
   * the holder stored. @default undefined (off)
   */
  lockOnMiss?: KeyvLockOnMissOptions;
  /** Close the cache in {@link KeyvStore.disconnect}. @default false (the cache was handed in) */
  closeCacheOnDisconnect?: boolean;
  /**
   * A `set` that fills a key this store just missed (within a minute: cache-manager's `wrap` — get,
   * function, set — or any cache-aside load) answers once the write has started; the tiers' writes
   * finish in the background, as the cache's own loads do. The write's version is taken at the
   * call, so a delete or set of the key on another instance after it wins. Until it lands, other
   * instances read what the shared tiers held (a miss, or a value written elsewhere after this
   * store's miss); this store's reads and writes of the key wait for it, a `lockOnMiss` lease is
   * released only once it landed, and a failure after the write started is reported on `'error'`
   * (one refused before any I/O rejects, as an awaited `set` does). A `set` that replaces a value
   * this store did not just miss, `setMany` and every delete still wait for every tier.
   * `false`: every `set` waits. @default true
   */
  backgroundFills?: boolean;
}

/** How long (ms) after a miss of a key its `set` counts as filling it ({@link KeyvStoreOptions.backgroundFills}). */
const FILL_WINDOW_MS = 60_000;
/**
 * Missed keys remembered for {@link KeyvStoreOptions.backgroundFills}: the last 5,000 to 10,000 (two
 * generations of 5,000, the older one dropped whole when the newer one fills: evicting a Map's
 * first entry one at a time walks its deleted slots on every eviction, ~15-20 µs at 10,000).
 */
const MISS_GENERATION = 5_000;

/** A lease this instance holds for a missed key, until its `set` (or the lease time). */
interface HeldLease {
  lease: Lease | undefined;
  timer: ReturnType<typeof setTimeout>;
  released: Promise<void>;
  release: () => void;
}

interface Generation {
  value: string;
  until: number;
}

const NAMESPACE_TTL_MS = 365 * 86_400_000;
/** `endpoint` metric label of namespace-generation reads, so they do not count as the application's hits. */
const NAMESPACE_ENDPOINT = 'keyv_namespace';

/**
 * A Keyv storage adapter over a {@link MultiLevelCache}: `new Keyv({ store: new KeyvStore(cache) })`
 * runs Keyv — and cache-manager v7 and `@nestjs/cache-manager` on top of it — on the cache's tiers,
 * with its fail-safe (a failing tier is skipped, never a failed request), circuit breakers,
 * metrics and cross-instance invalidation.
 *
 * What reaches the cache: the value Keyv hands its store, i.e. Keyv's serialized record
 * (`{"value":…,"expires":…}` as a string by default; the record object itself when the Keyv is
 * built with `serialize: undefined`, as {@link createKeyv} builds it; a record holding binary data
 * is then stored as JSON text with the bytes in base64, and read back with `Buffer`s). Keyv's TTL
 * (ms) becomes the entry's fresh lifetime.
 *
 * Namespaces: Keyv sets the store's `namespace` and prefixes keys with `namespace:`. Each
 * namespace has a generation stored in the cache (key `<prefix>n/<namespace>`); data keys are
 * `<prefix>g<generation>/<keyv key>`. `clear()` starts a new generation, so every instance stops
 * seeing the namespace's entries at once (another namespace is untouched); the old entries are no
 * longer reachable and the tiers reclaim them as they expire.
 */
export class KeyvStore extends EventEmitter {
  /** Keyv's adapter options record (Keyv and `@keyv/test-suite` read and write it). */
  opts: Record<string, unknown>;
  /** The namespace Keyv assigned to this store (`undefined` for none). */
  namespace: string | undefined;
  /** The cache this store reads and writes. */
  readonly cache: MultiLevelCache;
  private readonly prefix: string;
  private readonly defaultTtlMs: number | undefined;
  private readonly staleTtlMs: number | undefined;
  private readonly namespaceCheckMs: number;
  private readonly hasLocalTier: boolean;
  /** The cache's first tier when it is a local one with a synchronous read (a memory L1). */
  private readonly l1: Tier | undefined;
  private readonly lock: DistributedLock | undefined;
  private readonly leaseMs: number;
  private readonly waitMs: number;
  private readonly closeCache: boolean;
  private readonly backgroundFills: boolean;
  /** Keys this store missed and has not written since, with the (monotonic) time of the miss: the newer generation. */
  private misses = new Map<string, number>();
  /** The older generation of {@link KeyvStore.misses}. */
  private missesBefore = new Map<string, number>();
  /** Background fills in flight, by cache key: resolve (never reject) once the write settled. */
  private readonly filling = new Map<string, Promise<void>>();
  private readonly generations = new Map<string, Generation>();
  private readonly held = new Map<string, HeldLease>();
  private readonly loadingGenerations = new Map<string, Promise<string>>();
  /** The namespace of the last {@link KeyvStore.generation} call and its key (Keyv may change `namespace`). */
  private lastNamespace = '';
  private lastNamespaceKey: string;
  private forwarding = false;

  constructor(cache: MultiLevelCache, options: KeyvStoreOptions = {}) {
    super();
    if (cache === null || typeof cache !== 'object' || typeof cache.get !== 'function') {
      throw new ConfigError('cache', 'KeyvStore needs a MultiLevelCache: new KeyvStore(cache)');
    }
    this.cache = cache;
    this.prefix = options.prefix ?? 'keyv/';
    this.defaultTtlMs = positive('defaultTtlMs', options.defaultTtlMs);
    this.staleTtlMs = nonNegative('staleTtlMs', options.staleTtlMs);
    this.namespaceCheckMs = nonNegative('namespaceCheckMs', options.namespaceCheckMs) ?? 1000;
    this.hasLocalTier = cache.tiers.some((t) => t.scope === 'local');
    const first = cache.tiers[0];
    this.l1 = first?.scope === 'local' && typeof first.getSync === 'function' ? first : undefined;
    this.lock = options.lockOnMiss?.lock;
    this.leaseMs = positive('lockOnMiss.leaseMs', options.lockOnMiss?.leaseMs) ?? 15_000;
    this.waitMs = nonNegative('lockOnMiss.waitMs', options.lockOnMiss?.waitMs) ?? this.leaseMs;
    this.closeCache = options.closeCacheOnDisconnect ?? false;
    this.backgroundFills = options.backgroundFills ?? true;
    this.opts = { dialect: 'bgc', url: '', prefix: this.prefix };
    this.lastNamespaceKey = this.namespaceKey('');
    // Keyv subscribes to 'error' on its store; tier failures are forwarded then (and only then).
    this.on('newListener', (event: string) => {
      if (event === 'error' && !this.forwarding) {
        this.forwarding = true;
        forwarderOf(this.cache).add(new WeakRef(this));
      }
    });
  }

  /**
   * Keyv's record stored under `key`, or `undefined` on a miss. With `lockOnMiss`, a miss takes the
   * key's lease (this caller is expected to `set` the key next), or, when another instance holds
   * it, waits for that instance's `set` and returns what it stored.
   */
  get<Value>(key: string): Promise<Value | undefined> {
    const g = this.generation();
    if (typeof g === 'string' && !this.lock) {
      const cacheKey = `${this.prefix}g${g}/${key}`;
      // The hot path: no await between Keyv and the cache's read (unless the key is being filled).
      if (this.filling.size === 0 || !this.filling.has(cacheKey))
        return this.cache.get<Value>(cacheKey).then((r) => {
          const value = resultValue(r);
          if (value === undefined) this.missed(cacheKey);
          return value;
        });
    }
    return this.getSlow<Value>(g, key);
  }

  private async getSlow<Value>(g: string | Promise<string>, key: string): Promise<Value | undefined> {
    const cacheKey = `${this.prefix}g${await g}/${key}`;
    const hit = await this.read<Value>(cacheKey);
    if (hit !== undefined) return hit;
    const value = this.lock ? await this.missWithLock<Value>(cacheKey) : undefined;
    if (value === undefined) this.missed(cacheKey);
    return value;
  }

  /** Keyv's records of `keys`, aligned, `undefined` for misses (one round trip per tier). */
  async getMany<Value>(keys: string[]): Promise<(Value | undefined)[]> {
    if (keys.length === 0) return [];
    const cacheKeys = await this.cacheKeys(keys);
    await this.filled(cacheKeys);
    const results = await this.cache.getMany<Value>(cacheKeys);
    return results.map(resultValue);
  }

  /**
   * Stores Keyv's record under `key` on every tier for `ttl` ms (no TTL: `defaultTtlMs`), and
   * tells other instances to drop their local copy. A `ttl` of 0 or less removes the key (it is
   * already expired). Releases this instance's `lockOnMiss` lease of the key.
   */
  set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const g = this.generation();
    if (typeof g === 'string') {
      // The hot path (a wrap's write): no async frame of ours between Keyv and the cache's write.
      const cacheKey = `${this.prefix}g${g}/${key}`;
      if (this.isFill(cacheKey, value, ttl)) return this.fillInBackground(cacheKey, value, ttl);
      if (this.held.size === 0 && (this.filling.size === 0 || !this.filling.has(cacheKey))) {
        try {
          const written =
            typeof ttl === 'number' && ttl <= 0
              ? this.cache.delete(cacheKey)
              : this.cache.set(cacheKey, wrapBinary(value), this.setOptions(ttl));
          return written.then(stored);
        } catch (error) {
          return Promise.reject(error);
        }
      }
    }
    return this.setSlow(g, key, value, ttl);
  }

  private async setSlow(
    g: string | Promise<string>,
    key: string,
    value: unknown,
    ttl: number | undefined,
  ): Promise<boolean> {
    const cacheKey = `${this.prefix}g${await g}/${key}`;
    if (this.isFill(cacheKey, value, ttl)) return this.fillInBackground(cacheKey, value, ttl);
    // A write of a key being filled in the background lands after the fill (versions decide anyway).
    await this.filling.get(cacheKey);
    try {
      if (typeof ttl === 'number' && ttl <= 0) await this.cache.delete(cacheKey);
      else await this.cache.set(cacheKey, wrapBinary(value), this.setOptions(ttl));
    } finally {
      this.releaseHeld(cacheKey);
    }
    return true;
  }

  /** Stores many records, one round trip per tier that has a batch write. */
  async setMany(entries: { key: string; value: unknown; ttl?: number }[]): Promise<void> {
    if (entries.length === 0) return;
    const cacheKeys = await this.cacheKeys(entries.map((e) => e.key));
    await this.filled(cacheKeys);
    const live: { key: string; value: unknown; ttlMs?: number; staleTtlMs?: number }[] = [];
    const expired: string[] = [];
    entries.forEach((e, i) => {
      const key = cacheKeys[i] as string;
      if (typeof e.ttl === 'number' && e.ttl <= 0) expired.push(key);
      else live.push({ key, value: wrapBinary(e.value), ...this.setOptions(e.ttl) });
    });
    try {
      if (live.length > 0) await this.cache.setMany(live);
      if (expired.length > 0) await this.cache.deleteMany(expired);
    } finally {
      for (const k of cacheKeys) this.releaseHeld(k);
    }
  }

  /** Removes `key` from every tier and every instance's local tier. Resolves whether it existed. */
  async delete(key: string): Promise<boolean> {
    const cacheKey = await this.cacheKey(key);
    // After a background fill of the key has landed: a delete is never overtaken by an older write.
    await this.filling.get(cacheKey);
    return (await this.cache.deleteMany([cacheKey])) > 0;
  }

  /** Removes `keys` from every tier and instance. Resolves `true` when at least one existed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    if (keys.length === 0) return false;
    const cacheKeys = await this.cacheKeys(keys);
    await this.filled(cacheKeys);
    return (await this.cache.deleteMany(cacheKeys)) > 0;
  }

  /** Whether `key` holds a live (fresh) record. Never takes a `lockOnMiss` lease. */
  async has(key: string): Promise<boolean> {
    const cacheKey = await this.cacheKey(key);
    await this.filling.get(cacheKey);
    return (await this.read(cacheKey)) !== undefined;
  }

  /** Whether each of `keys` holds a live record. */
  async hasMany(keys: string[]): Promise<boolean[]> {
    return (await this.getMany(keys)).map((v) => v !== undefined);
  }

  /**
   * Removes every entry of this store's namespace (and only that namespace), on every tier and
   * every instance: a new namespace generation is written, so the old keys are no longer reached.
   */
  async clear(): Promise<void> {
    const ns = this.namespace ?? '';
    const value = nextVersion().toString(36);
    await this.cache.set(this.namespaceKey(ns), value, { ttlMs: NAMESPACE_TTL_MS, staleTtlMs: 0 });
    this.generations.set(ns, { value, until: Date.now() + this.namespaceCheckMs });
  }

  /**
   * Waits for the background fills in flight, releases the leases this store holds, stops
   * forwarding errors, and closes the cache when `closeCacheOnDisconnect` is set.
   */
  async disconnect(): Promise<void> {
    await Promise.all(this.filling.values());
    for (const k of [...this.held.keys()]) this.releaseHeld(k);
    this.forwarding = false;
    if (this.closeCache) await this.cache.close();
  }

  /** @internal Forwards a cache error to the store's listeners when it concerns its keys (or no key). */
  forwardError(event: CacheErrorEvent): void {
    if (!this.forwarding) return;
    if (event.key !== undefined && !event.key.startsWith(this.prefix)) return;
    this.emit('error', event.error);
  }

  /** Remembers a miss of `cacheKey` (a `set` of it soon after is a fill). */
  private missed(cacheKey: string): void {
    if (!this.backgroundFills) return;
    if (this.misses.size >= MISS_GENERATION) {
      this.missesBefore = this.misses;
      this.misses = new Map();
    }
    this.misses.set(cacheKey, performance.now());
  }

  /**
   * Whether a write of `value` under `cacheKey` fills this store's recent miss (and forgets the
   * miss). A value the cache refuses before any I/O (`undefined`, a function, a symbol: its key was
   * read without error) is not: its awaited write rejects, and Keyv answers `false`.
   */
  private isFill(cacheKey: string, value: unknown, ttl: number | undefined): boolean {
    if (this.misses.size === 0 && this.missesBefore.size === 0) return false;
    let at = this.misses.get(cacheKey);
    if (at !== undefined) this.misses.delete(cacheKey);
    if (this.missesBefore.size !== 0) {
      // A key missed again after a rotation is in both generations: the newer time counts.
      const before = this.missesBefore.get(cacheKey);
      if (before !== undefined) {
        this.missesBefore.delete(cacheKey);
        at ??= before;
      }
    }
    if (at === undefined) return false;
    return (
      performance.now() - at < FILL_WINDOW_MS &&
      !(typeof ttl === 'number' && ttl <= 0) &&
      value !== undefined &&
      typeof value !== 'function' &&
      typeof value !== 'symbol'
    );
  }

  /**
   * Starts the write of a fill and answers at once: reads, writes and deletes of the key in this
   * store wait for it, the `lockOnMiss` lease is released once it landed, a failure goes to `'error'`.
   */
  private fillInBackground(cacheKey: string, value: unknown, ttl: number | undefined): Promise<boolean> {
    let write: Promise<void>;
    try {
      write = this.cache.set(cacheKey, wrapBinary(value), this.setOptions(ttl));
    } catch (error) {
      this.releaseHeld(cacheKey);
      return Promise.reject(error);
    }
    const done: Promise<void> = write.then(
      () => this.fillSettled(cacheKey, done),
      (error: unknown) => {
        this.fillSettled(cacheKey, done);
        try {
          if (this.listenerCount('error') > 0) this.emit('error', error);
        } catch {
          // A throwing 'error' listener must not leave a rejected fill behind.
        }
      },
    );
    this.filling.set(cacheKey, done);
    return ANSWERED;
  }

  private fillSettled(cacheKey: string, done: Promise<void>): void {
    if (this.filling.get(cacheKey) === done) this.filling.delete(cacheKey);
    this.releaseHeld(cacheKey);
  }

  /** Resolves once the background fills of `cacheKeys` in flight have landed. */
  private filled(cacheKeys: readonly string[]): Promise<unknown> | undefined {
    if (this.filling.size === 0) return undefined;
    const pending: Promise<void>[] = [];
    for (const k of cacheKeys) {
      const p = this.filling.get(k);
      if (p) pending.push(p);
    }
    return pending.length > 0 ? Promise.all(pending) : undefined;
  }

  private setOptions(ttl: number | undefined): { ttlMs?: number; staleTtlMs?: number } {
    const ttlMs = typeof ttl === 'number' && Number.isFinite(ttl) ? ttl : this.defaultTtlMs;
    const out: { ttlMs?: number; staleTtlMs?: number } = {};
    if (ttlMs !== undefined) out.ttlMs = ttlMs;
    if (this.staleTtlMs !== undefined) out.staleTtlMs = this.staleTtlMs;
    return out;
  }

  private async read<Value>(cacheKey: string): Promise<Value | undefined> {
    await this.filling.get(cacheKey);
    return resultValue(await this.cache.get<Value>(cacheKey));
  }

  private namespaceKey(ns: string): string {
    return `${this.prefix}n/${ns}`;
  }

  private async cacheKey(key: string): Promise<string> {
    return `${this.prefix}g${await this.generation()}/${key}`;
  }

  private async cacheKeys(keys: readonly string[]): Promise<string[]> {
    const g = `${this.prefix}g${await this.generation()}/`;
    return keys.map((k) => g + k);
  }

  /** The current generation of this store's namespace: from L1, this process' memo, or the shared tiers. */
  private generation(): string | Promise<string> {
    const ns = this.namespace ?? '';
    // The namespace key, built once per namespace (two reads of it per get-then-set otherwise).
    if (ns !== this.lastNamespace) {
      this.lastNamespace = ns;
      this.lastNamespaceKey = this.namespaceKey(ns);
    }
    const nsKey = this.lastNamespaceKey;
    // Straight from the L1 tier: the policy counts the access (the key stays hot), the cache's
    // hit/miss metrics do not (these reads are the store's bookkeeping, not the application's).
    const fast = this.l1?.getSync?.(nsKey);
    if (fast !== undefined && typeof fast.value === 'string' && fast.freshUntil > Date.now())
      return fast.value;
    if (!this.hasLocalTier) {
      const memo = this.generations.get(ns);
      if (memo && memo.until > Date.now()) return memo.value;
    }
    let pending = this.loadingGenerations.get(nsKey);
    if (!pending) {
      pending = this.loadGeneration(nsKey).then(
        (value) => {
          this.loadingGenerations.delete(nsKey);
          this.generations.set(ns, { value, until: Date.now() + this.namespaceCheckMs });
          return value;
        },
        (error: unknown) => {
          this.loadingGenerations.delete(nsKey);
          throw error;
        },
      );
      this.loadingGenerations.set(nsKey, pending);
    }
    return pending;
  }

  /**
   * Reads the namespace generation from the tiers, or starts the namespace's first generation.
   * With `lockOnMiss`, the first generation is created under the lock, so that instances starting
   * together agree on it (otherwise each could write its own and their keys would differ until the
   * last write reaches them through the bus: misses, never stale data).
   */
  private async loadGeneration(nsKey: string): Promise<string> {
    const stored = await this.readGeneration(nsKey);
    if (stored !== undefined) return stored;
    let lease: Lease | undefined;
    if (this.lock) {
      try {
        lease = await this.lock.tryAcquire(nsKey, this.leaseMs);
        if (!lease) {
          await this.lock.waitForRelease(nsKey, this.waitMs);
          const created = await this.readGeneration(nsKey);
          if (created !== undefined) return created;
        }
      } catch (error) {
        this.emit('error', error);
      }
    }
    try {
      const again = lease ? await this.readGeneration(nsKey) : undefined;
      if (again !== undefined) return again;
      const value = nextVersion().toString(36);
      await this.cache.set(nsKey, value, { ttlMs: NAMESPACE_TTL_MS, staleTtlMs: 0 });
      return value;
    } finally {
      await lease?.release();
    }
  }

  private async readGeneration(nsKey: string): Promise<string | undefined> {
    const r = await this.cache.get<string>(nsKey, { endpoint: NAMESPACE_ENDPOINT });
    return typeof r.value === 'string' ? r.value : undefined;
  }

  private async missWithLock<Value>(cacheKey: string): Promise<Value | undefined> {
    const lock = this.lock as DistributedLock;
    const mine = this.held.get(cacheKey);
    if (mine) {
      // Another caller in this process holds the lease: wait for its set, locally.
      await Promise.race([mine.released, sleep(this.waitMs)]);
      return this.read<Value>(cacheKey);
    }
    let lease: Lease | undefined;
    try {
      lease = await lock.tryAcquire(cacheKey, this.leaseMs);
    } catch (error) {
      // The lock's backend is down: load without it (the caller's set still writes the tiers).
      this.emit('error', error);
      return undefined;
    }
    if (lease) return this.holdUnlessStored<Value>(cacheKey, lease);
    await lock.waitForRelease(cacheKey, this.waitMs);
    const value = await this.read<Value>(cacheKey);
    if (value !== undefined) return value;
    // The holder stored nothing (its function failed or its lease ran out): this caller loads, once
    // per process, under a lease of its own when it can take one.
    return this.missWithLockRetry<Value>(cacheKey);
  }

  private async missWithLockRetry<Value>(cacheKey: string): Promise<Value | undefined> {
    const mine = this.held.get(cacheKey);
    if (mine) {
      await Promise.race([mine.released, sleep(this.waitMs)]);
      return this.read<Value>(cacheKey);
    }
    let lease: Lease | undefined;
    try {
      lease = await (this.lock as DistributedLock).tryAcquire(cacheKey, this.leaseMs);
    } catch {
      return undefined;
    }
    if (lease) return this.holdUnlessStored<Value>(cacheKey, lease);
    this.hold(cacheKey, undefined);
    return undefined;
  }

  /**
   * Just took the lease: the previous holder may have stored the value and released between this
   * caller's miss and its acquire, so read once more; hold the lease only on a miss.
   */
  private async holdUnlessStored<Value>(cacheKey: string, lease: Lease): Promise<Value | undefined> {
    this.hold(cacheKey, lease);
    const value = await this.read<Value>(cacheKey);
    if (value !== undefined) this.releaseHeld(cacheKey);
    return value;
  }

  private hold(cacheKey: string, lease: Lease | undefined): void {
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const timer = setTimeout(() => this.releaseHeld(cacheKey), this.leaseMs);
    timer.unref?.();
    this.held.set(cacheKey, { lease, timer, released, release });
  }

  private releaseHeld(cacheKey: string): void {
    const h = this.held.get(cacheKey);
    if (!h) return;
    this.held.delete(cacheKey);
    clearTimeout(h.timer);
    h.release();
    void h.lease?.release();
  }
}

const resultValue = <Value>(r: CacheResult<Value>): Value | undefined => unwrapBinary(r.value ?? undefined);

/** What Keyv's `set` resolves: the record was handed to every tier (a failing one is reported and skipped). */
const stored = (): true => true;

/** What a background fill answers (one settled promise, shared: nothing is chained on it here). */
const ANSWERED: Promise<boolean> = Promise.resolve(true);

/** One 'error' listener per cache, forwarding to the stores still alive (many Keyv instances may share a cache). */
const forwarders = new WeakMap<MultiLevelCache, Set<WeakRef<KeyvStore>>>();

function forwarderOf(cache: MultiLevelCache): Set<WeakRef<KeyvStore>> {
  let stores = forwarders.get(cache);
  if (!stores) {
    const set = new Set<WeakRef<KeyvStore>>();
    stores = set;
    forwarders.set(cache, set);
    cache.on('error', (event: CacheErrorEvent) => {
      for (const ref of set) {
        const store = ref.deref();
        if (store) store.forwardError(event);
        else set.delete(ref);
      }
    });
  }
  return stores;
}

const sleep = (ms: number) =>
  new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    t.unref?.();
  });

function positive(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!(typeof v === 'number' && v > 0 && Number.isFinite(v)))
    throw new ConfigError(name, `${v} must be a positive number of ms`);
  return v;
}

function nonNegative(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!(typeof v === 'number' && v >= 0 && Number.isFinite(v)))
    throw new ConfigError(name, `${v} must be a non-negative number of ms`);
  return v;
}
