// Every monthly entry the connector writes is tagged by flow, year, NCM and country: the one a
// loader stores (getOrLoad) and the neighbours a merged or fanned-out call stores (setMany), so that
// deleteByTag/expireByTag reach them all.
import { MultiLevelCache } from '@bgc/cache-core';
import { FakeTier } from '@bgc/cache-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ComexStatClient,
  ComexStatConnector,
  comexstatTags,
  DEFAULT_CONNECTOR_CONFIG,
  RequestSpacer,
} from '../src/index.js';
import { type ComexStatSimulator, startComexStatSimulator } from '../src/simulator/index.js';

let sim: ComexStatSimulator | undefined;
let cache: MultiLevelCache | undefined;
afterEach(async () => {
  await cache?.close();
  await sim?.close();
  sim = undefined;
  cache = undefined;
});

describe('connector entry tags', () => {
  it('names the four dimensions', () => {
    expect(comexstatTags({ flow: 'import', ano: 2025, ncm: '12019000', pais: '160' })).toEqual([
      'comexstat:flow:import',
      'comexstat:year:2025',
      'comexstat:ncm:12019000',
      'comexstat:country:160',
    ]);
  });

  it('tags the loaded entry and the neighbours its call stored; deleteByTag drops only the tagged ones', async () => {
    sim = await startComexStatSimulator({ rateLimit: false, latency: { baseMs: 1, perRowMs: 0 } });
    const l1 = new FakeTier({ level: 'l1', sync: true });
    const l2 = new FakeTier({ level: 'l2', batch: true });
    cache = new MultiLevelCache({ tiers: [l1, l2], connector: 'comexstat', softTimeoutMs: 0 });
    const client = new ComexStatClient({
      baseUrl: sim.url,
      spacer: new RequestSpacer({ minIntervalMs: 1 }),
      retryBaseDelayMs: 10,
    });
    const config = {
      ...DEFAULT_CONNECTOR_CONFIG,
      fanOut: { enabled: true, wholeYear: true, topLists: false, allCountries: false },
    };
    const connector = new ComexStatConnector({ client, cache, config });
    const q = { flow: 'export', ano: 2024, mes: 3, ncm: '12019000', pais: '160' } as const;
    await connector.getMonth(q);
    await connector.drain();
    const loaded = l2.store.get(connector.keyFor(q));
    expect(loaded?.tags).toEqual(comexstatTags(q));
    // The whole year was fanned out: the other months were stored by the call, tagged alike.
    const neighbour = { ...q, mes: 7 };
    const stored = l2.store.get(connector.keyFor(neighbour));
    expect(stored?.tags).toEqual(comexstatTags(neighbour));
    const months = [...l2.store].filter(([k]) => k.startsWith('comexstat:exp:'));
    expect(months.length).toBe(12);
    for (const [k, e] of months) expect(e.tags, k).toContain('comexstat:ncm:12019000');

    const calls = sim.stats.calls;
    expect((await connector.getMonth(neighbour)).level).toBe('l1');
    await cache.deleteByTag(['comexstat:ncm:12019000']);
    const again = await connector.getMonth(neighbour);
    expect(again.level).toBe('external');
    expect(sim.stats.calls).toBeGreaterThan(calls);
    await connector.close();
  });
});
