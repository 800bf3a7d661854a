import { type CacheEntry, InvalidValueError, SerializationError } from '@bgc/cache-core';
import { nextVersion } from '@bgc/cache-core/internal';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_WRITE_BATCH_ROWS, PostgresTier } from '../src/index.js';
import { ENTRIES_TABLE, STATE_TABLE } from '../src/internal.js';
import { dropSchema, sleep, testPool, uniqueSchema } from './helpers.js';

// Two pools, as two gateway instances sharing one PostgreSQL.
const poolA = testPool(6);
const poolB = testPool(6);
const schema = uniqueSchema('coh');
const table = `"${schema}".${ENTRIES_TABLE}`;
const errors: unknown[] = [];
const metricErrors: string[] = [];
let a: PostgresTier;
let b: PostgresTier;

const entry = <T>(value: T, version?: number, ttlMs = 60_000): CacheEntry<T> => {
  const now = Date.now();
  return { value, freshUntil: now + ttlMs, staleUntil: now + 2 * ttlMs, createdAt: now, version };
};

beforeAll(async () => {
  const metrics = {
    hit() {},
    miss() {},
    latency() {},
    size() {},
    promotion() {},
    eviction() {},
    error: (level: string, op: string, type: string) => metricErrors.push(`${level}:${op}:${type}`),
  };
  // Generous operation timeouts: a loaded 2-core machine queues dozens of statements at once here.
  a = new PostgresTier({
    pool: poolA,
    schema,
    migrate: true,
    sweepIntervalMs: 0,
    operationTimeoutMs: 15_000,
    onError: (e) => errors.push(e),
    metrics,
  });
  b = new PostgresTier({
    pool: poolB,
    schema,
    migrate: true,
    sweepIntervalMs: 0,
    operationTimeoutMs: 15_000,
    onError: (e) => errors.push(e),
  });
  await a.connect();
  await b.init();
});

afterAll(async () => {
  await a.close();
  await b.close();
  await dropSchema(poolA, schema);
  await poolA.end();
  await poolB.end();
});

