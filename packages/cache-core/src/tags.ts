import type { CacheEntry } from './entry.js';
import type { GuardedTier } from './guarded-tier.js';
import type {
  ReadCallbacks,
  Tier,
  TierAttachment,
  TierClearOptions,
  TierDeleteOptions,
  TierWrite,
} from './tier.js';
import { SKIPPED } from './tier-read.js';
import { withTimeout } from './timeout.js';
import { observeVersion } from './version.js';

/**
 * Tag invalidation (`deleteByTag`, `expireByTag`), as bentocache does it: an entry carries its tags
 * ({@link CacheEntry.tags}); an invalidation stores one small record per tag in the shared tiers
 * ("tag T invalidated at version V") and is broadcast on the bus, whatever the number of keys; a
 * tagged entry older than one of its tags' records is treated as deleted (or as stale, for an
 * expire: still a fail-safe fallback). Internal to `@bgc/cache-core`.
 *
 * - Shared tiers' reads check tagged entries against the records ({@link TagCheckedTier}): known
 *   ones at once, unknown ones fetched from every shared tier (cached locally for
 *   `tagRecordCacheMs`; new ones arrive by bus meanwhile).
 * - Local tiers never check on read, so a fresh L1 hit costs nothing, tagged or not: an
 *   invalidation this instance makes or receives evicts the tagged keys from them at once (an
 *   index of the local tiers' tagged keys), and no tagged entry older than a known record reaches
 *   them (the version guard asks {@link TagBook.invalidated}).
 */

/** The cache's options of tag invalidation (part of `MultiLevelCacheOptions`). */
export interface TagOptions {
  /**
   * How long (ms) a tag invalidation's record stays in the shared tiers (`deleteByTag`,
   * `expireByTag`, `namespace().clear()`). Entries carrying the tag and written before it must be
   * gone by then: keep it above the longest lifetime (fresh + stale) of tagged entries. A tier's
   * own `maxTtlMs` caps it as it caps the entries. @default 2592000000 (30 days)
   */
  tagRecordTtlMs?: number;
  /**
   * How long (ms) this instance relies on a tag's records read from the shared tiers (or on their
   * absence) before reading them again. Invalidations made by other instances arrive by bus at
   * once: this bounds only how long one the bus lost can go unseen. @default 10000
   */
  tagRecordCacheMs?: number;
  /**
   * Most key references in the index of the tagged keys the local tiers hold (what a tag
   * invalidation evicts from them). Past it, the next tag invalidation empties the local tiers
   * instead. About 50 bytes per reference. @default 1000000
   */
  maxIndexedTagKeys?: number;
}

/** The `tags` option of a write or a load. */
export interface TagWriteOptions {
  /**
   * Tags of the entry: `deleteByTag`/`expireByTag` of any of them invalidates it on every tier and
   * instance. Strings without control characters, at most 256 characters, at most 64 per entry.
   */
  tags?: readonly string[];
}

/** How an invalidated tag treats its entries. */
export type TagMode = 'delete' | 'expire';

/** The first characters of the keys of tag records (U+0001 never opens a cache key). */
export const TAG_RECORD_PREFIX = '\u0001bgc:tag:';
const DELETE_PREFIX = `${TAG_RECORD_PREFIX}d:`;
const EXPIRE_PREFIX = `${TAG_RECORD_PREFIX}e:`;

/** The shared-tier key of tag `tag`'s record for `mode`. */
export function tagRecordKey(tag: string, mode: TagMode): string {
  return (mode === 'delete' ? DELETE_PREFIX : EXPIRE_PREFIX) + tag;
}

/** What a tagged entry has become: fresh as stored, stale (expired by tag) or deleted. */
export const TagVerdict = { Valid: 0, Expired: 1, Deleted: 2 } as const;
export type TagVerdict = (typeof TagVerdict)[keyof typeof TagVerdict];

/** What is known here of one tag: the versions of its last delete and expire (0: none). */
interface TagState {
  d: number;
  e: number;
  /** Until when (epoch ms) this knowledge may be relied on without asking the shared tiers. */
  until: number;
}

/** Options of a {@link TagBook}. */
export interface TagBookOptions {
  /** How long records stay in the shared tiers (must outlive the tagged entries). */
  recordTtlMs: number;
  /** How long a record fetched from the shared tiers (or its absence) is relied on here. */
  cacheMs: number;
  /** How long a record this instance made or received is kept at least (the tombstone lifetime). */
  keepMs: number;
  /** Timeout of one record fetch from a shared tier. */
  timeoutMs: number;
  /** Most key references in the index of the local tiers' tagged keys; past it an invalidation empties them. */
  maxIndexedKeys: number;
}

