import type { ComexStatClient } from './comexstat-client.js';
import type { ComexStatCache } from './comexstat-connector.js';
import type { ComexStatCountry } from './comexstat-types.js';
import { COUNTRIES_SNAPSHOT } from './countries-snapshot.js';

/** How often the countries table is reloaded from the upstream, at most (ms): weekly. */
export const COUNTRIES_REFRESH_MS = 7 * 24 * 3_600_000;

/** Options of {@link CountryTable}. */
export interface CountryTableOptions {
  client: ComexStatClient;
  cache: ComexStatCache;
  /** Cache key of the shared table. */
  key: string;
  /** Fail-safe window of the cached table, ms. */
  staleTtlMs: number;
  /** Least time between two refreshes caused by unknown names, ms. @default 1 hour */
  unknownRefreshMs?: number;
  now: () => number;
  onError: (error: unknown) => void;
  /** Cluster-wide claim: only the winner calls the upstream (see `SharedMerge.claim`). */
  claim?: (name: string, ttlMs: number) => Promise<boolean>;
}

/** Names compared without case, accents, spaces at the ends or doubled spaces. */
export function normalizeName(name: string): string {
  return name
    .normalize('NFD')
    .replace(/\p{Diacritic}/gu, '')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/**
 * The ComexStat countries table (`/tables/countries`: 3-digit code → Portuguese name) without ever
 * making a request wait for it: it starts from the snapshot bundled in the package, adopts the copy
 * in the shared tiers, and is reloaded from the upstream in the background at the spacer's
 * `metadata` priority, at most weekly and when a row names a country it does not know.
 */
export class CountryTable {
  private names = new Map<string, string>(COUNTRIES_SNAPSHOT.map(([id, text]) => [id, text]));
  private source: 'snapshot' | 'shared' = 'snapshot';
  private checkedAt = Number.NEGATIVE_INFINITY;
  private forcedAt = Number.NEGATIVE_INFINITY;
  private pending: Promise<void> | undefined;
  private readShared = false;

  constructor(private readonly options: CountryTableOptions) {
    // The bundled snapshot is good at start: the first upstream reload is due a week later (or
    // at once when a row names an unknown country), so a cold start spends no call on it.
    this.checkedAt = options.now();
  }

  /** Where the table in use came from. */
  get origin(): 'snapshot' | 'shared' {
    return this.source;
  }

  /** Countries known. */
  get size(): number {
    return this.names.size;
  }

  /** Every code known. */
  codes(): string[] {
    return [...this.names.keys()];
  }

  /** The Portuguese name of a code, `undefined` when unknown. */
  nameOf(code: string): string | undefined {
    return this.names.get(code);
  }

  /**
   * Name → code over the given codes only (the countries a call asked for), names normalized with
   * {@link normalizeName}: rows are attributed to the codes the call filtered on, never to a
   * homonym elsewhere in the table.
   */
  codesByName(codes: Iterable<string>): Map<string, string> {
    const out = new Map<string, string>();
    for (const code of codes) {
      const name = this.names.get(code);
      if (name !== undefined) out.set(normalizeName(name), code);
    }
    return out;
  }

  /**
   * Starts, in the background: a read of the shared copy (once, no upstream call), and the weekly
   * upstream reload when due.
   */
  poke(): void {
    if (this.pending) return;
    if (!this.readShared) {
      this.readShared = true;
      this.pending = this.adoptShared().finally(() => {
        this.pending = undefined;
      });
      return;
    }
    if (this.checkedAt + COUNTRIES_REFRESH_MS > this.options.now()) return;
    this.pending = this.load(false).finally(() => {
      this.pending = undefined;
    });
  }

  /** A row named an unknown country: reload from the upstream in the background (rate-limited). */
  unknownName(): void {
    const now = this.options.now();
    if (this.pending || this.forcedAt + (this.options.unknownRefreshMs ?? 3_600_000) > now) return;
    this.forcedAt = now;
    this.pending = this.load(true).finally(() => {
      this.pending = undefined;
    });
  }

  private async adoptShared(): Promise<void> {
    try {
      const cached = await this.options.cache.getMany<ComexStatCountry[]>([this.options.key]);
      const shared = cached[0]?.value;
      if (shared) this.adopt(shared);
    } catch (error) {
      this.options.onError(error);
    }
  }

  /** Resolves when no load is under way. */
  async settled(): Promise<void> {
    await this.pending;
  }

  private async load(force: boolean): Promise<void> {
    this.checkedAt = this.options.now();
    try {
      let table: ComexStatCountry[];
      const claim = this.options.claim;
      if (claim && !(await claim(force ? 'countries-force' : 'countries', force ? 3_600_000 : 60_000))) {
        // Another instance loads it for the cluster: adopt the shared copy (if any yet), recheck soon.
        const cached = await this.options.cache.getMany<ComexStatCountry[]>([this.options.key]);
        const shared = cached[0]?.value;
        if (shared) this.adopt(shared);
        else this.checkedAt = this.options.now() - COUNTRIES_REFRESH_MS + 5_000;
        return;
      }
      if (force) {
        table = await this.options.client.countries(undefined, { priority: 'metadata' });
        await this.options.cache.setMany([
          {
            key: this.options.key,
            value: table,
            ttlMs: COUNTRIES_REFRESH_MS,
            staleTtlMs: this.options.staleTtlMs,
          },
        ]);
      } else {
        const res = await this.options.cache.getOrLoad<ComexStatCountry[]>(
          this.options.key,
          () => this.options.client.countries(undefined, { priority: 'metadata' }),
          { ttlMs: COUNTRIES_REFRESH_MS, staleTtlMs: this.options.staleTtlMs, endpoint: 'countries' },
        );
        table = res.value;
      }
      this.adopt(table);
    } catch (error) {
      this.options.onError(error);
    }
  }

  private adopt(table: ComexStatCountry[]): void {
    if (!Array.isArray(table) || table.length === 0) return;
    // Codes the snapshot knows and the fresh table lost keep their name (rows may still use it).
    const names = new Map(this.names);
    for (const c of table) if (typeof c?.id === 'string') names.set(c.id, String(c.text).trim());
    this.names = names;
    this.source = 'shared';
  }
}
