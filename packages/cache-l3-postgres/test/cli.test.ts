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
      /applied 4 migration\(s\) \(0001_cache_entries\.sql, 0002_comexstat_aggregates\.sql, 0003_entry_versions\.sql, 0004_entry_tags\.sql\)/,
    );
    expect(await runCli(['migrate'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[1]).toMatch(/applied 0 migration\(s\), 4 already applied/);
  });

  it('refresh-aggregates populates first, then refreshes concurrently', async () => {
    const c = capture();
    expect(await runCli(['refresh-aggregates'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[0]).toMatch(/first populate/);
    expect(await runCli(['refresh-aggregates'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[1]).toMatch(/concurrently/);
  });

  it('says what is wrong: usage, unknown option, missing DATABASE_URL, bad wait', async () => {
    const c = capture();
    // No command is a usage error (2, usage on stderr); --help asks for it (0, usage on stdout).
    expect(await runCli([], env, c.write, c.writeErr)).toBe(2);
    expect(c.err[0]).toMatch(/Usage: bgc-l3/);
    expect(await runCli(['--help'], env, c.write, c.writeErr)).toBe(0);
    expect(c.out[0]).toMatch(/Usage: bgc-l3/);
    expect(await runCli(['frobnicate'], env, c.write, c.writeErr)).toBe(2);
    expect(await runCli(['migrate', '--migrate'], env, c.write, c.writeErr)).toBe(2);
    expect(c.err.join('\n')).toMatch(/unknown option --migrate/);
    expect(await runCli(['migrate'], {}, c.write, c.writeErr)).toBe(2);
    expect(c.err.join('\n')).toMatch(/DATABASE_URL is not set/);
    expect(
      await runCli(['migrate'], { ...env, BGC_L3_CONNECT_TIMEOUT_MS: 'soon' }, c.write, c.writeErr),
    ).toBe(2);
    expect(c.err.at(-1)).toMatch(/BGC_L3_CONNECT_TIMEOUT_MS must be a positive number/);
  });

  // Passwords with the characters URL handling gets wrong: / @ + % : and a ?password= parameter.
  const passwords = ['p/a@ss+w:rd%41', 'c3VwZXI/c2VjcmV0+Lw==', 'semi;colon space'];
  for (const password of passwords) {
    it(`an unreachable PostgreSQL fails both jobs within the wait, naming the server, never the password (${password.length} chars)`, async () => {
      const url = `postgres://bgc:${encodeURIComponent(password)}@127.0.0.1:1/test?sslmode=disable&password=${encodeURIComponent(password)}`;
      for (const command of [['migrate'], ['refresh-aggregates', '--migrate']]) {
        const c = capture();
        const started = Date.now();
        const code = await runCli(
          command,
          { DATABASE_URL: url, BGC_L3_CONNECT_TIMEOUT_MS: '1200' },
          c.write,
          c.writeErr,
        );
        expect(code).toBe(1);
        const text = [...c.out, ...c.err].join('\n');
        expect(text).toMatch(
          new RegExp(
            `bgc-l3 ${command[0]} failed: PostgreSQL at bgc@127\\.0\\.0\\.1:1/test did not accept a connection within 1200 ms \\(\\d+ attempt`,
          ),
        );
        expect(text).toMatch(/check DATABASE_URL and that the server is up/);
        expect(text).not.toContain(password);
        expect(text).not.toContain(encodeURIComponent(password));
        expect(text).not.toContain(url);
        // Retried until the bound, then gave up (generous upper margin for a loaded machine).
        expect(Number(/\((\d+) attempt/.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
        expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      }
    });
  }

  it('refresh-aggregates --migrate migrates a fresh schema first, then refreshes', async () => {
    const fresh = uniqueSchema('cli2');
    const c = capture();
    try {
      expect(
        await runCli(
          ['refresh-aggregates', '--migrate'],
          { DATABASE_URL, BGC_L3_SCHEMA: fresh },
          c.write,
          c.writeErr,
        ),
      ).toBe(0);
      expect(c.out[0]).toMatch(/applied 4 migration/);
      expect(c.out[1]).toMatch(/first populate/);
      // Without --migrate, a schema never migrated fails with a hint, exit 1.
      const bare = uniqueSchema('cli3');
      expect(
        await runCli(['refresh-aggregates'], { DATABASE_URL, BGC_L3_SCHEMA: bare }, c.write, c.writeErr),
      ).toBe(1);
      expect(c.err.at(-1)).toMatch(/bgc-l3 refresh-aggregates failed: .*migrate/);
    } finally {
      await dropSchema(pool, fresh);
    }
  });

  it('runs as a program (tsx src/cli.ts) and finds ../migrations from its own file', async () => {
    const tsx = join(__dirname, '..', '..', '..', 'node_modules', '.bin', 'tsx');
    const { stdout } = await promisify(execFile)(tsx, [join(__dirname, '..', 'src', 'cli.ts'), 'migrate'], {
      env: { ...process.env, ...env },
    });
    expect(stdout).toMatch(/4 already applied/);
  });
});
