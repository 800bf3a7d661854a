import { capEntry, type CacheEntry } from '../entry.js';
import type { TierLevel } from '../level.js';
import type { ReadCallbacks, Tier, TierWrite } from '../tier.js';

/** Options of {@link FakeTier}. */
export interface FakeTierOptions {
  /** @default 'l1' */
  level?: TierLevel;
  /** @default 'local' for l1, 'shared' otherwise */
  scope?: 'local' | 'shared';
  /** @default `fake-${level}` */
  name?: string;
  maxTtlMs?: number;
  /** Offer `getSync`. @default false */
  sync?: boolean;
  /** Offer `getFreshValueSync` too (with `sync`). @default false */
  fresh?: boolean;
  /** Offer `getWith` (the callback form of `get`). @default false */
  callbacks?: boolean;
  /** Offer `getMany`/`setMany`/`deleteMany`. @default false */
  batch?: boolean;
  /** Another FakeTier's store to share (simulates a shared backend seen by two instances). */
  store?: Map<string, CacheEntry>;
}

/**
 * An in-memory tier with fault injection, for unit tests of code built on tiers (never a
 * substitute for a real backend in a tier's own tests). `failWith` makes every call reject,
 * `delayMs` delays every call, and `calls` counts calls per operation.
 */
export class FakeTier implements Tier {
  readonly name: string;
  readonly level: TierLevel;
  readonly scope: 'local' | 'shared';
  readonly maxTtlMs: number | undefined;
  readonly store: Map<string, CacheEntry>;
  /** Calls per operation name. */
  readonly calls: Record<string, number> = {};
  /** When set, every operation rejects with it. */
  failWith: Error | undefined;
  /** When > 0, every async operation waits this long first (ms). */
  delayMs = 0;
  closed = false;
  getSync?: (key: string) => CacheEntry | undefined;
  getFreshValueSync?: (key: string, now: number) => unknown;
  getWith?: (key: string, callbacks: ReadCallbacks) => void;
  getMany?: (keys: readonly string[]) => Promise<(CacheEntry | undefined)[]>;
  setMany?: (writes: readonly TierWrite[]) => Promise<void>;
  deleteMany?: (keys: readonly string[]) => Promise<number>;

  constructor(options: FakeTierOptions = {}) {
    this.level = options.level ?? 'l1';
    this.scope = options.scope ?? (this.level === 'l1' ? 'local' : 'shared');
    this.name = options.name ?? `fake-${this.level}`;
    this.maxTtlMs = options.maxTtlMs;
    this.store = options.store ?? new Map();
    if (options.sync) {
      this.getSync = (key) => {
        this.count('getSync');
        if (this.failWith) throw this.failWith;
        return this.read(key);
      };
      if (options.fresh) {
        this.getFreshValueSync = (key, now) => {
          this.count('getFreshValueSync');
          if (this.failWith) throw this.failWith;
          const e = this.store.get(key);
          return e && e.freshUntil > now ? e.value : undefined;
        };
      }
    }
    if (options.callbacks) {
      this.getWith = (key, callbacks) => {
        this.enter('getWith').then(
          () => callbacks.ok(this.read(key)),
          (error: unknown) => callbacks.failed(error),
        );
      };
    }
    if (options.batch) {
      this.getMany = async (keys) => {
        await this.enter('getMany');
        return keys.map((key) => this.read(key));
      };
      this.setMany = async (writes) => {
        await this.enter('setMany');
        for (const w of writes) this.store.set(w.key, capEntry(w.entry, this.maxTtlMs));
      };
      this.deleteMany = async (keys) => {
        await this.enter('deleteMany');
        let n = 0;
        for (const key of keys) if (this.store.delete(key)) n++;
        return n;
      };
    }
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    await this.enter('get');
    return this.read(key);
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    await this.enter('set');
    this.store.set(key, capEntry(entry, this.maxTtlMs));
  }

  async delete(key: string): Promise<boolean> {
    await this.enter('delete');
    return this.store.delete(key);
  }

  async clear(): Promise<void> {
    await this.enter('clear');
    this.store.clear();
  }

  async ping(): Promise<void> {
    await this.enter('ping');
  }

  async close(): Promise<void> {
    this.count('close');
    this.closed = true;
  }

  private read(key: string): CacheEntry | undefined {
    const e = this.store.get(key);
    if (!e) return undefined;
    if (e.staleUntil <= Date.now()) {
      this.store.delete(key);
      return undefined;
    }
    return e;
  }

  private count(op: string): void {
    this.calls[op] = (this.calls[op] ?? 0) + 1;
  }

  private async enter(op: string): Promise<void> {
    this.count(op);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failWith) throw this.failWith;
  }
}
