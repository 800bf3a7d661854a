import { readFileSync } from 'node:fs';
import { ConfigError, KeyPattern, parseDuration } from '@bgc/cache-core';
import { parse as parseYaml } from 'yaml';
import { COMEXSTAT_BASE_URL } from './comexstat-client.js';
import type { ComexStatFlow, ComexStatLanguage } from './comexstat-types.js';
import { DEFAULT_MIN_INTERVAL_MS } from './request-spacer.js';

/** The connector's configuration, parsed and validated (durations in ms). */
export interface ComexStatConnectorConfig {
  cache: {
    /** `cache.enabled`: when false, every call goes upstream. */
    enabled: boolean;
    /** `cache.ttl`: past years' TTL (the seed's 168h), ms. */
    ttlMs: number;
    /** `cache.key_pattern`: exports, with `{ano}`, `{mes}`, `{ncm}`, `{pais}` (and optionally `{flow}`). */
    keyPattern: string;
    /** `cache.import_key_pattern`: imports; default the export pattern with `:exp:` → `:imp:`. */
    importKeyPattern: string;
    /** `cache.stale_ttl`: how long an expired entry may still be served if the API fails, ms. */
    staleTtlMs: number;
    /** `cache.frozen_ttl`: TTL of frozen years when release-aware, ms. */
    frozenTtlMs: number;
  };
  api: {
    /** `api.base_url` (env `COMEXSTAT_BASE_URL` wins). */
    baseUrl: string;
    language: ComexStatLanguage;
    /** `api.timeout`, ms. */
    timeoutMs: number;
    retries: number;
    /**
     * `api.max_cells_per_call`: most (month, NCM, country) cells one coalesced call may cover; the
     * API times out near 150k rows, so bigger batches are split.
     */
    maxCellsPerCall: number;
  };
  rateLimit: {
    /** `rate_limit.min_interval` (env `COMEXSTAT_MIN_INTERVAL_MS` wins), ms. */
    minIntervalMs: number;
  };
  releaseAware: {
    /** `release_aware.enabled`. */
    enabled: boolean;
    /** `release_aware.check_interval`: how often `/general/dates/updated` is read, and the TTL of "not yet published" markers, ms. */
    checkIntervalMs: number;
  };
  fanOut: {
    /** `fan_out.enabled`: widen single misses to whole years (warming always fans out). @default true */
    enabled: boolean;
    /** `fan_out.whole_year`: fetch every published month of the year. */
    wholeYear: boolean;
    /** `fan_out.top_lists`: add the warming top NCMs and countries to the call. */
    topLists: boolean;
    /**
     * `fan_out.all_countries`: a fanned-out call of one year asks its NCMs for every country (no
     * country filter) and caches every country that traded them, so a later miss of another
     * country costs no call. Multi-year calls (charts) keep the country filter (row bound).
     */
    allCountries: boolean;
  };
  warming: {
    /** `warming.months`: how many months back from the latest published one. */
    months: number;
    flows: ComexStatFlow[];
    /** `warming.top_ncms`: 8-digit codes. */
    topNcms: string[];
    /** `warming.top_countries`: 3-digit MDIC codes. */
    topCountries: string[];
  };
}

/** Options of {@link loadConnectorConfig}. */
export interface LoadConnectorConfigOptions {
  /** Environment for `COMEXSTAT_MIN_INTERVAL_MS` and `COMEXSTAT_BASE_URL`. @default process.env */
  env?: Record<string, string | undefined>;
}

/** Defaults of every field (the seed's YAML values where it has them). */
export const DEFAULT_CONNECTOR_CONFIG: ComexStatConnectorConfig = Object.freeze({
  cache: {
    enabled: true,
    ttlMs: 168 * 3_600_000,
    keyPattern: 'comexstat:exp:{ano}:{mes}:{ncm}:{pais}',
    importKeyPattern: 'comexstat:imp:{ano}:{mes}:{ncm}:{pais}',
    staleTtlMs: 30 * 24 * 3_600_000,
    frozenTtlMs: 30 * 24 * 3_600_000,
  },
  api: {
    baseUrl: COMEXSTAT_BASE_URL,
    language: 'pt',
    timeoutMs: 60_000,
    retries: 4,
    maxCellsPerCall: 100_000,
  },
  rateLimit: { minIntervalMs: DEFAULT_MIN_INTERVAL_MS },
  releaseAware: { enabled: true, checkIntervalMs: 6 * 3_600_000 },
  // Economical by default: a miss fetches its whole year (and the top lists), merged across years.
  fanOut: { enabled: true, wholeYear: true, topLists: true, allCountries: true },
  warming: { months: 12, flows: ['export', 'import'], topNcms: [], topCountries: [] },
}) as ComexStatConnectorConfig;

type Obj = Record<string, unknown>;

