#!/usr/bin/env node
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigError, MultiLevelCache } from '@bgc/cache-core';
import { MemoryTier } from '@bgc/cache-l1-memory';
import { ComexStatClient } from './comexstat-client.js';
import { type ComexStatCache, ComexStatConnector } from './comexstat-connector.js';
import {
  type ComexStatConnectorConfig,
  DEFAULT_CONNECTOR_CONFIG,
  loadConnectorConfig,
} from './connector-config.js';
import { DEFAULT_SPACER_KEY, RequestSpacer } from './request-spacer.js';
import { type ComexStatSimulator, startComexStatSimulator } from './simulator/comexstat-simulator.js';
import { warmComexStat } from './warm-comexstat.js';
import { createWarmReporter } from './warm-reporter.js';

const USAGE = `usage:
  bgc-comexstat simulator [--port 8080] [--host 127.0.0.1] [--window-ms 15000] [--no-rate-limit]
                          [--latency-ms 300] [--per-row-ms 0.3] [--updated YYYY-MM]
  bgc-comexstat warm [--config comexstat.yaml] [--base-url URL] [--min-interval-ms N] [--months 12] [--json]
                     [--cache-module ./cache.mjs]   (default export: (config) => cache; else in-memory dry run)
                     [--redis-url redis://127.0.0.1:6379] [--redis-key ${DEFAULT_SPACER_KEY}]   (share the gateway's spacer)
`;

/** Hooks for embedding the CLI (tests, demos). */
export interface CliHooks {
  /** Receives the running simulator; when given, the CLI installs no signal handlers. */
  onSimulator?: (sim: ComexStatSimulator) => void;
}

/**
 * Runs the CLI with `argv` (without node and script). Resolves the exit code, or -1 when a
 * long-running command (the simulator) keeps running.
 */
export async function main(
  argv: string[],
  out: NodeJS.WritableStream = process.stdout,
  hooks: CliHooks = {},
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'simulator') {
    const { values } = parseArgs({
      args: rest,
      options: {
        port: { type: 'string', default: '8080' },
        host: { type: 'string', default: '127.0.0.1' },
        'window-ms': { type: 'string', default: '15000' },
        'no-rate-limit': { type: 'boolean', default: false },
        'latency-ms': { type: 'string', default: '300' },
        'per-row-ms': { type: 'string', default: '0.3' },
        updated: { type: 'string' },
      },
    });
    const updated = values.updated?.split('-').map(Number);
    const sim = await startComexStatSimulator({
      port: Number(values.port),
      host: values.host,
      rateLimit: values['no-rate-limit']
        ? false
        : { max: 1, windowMs: Number(values['window-ms']), strict: true },
      latency: { baseMs: Number(values['latency-ms']), perRowMs: Number(values['per-row-ms']) },
      updated:
        updated && updated.length === 2
          ? { year: updated[0] as number, month: updated[1] as number }
          : undefined,
    });
    out.write(
      `ComexStat simulator listening on ${sim.url} (release ${sim.release.updated}, data through ${sim.release.year}-${String(sim.release.month).padStart(2, '0')})\n`,
    );
    if (hooks.onSimulator) {
      hooks.onSimulator(sim);
      return -1;
    }
    const stop = async () => {
      out.write(`served ${sim.stats.calls} calls (${sim.stats.rateLimited} rate-limited)\n`);
      await sim.close();
      process.exit(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return -1;
  }
  if (command === 'warm') {
    const { values } = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        'base-url': { type: 'string' },
        'min-interval-ms': { type: 'string' },
        months: { type: 'string' },
        'cache-module': { type: 'string' },
        'redis-url': { type: 'string' },
        'redis-key': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    const interval = values['min-interval-ms'];
    if (interval !== undefined && !/^\d+$/.test(interval.trim())) {
      throw new ConfigError(
        '--min-interval-ms',
        `expected a positive integer of ms, got ${JSON.stringify(interval)}`,
      );
    }
    const base: ComexStatConnectorConfig = values.config
      ? loadConnectorConfig(values.config)
      : DEFAULT_CONNECTOR_CONFIG;
    const config: ComexStatConnectorConfig = {
      ...base,
      api: { ...base.api, baseUrl: values['base-url'] ?? base.api.baseUrl },
      rateLimit: {
        minIntervalMs: values['min-interval-ms']
          ? Number(values['min-interval-ms'])
          : base.rateLimit.minIntervalMs,
      },
    };
    let cache: ComexStatCache;
    if (values['cache-module']) {
      const mod = (await import(pathToFileURL(values['cache-module']).href)) as {
        default: (c: ComexStatConnectorConfig) => ComexStatCache | Promise<ComexStatCache>;
      };
      cache = await mod.default(config);
    } else {
      if (!values.json)
        out.write('no --cache-module: warming an in-memory cache (dry run: shows the calls it would make)\n');
      cache = new MultiLevelCache({
        tiers: [new MemoryTier({ maxTtlMs: config.cache.staleTtlMs + config.cache.frozenTtlMs })],
        connector: 'comexstat',
        hardTimeoutMs: 3_600_000,
      });
    }
    // ioredis is an optional peer: loaded only when asked for.
    const redis = values['redis-url']
      ? new (await import('ioredis')).Redis(values['redis-url'], { maxRetriesPerRequest: 1 })
      : undefined;
    const client = new ComexStatClient({
      baseUrl: config.api.baseUrl,
      language: config.api.language,
      timeoutMs: config.api.timeoutMs,
      retries: config.api.retries,
      spacer: new RequestSpacer({
        minIntervalMs: config.rateLimit.minIntervalMs,
        redis,
        redisKey: values['redis-key'] ?? DEFAULT_SPACER_KEY,
        onError: (e) =>
          out.write(`spacer: Redis failed (${(e as Error).message}); spacing this process only\n`),
      }),
    });
    const connector = new ComexStatConnector({ client, cache, config });
    const reporter = values.json ? undefined : createWarmReporter();
    const summary = await warmComexStat({
      connector,
      months: values.months ? Number(values.months) : undefined,
      onProgress: reporter?.onProgress,
    });
    reporter?.finish(summary);
    out.write(`${JSON.stringify(summary)}\n`);
    await redis?.quit();
    return 0;
  }
  out.write(USAGE);
  return command === undefined || command === 'help' || command === '--help' ? 0 : 2;
}

const invoked = process.argv[1] ? pathToFileURL(process.argv[1]).href : '';
if (invoked === import.meta.url || /bgc-comexstat$|cli\.(c?js|ts)$/.test(process.argv[1] ?? '')) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