/**
 * This instance's knowledge of tag invalidations, the records in the shared tiers, and the index
 * of the tagged keys its local tiers hold.
 */
export class TagBook {
  private readonly known = new Map<string, TagState>();
  private readonly fetching = new Map<string, Promise<void>>();
  /** Local tiers' tagged keys, by tag. */
  private readonly index = new Map<string, Set<string>>();
  private indexed = 0;
  /** The index dropped keys (past `maxIndexedKeys`): the next invalidation empties the local tiers. */
  private overflowed = false;
  private pruneAt = 1024;
  /** The raw shared tiers (records are read around the guarded path, under their own timeout). */
  sources: readonly Tier[] = [];

  constructor(readonly options: TagBookOptions) {}

  /**
   * What `entry`'s tags make of it, from what is known here (records this instance made,
   * received or fetched). Synchronous; tags never heard of count as valid.
   */
  verdict(entry: CacheEntry, now = Date.now()): TagVerdict {
    const tags = entry.tags;
    if (tags === undefined || this.known.size === 0) return TagVerdict.Valid;
    const v = entry.version ?? 0;
    let verdict: TagVerdict = TagVerdict.Valid;
    for (const tag of tags) {
      const s = this.known.get(tag);
      if (s === undefined) continue;
      if (s.d > v) return TagVerdict.Deleted;
      if (s.e > v) verdict = TagVerdict.Expired;
    }
    void now;
    return verdict;
  }

  /**
   * Whether the version guard must refuse `entry` for a local tier (deleted or expired by a known
   * tag record). Otherwise records its key in the index of tagged local keys.
   */
  invalidated(key: string, entry: CacheEntry): boolean {
    const tags = entry.tags as readonly string[];
    if (this.verdict(entry) !== TagVerdict.Valid) return true;
    for (const tag of tags) {
      let keys = this.index.get(tag);
      if (keys === undefined) {
        keys = new Set();
        this.index.set(tag, keys);
      }
      if (keys.has(key)) continue;
      if (this.indexed >= this.options.maxIndexedKeys) {
        this.overflowed = true;
        continue;
      }
      keys.add(key);
      this.indexed++;
    }
    return false;
  }

  /**
   * The verdict on an entry read from a shared tier: at once when every tag is known (fresh
   * knowledge), else after fetching the unknown tags' records. A fetch that fails leaves the entry
   * stale (it cannot be vouched for), never fresh.
   */
  check(entry: CacheEntry): TagVerdict | Promise<TagVerdict> {
    const tags = entry.tags as readonly string[];
    const now = Date.now();
    let missing: string[] | undefined;
    for (const tag of tags) {
      const s = this.known.get(tag);
      if (s === undefined || s.until <= now) (missing ??= []).push(tag);
    }
    if (missing === undefined) return this.verdict(entry, now);
    return this.fetch(missing).then(
      () => this.verdict(entry),
      () => {
        const v = this.verdict(entry);
        return v === TagVerdict.Deleted ? v : TagVerdict.Expired;
      },
    );
  }

  /**
   * Learns an invalidation (made here, received by bus, or read from a shared tier): kept at least
   * `keepMs`. Returns the local keys it concerns (to evict) — `undefined` when the index overflowed
   * and every local entry must go.
   */
  learn(tags: readonly string[], mode: TagMode, version: number): string[] | undefined {
    observeVersion(version);
    const until = Date.now() + Math.max(this.options.keepMs, this.options.cacheMs);
    const keys: string[] = [];
    for (const tag of tags) {
      this.merge(tag, mode === 'delete' ? version : 0, mode === 'expire' ? version : 0, until);
      const indexed = this.index.get(tag);
      if (indexed === undefined) continue;
      for (const k of indexed) keys.push(k);
      this.indexed -= indexed.size;
      this.index.delete(tag);
    }
    if (this.overflowed) {
      this.index.clear();
      this.indexed = 0;
      this.overflowed = false;
      return undefined;
    }
    return keys;
  }

  /** Forgets the index of local keys (the local tiers were emptied). */
  resetIndex(): void {
    this.index.clear();
    this.indexed = 0;
    this.overflowed = false;
  }

