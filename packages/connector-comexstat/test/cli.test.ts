import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
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
const cleanup: string[] = [];
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  for (const d of cleanup.splice(0)) rmSync(d, { recursive: true, force: true });
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
    expect(summary).toMatchObject({
      keysWarmed: 6,
      generalCalls: 1,
      upstreamCalls: 2,
      callsByKind: { data: 1, dates: 1, countries: 0 },
      tiers: [{ level: 'l1', held: 6 }],
    });
    expect(out.text()).toContain('in-memory cache');
    expect(sim.stats.rateLimited).toBe(0);
  });

  it('warms into the cache a --cache-module builds', async () => {
    sim = await startComexStatSimulator({
      rateLimit: false,
      latency: { baseMs: 0, perRowMs: 0 },
      updated: { year: 2026, month: 8 },
    });
    // Inside the package, so that the module resolves @bgc/* like a user's would.
    const dir = mkdtempSync(join(fileURLToPath(new URL('..', import.meta.url)), '.tmp-cli-'));
    cleanup.push(dir);
    const mod = join(dir, 'cache.mjs');
    writeFileSync(
      mod,
      `import { MultiLevelCache } from '@bgc/cache-core';\nimport { MemoryTier } from '@bgc/cache-l1-memory';\nexport default () => { globalThis.__warmCache = new MultiLevelCache({ tiers: [new MemoryTier()] }); return globalThis.__warmCache; };\n`,
    );
    const out = sink();
    const code = await main(
      ['warm', '--base-url', sim.url, '--min-interval-ms', '5', '--months', '1', '--cache-module', mod],
      out.stream,
    ).catch((e) => e);
    // Without a YAML there are no top lists: the CLI reports it as a configuration error.
    expect(String(code)).toContain('warming.top_ncms');
  });

  it('refuses a --min-interval-ms that is not a positive integer (finding 23), and --json prints only the summary', async () => {
    const out = sink();
    await expect(main(['warm', '--min-interval-ms', 'abc'], out.stream)).rejects.toMatchObject({
      code: 'E_CONFIG',
      field: '--min-interval-ms',
    });
    await expect(main(['warm', '--min-interval-ms', '0'], out.stream)).rejects.toMatchObject({
      code: 'E_CONFIG',
    });
    sim = await startComexStatSimulator({
      rateLimit: false,
      latency: { baseMs: 0, perRowMs: 0 },
      updated: { year: 2026, month: 8 },
    });
    const dir = mkdtempSync(join(tmpdir(), 'comexstat-cli-'));
    cleanup.push(dir);
    const file = join(dir, 'comexstat.yaml');
    writeFileSync(file, 'warming:\n  top_ncms: ["12019000"]\n  top_countries: ["160"]\n  flows: [import]\n');
    const json = sink();
    const code = await main(
      ['warm', '--config', file, '--base-url', sim.url, '--min-interval-ms', '5', '--months', '2', '--json'],
      json.stream,
    );
    expect(code).toBe(0);
    const lines = json.text().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      keysWarmed: 2,
      callsByKind: { data: 1 },
      tiers: [{ held: 2 }],
    });
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
