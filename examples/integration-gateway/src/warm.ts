// The warming job (the seed's weekly CronJob): top 50 NCMs × top 10 countries × last 12 months,
// from the L3 aggregates when they have data, else from the connector YAML; fills L2/L3 through the
// connector's batch fan-out with the fewest upstream calls. Resumable: keys already cached are
// skipped. Configured by the same environment as the gateway.
//
//   node dist/warm.js [--json]
//
// Before any work it connects to every configured shared tier (bounded by WARM_CONNECT_TIMEOUT,
// default 30s) and fails naming the tier when one stays unreachable. Afterwards it reads the warmed
// keys back from each tier and exits non-zero when a configured shared tier does not hold them all:
// it never reports work that did not land.
import { envDuration } from '@bgc/cache-core';
import {
  type ComexStatConnector,
  type ComexStatFlow,
  createWarmReporter,
  warmComexStat,
  type WarmSummary,
  type WarmTopProvider,
} from '@bgc/connector-comexstat';
import { loadGatewayConfig } from './config.js';
import { connectorConfig, connectorWaitBoundMs, createConnector, createLogger } from './gateway.js';
import { connectTiers, createRuntime, type GatewayRuntime } from './runtime.js';
import { collectSecrets, scrubSecrets } from './secrets.js';

/** Per-operation tier timeout of the job when CACHE_TIER_TIMEOUT is not set, ms. */
const JOB_TIER_TIMEOUT_MS = 10_000;

/** Top lists from the L3 materialized view, or undefined when it has nothing yet. */
async function aggregatesProvider(runtime: GatewayRuntime): Promise<WarmTopProvider | undefined> {
  const store = runtime.aggregates;
  if (!store) return undefined;
  const probe = await store.topNcms(1).catch(() => []);
  if (probe.length === 0) return undefined;
  return {
    topNcms: async (n) => (await store.topNcms(n)).map((r) => r.ncm),
    topCountries: async (n) => (await store.topCountries(n)).map((r) => r.countryCode),
  };
}

/** The (flow, year, months) groups and keys a warming run covers, computed as warmComexStat does. */
async function plannedKeys(
  connector: ComexStatConnector,
  ncms: string[],
  countries: string[],
): Promise<{ keys: string[]; flowYears: number }> {
  const cfg = connector.config.warming;
  const release = await connector.releaseInfo();
  const now = new Date();
  let y = release?.year ?? now.getUTCFullYear();
  let m = release?.month ?? now.getUTCMonth();
  if (m === 0) {
    y--;
    m = 12;
  }
  const months: { ano: number; mes: number }[] = [];
  for (let i = 0; i < cfg.months; i++) {
    months.push({ ano: y, mes: m });
    if (--m === 0) {
      m = 12;
      y--;
    }
  }
  const keys: string[] = [];
  const flows: ComexStatFlow[] = cfg.flows;
  for (const flow of flows)
    for (const { ano, mes } of months)
      for (const ncm of ncms)
        for (const pais of countries) keys.push(connector.keyFor({ flow, ano, mes, ncm, pais }));
  return { keys, flowYears: flows.length * new Set(months.map((x) => x.ano)).size };
}

/**
 * How many of `keys` each tier serves (fresh), read back in chunks through the cache, one level at
 * a time (`skip.read` of the others): a shared tier's entries are checked against the tag records,
 * so an entry invalidated by tag but still stored does not count.
 */
async function heldPerTier(runtime: GatewayRuntime, keys: string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const levels = runtime.cache.tiers.map((t) => t.level);
  for (const level of levels) {
    const skip = levels.filter((l) => l !== level);
    let held = 0;
    for (let i = 0; i < keys.length; i += 1000) {
      const got = await runtime.cache.getMany(keys.slice(i, i + 1000), { skip: { read: skip } });
      for (const r of got) if (r.value !== undefined) held++;
    }
    out[level] = held;
  }
  return out;
}

/** The warming report: the connector's summary plus what each tier holds afterwards. */
export interface WarmReport extends WarmSummary {
  /** Where the top lists came from. */
  source: 'l3-aggregates' | 'config';
  /** Keys of this run (flows × months × NCMs × countries). */
  keysExpected: number;
  /** Of those, how many each tier holds after the run (read back), by level. */
  held: Record<string, number>;
  /** (flow, calendar year) groups the run spans: at most one data call each is the goal. */
  flowYears: number;
  /** The shared tiers that do not hold every key (empty on success). */
  incomplete: string[];
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const unknown = argv.filter((a) => a !== '--json');
  if (unknown.length > 0) throw new Error(`unknown argument ${JSON.stringify(unknown[0])}; use --json`);
  const config = loadGatewayConfig(process.env);
  // A job is not latency-bound: large batch writes get 10 s per tier operation unless configured.
  if (!process.env.CACHE_TIER_TIMEOUT?.trim()) config.resilience.tierTimeoutMs = JOB_TIER_TIMEOUT_MS;
  // A whole year's fan-out is one Redis write of thousands of keys: no 100 ms command bound.
  if (!process.env.REDIS_COMMAND_TIMEOUT?.trim()) config.redisCommandTimeoutMs = JOB_TIER_TIMEOUT_MS;
  const logger = createLogger(config.logLevel, collectSecrets(process.env));
  const connectMs = envDuration(process.env, 'WARM_CONNECT_TIMEOUT', 30_000);
  const runtime = await createRuntime(config, process.env, logger, {
    waitBoundMs: connectorWaitBoundMs(config, connectorConfig(config, process.env)),
  });
  try {
    // Every configured tier is connected before any work (the spacer and the writes need Redis up).
    await connectTiers(runtime, config, connectMs);
    const connector = createConnector(config, runtime, process.env, logger);
    const provider = await aggregatesProvider(runtime);
    const cfg = connector.config.warming;
    const ncms = (provider ? await provider.topNcms(50) : undefined) ?? cfg.topNcms;
    const countries = (provider ? await provider.topCountries(10) : undefined) ?? cfg.topCountries;
    const reporter = json ? undefined : createWarmReporter();
    const summary = await warmComexStat({
      connector,
      ncms,
      countries,
      onProgress: (p) => reporter?.onProgress(p),
    });
    await connector.drain();
    await runtime.cache.flush();
    const { keys, flowYears } = await plannedKeys(connector, ncms, countries);
    const held = await heldPerTier(runtime, keys);
    const incomplete = Object.entries(held)
      .filter(([level, n]) => level !== 'l1' && n < keys.length)
      .map(([level]) => level);
    const report: WarmReport = {
      source: provider ? 'l3-aggregates' : 'config',
      ...summary,
      keysExpected: keys.length,
      held,
      flowYears,
      incomplete,
    };
    if (json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      reporter?.finish(summary);
      const tiers = Object.entries(held)
        .map(([level, n]) => `${level.toUpperCase()} holds ${n}/${keys.length}`)
        .join(', ');
      process.stdout.write(
        `${tiers}; ${summary.generalCalls} data calls for ${flowYears} (flow, year) groups${summary.generalCalls <= flowYears ? ' (at most one per flow and calendar year)' : ''}\n`,
      );
    }
    if (incomplete.length > 0) {
      process.stderr.write(
        `warming failed: ${incomplete.map((l) => `${l.toUpperCase()} holds ${held[l]} of the ${keys.length} warmed keys`).join('; ')}; see the logs for the tier errors\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    await runtime.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error & { code?: string }) => {
    const text = `warming failed: ${error.code ? `[${error.code}] ` : ''}${error.message}\n`;
    process.stderr.write(scrubSecrets(text, collectSecrets(process.env)));
    process.exit(1);
  },
);
