import { PGlite } from '@electric-sql/pglite';
import { type BgcCacheError, InvalidValueError } from '@bgc/cache-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AggregatesStore, type ComexStatRow } from '../src/index.js';
import { TOP_VIEW } from '../src/internal.js';
import { dropSchema, sleep, testPool, uniqueSchema } from './helpers.js';

/** 14 months (2023-01..2024-02) × 6 NCMs × 4 countries, export and import; FOB grows with the NCM index. */
function sampleRows(): ComexStatRow[] {
  const rows: ComexStatRow[] = [];
  for (let p = 2023 * 12; p < 2024 * 12 + 2; p++) {
    for (let n = 0; n < 6; n++) {
      for (let c = 0; c < 4; c++) {
        const year = Math.floor(p / 12);
        const month = (p % 12) + 1;
        // The two oldest months hold huge FOB for NCM 0: they are outside the 12-month window.
        const old = p < 2023 * 12 + 2 && n === 0 ? 1e9 : 0;
        rows.push({
          flow: 'exp',
          year,
          month,
          ncm: `0${n}010000`,
          countryCode: `0${c}0`,
          fob: (n + 1) * 1000 + c * 10 + old,
          kg: 5,
        });
        rows.push({
          flow: 'imp',
          year,
          month,
          ncm: `0${n}010000`,
          countryCode: `0${c}0`,
          fob: (6 - n) * 7,
          kg: 1,
        });
      }
    }
  }
  return rows;
}

/** Expected totals over 2023-03..2024-02 for export. */
function expectedTopNcms(rows: ComexStatRow[], n: number) {
  const totals = new Map<string, { fob: number; kg: number }>();
  for (const r of rows) {
    if (r.flow !== 'exp' || r.year * 12 + r.month - 1 < 2023 * 12 + 2) continue;
    const t = totals.get(r.ncm) ?? { fob: 0, kg: 0 };
    t.fob += r.fob;
    t.kg += r.kg;
    totals.set(r.ncm, t);
  }
  return [...totals]
    .map(([ncm, t]) => ({ ncm, ...t }))
    .sort((a, b) => b.fob - a.fob)
    .slice(0, n);
}