  /** The tags of tag-record keys in `keys` (a bus message), or `undefined` when it holds none. */
  static recordsIn(keys: readonly string[]): { tags: string[]; rest: string[] } | undefined {
    let found = false;
    for (const k of keys) if (k.startsWith(TAG_RECORD_PREFIX)) found = true;
    if (!found) return undefined;
    const tags: string[] = [];
    const rest: string[] = [];
    for (const k of keys) {
      if (k.startsWith(DELETE_PREFIX)) tags.push(k.slice(DELETE_PREFIX.length));
      else if (k.startsWith(EXPIRE_PREFIX)) tags.push(k.slice(EXPIRE_PREFIX.length));
      else if (!k.startsWith(TAG_RECORD_PREFIX)) rest.push(k);
    }
    return { tags, rest };
  }

  /** The record entry of an invalidation at `version`, as stored in the shared tiers. */
  recordEntry(version: number, now = Date.now()): CacheEntry<number> {
    const until = now + this.options.recordTtlMs;
    return { value: version, freshUntil: until, staleUntil: until, createdAt: now, version };
  }

  /** Writes the records of an invalidation to every shared tier (through its guard); resolves how many tiers took them. */
  async persist(
    shared: readonly GuardedTier[],
    tags: readonly string[],
    mode: TagMode,
    version: number,
  ): Promise<number> {
    const entry = this.recordEntry(version);
    const writes: TierWrite[] = tags.map((tag) => ({ key: tagRecordKey(tag, mode), entry }));
    const results = await Promise.all(
      shared.map((state) =>
        state.call(
          'set_many',
          undefined,
          async () => {
            const tier = state.tier;
            if (tier.setMany) await tier.setMany(writes);
            else await Promise.all(writes.map((w) => tier.set(w.key, w.entry)));
            return true;
          },
          writes.length,
        ),
      ),
    );
    return results.filter((r) => r !== SKIPPED).length;
  }

