import type { InvalidationMessage } from './bus.js';
import type { CacheEntry } from './entry.js';
import { VERSIONS_PER_MS } from './version.js';

/**
 * Per key, the version of this instance's last write or delete of it, or of an invalidation it
 * received, plus the version of the last clear. A local-tier write that carries a lower version (a
 * load, promotion, eager refresh or fail-safe re-store that started before) is refused: local tiers
 * keep no tombstones, this is their memory of deletes.
 *
 * Bounded: once it holds more keys than after the last pruning (at least 1,024), versions older
 * than both every load in flight and `now - keepMs` are forgotten. Internal to `@bgc/cache-core`.
 */
export class VersionGuard {
  private readonly versions = new Map<string, number>();
  /** Start versions of the loads in flight, with multiplicity. */
  private readonly loads = new Map<number, number>();
  private clearedAt = 0;
  private pruneAt = 1024;
  /**
   * Tag invalidations (set by the orchestrator): a tagged entry older than a known record of one
   * of its tags is superseded too (see `TagBook.invalidated`).
   */
  tags: { invalidated(key: string, entry: CacheEntry): boolean } | undefined;

  /** @param keepMs how long (ms) a version is kept at least: the tombstone lifetime */
  constructor(private readonly keepMs: number) {}

  /** How many keys are remembered. */
  get size(): number {
    return this.versions.size;
  }

  /** Records a write, delete or invalidation of `key` at `version` (kept if higher than the last). */
  record(key: string, version: number): void {
    const before = this.versions.get(key);
    if (before !== undefined && before >= version) return;
    if (before === undefined && this.versions.size >= this.pruneAt) this.prune();
    this.versions.set(key, version);
  }

  /** A clear at `version`: older versions are subsumed by it; newer ones (writes since) stay. */
  clear(version: number): void {
    if (version > this.clearedAt) this.clearedAt = version;
    for (const [k, v] of this.versions) if (v < version) this.versions.delete(k);
    this.pruneAt = Math.max(1024, this.versions.size * 2);
  }

  /**
   * Whether `entry` is older than the last recorded write/delete of `key` (or, for a versioned
   * entry, than the last clear): it must not reach a local tier. An entry without a version is
   * refused whenever the key has a recorded version.
   */
  superseded(key: string, entry: CacheEntry): boolean {
    const v = entry.version;
    if (v === undefined) return this.versions.has(key) || this.taggedOut(key, entry);
    if (v < this.clearedAt) return true;
    const g = this.versions.get(key);
    return (g !== undefined && g > v) || this.taggedOut(key, entry);
  }

  /** Whether a tag of `entry` was invalidated after it was written (see {@link VersionGuard.tags}). */
  private taggedOut(key: string, entry: CacheEntry): boolean {
    return entry.tags !== undefined && this.tags?.invalidated(key, entry) === true;
  }

  /** Whether a load is running (between {@link loadStarted} and {@link loadEnded}). */
  get loading(): boolean {
    return this.loads.size > 0;
  }

  /** A load starting at `version`: versions it may still race with are kept until {@link loadEnded}. */
  loadStarted(version: number): void {
    this.loads.set(version, (this.loads.get(version) ?? 0) + 1);
  }

  /** The load that started at `version` has written its value (or failed). */
  loadEnded(version: number): void {
    const n = (this.loads.get(version) ?? 1) - 1;
    if (n > 0) this.loads.set(version, n);
    else this.loads.delete(version);
  }

  /** Forgets versions older than every load in flight and than `keepMs`. */
  prune(now = Date.now()): void {
    let oldest = (now - this.keepMs) * VERSIONS_PER_MS;
    for (const v of this.loads.keys()) if (v < oldest) oldest = v;
    for (const [k, v] of this.versions) if (v < oldest) this.versions.delete(k);
    this.pruneAt = Math.max(1024, this.versions.size * 2);
  }
}

/**
 * Invalidations that failed to publish, kept for re-sending: deduplicated by key, bounded (the
 * oldest keys are dropped past `maxKeys` per kind), and a clear replaces every key invalidation
 * before it. Internal to `@bgc/cache-core`.
 */
export class InvalidationQueue {
  private readonly deletes = new Map<string, number | undefined>();
  private readonly expires = new Map<string, number | undefined>();
  private cleared: number | undefined | null = null;

  /** @param maxKeys most keys kept per kind (delete, expire) */
  constructor(private readonly maxKeys: number) {}

  /** Whether nothing waits to be re-sent. */
  get empty(): boolean {
    return this.cleared === null && this.deletes.size === 0 && this.expires.size === 0;
  }

  /** Queues a message that failed to publish (`resync` is local and never queued). */
  add(message: InvalidationMessage): void {
    if (message.type === 'resync') return;
    if (message.type === 'clear') {
      this.deletes.clear();
      this.expires.clear();
      const v = message.version;
      this.cleared = v === undefined ? (this.cleared ?? undefined) : Math.max(this.cleared ?? 0, v);
      return;
    }
    const map = message.type === 'delete' ? this.deletes : this.expires;
    for (const k of message.keys) {
      const before = map.get(k);
      map.delete(k); // re-inserted last: the most recent keys are the ones kept
      map.set(k, message.version === undefined ? before : Math.max(before ?? 0, message.version));
    }
    const max = Math.max(1, this.maxKeys);
    while (map.size > max) map.delete(map.keys().next().value as string);
  }

  /**
   * Empties the queue into at most three messages (a clear, a delete, an expire). Each key message
   * carries the highest version of its keys: receivers then refuse slightly more older writes
   * locally, never fewer.
   */
  take(): InvalidationMessage[] {
    const out: InvalidationMessage[] = [];
    if (this.cleared !== null)
      out.push(this.cleared === undefined ? { type: 'clear' } : { type: 'clear', version: this.cleared });
    for (const [type, map] of [
      ['delete', this.deletes],
      ['expire', this.expires],
    ] as const) {
      if (map.size === 0) continue;
      let version: number | undefined;
      for (const v of map.values()) if (v !== undefined) version = Math.max(version ?? 0, v);
      const keys = [...map.keys()];
      out.push(version === undefined ? { type, keys } : { type, keys, version });
      map.clear();
    }
    this.cleared = null;
    return out;
  }
}