describe('versions across two pools', () => {
  it('declares scope shared on a server', () => {
    expect(a.scope).toBe('shared');
  });

  it('a write of an older version after a versioned delete is refused (the tombstone), a newer one lands', async () => {
    const loadStarted = nextVersion();
    await a.set('k:del', entry('v0', nextVersion()));
    const deletedAt = nextVersion();
    expect(await b.delete('k:del', { version: deletedAt, tombstoneMs: 60_000 })).toBe(true);
    // The load that started before the delete finishes now, on the other instance.
    await a.set('k:del', entry('v1-stale-load', loadStarted));
    expect(await a.get('k:del')).toBeUndefined();
    expect(await b.getMany(['k:del'])).toEqual([undefined]);
    await a.setMany([{ key: 'k:del', entry: entry('v1-stale-load', loadStarted) }]);
    expect(await b.get('k:del')).toBeUndefined();
    // The tombstone is a row with a NULL value and the delete's version.
    const { rows } = await poolA.query(`SELECT value, version FROM ${table} WHERE key = 'k:del'`);
    expect(rows).toEqual([{ value: null, version: String(deletedAt) }]);
    // A second delete finds nothing servable.
    expect(await a.delete('k:del', { version: nextVersion(), tombstoneMs: 60_000 })).toBe(false);
    const after = nextVersion();
    await b.set('k:del', entry('v2', after));
    expect(await a.get('k:del')).toMatchObject({ value: 'v2', version: after });
  });

  it('a promotion (re-store) of an older entry never replaces a newer one', async () => {
    const older = nextVersion();
    const newer = nextVersion();
    await a.set('k:promo', entry('new', newer));
    await b.set('k:promo', entry('old', older));
    await b.setMany([{ key: 'k:promo', entry: entry('old', older) }]);
    expect(await a.get('k:promo')).toMatchObject({ value: 'new', version: newer });
    // The same version again (a retried write) lands; an unversioned write never replaces a versioned row.
    await b.set('k:promo', entry('new-again', newer));
    expect((await a.get('k:promo'))?.value).toBe('new-again');
    await b.set('k:promo', entry('unversioned'));
    expect((await a.get('k:promo'))?.value).toBe('new-again');
  });

  it('a versioned delete leaves a newer entry alone', async () => {
    const deleteVersion = nextVersion();
    const writeVersion = nextVersion();
    await a.set('k:newer', entry('written-after', writeVersion));
    expect(await b.delete('k:newer', { version: deleteVersion, tombstoneMs: 60_000 })).toBe(false);
    expect(await b.deleteMany(['k:newer'], { version: deleteVersion, tombstoneMs: 0 })).toBe(0);
    expect((await a.get('k:newer'))?.value).toBe('written-after');
  });

  it('a tombstone lives tombstoneMs; then the sweeper removes it', async () => {
    const v = nextVersion();
    await a.set('k:ts', entry('x', v));
    expect(await a.deleteMany(['k:ts', 'k:ts'], { version: nextVersion(), tombstoneMs: 150 })).toBe(1);
    await a.set('k:ts', entry('late', v));
    expect(await a.get('k:ts')).toBeUndefined();
    await sleep(300);
    const swept = await a.sweepExpired();
    expect(swept.deleted).toBeGreaterThanOrEqual(1);
    const { rows } = await poolA.query(`SELECT 1 FROM ${table} WHERE key = 'k:ts'`);
    expect(rows).toHaveLength(0);
  });

  it('a versioned delete without tombstoneMs keeps the tier default; tombstoneMs 0 deletes without one', async () => {
    const v = nextVersion();
    await a.set('k:def', entry('x', v));
    expect(await a.delete('k:def', { version: nextVersion() })).toBe(true);
    await a.set('k:def', entry('late', v));
    expect(await a.get('k:def')).toBeUndefined();
    await a.set('k:zero', entry('x', v));
    expect(await a.delete('k:zero', { version: nextVersion(), tombstoneMs: 0 })).toBe(true);
    const { rows } = await poolA.query(`SELECT 1 FROM ${table} WHERE key = 'k:zero'`);
    expect(rows).toHaveLength(0);
  });

  it('an unversioned delete removes entries of any version but keeps tombstones', async () => {
    await a.set('k:plain', entry('x', nextVersion()));
    expect(await b.delete('k:plain')).toBe(true);
    expect(await a.get('k:plain')).toBeUndefined();
    const v = nextVersion();
    await a.delete('k:plain2', { version: v, tombstoneMs: 60_000 });
    expect(await b.delete('k:plain2')).toBe(false);
    await a.set('k:plain2', entry('older', v - 1));
    expect(await a.get('k:plain2')).toBeUndefined();
  });
});

