import { ConfigError } from '@bgc/cache-core';
import type { ComexStatConnector } from './comexstat-connector.js';
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
  /** Wall time, ms. */
  ms: number;
}

/**
 * Fills the cache with the seed's weekly set (top 50 NCMs × top 10 countries × last 12 months, both
 * flows) through the connector's fan-out: one `POST /general` per flow and calendar year spanned,
 * each answering a whole year month by month. Groups whose keys are all cached are skipped, so an
 * interrupted run resumes where it stopped.
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
  for (const flow of flows) {
    for (const ano of years) {
      const months = byYear.get(ano) as number[];
      const cells: { key: string; ncm: string; pais: string }[] = [];
      for (const mes of months) {
        for (const ncm of ncms)
          for (const pais of countries)
            cells.push({ key: connector.keyFor({ flow, ano, mes, ncm, pais }), ncm, pais });
      }
      const cached = await connector.cache.getMany<ComexStatMonthValue>(cells.map((c) => c.key));
      const missing = cells.filter((_, i) => cached[i]?.value === undefined);
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
  return {
    keysWarmed: warmed,
    keysSkipped: skipped,
    keysTotal: total,
    upstreamCalls: connector.client.stats.requests - requestsBefore,
    generalCalls: connector.stats.generalCalls - generalBefore,
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
