import { capEntry, type CacheEntry } from '../entry.js';
import type { TierLevel } from '../level.js';
import type {
  ReadCallbacks,
  Tier,
  TierAttachment,
  TierClearOptions,
  TierDeleteOptions,
  TierWrite,
} from '../tier.js';
import { decodeValue, encodeValue } from '../value-codec.js';
import { nextVersion } from '../version.js';

/** Options of {@link FakeTier}. */
export interface FakeTierOptions {
  /** @default 'l1' */
  level?: TierLevel;
  /** @default 'local' for l1, 'shared' otherwise */
  scope?: 'local' | 'shared';
  /** @default `fake-${level}` */
  name?: string;
  /** Longest lifetime (ms) kept, unless attached as the last tier. @default undefined (the entry's own) */
  maxTtlMs?: number;
  /** Offer `getSync` and `setSync`. @default false */
  sync?: boolean;
  /** Offer `getFreshValueSync` too (with `sync`). @default false */
  fresh?: boolean;
  /** Offer `getWith` (the callback form of `get`). @default false */
  callbacks?: boolean;
  /** Offer `getMany`/`setMany`/`deleteMany`. @default false */
  batch?: boolean;
  /**
   * Another FakeTier's store to share (simulates a shared backend seen by two instances). The
   * tombstones and the "cleared at" version go with the store, so sharers see them too.
   */
  store?: Map<string, CacheEntry>;
  /**
   * Keep tombstones and a "cleared at" version, as shared tiers do (see {@link Tier.delete}).
   * @default true for a shared tier, false for a local one
   */
  tombstones?: boolean;
  /** Tombstone lifetime (ms) when a versioned delete gives none. @default 60000 */
  tombstoneMs?: number;
  /**
   * Store values as the core's value codec text would carry them (each value is encoded and decoded
   * on write, so that types and copies behave like a real shared tier's, and invalid values reject).
   * @default false
   */
  codec?: boolean;
  /** The tier's clock (epoch ms). @default Date.now */
  now?: () => number;
}

/** A tombstone left by a versioned delete: the delete's version and until when (epoch ms) it holds. */
interface Tombstone {
  version: number;
  until: number;
}

/** Coherence state that goes with a store: tombstones, and the last clear's version. */
interface Guards {
  tombstones: Map<string, Tombstone>;
  clearedAt: number;
}

const GUARDS = new WeakMap<Map<string, CacheEntry>, Guards>();

function guardsOf(store: Map<string, CacheEntry>): Guards {
  let guards = GUARDS.get(store);
  if (!guards) {
    guards = { tombstones: new Map(), clearedAt: 0 };
    GUARDS.set(store, guards);
  }
  return guards;
}