describe('concurrent writers and deleters on two pools', () => {
  it('whatever the interleaving, each key ends with its highest-version operation (a write, or a tombstone)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.record({ del: fc.boolean(), viaB: fc.boolean() }), { minLength: 2, maxLength: 6 }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.infiniteStream(fc.nat()),
        async (keysOps, order) => {
          run++;
          const base = nextVersion();
          const ops: { key: string; version: number; del: boolean; viaB: boolean }[] = [];
          keysOps.forEach((list, k) => {
            for (const [j, op] of list.entries())
              ops.push({ key: `race:${run}:${k}`, version: base + k * 100 + j + 1, ...op });
          });
          // A random order of issue, all in flight at once on both pools.
          const shuffled = ops
            .map((op) => ({ op, rank: order.next().value as number }))
            .sort((x, y) => x.rank - y.rank)
            .map((x) => x.op);
          await Promise.all(
            shuffled.map((op) => {
              const tier = op.viaB ? b : a;
              return op.del
                ? tier.delete(op.key, { version: op.version, tombstoneMs: 60_000 })
                : tier.set(op.key, entry(`v${op.version}`, op.version));
            }),
          );
          const keys = keysOps.map((_, k) => `race:${run}:${k}`);
          const got = await a.getMany(keys);
          keys.forEach((key, k) => {
            const last = ops.filter((op) => op.key === key).sort((x, y) => y.version - x.version)[0]!;
            expect(got[k]?.value).toBe(last.del ? undefined : `v${last.version}`);
          });
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('clear', () => {
  it('refuses later writes of versions older than the clear, from the other pool too', async () => {
    const loadStarted = nextVersion();
    await a.set('c:1', entry('before', loadStarted));
    await a.set('c:unversioned', entry('before'));
    await b.clear();
    expect(await a.get('c:1')).toBeUndefined();
    expect(await a.get('c:unversioned')).toBeUndefined();
    await a.set('c:1', entry('stale-load', loadStarted));
    await a.setMany([{ key: 'c:2', entry: entry('stale-load', loadStarted) }]);
    expect(await b.getMany(['c:1', 'c:2'])).toEqual([undefined, undefined]);
    const after = nextVersion();
    await a.set('c:1', entry('after', after));
    expect((await b.get('c:1'))?.value).toBe('after');
    // Unversioned writes are not ordered against a clear.
    await a.set('c:unversioned', entry('after'));
    expect((await b.get('c:unversioned'))?.value).toBe('after');
    const { rows } = await poolA.query(`SELECT cleared_version FROM "${schema}".${STATE_TABLE}`);
    expect(Number(rows[0].cleared_version)).toBeGreaterThan(loadStarted);
  });

  it('keeps rows written with a version above the clear, and never lowers the marker', async () => {
    const future = nextVersion() + 10_000_000;
    await a.set('c:future', entry('skewed-clock', future));
    const v = nextVersion();
    await a.clear({ version: v });
    expect((await a.get('c:future'))?.value).toBe('skewed-clock');
    await a.clear({ version: v - 5 });
    const { rows } = await poolA.query(`SELECT cleared_version FROM "${schema}".${STATE_TABLE}`);
    expect(Number(rows[0].cleared_version)).toBe(v);
  });

  it('a write racing a clear waits for it and is then refused (the marker is read FOR SHARE)', async () => {
    const loadStarted = nextVersion();
    const clearVersion = nextVersion();
    const client = await poolB.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `UPDATE "${schema}".${STATE_TABLE} SET cleared_version = GREATEST(cleared_version, $1) WHERE id`,
        [clearVersion],
      );
      const write = a.set('c:race', entry('stale-load', loadStarted));
      // The write is blocked on the marker row until the clear commits.
      let waiting = false;
      for (let i = 0; i < 100 && !waiting; i++) {
        await sleep(20);
        const { rows } = await poolB.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
          [`%${schema}%${STATE_TABLE}%FOR SHARE%`],
        );
        waiting = rows.length > 0;
      }
      expect(waiting).toBe(true);
      await client.query(`DELETE FROM ${table} WHERE version <= $1`, [clearVersion]);
      await client.query('COMMIT');
      await write;
    } finally {
      client.release();
    }
    expect(await b.get('c:race')).toBeUndefined();
  });
});

describe('expire', () => {
  it('turns fresh entries stale now, keeps their stale-until, and leaves newer versions alone', async () => {
    const v = nextVersion();
    const e1 = entry('one', v);
    const e2 = entry('two', v);
    await a.setMany([
      { key: 'e:1', entry: e1 },
      { key: 'e:2', entry: e2 },
    ]);
    const newer = nextVersion();
    await a.set('e:3', entry('three', newer + 1));
    const before = Date.now();
    expect(await b.expire(['e:1', 'e:2', 'e:3', 'e:none'], newer)).toBe(2);
    const [g1, g2, g3] = await a.getMany(['e:1', 'e:2', 'e:3']);
    expect(g1?.freshUntil).toBeGreaterThanOrEqual(before);
    expect(g1!.freshUntil).toBeLessThanOrEqual(Date.now());
    expect(g1?.staleUntil).toBe(e1.staleUntil);
    expect(g2?.value).toBe('two');
    expect(g3!.freshUntil).toBeGreaterThan(Date.now());
    // Already stale: nothing more to expire; without a version every fresh entry goes stale.
    expect(await b.expire(['e:1'])).toBe(0);
    expect(await b.expire(['e:3'])).toBe(1);
    expect(await b.expire([])).toBe(0);
  });
});

describe('round trips', () => {
  it('keeps version and ttlMs, and an unversioned entry reads back without a version', async () => {
    const v = nextVersion();
    await a.set('r:v', { ...entry('x', v), ttlMs: 7 * 86_400_000 });
    expect(await b.get('r:v')).toMatchObject({ value: 'x', version: v, ttlMs: 7 * 86_400_000 });
    await a.set('r:none', entry('y'));
    const got = await b.get('r:none');
    expect(got?.version).toBeUndefined();
    expect(got?.ttlMs).toBeUndefined();
  });

  it('returns the same types as went in: Date, Map, Set, BigInt, undefined in arrays, NaN, -0, key order', async () => {
    const value = {
      z: 1,
      a: new Date('2024-03-01T12:00:00.000Z'),
      m: new Map<unknown, unknown>([
        ['k', 1],
        [2, new Set(['x'])],
      ]),
      s: new Set([1, 'two']),
      big: 12345678901234567890n,
      arr: [1, undefined, Number.NaN, -0, Number.POSITIVE_INFINITY],
      $bgc: 'a key that looks like a tag',
      nested: { b: 2, a: 1 },
    };
    await a.set('r:types', entry(value, nextVersion()));
    const got = (await b.get('r:types'))?.value as typeof value;
    expect(got).toEqual(value);
    expect(Object.keys(got)).toEqual(Object.keys(value));
    expect(Object.keys(got.nested)).toEqual(['b', 'a']);
    expect(got.a).toBeInstanceOf(Date);
    expect(typeof got.big).toBe('bigint');
    expect(Object.is(got.arr[3], -0)).toBe(true);
    expect(1 in got.arr).toBe(true);
    expect((await a.getMany(['r:types']))[0]?.value).toEqual(value);
  });

  it('reads rows written before migration 0003 (plain JSON, encoding 0)', async () => {
    const now = Date.now();
    await poolA.query(
      `INSERT INTO ${table} (key, value, fresh_until, stale_until, created_at, updated_at, meta) VALUES ($1, $2, $3, $3, $4, $4, $5)`,
      ['r:legacy', '{"b": 1, "a": [true, null]}', now + 60_000, now, '{"negative": true}'],
    );
    expect(await b.get('r:legacy')).toMatchObject({
      value: { b: 1, a: [true, null] },
      meta: { negative: true },
    });
  });
});

describe('limits and untrusted rows', () => {
  it('refuses a value over maxValueBytes as the caller error, and drops the older row so nothing outdated remains', async () => {
    const small = new PostgresTier({ pool: poolA, schema, sweepIntervalMs: 0, maxValueBytes: 1000 });
    expect(small.maxValueBytes).toBe(1000);
    expect(a.maxValueBytes).toBe(1024 * 1024);
    const v = nextVersion();
    await small.set('l:big', entry('small', v));
    const error = await small.set('l:big', entry('é'.repeat(600), nextVersion())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidValueError);
    expect((error as Error).message).toMatch(/1\d{3} bytes encoded, over .* limit of 1000 bytes/);
    expect(await a.get('l:big')).toBeUndefined();
    await expect(small.setMany([{ key: 'l:big2', entry: entry('x'.repeat(2000)) }])).rejects.toBeInstanceOf(
      InvalidValueError,
    );
    await small.close();
  });

  it('a stored row over maxValueBytes is a miss, reported, and never read into memory', async () => {
    await a.set('l:huge', entry('x'.repeat(5000), nextVersion()));
    const small = new PostgresTier({
      pool: poolA,
      schema,
      sweepIntervalMs: 0,
      maxValueBytes: 1000,
      onError: (e) => errors.push(e),
    });
    errors.length = 0;
    expect(await small.get('l:huge')).toBeUndefined();
    expect(await small.getMany(['l:huge'])).toEqual([undefined]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBeInstanceOf(SerializationError);
    expect((errors[0] as Error).message).toMatch(/over maxValueBytes \(1000 bytes\)/);
    await small.close();
  });

  it('validates meta on write and on read; a corrupt row is a miss plus onError plus a metric', async () => {
    await expect(
      a.set('m:bad', { ...entry('x'), meta: { nested: { a: 1 } } as never }),
    ).rejects.toBeInstanceOf(InvalidValueError);
    await expect(a.set('m:bad', { ...entry('x'), meta: { ['k'.repeat(65)]: 1 } })).rejects.toThrow(
      /meta key/,
    );
    await a.set('m:ok', { ...entry('x'), meta: { negative: true, n: 1, s: 'api' } });
    expect((await b.get('m:ok'))?.meta).toEqual({ negative: true, n: 1, s: 'api' });
    const now = Date.now();
    const plant = (key: string, value: string, meta: string | null, encoding = 1) =>
      poolA.query(
        `INSERT INTO ${table} (key, value, fresh_until, stale_until, created_at, updated_at, meta, encoding) VALUES ($1, $2, $3, $3, $4, $4, $5, $6)`,
        [key, value, now + 60_000, now, meta, encoding],
      );
    await plant('m:nested', '"v"', '{"a": {"b": 1}}');
    await plant('m:proto', '"v"', '{"__proto__": {"polluted": true}}');
    await plant('m:array', '"v"', '[1]');
    await plant('m:tag', '{"$bgc": "Function", "v": "x"}', null);
    await plant('m:objproto', '{"$bgc": "Object", "v": [["__proto__", {"polluted": true}]]}', null);
    errors.length = 0;
    metricErrors.length = 0;
    const keys = ['m:nested', 'm:proto', 'm:array', 'm:tag', 'm:objproto'];
    expect(await a.getMany(keys)).toEqual(keys.map(() => undefined));
    expect(errors).toHaveLength(5);
    expect(metricErrors).toEqual(keys.map(() => 'l3:get_many:serialization_error'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses an unencodable value or a bad version with InvalidValueError', async () => {
    await expect(
      a.set(
        'u:fn',
        entry(() => 1),
      ),
    ).rejects.toBeInstanceOf(InvalidValueError);
    await expect(a.set('u:class', entry(new (class Foo {})()))).rejects.toThrow(/instance of Foo/);
    await expect(a.set('u:v', entry(1, -1))).rejects.toThrow(/version -1/);
    await expect(a.set('u:v', entry(1, 1.5))).rejects.toBeInstanceOf(InvalidValueError);
  });
});

describe('batches', () => {
  it('writes and reads 20,000 rows (past the 65,535-parameter limit of a VALUES list) in one call each', async () => {
    const n = 20_000;
    const v = nextVersion();
    const writes = Array.from({ length: n }, (_, i) => ({
      key: `batch:${i}`,
      entry: { ...entry({ i, s: 'p'.repeat(i % 50) }, v), meta: { i } },
    }));
    await a.setMany(writes);
    const { rows } = await poolA.query(`SELECT count(*)::int AS n FROM ${table} WHERE key LIKE 'batch:%'`);
    expect(rows[0].n).toBe(n);
    const got = await b.getMany(writes.map((w) => w.key));
    expect(got).toHaveLength(n);
    expect(got.every((g, i) => (g?.value as { i?: number } | undefined)?.i === i && g?.meta?.i === i)).toBe(
      true,
    );
    // Newer versions for half of them, older for the other half: only the newer land.
    const newer = nextVersion();
    await b.setMany(
      writes.map((w, i) => ({ key: w.key, entry: entry({ i, gen: 2 }, i % 2 === 0 ? newer : v - 1) })),
    );
    const again = await a.getMany(writes.map((w) => w.key));
    expect(again.filter((g) => (g?.value as { gen?: number } | undefined)?.gen === 2)).toHaveLength(n / 2);
    expect(
      await a.deleteMany(
        writes.map((w) => w.key),
        { version: nextVersion(), tombstoneMs: 60_000 },
      ),
    ).toBe(n);
    expect((await b.getMany(writes.map((w) => w.key))).every((g) => g === undefined)).toBe(true);
  });

  it('setMany of one key given twice keeps the highest version, or the last on a tie', async () => {
    const v1 = nextVersion();
    const v2 = nextVersion();
    await a.setMany([
      { key: 'dup:v', entry: entry('newer', v2) },
      { key: 'dup:v', entry: entry('older', v1) },
      { key: 'dup:t', entry: entry('first', v1) },
      { key: 'dup:t', entry: entry('second', v1) },
    ]);
    expect((await a.getMany(['dup:v', 'dup:t'])).map((g) => g?.value)).toEqual(['newer', 'second']);
  });

  it('setMany sends one statement per writeBatchRows rows: 5,000 rows in one, 5,001 in two', async () => {
    expect(DEFAULT_WRITE_BATCH_ROWS).toBe(5000);
    const pool = testPool(2);
    // The real pool, observed: the rows of each upsert statement it is sent.
    const upserts: number[] = [];
    const query = pool.query.bind(pool) as (...args: unknown[]) => unknown;
    (pool as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      const config = args[0] as { name?: string; values?: unknown[][] };
      if (typeof config === 'object' && config.name?.includes('upsert'))
        upserts.push(config.values?.[0]?.length ?? -1);
      return query(...args);
    };
    const t = new PostgresTier({ pool, schema, sweepIntervalMs: 0, operationTimeoutMs: 60_000 });
    try {
      const writes = (n: number, tag: string) =>
        Array.from({ length: n }, (_, i) => ({ key: `limit:${tag}:${i}`, entry: entry({ i }) }));
      await t.setMany(writes(DEFAULT_WRITE_BATCH_ROWS, 'at'));
      expect(upserts).toEqual([5000]);
      upserts.length = 0;
      const over = writes(DEFAULT_WRITE_BATCH_ROWS + 1, 'over');
      await t.setMany(over);
      expect(upserts).toEqual([5000, 1]);
      const got = await b.getMany(over.map((w) => w.key));
      expect(got.every((g, i) => (g?.value as { i: number } | undefined)?.i === i)).toBe(true);
      const { rows } = await poolA.query(`SELECT count(*)::int AS n FROM ${table} WHERE key LIKE 'limit:%'`);
      expect(rows[0].n).toBe(2 * DEFAULT_WRITE_BATCH_ROWS + 1);
    } finally {
      await t.close();
      await pool.end();
    }
  });

  it('getMany decodes each row once: a key asked twice gets the same entry, a bad row is reported once', async () => {
    const long = `dup:${'x'.repeat(600)}`;
    await a.setMany([
      { key: 'dup:r1', entry: entry({ n: 1 }) },
      { key: long, entry: entry('long') },
    ]);
    const now = Date.now();
    await poolA.query(
      `INSERT INTO ${table} (key, value, fresh_until, stale_until, created_at, updated_at, encoding)
       VALUES ('dup:bad', '{"a":', $1, $1, $2, $2, 1)`,
      [now + 60_000, now],
    );
    errors.length = 0;
    metricErrors.length = 0;
    const got = await a.getMany(['dup:r1', 'dup:bad', 'dup:none', long, 'dup:r1', 'dup:bad', long, 'dup:r1']);
    expect(got.map((g) => g?.value)).toEqual([
      { n: 1 },
      undefined,
      undefined,
      'long',
      { n: 1 },
      undefined,
      'long',
      { n: 1 },
    ]);
    expect(got[4]).toBe(got[0]);
    expect(got[7]).toBe(got[0]);
    expect(got[6]).toBe(got[3]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SerializationError);
    expect(metricErrors).toEqual(['l3:get_many:serialization_error']);
  });

  it('chunks writes by writeBatchRows', async () => {
    const chunked = new PostgresTier({ pool: poolA, schema, sweepIntervalMs: 0, writeBatchRows: 7 });
    await chunked.setMany(Array.from({ length: 30 }, (_, i) => ({ key: `chunk:${i}`, entry: entry(i) })));
    expect(
      (await a.getMany(Array.from({ length: 30 }, (_, i) => `chunk:${i}`))).map((g) => g?.value),
    ).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(() => new PostgresTier({ pool: poolA, writeBatchRows: 0 })).toThrow(/writeBatchRows/);
    await chunked.close();
  });
});
