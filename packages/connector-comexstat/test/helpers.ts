import { MultiLevelCache } from '@bgc/cache-core';
import { vi } from 'vitest';
import { FakeTier } from '@bgc/cache-core/testing';
import {
  ComexStatClient,
  type ComexStatClientOptions,
  ComexStatConnector,
  type ComexStatConnectorConfig,
  type ComexStatConnectorOptions,
  DEFAULT_CONNECTOR_CONFIG,
  RequestSpacer,
  type SpacerClock,
} from '../src/index.js';
import {
  type ComexStatSimulator,
  type ComexStatSimulatorOptions,
  startComexStatSimulator,
} from '../src/simulator/index.js';

/**
 * A clock the test moves: `sleep` resolves only when `advance` passes its time, so a test decides
 * when the spacer grants (causes, not wall-clock luck).
 */
export class ManualClock implements SpacerClock {
  t: number;
  private sleepers: { at: number; resolve: () => void }[] = [];
  constructor(start = Date.now()) {
    this.t = start;
  }
  now = (): number => this.t;
  sleep = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      this.sleepers.push({ at: this.t + ms, resolve });
    });
  setTimer = (fn: () => void, ms: number): (() => void) => {
    const s = { at: this.t + ms, resolve: fn };
    this.sleepers.push(s);
    return () => {
      this.sleepers = this.sleepers.filter((x) => x !== s);
    };
  };
  /** Sleepers waiting. */
  get sleeping(): number {
    return this.sleepers.length;
  }
  /** Moves the clock and wakes every sleeper now due; resolves after they ran a few ticks. */
  async advance(ms: number): Promise<void> {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.resolve();
    // Let the woken work run (microtasks and a couple of event-loop turns) before returning.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }

  /** Advances `stepMs` at a time until `done()` holds (at most `maxSteps` steps). */
  async advanceUntil(done: () => boolean, stepMs = 100, maxSteps = 200): Promise<void> {
    for (let i = 0; i < maxSteps && !done(); i++) {
      await this.advance(stepMs);
      await new Promise((r) => setTimeout(r, 2));
    }
    if (!done()) throw new Error(`condition not reached after ${maxSteps} steps of ${stepMs} ms`);
  }
}

/** Waits for `check` to pass (a loaded 2-core machine may need seconds: the bound is generous). */
export function until<T>(check: () => T): Promise<T> {
  return vi.waitFor(check, { timeout: 30_000, interval: 5 });
}

/** Drains a connector whose spacer runs on a manual clock (moving the clock until it settles). */
export async function drainMoving(connector: { drain(): Promise<void> }, clock: ManualClock): Promise<void> {
  let drained = false;
  const drain = connector.drain().finally(() => {
    drained = true;
  });
  while (!drained) {
    await clock.advance(100);
    await new Promise((r) => setTimeout(r, 5));
  }
  await drain;
}

export interface Stack {
  sim: ComexStatSimulator;
  client: ComexStatClient;
  connector: ComexStatConnector;
  cache: MultiLevelCache;
  tier: FakeTier;
  sentAt: number[];
  errors: unknown[];
  close(): Promise<void>;
}

/** Simulator + spaced client + connector over a FakeTier-backed cache. */
export async function makeStack(
  options: {
    intervalMs?: number;
    sim?: ComexStatSimulatorOptions;
    client?: Partial<ComexStatClientOptions>;
    config?: (c: ComexStatConnectorConfig) => ComexStatConnectorConfig;
    now?: () => number;
    onRows?: ComexStatConnectorOptions['onRows'];
    admission?: ComexStatConnectorOptions['admission'];
    /** The spacer's clock (e.g. a {@link ManualClock}). */
    clock?: SpacerClock;
    /** @default 0 with a ManualClock, else the connector's default */
    gatherMs?: number;
  } = {},
): Promise<Stack> {
  const intervalMs = options.intervalMs ?? 100;
  const sim = await startComexStatSimulator({
    rateLimit: {
      max: 1,
      windowMs: Math.max(1, Math.floor(intervalMs / 2.5)),
      strict: true,
      retryAfterSeconds: 1,
    },
    latency: { baseMs: 2, perRowMs: 0.001 },
    updated: { year: 2026, month: 8 },
    ...options.sim,
  });
  const sentAt: number[] = [];
  const client = new ComexStatClient({
    baseUrl: sim.url,
    spacer: new RequestSpacer({ minIntervalMs: intervalMs, clock: options.clock }),
    retryBaseDelayMs: 10,
    maxRetryDelayMs: 50,
    timeoutMs: 2000,
    onAttempt: (a) => sentAt.push(a.sentAt),
    ...options.client,
  });
  const tier = new FakeTier({ level: 'l2', batch: true });
  // The real orchestrator over one shared-like tier; the hard timeout outlives the connector's wait bound.
  const cache = new MultiLevelCache({ tiers: [tier], hardTimeoutMs: 120_000, softTimeoutMs: 1000 });
  const errors: unknown[] = [];
  const base: ComexStatConnectorConfig = {
    ...DEFAULT_CONNECTOR_CONFIG,
    warming: { ...DEFAULT_CONNECTOR_CONFIG.warming, topNcms: TOP_NCMS, topCountries: TOP_COUNTRIES },
  };
  const connector = new ComexStatConnector({
    client,
    cache,
    config: options.config ? options.config(base) : base,
    now: options.now,
    onError: (e) => errors.push(e),
    onRows: options.onRows,
    admission: options.admission,
    gatherMs: options.gatherMs ?? (options.clock instanceof ManualClock ? 0 : undefined),
  });
  return {
    sim,
    client,
    connector,
    cache,
    tier,
    sentAt,
    errors,
    async close() {
      // A manual clock must move for background work (metadata at low priority) to be granted.
      const clock = options.clock;
      if (clock instanceof ManualClock) await drainMoving(connector, clock);
      else await connector.drain();
      await cache.close();
      await sim.close();
    },
  };
}

/** Smallest gap between consecutive send times, ms. */
export function minGap(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let min = Number.POSITIVE_INFINITY;
  for (let i = 1; i < sorted.length; i++)
    min = Math.min(min, (sorted[i] as number) - (sorted[i - 1] as number));
  return min;
}

export const TOP_NCMS = [
  '12019000',
  '27090010',
  '26011100',
  '26011200',
  '09011110',
  '02023000',
  '17011400',
  '47032900',
  '10059010',
  '23040090',
  '23040010',
  '02071400',
  '52010020',
  '15071000',
  '27101922',
  '24012030',
  '71081310',
  '20091200',
  '02013000',
  '02071200',
  '02032900',
  '09012100',
  '15079011',
  '17019900',
  '22071000',
  '26030090',
  '26080090',
  '28182010',
  '44071100',
  '47031100',
  '72071200',
  '72024100',
  '76011000',
  '84295199',
  '87032310',
  '87089990',
  '88024010',
  '10019900',
  '31042090',
  '31021010',
  '31053000',
  '27011200',
  '27111100',
  '27101259',
  '27101921',
  '30049099',
  '85176277',
  '85423190',
  '38089199',
  '29291010',
];
export const TOP_COUNTRIES = ['160', '249', '063', '573', '245', '741', '493', '158', '149', '023'];
