import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '@bgc/cache-core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONNECTOR_CONFIG, loadConnectorConfig } from '../src/index.js';

const example = fileURLToPath(new URL('../config/comexstat.yaml', import.meta.url));
const env = {};

function fails(yaml: string, field: string, message?: string, e: Record<string, string> = env): void {
  let error: unknown;
  try {
    loadConnectorConfig(yaml, { env: e });
  } catch (err) {
    error = err;
  }
  expect(error, `${field} should fail`).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).field).toBe(field);
  expect((error as ConfigError).code).toBe('E_CONFIG');
  if (message) expect((error as Error).message).toContain(message);
}

describe('loadConnectorConfig', () => {
  it("parses the seed's YAML", () => {
    const c = loadConnectorConfig(
      'cache:\n  enabled: true\n  ttl: 168h\n  key_pattern: "comexstat:exp:{ano}:{mes}:{ncm}:{pais}"\n',
      { env },
    );
    expect(c.cache).toMatchObject({
      enabled: true,
      ttlMs: 168 * 3_600_000,
      keyPattern: 'comexstat:exp:{ano}:{mes}:{ncm}:{pais}',
      importKeyPattern: 'comexstat:imp:{ano}:{mes}:{ncm}:{pais}',
    });
    expect(c.api).toEqual(DEFAULT_CONNECTOR_CONFIG.api);
    expect(c.rateLimit.minIntervalMs).toBe(20_000);
  });

  it('reads the shipped example file by path, codes as zero-padded strings', () => {
    const c = loadConnectorConfig(example, { env });
    expect(c.warming.topNcms).toHaveLength(50);
    expect(c.warming.topNcms).toContain('09011110');
    expect(c.warming.topCountries).toEqual([
      '160',
      '249',
      '063',
      '573',
      '245',
      '741',
      '493',
      '158',
      '149',
      '023',
    ]);
    expect(c.warming.months).toBe(12);
    expect(c.warming.flows).toEqual(['export', 'import']);
    expect(c.releaseAware).toEqual({ enabled: true, checkIntervalMs: 6 * 3_600_000 });
    expect(c.fanOut).toEqual({ enabled: true, wholeYear: true, topLists: true, allCountries: true });
    expect(c.api.timeoutMs).toBe(60_000);
    expect(c.cache.staleTtlMs).toBe(720 * 3_600_000);
  });

  it('accepts unquoted numeric codes by padding them back, and top-level shortcuts', () => {
    const c = loadConnectorConfig(
      'base_url: http://127.0.0.1:9999/\nmin_interval: 16s\nwarming:\n  top_ncms: [9011110]\n  top_countries: [63]\n',
      { env },
    );
    expect(c.warming.topNcms).toEqual(['09011110']);
    expect(c.warming.topCountries).toEqual(['063']);
    expect(c.api.baseUrl).toBe('http://127.0.0.1:9999');
    expect(c.rateLimit.minIntervalMs).toBe(16_000);
  });

  it('lets COMEXSTAT_MIN_INTERVAL_MS and COMEXSTAT_BASE_URL override the file', () => {
    const c = loadConnectorConfig('rate_limit:\n  min_interval: 20s\n', {
      env: { COMEXSTAT_MIN_INTERVAL_MS: '15000', COMEXSTAT_BASE_URL: 'http://sim:8080' },
    });
    expect(c.rateLimit.minIntervalMs).toBe(15_000);
    expect(c.api.baseUrl).toBe('http://sim:8080');
    fails('', 'COMEXSTAT_MIN_INTERVAL_MS', 'positive integer', { COMEXSTAT_MIN_INTERVAL_MS: 'soon' });
    fails('', 'COMEXSTAT_MIN_INTERVAL_MS', 'positive integer', { COMEXSTAT_MIN_INTERVAL_MS: '0' });
    fails('rate_limit:\n  min_interval: 0\n', 'rate_limit.min_interval', 'greater than 0', {});
    expect(loadConnectorConfig('', { env: {} }).cache.enabled).toBe(true);
    expect(loadConnectorConfig('cache:\n  stale_ttl: 0\n', { env: {} }).cache.staleTtlMs).toBe(0);
  });

  it('names the offending field with what is expected', () => {
    fails('cache:\n  ttl: 7 days\n', 'cache.ttl', 'Go syntax');
    fails('cache:\n  ttl: 168\n', 'cache.ttl', 'duration');
    fails('cache:\n  enabled: "yes"\n', 'cache.enabled', 'true or false');
    fails('cache:\n  key_pattern: "comexstat:exp:{ano}:{mes}:{ncm}"\n', 'cache.key_pattern', '{pais}');
    fails('cache:\n  key_pattern: "c:{ano}:{mes}:{ncm}:{pais}:{tenant}"\n', 'cache.key_pattern', '{tenant}');
    fails('cache:\n  key_pattern: "c:{ano:{mes}"\n', 'cache.key_pattern');
    fails('cache:\n  key_pattern: 12\n', 'cache.key_pattern', 'a string');
    fails(
      'cache:\n  key_pattern: "c:{ano}:{mes}:{ncm}:{pais}"\n',
      'cache.import_key_pattern',
      'share the export keys',
    );
    fails('cache:\n  tll: 168h\n', 'cache.tll', 'unknown field');
    fails('cache: [1]\n', 'cache', 'mapping');
    fails('colour: red\n', 'colour', 'unknown field');
    fails('api:\n  base_url: ftp://x\n', 'api.base_url', 'http(s) URL');
    fails('base_url: 42\n', 'base_url');
    fails('api:\n  language: fr\n', 'api.language', 'pt, en or es');
    fails('api:\n  retries: -1\n', 'api.retries', 'integer from 0 to 20');
    fails('api:\n  max_cells_per_call: 0\n', 'api.max_cells_per_call');
    fails('warming:\n  months: 0\n', 'warming.months');
    fails('warming:\n  flows: [exports]\n', 'warming.flows', 'export/import');
    fails('warming:\n  top_ncms: ["1201"]\n', 'warming.top_ncms[0]', '8-digit');
    fails('warming:\n  top_countries: "160"\n', 'warming.top_countries', 'list');
    fails('release_aware:\n  check_interval: soon\n', 'release_aware.check_interval');
    fails('fan_out:\n  enabled: 1\n', 'fan_out.enabled');
    fails('- a\n- b\n', 'yaml', 'mapping');
    fails('cache: {\n', 'yaml', 'not valid YAML');
    fails('/nonexistent/comexstat.yaml', 'file', 'cannot read');
  });

  it('reads a YAML file given by path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'comexstat-config-'));
    const file = join(dir, 'c.yml');
    writeFileSync(file, 'cache:\n  ttl: 24h\n');
    expect(loadConnectorConfig(file, { env }).cache.ttlMs).toBe(24 * 3_600_000);
  });
});
