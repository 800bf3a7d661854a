import { type CacheEntry, createEntry, type Level, type Tier } from '@bgc/cache-core';
import type { ComexStatCache } from './comexstat-connector.js';

/** Options of {@link SingleTierCache}. */
export interface SingleTierCacheOptions {
  /** The tier to store in; default an in-process Map (nothing shared, nothing persisted). */
  tier?: Tier;
  /** TTL when a call gives none, ms. @default 300000 */
  defaultTtlMs?: number;
  /** Clock, epoch ms. @default Date.now */
  now?: () => number;
}

/**
 * A minimal {@link ComexStatCache} over one tier: per-key single-flight loads, stale entries served
 * when the loader fails. For CLI dry runs and tests; production code passes a `MultiLevelCache`.
 */
export class SingleTierCache implements ComexStatCache {
  private readonly tier: Tier | undefined;
  private readonly map = new Map<string, CacheEntry>();
  private readonly loads = new Map<string, Promise<{ value: unknown; level: Level; stale: boolean }>>();
  private readonly defaultTtlMs: number;
  private readonly now: () => number;
  /** The level reported for hits. */
  readonly level: Level;

  constructor(options: SingleTierCacheOptions = {}) {
    this.tier = options.tier;
    this.level = options.tier?.level ?? 'l1';
    this.defaultTtlMs = options.defaultTtlMs ?? 300_000;
    this.now = options.now ?? Date.now;
  }

  /** Entries held by the built-in Map store (0 with a tier). */
  get size(): number {
    return this.map.size;
  }

  /** Reads one key, `undefined` on a miss. */
  async get<T>(key: string): Promise<CacheEntry<T> | undefined> {
    const e = this.tier ? await this.tier.get(key) : this.map.get(key);
    if (!e || e.staleUntil <= this.now()) return undefined;
    return e as CacheEntry<T>;
  }

  async getOrLoad<T>(
    key: string,
    loader: (ctx: { key: string; signal: AbortSignal }) => Promise<T>,
    opts: { ttlMs?: number | ((value: T) => number); staleTtlMs?: number } = {},
  ): Promise<{ value: T; level: Level; stale: boolean }> {
    const entry = await this.get<T>(key);
    if (entry && entry.freshUntil > this.now())
      return { value: entry.value, level: this.level, stale: false };
    const running = this.loads.get(key);
    if (running) return running as Promise<{ value: T; level: Level; stale: boolean }>;
    const p = (async () => {
      try {
        const value = await loader({ key, signal: new AbortController().signal });
        const ttl = typeof opts.ttlMs === 'function' ? opts.ttlMs(value) : (opts.ttlMs ?? this.defaultTtlMs);
        await this.write(key, createEntry(value, ttl, opts.staleTtlMs ?? 0, this.now()));
        return { value, level: 'external' as Level, stale: false };
      } catch (error) {
        if (entry) return { value: entry.value, level: this.level, stale: true };
        throw error;
      } finally {
        this.loads.delete(key);
      }
    })();
    this.loads.set(key, p);
    return p;
  }

  async setMany(
    items: { key: string; value: unknown; ttlMs?: number; staleTtlMs?: number }[],
  ): Promise<void> {
    const now = this.now();
    const writes = items.map((i) => ({
      key: i.key,
      entry: createEntry(i.value, i.ttlMs ?? this.defaultTtlMs, i.staleTtlMs ?? 0, now),
    }));
    if (this.tier?.setMany) return this.tier.setMany(writes);
    for (const w of writes) await this.write(w.key, w.entry);
  }

  async getMany<T>(keys: string[]): Promise<{ value: T | undefined; level: Level }[]> {
    const entries = this.tier?.getMany
      ? await this.tier.getMany(keys)
      : await Promise.all(keys.map((k) => this.get(k)));
    const now = this.now();
    return entries.map((e) => ({
      value: e && e.staleUntil > now ? (e.value as T) : undefined,
      level: e ? this.level : 'external',
    }));
  }

  /** Removes one key. */
  async delete(key: string): Promise<void> {
    if (this.tier) await this.tier.delete(key);
    else this.map.delete(key);
  }

  private async write(key: string, entry: CacheEntry): Promise<void> {
    if (this.tier) await this.tier.set(key, entry);
    else this.map.set(key, entry);
  }
}