  /** Fetches the records of `tags` from every shared tier (the highest version wins); coalesced per tag. */
  private fetch(tags: readonly string[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const todo: string[] = [];
    for (const tag of tags) {
      const pending = this.fetching.get(tag);
      if (pending) waits.push(pending);
      else todo.push(tag);
    }
    if (todo.length > 0) {
      const p = this.read(todo);
      for (const tag of todo) this.fetching.set(tag, p);
      void p.then(
        () => this.settleFetch(todo, p),
        () => this.settleFetch(todo, p),
      );
      waits.push(p);
    }
    return Promise.all(waits).then(() => undefined);
  }

  private settleFetch(tags: readonly string[], p: Promise<void>): void {
    for (const tag of tags) if (this.fetching.get(tag) === p) this.fetching.delete(tag);
  }

  /** Reads the records of `tags`; rejects when no shared tier answered. */
  private async read(tags: readonly string[]): Promise<void> {
    const keys: string[] = [];
    for (const tag of tags) keys.push(tagRecordKey(tag, 'delete'), tagRecordKey(tag, 'expire'));
    const timeoutMs = this.options.timeoutMs;
    const replies = await Promise.allSettled(
      this.sources.map((tier) => {
        const p = tier.getMany ? tier.getMany(keys) : Promise.all(keys.map((k) => tier.get(k)));
        return timeoutMs > 0 ? withTimeout(p, timeoutMs, `${tier.name} tag records`) : p;
      }),
    );
    const answered = replies.filter((r) => r.status === 'fulfilled');
    if (answered.length === 0 && this.sources.length > 0) throw (replies[0] as PromiseRejectedResult).reason;
    const until = Date.now() + this.options.cacheMs;
    tags.forEach((tag, i) => {
      let d = 0;
      let e = 0;
      for (const r of answered) {
        d = Math.max(d, recordVersion(r.value[2 * i]));
        e = Math.max(e, recordVersion(r.value[2 * i + 1]));
      }
      if (d > 0) observeVersion(d);
      if (e > 0) observeVersion(e);
      this.merge(tag, d, e, until);
    });
    if (this.known.size >= this.pruneAt) this.prune();
  }

  private merge(tag: string, d: number, e: number, until: number): void {
    const s = this.known.get(tag);
    if (s === undefined) {
      this.known.set(tag, { d, e, until });
      return;
    }
    if (d > s.d) s.d = d;
    if (e > s.e) s.e = e;
    if (until > s.until) s.until = until;
  }

  /** Forgets tags known only as "never invalidated" whose knowledge has lapsed. */
  private prune(): void {
    const now = Date.now();
    for (const [tag, s] of this.known) if (s.until <= now && s.d === 0 && s.e === 0) this.known.delete(tag);
    this.pruneAt = Math.max(1024, this.known.size * 2);
  }
}

/** The version a tag record carries (0 for none or an unreadable one). */
function recordVersion(entry: CacheEntry | undefined): number {
  if (entry === undefined) return 0;
  const v = entry.version ?? entry.value;
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

/**
 * A shared tier seen through tag invalidations: its reads hand out a tagged entry as the tag
 * records say (deleted: a miss; expired: a stale copy, still a fail-safe fallback). Everything else
 * goes to the tier as is. Internal to `@bgc/cache-core`.
 */
export class TagCheckedTier implements Tier {
  readonly name: string;
  readonly level: Tier['level'];
  readonly scope: Tier['scope'];
  readonly maxTtlMs: number | undefined;
  getWith?: (key: string, callbacks: ReadCallbacks) => void;
  getMany?: (keys: readonly string[]) => Promise<(CacheEntry | undefined)[]>;
  setMany?: (writes: readonly TierWrite[]) => Promise<void>;
  deleteMany?: (keys: readonly string[], options?: TierDeleteOptions) => Promise<number>;
  expire?: (keys: readonly string[], version?: number) => Promise<number>;
  connect?: () => Promise<void>;
  attach?: (attachment: TierAttachment) => void;
  clear?: (options?: TierClearOptions) => Promise<void>;
  ping?: () => Promise<void>;

  constructor(
    readonly inner: Tier,
    private readonly book: TagBook,
  ) {
    this.name = inner.name;
    this.level = inner.level;
    this.scope = inner.scope;
    this.maxTtlMs = inner.maxTtlMs;
    if (inner.getWith) {
      const getWith = inner.getWith.bind(inner);
      this.getWith = (key, callbacks) => getWith(key, new CheckedCallbacks(book, callbacks));
    }
    if (inner.getMany) {
      const getMany = inner.getMany.bind(inner);
      this.getMany = (keys) => getMany(keys).then((entries) => this.checkAll(entries));
    }
    if (inner.setMany) this.setMany = inner.setMany.bind(inner);
    if (inner.deleteMany) this.deleteMany = inner.deleteMany.bind(inner);
    if (inner.expire) this.expire = inner.expire.bind(inner);
    if (inner.connect) this.connect = inner.connect.bind(inner);
    if (inner.attach) this.attach = inner.attach.bind(inner);
    if (inner.clear) this.clear = inner.clear.bind(inner);
    if (inner.ping) this.ping = inner.ping.bind(inner);
  }

  get(key: string): Promise<CacheEntry | undefined> {
    return this.inner.get(key).then((entry) => {
      if (entry?.tags === undefined) return entry;
      const v = this.book.check(entry);
      return typeof v === 'number' ? applyVerdict(entry, v) : v.then((x) => applyVerdict(entry, x));
    });
  }

  set(key: string, entry: CacheEntry): Promise<void> {
    return this.inner.set(key, entry);
  }

  delete(key: string, options?: TierDeleteOptions): Promise<boolean> {
    return this.inner.delete(key, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private async checkAll(entries: (CacheEntry | undefined)[]): Promise<(CacheEntry | undefined)[]> {
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (entry?.tags === undefined) continue;
      entries[i] = applyVerdict(entry, await this.book.check(entry));
    }
    return entries;
  }
}

/** What a verdict makes of an entry read from a shared tier. */
function applyVerdict(entry: CacheEntry, verdict: TagVerdict): CacheEntry | undefined {
  if (verdict === TagVerdict.Valid) return entry;
  if (verdict === TagVerdict.Deleted) return undefined;
  const now = Date.now();
  return entry.freshUntil <= now ? entry : { ...entry, freshUntil: now };
}

/** The callbacks of a checked {@link Tier.getWith}: one object per read, no closure. */
class CheckedCallbacks implements ReadCallbacks {
  constructor(
    private readonly book: TagBook,
    private readonly callbacks: ReadCallbacks,
  ) {}

  ok(entry: CacheEntry | undefined): void {
    if (entry?.tags === undefined) {
      this.callbacks.ok(entry);
      return;
    }
    const v = this.book.check(entry);
    if (typeof v === 'number') this.callbacks.ok(applyVerdict(entry, v));
    else
      v.then(
        (x) => this.callbacks.ok(applyVerdict(entry, x)),
        (error: unknown) => this.callbacks.failed(error),
      );
  }

  failed(error: unknown): void {
    this.callbacks.failed(error);
  }
}
