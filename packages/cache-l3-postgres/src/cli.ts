#!/usr/bin/env node
import { AggregatesStore } from './aggregates-store.js';
import { type L3Connection, openConnection } from './connection.js';
import { describeDatabase, redactSecrets } from './database-url.js';
import { migrate } from './migrate.js';

const USAGE = `Usage: bgc-l3 <command> [--migrate]

Commands:
  migrate              apply the package's SQL migrations (idempotent, safe to run concurrently)
  refresh-aggregates   refresh the ComexStat top NCMs x countries materialized view
                       (--migrate: apply the migrations first)

Environment:
  DATABASE_URL                PostgreSQL URL (required), e.g. postgres://user@host:5432/db
  BGC_L3_SCHEMA               schema of the tables (default: public)
  BGC_L3_CONNECT_TIMEOUT_MS   how long to wait for PostgreSQL to accept a connection, retrying (default: 30000)

Exit codes: 0 done, 1 database failure (unreachable, migration or refresh failed), 2 usage.
`;

/** How long the CLI waits for PostgreSQL by default, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;
const RETRY_PAUSE_MS = 500;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Opens a connection and waits until PostgreSQL answers `SELECT 1`, retrying every 500 ms until
 * `timeoutMs` has passed (a job may start while the database is still coming up).
 * @throws {Error} naming the server (never its password) and the last failure when it never answers.
 */
async function connectWithin(
  connectionString: string,
  schema: string,
  timeoutMs: number,
): Promise<L3Connection> {
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  for (;;) {
    attempts++;
    const remaining = Math.max(1, deadline - Date.now());
    const connection = await openConnection({
      connectionString,
      schema,
      poolSize: 2,
      // Maintenance statements may be long: no statement_timeout.
      statementTimeoutMs: 0,
      connectionTimeoutMs: Math.min(remaining, 10_000),
      onError: () => {},
    });
    try {
      await connection.query('SELECT 1', []);
      return connection;
    } catch (error) {
      await connection.close().catch(() => undefined);
      if (Date.now() + RETRY_PAUSE_MS >= deadline) {
        throw new Error(
          `PostgreSQL at ${describeDatabase(connectionString)} did not accept a connection within ${timeoutMs} ms (${attempts} attempt(s); last error: ${(error as Error).message || String(error)}); check DATABASE_URL and that the server is up`,
        );
      }
      await sleep(RETRY_PAUSE_MS);
    }
  }
}

/**
 * Runs the `bgc-l3` command line with `argv` (without node and the script) and `env`. Resolves
 * the process exit code; writes results to `out` and problems to `err`. Messages never carry the
 * database password.
 */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  err: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<number> {
  const command = argv[0];
  const flags = argv.slice(1);
  const help = command === '--help' || command === '-h';
  const unknownFlag = flags.find((f) => f !== '--migrate' || command !== 'refresh-aggregates');
  if ((command !== 'migrate' && command !== 'refresh-aggregates') || unknownFlag !== undefined) {
    if (unknownFlag !== undefined) err(`bgc-l3: unknown option ${unknownFlag}`);
    (help ? out : err)(USAGE);
    return help ? 0 : 2;
  }
  const connectionString = env.DATABASE_URL;
  if (!connectionString) {
    err(
      'bgc-l3: DATABASE_URL is not set; export the PostgreSQL URL, e.g. DATABASE_URL=postgres://user@host:5432/db',
    );
    return 2;
  }
  const timeoutText = env.BGC_L3_CONNECT_TIMEOUT_MS;
  const timeoutMs = timeoutText ? Number(timeoutText) : DEFAULT_CONNECT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    err(
      `bgc-l3: BGC_L3_CONNECT_TIMEOUT_MS must be a positive number of ms, got ${JSON.stringify(timeoutText)}`,
    );
    return 2;
  }
  const schema = env.BGC_L3_SCHEMA || 'public';
  let connection: L3Connection | undefined;
  try {
    connection = await connectWithin(connectionString, schema, timeoutMs);
    if (command === 'migrate' || flags.includes('--migrate')) {
      const result = await migrate({ db: connection.db, schema });
      out(
        `bgc-l3: schema "${schema}": applied ${result.applied.length} migration(s)${result.applied.length ? ` (${result.applied.join(', ')})` : ''}, ${result.alreadyApplied} already applied`,
      );
    }
    if (command === 'refresh-aggregates') {
      const store = new AggregatesStore({ db: connection.db, schema });
      try {
        const result = await store.refreshAggregates();
        out(
          result.refreshed
            ? `bgc-l3: refreshed the aggregates of schema "${schema}"${result.concurrently ? ' concurrently' : ' (first populate)'} in ${Math.round(result.durationMs)} ms`
            : `bgc-l3: another process is refreshing the aggregates of schema "${schema}"; nothing done`,
        );
      } finally {
        await store.close();
      }
    }
    return 0;
  } catch (error) {
    err(redactSecrets(`bgc-l3 ${command} failed: ${(error as Error).message}`, connectionString));
    return 1;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && /[\\/](cli|bgc-l3)(\.[cm]?[jt]s)?$/.test(process.argv[1]);
if (invokedDirectly) {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
