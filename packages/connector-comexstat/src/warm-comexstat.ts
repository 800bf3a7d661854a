import {
  ConfigError,
  type GetOptions,
  type GetOrLoadOptions,
  type LoadResult,
  type Loader,
  type Tier,
  type TierLevel,
} from '@bgc/cache-core';
import type { ComexStatConnector } from './comexstat-connector.js';
import { comexstatTags } from './comexstat-tags.js';
import { isOutdatedByRelease, isPublishedMonth } from './comexstat-ttl.js';
import type { ComexStatFlow, ComexStatMonthValue, ComexStatRelease } from './comexstat-types.js';

/** Where the top lists come from when present (e.g. the L3 package's aggregates). */
export interface WarmTopProvider {
  /** The most requested NCMs, best first. */
  topNcms(limit: number): Promise<string[]>;
  /** The most requested countries (3-digit codes), best first. */
  topCountries(limit: number): Promise<string[]>;
}

/** Progress of a warming run, reported after each (flow, year) group. */
export interface WarmProgress {
  flow: ComexStatFlow;
  ano: number;
  /** Keys handled so far (warmed or already cached). */
  done: number;
  /** Keys in the whole run. */
  total: number;
  /** True when every key of this group was already cached (resumed run). */
  skipped: boolean;
}

/** Options of {@link warmComexStat}. */
export interface WarmComexStatOptions {
  connector: ComexStatConnector;
  /** NCMs to warm; default the provider's top 50, else `warming.top_ncms`. */
  ncms?: string[];
  /** Countries to warm; default the provider's top 10, else `warming.top_countries`. */
  countries?: string[];
  /** Optional source of top lists (L3 aggregates). */
  provider?: WarmTopProvider;
  /** @default 50 */
  ncmLimit?: number;
  /** @default 10 */
  countryLimit?: number;
  /** Months back from the latest published one. @default config warming.months (12) */
  months?: number;
  /** @default config warming.flows (export and import) */
  flows?: ComexStatFlow[];
  /** Clock used when the release is unknown (then the last month before `now` is the newest). */
  now?: Date;
  onProgress?: (progress: WarmProgress) => void;
}

/** What a warming run did. */
export interface WarmSummary {
  /** Keys this run fetched upstream and stored (read back from the cache after the write). */
  keysWarmed: number;
  /** Keys already cached (skipped: a resumed run). */
  keysSkipped: number;
  /**
   * Keys this run asked upstream for that the cache does not hold afterwards (a month maybe not
   * published yet while the release is unknown, a row of a country the table does not know, a
   * refused write): the next run asks for them again.
   */
  keysLeftOut: number;
  /** Keys requested (NCMs × countries × months × flows). */
  keysTotal: number;
  /** HTTP attempts sent upstream by this run (metadata and retries included). */
  upstreamCalls: number;
  /** `POST /general` calls among them. */
  generalCalls: number;
  /** Keys some shared tier lacked but another held: copied to every tier without an upstream call. */
  keysCopied: number;
  /** HTTP attempts of this run by kind (data = `POST /general`, dates, countries, other tables). */
  callsByKind: { data: number; dates: number; countries: number; other: number };
  /**
   * What each tier holds of the run's keys afterwards (fresh entries, read back per tier through
   * the cache with its tag checks), when the cache exposes its tiers.
   */
  tiers: { name: string; level: string; held: number }[];
  /** Wall time, ms. */
  ms: number;
}

/** The part of a `MultiLevelCache` a resumable run reads tier by tier through. */
interface TieredCache {
  readonly tiers: readonly Tier[];
  getMany<T>(keys: readonly string[], options?: GetOptions): Promise<{ value: T | undefined }[]>;
  getOrLoad<T>(key: string, loader: Loader<T>, options?: GetOrLoadOptions<T>): Promise<LoadResult<T>>;
  /** Waits for background writes (a load's shared-tier writes). */
  flush?(): Promise<void>;
}

