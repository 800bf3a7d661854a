import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { type ComexStatSimulator, startComexStatSimulator } from '../src/simulator/index.js';

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { stream, text: () => text };
}

let sim: ComexStatSimulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe('bgc-comexstat CLI', () => {
  it('prints usage', async () => {
    const out = sink();
    expect(await main([], out.stream)).toBe(0);
    expect(out.text()).toContain('bgc-comexstat simulator');
    expect(await main(['bogus'], out.stream)).toBe(2);
  });

  it('warms from a YAML file against a base URL, in memory when no cache module is given', async () => {
    sim = await startComexStatSimulator({
      rateLimit: { max: 1, windowMs: 10 },
      latency: { baseMs: 0, perRowMs: 0 },
      updated: { year: 2026, month: 8 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'comexstat-cli-'));
    const file = join(dir, 'comexstat.yaml');
    writeFileSync(
      file,
      'warming:\n  top_ncms: ["12019000", "09011110"]\n  top_countries: ["160"]\n  flows: [export]\n',
    );
    const out = sink();
    const code = await main(
      ['warm', '--config', file, '--base-url', sim.url, '--min-interval-ms', '60', '--months', '3'],
      out.stream,
    );
    expect(code).toBe(0);
    const summary = JSON.parse(out.text().trim().split('\n').pop() as string);
    expect(summary).toMatchObject({ keysWarmed: 6, generalCalls: 1, upstreamCalls: 3 });
    expect(out.text()).toContain('in-memory cache');
    expect(sim.stats.rateLimited).toBe(0);
  });

  it('warms into the cache a --cache-module builds', async () => {
    sim = await startComexStatSimulator({
      rateLimit: false,
      latency: { baseMs: 0, perRowMs: 0 },
      updated: { year: 2026, month: 8 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'comexstat-cli-'));
    const mod = join(dir, 'cache.mjs');
    const single = new URL('../src/single-tier-cache.ts', import.meta.url).href;
    writeFileSync(
      mod,
      `import { SingleTierCache } from '${single}';\nexport default () => { globalThis.__warmCache = new SingleTierCache(); return globalThis.__warmCache; };\n`,
    );
    const out = sink();
    const code = await main(
      ['warm', '--base-url', sim.url, '--min-interval-ms', '5', '--months', '1', '--cache-module', mod],
      out.stream,
    ).catch((e) => e);
    // Without a YAML there are no top lists: the CLI reports it as a configuration error.
    expect(String(code)).toContain('warming.top_ncms');
  });

  it('starts the simulator subcommand and reports its URL', async () => {
    const out = sink();
    const code = await main(
      ['simulator', '--port', '0', '--no-rate-limit', '--updated', '2026-08'],
      out.stream,
      {
        onSimulator: (s) => {
          sim = s;
        },
      },
    );
    expect(code).toBe(-1);
    expect(out.text()).toMatch(
      /listening on http:\/\/127\.0\.0\.1:\d+ \(release 2026-09-05, data through 2026-08\)/,
    );
    const res = await fetch(`${sim?.url}/general/dates/updated`);
    expect(res.status).toBe(200);
  });
});
