/**
 * L3-hit latency: PostgresTier.get / getMany(20) against a raw `pg` query on the same table, same
 * server, same pool size, measured in the same run in interleaved rounds (so server noise hits
 * both sides alike). Absolute numbers move between machines; the ratio is the figure.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/l3-bench.ts
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresTier } from '../src/index.js';
import { ENTRIES_TABLE } from '../src/internal.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 250);
const schema = `bgc_bench_${randomBytes(4).toString('hex')}`;
const table = `"${schema}".${ENTRIES_TABLE}`;

const value = {
  ano: 2024,
  mes: 3,
  rows: Array.from({ length: 20 }, (_, i) => ({
    coNcm: `1201${String(i).padStart(4, '0')}`,
    coPais: '160',
    metricFOB: String(4312558120 + i),
    metricKG: String(9_000_000 + i),
  })),
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function measure(fn: () => Promise<unknown>, out: number[]): Promise<void> {
  for (let i = 0; i < PER_ROUND; i++) {
    const t0 = performance.now();
    await fn();
    out.push((performance.now() - t0) * 1000);
  }
}

async function compare(
  name: string,
  ours: () => Promise<unknown>,
  raw: () => Promise<unknown>,
): Promise<void> {
  for (let i = 0; i < 300; i++) {
    await ours();
    await raw();
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate who goes first so drift over time favours neither side.
    if (r % 2 === 0) {
      await measure(ours, a);
      await measure(raw, b);
    } else {
      await measure(raw, b);
      await measure(ours, a);
    }
  }
  a.sort((x, y) => x - y);
  b.sort((x, y) => x - y);
  const row = (label: string, s: number[]) =>
    `${label.padEnd(28)} p50 ${percentile(s, 50).toFixed(0).padStart(5)} µs   p95 ${percentile(s, 95).toFixed(0).padStart(5)} µs`;
  console.log(`\n${name} (${a.length} ops each)`);
  console.log(row('  PostgresTier (drizzle)', a));
  console.log(row('  raw pg query', b));
  console.log(
    `  ratio ours/raw              p50 ${(percentile(a, 50) / percentile(b, 50)).toFixed(3)}      p95 ${(percentile(a, 95) / percentile(b, 95)).toFixed(3)}   (target <= 1.10)`,
  );
}

async function main(): Promise<void> {
  const poolOurs = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const poolRaw = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  const tier = new PostgresTier({ pool: poolOurs, schema, migrate: true, sweepIntervalMs: 0 });
  try {
    await tier.init();
    const keys = Array.from({ length: 1000 }, (_, i) => `comexstat:exp:2024:03:${12019000 + i}:160`);
    const now = Date.now();
    await tier.setMany(
      keys.map((key) => ({
        key,
        entry: { value, freshUntil: now + 3_600_000, staleUntil: now + 7_200_000, createdAt: now },
      })),
    );

    let i = 0;
    const nextKey = () => keys[i++ % keys.length] as string;
    const batch = () => Array.from({ length: 20 }, nextKey);
    const rawOne = `SELECT key, full_key, value, fresh_until, stale_until, created_at, meta FROM ${table} WHERE key = $1 AND stale_until > $2`;
    const rawMany = `SELECT key, full_key, value, fresh_until, stale_until, created_at, meta FROM ${table} WHERE key = ANY($1::text[]) AND stale_until > $2`;

    console.log(
      `PostgreSQL at ${DATABASE_URL.replace(/\/\/[^@]*@/, '//')}, Node ${process.version}, ${ROUNDS}x${PER_ROUND} ops per side`,
    );
    await compare(
      'l3_get_hit',
      async () => {
        if (!(await tier.get(nextKey()))) throw new Error('expected a hit');
      },
      async () => {
        const { rows } = await poolRaw.query(rawOne, [nextKey(), Date.now()]);
        if (!rows[0]) throw new Error('expected a hit');
        // The value column is text: parse it as pg parsed jsonb before migration 0003.
        rows[0].value = JSON.parse(rows[0].value);
      },
    );
    await compare(
      'l3_get_many_20_hit',
      async () => {
        const got = await tier.getMany(batch());
        if (got.some((e) => e === undefined)) throw new Error('expected hits');
      },
      async () => {
        const { rows } = await poolRaw.query(rawMany, [batch(), Date.now()]);
        if (rows.length !== 20) throw new Error('expected hits');
        for (const row of rows) row.value = JSON.parse(row.value);
      },
    );
  } finally {
    await tier.close();
    await poolRaw.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await poolOurs.end();
    await poolRaw.end();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