/** The cache as a {@link TieredCache}, when it exposes its tiers (a `MultiLevelCache` does). */
function tieredOf(cache: unknown): TieredCache | undefined {
  const c = cache as Partial<TieredCache>;
  return Array.isArray(c.tiers) && c.tiers.length > 0 && typeof c.getOrLoad === 'function'
    ? (c as TieredCache)
    : undefined;
}

/** Keys read per batch (a tier-by-tier read asks each key on its own). */
const READ_CHUNK = 1000;
/** Copies between tiers in flight at once. */
const COPY_CONCURRENCY = 32;

/**
 * The values `level` holds of `keys`: read through the cache (`skip.read` of every other level),
 * so a shared tier's entries are checked against the tag records and a local tier's were evicted
 * by its tag index; only fresh entries count; nothing is promoted. A failing tier holds nothing.
 */
async function readLevel(
  cache: TieredCache,
  level: TierLevel,
  keys: readonly string[],
): Promise<(ComexStatMonthValue | undefined)[]> {
  const skip = cache.tiers.map((t) => t.level).filter((l) => l !== level);
  const out: (ComexStatMonthValue | undefined)[] = [];
  for (let i = 0; i < keys.length; i += READ_CHUNK) {
    const chunk = keys.slice(i, i + READ_CHUNK);
    const got = await cache
      .getMany<ComexStatMonthValue>(chunk, { skip: { read: skip }, endpoint: 'warming' })
      .catch(() => chunk.map(() => ({ value: undefined })));
    for (const r of got) out.push(r.value);
  }
  return out;
}

/**
 * Fills the cache with the seed's weekly set (top 50 NCMs × top 10 countries × last 12 months,
 * both flows) through the connector's fan-out, at the spacer's lowest priority (`warming`: user
 * cold misses, refreshes and metadata of the whole cluster go first): the years of a flow are
 * merged into as few `POST /general` calls as the row bound allows.
 *
 * An interrupted run resumes: a key every shared tier holds (fresh, not outdated by the release)
 * is skipped; one some shared tier lacks is copied from a tier that holds it by a load of the
 * cache (whose loader reads the holding tiers), so that an invalidation, by key or by tag, before
 * or during the copy is never undone; only keys no tier holds go upstream. Reads go through the
 * cache's tag checks, never around them: a tag-invalidated entry still stored in a tier counts as
 * missing.
 * @throws {ConfigError} when no NCM or country list is available
 */