describe('AggregatesStore on PostgreSQL', () => {
  const pool = testPool(10);
  const schema = uniqueSchema('agg');
  let store: AggregatesStore;
  const rows = sampleRows();

  beforeAll(async () => {
    store = new AggregatesStore({ pool, schema, migrate: true });
  });
  afterAll(async () => {
    await store.close();
    await dropSchema(pool, schema);
    await pool.end();
  });

  it('is empty before the first refresh, then populates without CONCURRENTLY', async () => {
    expect(await store.upsertComexStatRows(rows)).toBe(rows.length);
    expect(await store.topNcms(3)).toEqual([]);
    expect(await store.latestPeriod()).toBeUndefined();
    const first = await store.refreshAggregates();
    expect(first).toMatchObject({ refreshed: true, concurrently: false });
    const second = await store.refreshAggregates();
    expect(second).toMatchObject({ refreshed: true, concurrently: true });
  });

  it('ranks NCMs, countries and pairs by FOB over the last 12 months of data', async () => {
    expect(await store.topNcms(3)).toEqual(expectedTopNcms(rows, 3));
    expect((await store.topNcms(3))[0]).toEqual({
      ncm: '05010000',
      fob: 12 * 4 * 6000 + 12 * 60,
      kg: 12 * 4 * 5,
    });
    expect((await store.topNcms(50)).length).toBe(6);
    expect(await store.topCountries(2)).toEqual([
      { countryCode: '030', fob: 12 * (21_000 + 6 * 30), kg: 12 * 6 * 5 },
      { countryCode: '020', fob: 12 * (21_000 + 6 * 20), kg: 12 * 6 * 5 },
    ]);
    expect((await store.topNcms(1, { flow: 'imp' }))[0]?.ncm).toBe('00010000');
    expect((await store.topCountries(10, { flow: 'imp' })).length).toBe(4);
    expect(await store.topPairs(1)).toEqual([
      { ncm: '05010000', countryCode: '030', fob: 12 * 6030, kg: 60 },
    ]);
    expect(await store.latestPeriod()).toEqual({ year: 2024, month: 2 });
    expect(await store.topNcms(0)).toEqual([]);
  });

  it('upserts by (flow, year, month, ncm, country) and the next refresh shows it', async () => {
    await store.upsertComexStatRows([
      { flow: 'exp', year: 2024, month: 2, ncm: '00010000', countryCode: '000', fob: 10_000_000, kg: 1 },
    ]);
    expect((await store.topNcms(1))[0]?.ncm).toBe('05010000');
    await store.refreshAggregates();
    expect((await store.topNcms(1))[0]?.ncm).toBe('00010000');
    const dup = { flow: 'imp', year: 2020, month: 1, ncm: '1', countryCode: '1', fob: 1, kg: 1 } as const;
    expect(await store.upsertComexStatRows([dup, { ...dup, fob: 2 }])).toBe(1);
    const { rows: stored } = await pool.query(
      `SELECT fob::int FROM "${schema}".comexstat_rows WHERE year = 2020`,
    );
    expect(stored).toEqual([{ fob: 2 }]);
  });

  it('upserts more rows than one statement takes (1,000), each as given, and updates them in place', async () => {
    const many = Array.from({ length: 2500 }, (_, i) => ({
      flow: i % 2 === 0 ? ('exp' as const) : ('imp' as const),
      year: 2019,
      month: (i % 12) + 1,
      ncm: String(10_000_000 + i),
      countryCode: String(100 + (i % 7)),
      fob: i * 3.4,
      kg: i,
    }));
    expect(await store.upsertComexStatRows(many)).toBe(2500);
    expect(await store.upsertComexStatRows(many.map((r) => ({ ...r, kg: r.kg + 1 })))).toBe(2500);
    const { rows: stored } = await pool.query(
      `SELECT flow, month, ncm, country_code, fob::int, kg::int FROM "${schema}".comexstat_rows WHERE year = 2019 ORDER BY ncm`,
    );
    expect(stored).toHaveLength(2500);
    expect(stored[1001]).toEqual({
      flow: 'imp',
      month: 6,
      ncm: '10001001',
      country_code: '100',
      fob: 3403,
      kg: 1002,
    });
  });

  it('refuses a schema name it could not quote safely (ConfigError)', () => {
    expect(() => new AggregatesStore({ pool, schema: 'x"; DROP TABLE y; --' })).toThrow(/schema/);
  });

  it('CONCURRENTLY never blocks readers; a plain refresh would', async () => {
    const view = `"${schema}".${TOP_VIEW}`;
    const refresher = await pool.connect();
    try {
      await refresher.query('BEGIN');
      await refresher.query(`REFRESH MATERIALIZED VIEW CONCURRENTLY ${view}`);
      // The refresh's locks are held until COMMIT: a reader must still get through.
      const read = await Promise.race([store.topNcms(3), sleep(3000).then(() => 'blocked' as const)]);
      expect(read).not.toBe('blocked');
      expect((read as unknown[]).length).toBe(3);
      await refresher.query('ROLLBACK');

      await refresher.query('BEGIN');
      await refresher.query(`REFRESH MATERIALIZED VIEW ${view}`);
      const blocked = await Promise.race([
        store.topNcms(3).then(() => 'read' as const),
        sleep(300).then(() => 'blocked' as const),
      ]);
      expect(blocked).toBe('blocked');
    } finally {
      await refresher.query('ROLLBACK');
      refresher.release();
    }
  });

  it('readers keep reading without errors while refreshAggregates runs repeatedly', async () => {
    const big: ComexStatRow[] = [];
    for (let n = 0; n < 100; n++) {
      for (let c = 0; c < 25; c++) {
        for (let m = 1; m <= 12; m++)
          big.push({
            flow: 'exp',
            year: 2024,
            month: m,
            ncm: `9${String(n).padStart(7, '0')}`,
            countryCode: `${c}`,
            fob: n * 100 + m,
            kg: 1,
          });
      }
    }
    const before = JSON.stringify(await store.topNcms(50));
    await store.upsertComexStatRows(big);
    const seen: string[] = [];
    let stop = false;
    let reads = 0;
    const readErrors: unknown[] = [];
    const readers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          seen.push(JSON.stringify(await store.topNcms(50)));
          reads++;
        } catch (error) {
          readErrors.push(error);
        }
      }
    });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await store.refreshAggregates());
    stop = true;
    await Promise.all(readers);
    expect(readErrors).toEqual([]);
    expect(results.every((r) => r.refreshed && r.concurrently)).toBe(true);
    expect(reads).toBeGreaterThan(3);
    // Every read saw one whole version of the view: the one before the new rows, or the one after.
    const after = JSON.stringify(await store.topNcms(50));
    expect(JSON.parse(after)).toHaveLength(50);
    expect(after).not.toBe(before);
    expect(seen.filter((s) => s !== before && s !== after)).toEqual([]);
  });

  it('one refresh at a time: another holder of the lock makes it a no-op', async () => {
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT pg_advisory_xact_lock(${0x62676333 + 2}, hashtext($1))`, [schema]);
      expect(await store.refreshAggregates()).toMatchObject({ refreshed: false });
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }
  });

  it('validates rows and sizes, and wraps database failures', async () => {
    await expect(store.upsertComexStatRows([{ ...rows[0]!, flow: 'xyz' as 'exp' }])).rejects.toBeInstanceOf(
      InvalidValueError,
    );
    await expect(store.upsertComexStatRows([{ ...rows[0]!, month: 13 }])).rejects.toThrow(/month 13/);
    await expect(store.upsertComexStatRows([{ ...rows[0]!, year: 20 }])).rejects.toThrow(/four-digit/);
    await expect(store.upsertComexStatRows([{ ...rows[0]!, ncm: '' }])).rejects.toThrow(/non-empty/);
    await expect(store.upsertComexStatRows([{ ...rows[0]!, fob: Number.NaN }])).rejects.toThrow(/finite/);
    await expect(store.topNcms(-1)).rejects.toBeInstanceOf(InvalidValueError);
    const unmigrated = new AggregatesStore({ pool, schema: uniqueSchema('nomig') });
    const error = await unmigrated.topCountries(3).catch((e: unknown) => e);
    expect((error as BgcCacheError).code).toBe('E_L3_AGGREGATES');
    expect((error as Error).message).toMatch(/migrate/);
    await unmigrated.close();
    await expect(unmigrated.topNcms(1)).rejects.toThrow(/closed/);
    expect(await store.database()).toBeDefined();
  });
});

describe('AggregatesStore on PGlite', () => {
  it('same schema and queries on the embedded database', async () => {
    const pglite = await PGlite.create();
    const store = new AggregatesStore({ pglite, migrate: true, schedule: { hour: 3 } });
    const rows = sampleRows();
    await store.upsertComexStatRows(rows);
    expect(await store.topNcms(2)).toEqual([]);
    expect((await store.refreshAggregates()).concurrently).toBe(false);
    expect((await store.refreshAggregates()).concurrently).toBe(true);
    expect(await store.topNcms(3)).toEqual(expectedTopNcms(rows, 3));
    expect((await store.topCountries(1))[0]?.countryCode).toBe('030');
    await store.close();
    await store.close();
    // The given PGlite stays open.
    expect((await pglite.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one).toBe(1);
    await pglite.close();
  });
});
