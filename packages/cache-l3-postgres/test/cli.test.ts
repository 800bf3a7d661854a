import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';
import { DATABASE_URL, dropSchema, testPool, uniqueSchema } from './helpers.js';

const pool = testPool(2);
const schema = uniqueSchema('cli');

afterAll(async () => {
  await dropSchema(pool, schema);
  await pool.end();
});

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, write: (l: string) => out.push(l), writeErr: (l: string) => err.push(l) };
}

describe('bgc-l3 CLI', () => {
  const env = { DATABASE_URL, BGC_L3_SCHEMA: schema };

  it('migrate applies the migrations once, then finds nothing to do', async () => {
    const c = capture();
    expect(await runCli(['migrate'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out.join('\n')).toMatch(
      /applied 3 migration\(s\) \(0001_cache_entries\.sql, 0002_comexstat_aggregates\.sql, 0003_entry_versions\.sql\)/,
    );
    expect(await runCli(['migrate'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[1]).toMatch(/applied 0 migration\(s\), 3 already applied/);
  });

  it('refresh-aggregates populates first, then refreshes concurrently', async () => {
    const c = capture();
    expect(await runCli(['refresh-aggregates'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[0]).toMatch(/first populate/);
    expect(await runCli(['refresh-aggregates'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[1]).toMatch(/concurrently/);
  });

  it('says what is wrong: usage, missing DATABASE_URL, unreachable database', async () => {
    const c = capture();
    expect(await runCli([], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[0]).toMatch(/Usage: bgc-l3/);
    expect(await runCli(['frobnicate'], env, c.write, c.writeErr)).toBe(2);
    expect(await runCli(['migrate'], {}, c.write, c.writeErr)).toBe(2);
    expect(c.err.join('\n')).toMatch(/DATABASE_URL is not set/);
    expect(
      await runCli(
        ['refresh-aggregates'],
        { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' },
        c.write,
        c.writeErr,
      ),
    ).toBe(1);
    expect(c.err.at(-1)).toMatch(/bgc-l3 refresh-aggregates failed/);
  });

  it('runs as a program (tsx src/cli.ts) and finds ../migrations from its own file', async () => {
    const tsx = join(__dirname, '..', '..', '..', 'node_modules', '.bin', 'tsx');
    const { stdout } = await promisify(execFile)(tsx, [join(__dirname, '..', 'src', 'cli.ts'), 'migrate'], {
      env: { ...process.env, ...env },
    });
    expect(stdout).toMatch(/3 already applied/);
  });
});