export async function warmComexStat(options: WarmComexStatOptions): Promise<WarmSummary> {
  const started = Date.now();
  const { connector } = options;
  const cfg = connector.config.warming;
  const ncms =
    options.ncms ??
    (await fromProvider(() => options.provider?.topNcms(options.ncmLimit ?? 50))) ??
    cfg.topNcms;
  const countries =
    options.countries ??
    (await fromProvider(() => options.provider?.topCountries(options.countryLimit ?? 10))) ??
    cfg.topCountries;
  if (ncms.length === 0)
    throw new ConfigError('warming.top_ncms', 'no NCM to warm; list them in the YAML or pass ncms');
  if (countries.length === 0) {
    throw new ConfigError(
      'warming.top_countries',
      'no country to warm; list them in the YAML or pass countries',
    );
  }
  const flows = options.flows ?? cfg.flows;
  const tiered = tieredOf(connector.cache);
  const shared = tiered ? tiered.tiers.filter((t) => t.scope === 'shared').map((t) => t.level) : [];
  const kindsBefore = { ...connector.client.stats.byKind };
  const requestsBefore = connector.client.stats.requests;
  const generalBefore = connector.stats.generalCalls;
  const release = await connector.releaseInfo();
  const now = options.now ?? new Date();
  let endYear = release?.year ?? now.getUTCFullYear();
  let endMonth = release?.month ?? now.getUTCMonth();
  if (endMonth === 0) {
    endYear--;
    endMonth = 12;
  }
  const byYear = new Map<number, number[]>();
  for (let i = 0, y = endYear, m = endMonth; i < (options.months ?? cfg.months); i++) {
    byYear.set(y, [m, ...(byYear.get(y) ?? [])]);
    if (--m === 0) {
      m = 12;
      y--;
    }
  }
  const years = [...byYear.keys()].sort((a, b) => a - b);
  const total =
    flows.length * ncms.length * countries.length * [...byYear.values()].reduce((n, ms) => n + ms.length, 0);

  /** Whether a cached value answers its cell: not outdated by the release, not a "not yet" since published. */
  const current = (c: Cell, v: ComexStatMonthValue | undefined): v is ComexStatMonthValue =>
    v !== undefined && (release === undefined || !outdated(c, v, release));

  /** Which cells every shared tier holds (`all`), and those some tier lacks (with where they are). */
  async function survey(cells: Cell[]): Promise<{ held: boolean[]; lacking: (TierLevel[] | undefined)[] }> {
    const keys = cells.map((c) => c.key);
    if (!tiered || shared.length === 0) {
      const cached = await connector.cache.getMany<ComexStatMonthValue>(keys);
      return {
        held: cells.map((c, i) => current(c, cached[i]?.value)),
        lacking: cells.map(() => undefined),
      };
    }
    const per = await Promise.all(shared.map((level) => readLevel(tiered, level, keys)));
    const held: boolean[] = [];
    const lacking: (TierLevel[] | undefined)[] = [];
    cells.forEach((c, i) => {
      const has = per.map((values) => current(c, values[i]));
      held.push(has.some(Boolean));
      lacking.push(has.every(Boolean) ? undefined : shared.filter((_, j) => !has[j]));
    });
    return { held, lacking };
  }

  /**
   * Copies `c` into the shared tiers `into` that lack it: a load of the key reading only those
   * tiers (a current value that arrived meanwhile answers, nothing is written), whose loader reads
   * the others. The load's version is taken before its loader reads, so an invalidation after that
   * read keeps the copy out of every tier, and one before it makes the read miss.
   */
  async function copy(
    cache: TieredCache,
    c: Cell,
    into: TierLevel[],
  ): Promise<'copied' | 'present' | 'failed'> {
    const levels = cache.tiers.map((t) => t.level);
    const others = levels.filter((l) => !into.includes(l));
    let copied = false;
    try {
      const r = await cache.getOrLoad<ComexStatMonthValue | null>(
        c.key,
        async (ctx) => {
          const [got] = await cache.getMany<ComexStatMonthValue>([c.key], {
            skip: { read: into },
            endpoint: 'warming',
          });
          const v = got?.value;
          // What the value was stored with, less its age: a copy is never fresher than its source.
          const ttlMs = current(c, v) ? connector.ttlFor(c.ano, c.mes, v) - (Date.now() - v.fetchedAt) : 0;
          if (ttlMs <= 0 || v === undefined) {
            ctx.skip();
            return null;
          }
          ctx.setTags(comexstatTags(c));
          ctx.setOptions({ ttlMs, staleTtlMs: connector.config.cache.staleTtlMs });
          copied = true;
          return v;
        },
        {
          skip: { read: others },
          endpoint: 'warming',
          isStale: (e) => e.value === null || !current(c, e.value),
        },
      );
      if (copied) return 'copied';
      return r.level !== 'external' && r.value !== null && current(c, r.value) ? 'present' : 'failed';
    } catch {
      return 'failed';
    }
  }

  let done = 0;
  let warmed = 0;
  let skipped = 0;
  let leftOut = 0;
  let copied = 0;
  const allKeys: string[] = [];
  for (const flow of flows) {
    for (const ano of years) {
      const months = byYear.get(ano) as number[];
      const cells: Cell[] = [];
      for (const mes of months) {
        for (const ncm of ncms)
          for (const pais of countries)
            cells.push({ flow, ano, mes, ncm, pais, key: connector.keyFor({ flow, ano, mes, ncm, pais }) });
      }
      allKeys.push(...cells.map((c) => c.key));
      const { held, lacking } = await survey(cells);
      let missing = cells.filter((_, i) => !held[i]);
      const copies = cells.flatMap((c, i) => {
        const into = lacking[i];
        return held[i] && into ? [{ c, into }] : [];
      });
      if (tiered && copies.length > 0) {
        const failed: Cell[] = [];
        const written: Cell[] = [];
        for (let i = 0; i < copies.length; i += COPY_CONCURRENCY) {
          const batch = copies.slice(i, i + COPY_CONCURRENCY);
          const outcomes = await Promise.all(batch.map(({ c, into }) => copy(tiered, c, into)));
          outcomes.forEach((outcome, j) => {
            const c = (batch[j] as (typeof batch)[number]).c;
            if (outcome === 'copied') written.push(c);
            else if (outcome === 'failed') failed.push(c);
          });
        }
        if (written.length > 0) {
          // A copy counts once every shared tier serves it: an invalidation during the copy keeps
          // it out (the load's version predates it), and a tier may refuse the write.
          await tiered.flush?.();
          const after = await survey(written);
          written.forEach((c, i) => {
            if (after.held[i] && after.lacking[i] === undefined) copied++;
            else failed.push(c);
          });
        }
        // Invalidated (or expired) between the survey and the copy: fetched like any missing key.
        missing = missing.concat(failed);
      }
      if (missing.length > 0) {
        await connector.fetchYear({
          flow,
          ano,
          months,
          ncms: [...new Set(missing.map((c) => c.ncm))],
          countries: [...new Set(missing.map((c) => c.pais))],
        });
        // Count what landed, not what was asked for: cells may be left unstored (see keysLeftOut).
        const after = await survey(missing);
        const landed = after.held.filter(Boolean).length;
        warmed += landed;
        leftOut += missing.length - landed;
      }
      skipped += cells.length - missing.length;
      done += cells.length;
      options.onProgress?.({ flow, ano, done, total, skipped: missing.length === 0 });
    }
  }
  const tiersHeld: WarmSummary['tiers'] = [];
  if (tiered) {
    for (const t of tiered.tiers) {
      const values = await readLevel(tiered, t.level, allKeys);
      tiersHeld.push({ name: t.name, level: t.level, held: values.filter((v) => v !== undefined).length });
    }
  }
  const kinds = connector.client.stats.byKind;
  return {
    keysWarmed: warmed,
    keysSkipped: skipped,
    keysLeftOut: leftOut,
    keysTotal: total,
    keysCopied: copied,
    upstreamCalls: connector.client.stats.requests - requestsBefore,
    generalCalls: connector.stats.generalCalls - generalBefore,
    callsByKind: {
      data: kinds.data - kindsBefore.data,
      dates: kinds.dates - kindsBefore.dates,
      countries: kinds.countries - kindsBefore.countries,
      other: kinds.other - kindsBefore.other,
    },
    tiers: tiersHeld,
    ms: Date.now() - started,
  };
}

/** One monthly cell of a run, with its key. */
interface Cell {
  flow: ComexStatFlow;
  ano: number;
  mes: number;
  ncm: string;
  pais: string;
  key: string;
}

/** Whether a cached value predates `release` (revised since, or "not published" and published since). */
function outdated(c: Cell, v: ComexStatMonthValue, release: ComexStatRelease): boolean {
  if (v.status === 'not_published') return isPublishedMonth(c.ano, c.mes, release);
  return isOutdatedByRelease(c.ano, v.fetchedAt, release);
}

async function fromProvider(get: () => Promise<string[]> | undefined): Promise<string[] | undefined> {
  try {
    const list = await get();
    return list && list.length > 0 ? list : undefined;
  } catch {
    // The provider (L3) is optional: fall back to the YAML lists.
    return undefined;
  }
}