const KNOWN: Record<string, readonly string[]> = {
  '': ['cache', 'api', 'base_url', 'rate_limit', 'min_interval', 'release_aware', 'fan_out', 'warming'],
  cache: ['enabled', 'ttl', 'key_pattern', 'import_key_pattern', 'stale_ttl', 'frozen_ttl'],
  api: ['base_url', 'language', 'timeout', 'retries', 'max_cells_per_call'],
  rate_limit: ['min_interval'],
  release_aware: ['enabled', 'check_interval'],
  fan_out: ['enabled', 'whole_year', 'top_lists', 'all_countries'],
  warming: ['months', 'flows', 'top_ncms', 'top_countries'],
};

function section(root: Obj, name: string): Obj {
  const v = root[name];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new ConfigError(name, `expected a mapping, got ${describe(v)}`);
  checkKeys(v as Obj, name);
  return v as Obj;
}

function checkKeys(obj: Obj, prefix: string): void {
  const known = KNOWN[prefix] ?? [];
  for (const k of Object.keys(obj)) {
    if (!known.includes(k)) {
      const field = prefix ? `${prefix}.${k}` : k;
      throw new ConfigError(
        field,
        `unknown field; known fields${prefix ? ` of ${prefix}` : ''}: ${known.join(', ')}`,
      );
    }
  }
}

function describe(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'null' : `${typeof v} ${JSON.stringify(v)}`;
}

function bool(obj: Obj, key: string, field: string, fallback: boolean): boolean {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new ConfigError(field, `expected true or false, got ${describe(v)}`);
  return v;
}

function duration(obj: Obj, key: string, field: string, fallback: number): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number' && v === 0) return 0;
  if (typeof v !== 'string')
    throw new ConfigError(field, `expected a duration such as 168h or 20s, got ${describe(v)}`);
  return parseDuration(v, field);
}

function int(obj: Obj, key: string, field: string, fallback: number, min: number, max: number): number {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `expected an integer from ${min} to ${max}, got ${describe(v)}`);
  }
  return v;
}

function codes(obj: Obj, key: string, field: string, digits: number): string[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v))
    throw new ConfigError(field, `expected a list of ${digits}-digit codes, got ${describe(v)}`);
  return v.map((c, i) => {
    // YAML reads 09011110 as a number (and 063 as octal-ish 63): accept numbers, pad them back.
    const s = typeof c === 'number' && Number.isInteger(c) ? String(c).padStart(digits, '0') : c;
    if (typeof s !== 'string' || !new RegExp(`^\\d{${digits}}$`).test(s)) {
      throw new ConfigError(
        `${field}[${i}]`,
        `expected a ${digits}-digit code as a quoted string, got ${describe(c)}`,
      );
    }
    return s;
  });
}

