#!/usr/bin/env node
import { AggregatesStore } from './aggregates-store.js';
import { openConnection } from './connection.js';
import { migrate } from './migrate.js';

const USAGE = `Usage: bgc-l3 <command>

Commands:
  migrate              apply the package's SQL migrations (idempotent, safe to run concurrently)
  refresh-aggregates   refresh the ComexStat top NCMs x countries materialized view

Environment:
  DATABASE_URL         PostgreSQL URL (required), e.g. postgres://user@host:5432/db
  BGC_L3_SCHEMA        schema of the tables (default: public)
`;

/**
 * Runs the `bgc-l3` command line with `argv` (without node and the script) and `env`. Resolves
 * the process exit code; writes results to `out` and problems to `err`.
 */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  err: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<number> {
  const command = argv[0];
  if (command !== 'migrate' && command !== 'refresh-aggregates') {
    (command === undefined || command === '--help' || command === '-h' ? out : err)(USAGE);
    return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
  }
  const connectionString = env.DATABASE_URL;
  if (!connectionString) {
    err(
      'bgc-l3: DATABASE_URL is not set; export the PostgreSQL URL, e.g. DATABASE_URL=postgres://user@host:5432/db',
    );
    return 2;
  }
  const schema = env.BGC_L3_SCHEMA || 'public';
  // Maintenance statements may be long: no statement_timeout.
  const options = {
    connectionString,
    schema,
    poolSize: 2,
    statementTimeoutMs: 0,
    connectionTimeoutMs: 10_000,
  };
  try {
    if (command === 'migrate') {
      const connection = await openConnection(options);
      try {
        const result = await migrate({ db: connection.db, schema });
        out(
          `bgc-l3: schema "${schema}": applied ${result.applied.length} migration(s)${result.applied.length ? ` (${result.applied.join(', ')})` : ''}, ${result.alreadyApplied} already applied`,
        );
      } finally {
        await connection.close();
      }
      return 0;
    }
    const store = new AggregatesStore(options);
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
    return 0;
  } catch (error) {
    err(`bgc-l3 ${command} failed: ${(error as Error).message}`);
    return 1;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && /[\\/](cli|bgc-l3)(\.[cm]?[jt]s)?$/.test(process.argv[1]);
if (invokedDirectly) {
  runCli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
