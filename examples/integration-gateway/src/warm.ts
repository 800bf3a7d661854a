// The warming job (the seed's weekly CronJob): top 50 NCMs × top 10 countries × last 12 months,
// from the L3 aggregates when they have data, else from the connector YAML; fills L2/L3 through the
// connector's batch fan-out with the fewest upstream calls. Resumable: keys already cached are
// skipped. Configured by the same environment as the gateway.
import { createWarmReporter, warmComexStat, type WarmTopProvider } from '@bgc/connector-comexstat';
import { loadGatewayConfig } from './config.js';
import { createConnector, createLogger } from './gateway.js';
import { createRuntime, type GatewayRuntime } from './runtime.js';

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

async function main(): Promise<number> {
  const config = loadGatewayConfig(process.env);
  const logger = createLogger(config.logLevel);
  const runtime = await createRuntime(config, process.env, logger);
  try {
    const connector = createConnector(config, runtime, process.env, logger);
    const provider = await aggregatesProvider(runtime);
    const reporter = createWarmReporter();
    const summary = await warmComexStat({ connector, provider, onProgress: (p) => reporter.onProgress(p) });
    reporter.finish(summary);
    process.stdout.write(
      `${JSON.stringify({ source: provider ? 'l3-aggregates' : 'config', ...summary })}\n`,
    );
    await connector.drain();
    return 0;
  } finally {
    await runtime.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error & { code?: string }) => {
    process.stderr.write(`warming failed: ${error.code ? `[${error.code}] ` : ''}${error.message}\n`);
    process.exit(1);
  },
);