/**
 * An in-memory tier with fault injection, for unit tests of code built on tiers (never a
 * substitute for a real backend in a tier's own tests). `failWith` makes every call reject,
 * `delayMs` delays every call, and `calls` counts calls per operation.
 *
 * It follows the coherence contract: versioned writes never replace a higher version, versioned
 * deletes leave tombstones (shared scope), `clear()` refuses older writes, `expire`/`expireAll`
 * turn entries stale, and `attach({ lastTier: true })` lifts the `maxTtlMs` cap.
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
  /** What {@link FakeTier.attach} was given, if it was called. */
  attachment: TierAttachment | undefined;
  /** How many writes were dropped because a higher version (entry, tombstone or clear) was stored. */
  dropped = 0;
  getSync?: (key: string) => CacheEntry | undefined;
  setSync?: (key: string, entry: CacheEntry) => void;
  getFreshValueSync?: (key: string, now: number) => unknown;
  getWith?: (key: string, callbacks: ReadCallbacks) => void;
  getMany?: (keys: readonly string[]) => Promise<(CacheEntry | undefined)[]>;
  setMany?: (writes: readonly TierWrite[]) => Promise<void>;
  deleteMany?: (keys: readonly string[], options?: TierDeleteOptions) => Promise<number>;

  private readonly guards: Guards;
  private readonly keepsTombstones: boolean;
  private readonly tombstoneMs: number;
  private readonly codec: boolean;
  private readonly now: () => number;

  constructor(options: FakeTierOptions = {}) {
    this.level = options.level ?? 'l1';
    this.scope = options.scope ?? (this.level === 'l1' ? 'local' : 'shared');
    this.name = options.name ?? `fake-${this.level}`;
    this.maxTtlMs = options.maxTtlMs;
    this.store = options.store ?? new Map();
    this.guards = guardsOf(this.store);
    this.keepsTombstones = options.tombstones ?? this.scope === 'shared';
    this.tombstoneMs = options.tombstoneMs ?? 60_000;
    this.codec = options.codec ?? false;
    this.now = options.now ?? Date.now;
    if (options.sync) {
      this.getSync = (key) => {
        this.count('getSync');
        if (this.failWith) throw this.failWith;
        return this.read(key);
      };
      this.setSync = (key, entry) => {
        this.count('setSync');
        if (this.failWith) throw this.failWith;
        this.write(key, this.prepare(entry));
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
        const prepared = writes.map((w) => ({ key: w.key, entry: this.prepare(w.entry) }));
        for (const w of prepared) this.write(w.key, w.entry);
      };
      this.deleteMany = async (keys, opts) => {
        await this.enter('deleteMany');
        let n = 0;
        for (const key of keys) if (this.remove(key, opts)) n++;
        return n;
      };
    }
  }

  /** Records the orchestrator's attachment; a last tier keeps entries' own lifetimes. */
  attach(attachment: TierAttachment): void {
    this.count('attach');
    this.attachment = attachment;
  }

  /** Resolves at once (rejects with `failWith` when set). */
  async connect(): Promise<void> {
    await this.enter('connect');
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    await this.enter('get');
    return this.read(key);
  }

  async set(key: string, entry: CacheEntry): Promise<void> {
    await this.enter('set');
    this.write(key, this.prepare(entry));
  }

  async delete(key: string, options?: TierDeleteOptions): Promise<boolean> {
    await this.enter('delete');
    return this.remove(key, options);
  }

  /** Logical expiry of `keys` (see {@link Tier.expire}). */
  async expire(keys: readonly string[], version?: number): Promise<number> {
    await this.enter('expire');
    const now = this.now();
    let n = 0;
    for (const key of keys) {
      const e = this.read(key);
      if (!e || e.freshUntil <= now) continue;
      if (version !== undefined && (e.version ?? 0) > version) continue;
      this.store.set(key, { ...e, freshUntil: now });
      n++;
    }
    return n;
  }

  /** Every entry stale at once (see {@link Tier.expireAll}). */
  expireAll(): void {
    this.count('expireAll');
    const now = this.now();
    for (const [key, e] of this.store) if (e.freshUntil > now) this.store.set(key, { ...e, freshUntil: now });
  }

  async clear(options: TierClearOptions = {}): Promise<void> {
    await this.enter('clear');
    if (!this.keepsTombstones) {
      this.store.clear();
      return;
    }
    // Entries and tombstones of versions newer than the clear (writes and deletes that were called
    // after it, and reached the backend first) are kept: the clear does not undo them.
    const version = options.version ?? nextVersion();
    if (version > this.guards.clearedAt) this.guards.clearedAt = version;
    for (const [key, tomb] of this.guards.tombstones)
      if (tomb.version < version) this.guards.tombstones.delete(key);
    for (const [key, e] of this.store) if ((e.version ?? 0) < version) this.store.delete(key);
  }

  async ping(): Promise<void> {
    await this.enter('ping');
  }

  async close(): Promise<void> {
    this.count('close');
    this.closed = true;
  }

  /** The entry as the tier stores it: capped (unless the last tier), values through the codec. */
  private prepare(entry: CacheEntry): CacheEntry {
    const capped = this.attachment?.lastTier ? entry : capEntry(entry, this.maxTtlMs, this.now());
    if (!this.codec) return capped;
    return { ...capped, value: decodeValue(encodeValue(capped.value)) };
  }

  private write(key: string, entry: CacheEntry): void {
    const version = entry.version ?? 0;
    const now = this.now();
    const existing = this.store.get(key);
    if (existing && existing.staleUntil > now && (existing.version ?? 0) > version) {
      this.dropped++;
      return;
    }
    if (this.keepsTombstones) {
      const tomb = this.liveTombstone(key, now);
      if (
        (tomb && tomb.version > version) ||
        (entry.version !== undefined && version < this.guards.clearedAt)
      ) {
        this.dropped++;
        return;
      }
      if (tomb) this.guards.tombstones.delete(key);
    }
    this.store.set(key, entry);
  }

  private remove(key: string, options: TierDeleteOptions | undefined): boolean {
    const version = options?.version;
    const now = this.now();
    const existing = this.store.get(key);
    if (version === undefined) return this.store.delete(key);
    if (existing && existing.staleUntil > now && (existing.version ?? 0) > version) return false;
    const existed = this.store.delete(key);
    if (this.keepsTombstones) {
      const ms = options?.tombstoneMs ?? this.tombstoneMs;
      const tomb = this.liveTombstone(key, now);
      if (ms > 0 && (!tomb || tomb.version < version)) {
        this.guards.tombstones.set(key, { version, until: now + ms });
      }
    }
    return existed;
  }

  private liveTombstone(key: string, now: number): Tombstone | undefined {
    const tomb = this.guards.tombstones.get(key);
    if (tomb && tomb.until <= now) {
      this.guards.tombstones.delete(key);
      return undefined;
    }
    return tomb;
  }

  private read(key: string): CacheEntry | undefined {
    const e = this.store.get(key);
    if (!e) return undefined;
    if (e.staleUntil <= this.now()) {
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