function pattern(obj: Obj, key: string, field: string, fallback: string): string {
  const v = obj[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw new ConfigError(field, `expected a string, got ${describe(v)}`);
  let kp: KeyPattern;
  try {
    kp = new KeyPattern(v);
  } catch (cause) {
    throw new ConfigError(field, (cause as Error).message, { cause });
  }
  for (const p of ['ano', 'mes', 'ncm', 'pais']) {
    if (!kp.placeholders.includes(p))
      throw new ConfigError(
        field,
        `the pattern must contain {${p}}, e.g. comexstat:exp:{ano}:{mes}:{ncm}:{pais}`,
      );
  }
  for (const p of kp.placeholders) {
    if (!['ano', 'mes', 'ncm', 'pais', 'flow'].includes(p)) {
      throw new ConfigError(
        field,
        `unknown placeholder {${p}}; use {ano}, {mes}, {ncm}, {pais} and optionally {flow}`,
      );
    }
  }
  return v;
}

/**
 * Parses and validates the connector YAML: the seed's `cache` block (`enabled`, `ttl: 168h`,
 * `key_pattern`) plus `api`, `rate_limit`, `release_aware`, `fan_out` and `warming`. Missing
 * fields take {@link DEFAULT_CONNECTOR_CONFIG}; environment variables override the base URL and the
 * minimum interval.
 * @param source YAML text, or a path to a `.yaml`/`.yml` file
 * @throws {ConfigError} naming the offending field (e.g. `cache.ttl`) with what is expected
 */
export function loadConnectorConfig(
  source: string,
  options: LoadConnectorConfigOptions = {},
): ComexStatConnectorConfig {
  const isPath = !source.includes('\n') && /\.ya?ml$/i.test(source.trim());
  let text = source;
  if (isPath) {
    try {
      text = readFileSync(source.trim(), 'utf8');
    } catch (cause) {
      throw new ConfigError('file', `cannot read ${source}: ${(cause as Error).message}`, { cause });
    }
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (cause) {
    throw new ConfigError('yaml', `not valid YAML: ${(cause as Error).message}`, { cause });
  }
  if (doc === null || doc === undefined) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError('yaml', 'the document must be a mapping');
  const root = doc as Obj;
  checkKeys(root, '');
  const d = DEFAULT_CONNECTOR_CONFIG;
  const env = options.env ?? process.env;

  const cache = section(root, 'cache');
  const keyPattern = pattern(cache, 'key_pattern', 'cache.key_pattern', d.cache.keyPattern);
  const derivedImport = keyPattern.includes('{flow}') ? keyPattern : keyPattern.replace(':exp:', ':imp:');
  const importKeyPattern = pattern(cache, 'import_key_pattern', 'cache.import_key_pattern', derivedImport);
  if (importKeyPattern === keyPattern && !keyPattern.includes('{flow}')) {
    throw new ConfigError(
      'cache.import_key_pattern',
      'imports would share the export keys; set import_key_pattern (e.g. comexstat:imp:...) or use {flow} in key_pattern',
    );
  }

  const api = section(root, 'api');
  let baseUrl = root.base_url ?? api.base_url ?? d.api.baseUrl;
  const baseField = root.base_url !== undefined ? 'base_url' : 'api.base_url';
  if (env.COMEXSTAT_BASE_URL) baseUrl = env.COMEXSTAT_BASE_URL;
  if (typeof baseUrl !== 'string' || !/^https?:\/\/[^\s]+$/.test(baseUrl)) {
    throw new ConfigError(baseField, `expected an http(s) URL, got ${describe(baseUrl)}`);
  }
  const language = api.language ?? d.api.language;
  if (language !== 'pt' && language !== 'en' && language !== 'es') {
    throw new ConfigError('api.language', `expected pt, en or es, got ${describe(language)}`);
  }

  const rate = section(root, 'rate_limit');
  let minIntervalMs =
    root.min_interval !== undefined
      ? duration(root, 'min_interval', 'min_interval', d.rateLimit.minIntervalMs)
      : duration(rate, 'min_interval', 'rate_limit.min_interval', d.rateLimit.minIntervalMs);
  const envInterval = env.COMEXSTAT_MIN_INTERVAL_MS;
  if (envInterval !== undefined && envInterval !== '') {
    const n = Number(envInterval);
    if (!/^\s*\d+\s*$/.test(envInterval) || !Number.isInteger(n) || n < 1) {
      throw new ConfigError(
        'COMEXSTAT_MIN_INTERVAL_MS',
        `expected a positive integer of ms (e.g. 20000), got ${JSON.stringify(envInterval)}; 0 would get the whole IP refused`,
      );
    }
    minIntervalMs = n;
  }
  if (!(minIntervalMs >= 1)) {
    throw new ConfigError(
      root.min_interval !== undefined ? 'min_interval' : 'rate_limit.min_interval',
      'must be greater than 0 (ComexStat refuses calls closer than about 15 s; use 20s)',
    );
  }

  const release = section(root, 'release_aware');
  const fan = section(root, 'fan_out');
  const warm = section(root, 'warming');
  const flows = warm.flows ?? d.warming.flows;
  if (!Array.isArray(flows) || flows.length === 0 || flows.some((f) => f !== 'export' && f !== 'import')) {
    throw new ConfigError(
      'warming.flows',
      `expected a non-empty list of export/import, got ${describe(flows)}`,
    );
  }

  return {
    cache: {
      enabled: bool(cache, 'enabled', 'cache.enabled', d.cache.enabled),
      ttlMs: duration(cache, 'ttl', 'cache.ttl', d.cache.ttlMs),
      keyPattern,
      importKeyPattern,
      staleTtlMs: duration(cache, 'stale_ttl', 'cache.stale_ttl', d.cache.staleTtlMs),
      frozenTtlMs: duration(cache, 'frozen_ttl', 'cache.frozen_ttl', d.cache.frozenTtlMs),
    },
    api: {
      baseUrl: baseUrl.replace(/\/+$/, ''),
      language,
      timeoutMs: duration(api, 'timeout', 'api.timeout', d.api.timeoutMs),
      retries: int(api, 'retries', 'api.retries', d.api.retries, 0, 20),
      maxCellsPerCall: int(
        api,
        'max_cells_per_call',
        'api.max_cells_per_call',
        d.api.maxCellsPerCall,
        1,
        10_000_000,
      ),
    },
    rateLimit: { minIntervalMs },
    releaseAware: {
      enabled: bool(release, 'enabled', 'release_aware.enabled', d.releaseAware.enabled),
      checkIntervalMs: duration(
        release,
        'check_interval',
        'release_aware.check_interval',
        d.releaseAware.checkIntervalMs,
      ),
    },
    fanOut: {
      enabled: bool(fan, 'enabled', 'fan_out.enabled', d.fanOut.enabled),
      wholeYear: bool(fan, 'whole_year', 'fan_out.whole_year', d.fanOut.wholeYear),
      topLists: bool(fan, 'top_lists', 'fan_out.top_lists', d.fanOut.topLists),
      allCountries: bool(fan, 'all_countries', 'fan_out.all_countries', d.fanOut.allCountries),
    },
    warming: {
      months: int(warm, 'months', 'warming.months', d.warming.months, 1, 120),
      flows: flows as ComexStatFlow[],
      topNcms: codes(warm, 'top_ncms', 'warming.top_ncms', 8),
      topCountries: codes(warm, 'top_countries', 'warming.top_countries', 3),
    },
  };
}
