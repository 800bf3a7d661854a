// The runtime's load bounds and the spacer's own Redis client (issue 15), on the real Redis.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../src/config.js';
import { createConnector } from '../src/gateway.js';
import { createRuntime, type GatewayRuntime } from '../src/runtime.js';

const silent = pino({ level: 'silent' });
const opened: GatewayRuntime[] = [];
afterEach(async () => {
  for (const r of opened.splice(0)) await r.close();
});

const base = {
  CACHE_L2_ENABLED: 'true',
  CACHE_L3_ENABLED: 'false',
  REDIS_ADDR: '127.0.0.1:6379',
  CACHE_L2_PREFIX: `rt-bounds-${process.pid}:c:`,
  CACHE_COORD_PREFIX: `rt-bounds-${process.pid}:x:`,
};

describe('runtime bounds', () => {
  it('defaults the hard timeout and lock wait above the connector wait bound; the spacer has its own 1 s client', async () => {
    const config = loadGatewayConfig(base);
    const runtime = await createRuntime(config, base, silent, { waitBoundMs: 50_000 });
    opened.push(runtime);
    expect(runtime.loadBounds).toEqual({ hardTimeoutMs: 60_000, lockWaitMs: 60_000 });
    expect(runtime.spacerRedis).toBeDefined();
    expect(runtime.spacerRedis).not.toBe(runtime.redis);
    expect((runtime.spacerRedis?.options as { commandTimeout?: number } | undefined)?.commandTimeout).toBe(
      1000,
    );
    expect((runtime.redis?.options as { commandTimeout?: number } | undefined)?.commandTimeout).toBe(100);
    const connector = createConnector(config, runtime, base, silent);
    // The connector's bound at the default 20 s spacing is the one the cache's timeouts sit above.
    expect(connector.admission.maxWaitMs).toBe(50_000);
    expect(connector.admission.maxWaitMs).toBeLessThan(runtime.loadBounds.hardTimeoutMs);
    await connector.close();
  });

  it('passes the admission variables to the connector', async () => {
    const env = {
      ...base,
      COMEXSTAT_MIN_INTERVAL_MS: '5000',
      COMEXSTAT_MAX_PENDING_CALLS: '3',
      COMEXSTAT_MAX_PENDING_CELLS: '900',
      COMEXSTAT_CLIENT_BUDGET: '0',
      COMEXSTAT_EXPECTED_REPLICAS: '4',
      CACHE_LOAD_HARD_TIMEOUT: '45s',
    };
    const config = loadGatewayConfig(env);
    const runtime = await createRuntime(config, env, silent, { waitBoundMs: 20_000 });
    opened.push(runtime);
    expect(runtime.loadBounds.hardTimeoutMs).toBe(45_000);
    const connector = createConnector(config, runtime, env, silent);
    expect(connector.admission).toMatchObject({
      maxWaitMs: 20_000, // 2 × 5 s + 10 s
      maxPendingCalls: 3,
      maxPendingCells: 900,
      clientBudget: 0,
    });
    expect(connector.client.spacer?.expectedReplicas).toBe(4);
    expect(connector.client.spacer?.minIntervalMs).toBe(5000);
    await connector.close();
  });
});
