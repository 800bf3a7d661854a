import { type CacheEntry, ConfigError, type Tier } from '@bgc/cache-core';
import type { ComexStatConnector } from './comexstat-connector.js';
import { comexstatTags } from './comexstat-tags.js';
import type { ComexStatFlow, ComexStatMonthValue } from './comexstat-types.js';

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
  /** Keys written by this run. */
  keysWarmed: number;
  /** Keys already cached (skipped: a resumed run). */
  keysSkipped: number;
  /** Keys requested (NCMs × countries × months × flows). */
  keysTotal: number;
  /** HTTP attempts sent upstream by this run (metadata and retries included). */
  upstreamCalls: number;
  /** `POST /general` calls among them. */
  generalCalls: number;
  /** Keys some tier lacked but another held: copied to every tier without an upstream call. */
  keysCopied: number;
  /** HTTP attempts of this run by kind (data = `POST /general`, dates, countries, other tables). */
  callsByKind: { data: number; dates: number; countries: number; other: number };
  /** What each tier holds of the run's keys afterwards (read back per tier), when the cache exposes its tiers. */
  tiers: { name: string; level: string; held: number }[];
  /** Wall time, ms. */
  ms: number;
}

/** The cache's tiers, when it exposes them (a `MultiLevelCache` does). */
function tiersOf(cache: unknown): readonly Tier[] {
  const t = (cache as { tiers?: unknown }).tiers;
  return Array.isArray(t) ? (t as Tier[]) : [];
}

async function readTier(tier: Tier, keys: string[], now: number): Promise<(CacheEntry | undefined)[]> {
  const entries = tier.getMany ? await tier.getMany(keys) : await Promise.all(keys.map((k) => tier.get(k)));
  return entries.map((e) => (e && e.staleUntil > now ? e : undefined));
}

/**
 * Fills the cache with the seed's weekly set (top 50 NCMs × top 10 countries × last 12 months, both
 * flows) through the connector's fan-out, at the spacer's lowest priority (`warming`: user cold
 * misses, refreshes and metadata of the whole cluster go first): the years of a flow are merged
 * into as few `POST /general` calls as the row bound allows. An interrupted run resumes per tier:
 * keys every tier holds are skipped, keys some tier lacks are copied from one that holds them.
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
  const tiers = tiersOf(connector.cache);
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
  let done = 0;
  let warmed = 0;
  let skipped = 0;
  let copied = 0;
  const allKeys: string[] = [];
  for (const flow of flows) {
    for (const ano of years) {
      const months = byYear.get(ano) as number[];
      const cells: { key: string; ncm: string; pais: string }[] = [];
      for (const mes of months) {
        for (const ncm of ncms)
          for (const pais of countries)
            cells.push({ key: connector.keyFor({ flow, ano, mes, ncm, pais }), ncm, pais });
      }
      const keys = cells.map((c) => c.key);
      allKeys.push(...keys);
      let missing: typeof cells;
      if (tiers.length > 0) {
        // Resume per tier: a key every tier holds is done; one some tier lacks is copied from a
        // tier that holds it; only keys no tier holds go upstream.
        const at = Date.now();
        const per = await Promise.all(
          tiers.map((t) => readTier(t, keys, at).catch(() => keys.map(() => undefined))),
        );
        missing = [];
        const copies: {
          key: string;
          value: unknown;
          ttlMs: number;
          staleTtlMs: number;
          tags: readonly string[];
        }[] = [];
        cells.forEach((c, i) => {
          const found = per.map((entries) => entries[i]);
          const any = found.find((e) => e !== undefined);
          if (!any) missing.push(c);
          else if (found.some((e) => e === undefined)) {
            copies.push({
              key: c.key,
              value: any.value,
              tags: comexstatTags({ flow, ano, ncm: c.ncm, pais: c.pais }),
              ttlMs: Math.max(1, any.freshUntil - at),
              staleTtlMs: Math.max(0, any.staleUntil - any.freshUntil),
            });
          }
        });
        if (copies.length > 0) {
          await connector.cache.setMany(copies);
          copied += copies.length;
        }
      } else {
        const cached = await connector.cache.getMany<ComexStatMonthValue>(keys);
        missing = cells.filter((_, i) => cached[i]?.value === undefined);
      }
      if (missing.length > 0) {
        await connector.fetchYear({
          flow,
          ano,
          months,
          ncms: [...new Set(missing.map((c) => c.ncm))],
          countries: [...new Set(missing.map((c) => c.pais))],
        });
      }
      warmed += missing.length;
      skipped += cells.length - missing.length;
      done += cells.length;
      options.onProgress?.({ flow, ano, done, total, skipped: missing.length === 0 });
    }
  }
  const held: WarmSummary['tiers'] = [];
  const readAt = Date.now();
  for (const t of tiers) {
    let n = 0;
    for (let i = 0; i < allKeys.length; i += 1000) {
      const got = await readTier(t, allKeys.slice(i, i + 1000), readAt).catch(() => []);
      n += got.filter((e) => e !== undefined).length;
    }
    held.push({ name: t.name, level: t.level, held: n });
  }
  const kinds = connector.client.stats.byKind;
  return {
    keysWarmed: warmed,
    keysSkipped: skipped,
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
    tiers: held,
    ms: Date.now() - started,
  };
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
