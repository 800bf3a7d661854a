import {
  BgcCacheError,
  type CacheEntry,
  InvalidValueError,
  SerializationError,
  TierError,
} from '@bgc/cache-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L3_ERROR_CODES, PostgresTier } from '../src/index.js';
import { ENTRIES_TABLE, storageKey } from '../src/internal.js';
import { DATABASE_URL, dropSchema, sleep, testPool, uniqueSchema } from './helpers.js';

const pool = testPool(8);
const schema = uniqueSchema('tier');
const table = `"${schema}".${ENTRIES_TABLE}`;
const errors: unknown[] = [];
let tier: PostgresTier;

const entry = <T>(value: T, ttlMs: number, staleMs = 0): CacheEntry<T> => {
  const now = Date.now();
  return { value, freshUntil: now + ttlMs, staleUntil: now + ttlMs + staleMs, createdAt: now };
};

beforeAll(async () => {
  tier = new PostgresTier({
    pool,
    schema,
    migrate: true,
    sweepIntervalMs: 0,
    operationTimeoutMs: 10_000,
    onError: (e) => errors.push(e),
  });
  await tier.init();
});

afterAll(async () => {
  await tier.close();
  await dropSchema(pool, schema);
  await pool.end();
});

describe('TTL and stale window', () => {
  it('serves an entry fresh, then stale with its times unchanged, then never', async () => {
    const e = entry({ n: 1 }, 300, 500);
    await tier.set('ttl:a', e);
    const fresh = await tier.get('ttl:a');
    expect(fresh?.freshUntil).toBe(e.freshUntil);
    expect(fresh!.freshUntil).toBeGreaterThan(Date.now());
    await sleep(400);
    const stale = await tier.get('ttl:a');
    expect(stale?.value).toEqual({ n: 1 });
    expect(stale!.freshUntil).toBeLessThanOrEqual(Date.now());
    expect(stale!.staleUntil).toBe(e.staleUntil);
    await sleep(500);
    expect(await tier.get('ttl:a')).toBeUndefined();
    expect(await tier.getMany(['ttl:a'])).toEqual([undefined]);
    // The row is still there until the sweeper comes: only reads filter it.
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table} WHERE key = 'ttl:a'`);
    expect(rows[0].n).toBe(1);
  });

  it('caps lifetimes to maxTtlMs (30 days by default)', async () => {
    expect(tier.maxTtlMs).toBe(30 * 86_400_000);
    const short = new PostgresTier({ pool, schema, maxTtlMs: 1000, sweepIntervalMs: 0 });
    await short.set('cap', entry('v', 60_000, 60_000));
    const got = await short.get('cap');
    expect(got!.staleUntil - Date.now()).toBeLessThanOrEqual(1000);
    await short.close();
  });

  it('keeps createdAt and meta, and reports the stored size in bytes', async () => {
    await tier.set('meta', {
      ...entry('é', 60_000),
      createdAt: 1234,
      meta: { negative: true, source: 'api' },
    });
    const got = await tier.get('meta');
    expect(got).toMatchObject({
      value: 'é',
      createdAt: 1234,
      meta: { negative: true, source: 'api' },
      size: 4,
    });
  });
});

describe('sweeper', () => {
  it('removes expired rows in batches, and only them', async () => {
    const sweeper = new PostgresTier({ pool, schema, sweepIntervalMs: 0, sweepBatchSize: 7 });
    await tier.clear();
    const now = Date.now();
    await tier.setMany(
      Array.from({ length: 30 }, (_, i) => ({
        key: `sw:dead:${i}`,
        entry: { value: i, freshUntil: now - 5000, staleUntil: now - 1000 },
      })),
    );
    await tier.setMany(
      Array.from({ length: 10 }, (_, i) => ({
        key: `sw:stale:${i}`,
        entry: { value: i, freshUntil: now - 5000, staleUntil: now + 60_000 },
      })),
    );
    await tier.setMany(
      Array.from({ length: 10 }, (_, i) => ({ key: `sw:fresh:${i}`, entry: entry(i, 60_000) })),
    );
    expect(await sweeper.sweepExpired()).toEqual({ deleted: 30, skipped: false });
    const { rows } = await pool.query(`SELECT key FROM ${table} ORDER BY key`);
    expect(rows.map((r) => r.key)).toEqual(
      [
        ...Array.from({ length: 10 }, (_, i) => `sw:fresh:${i}`),
        ...Array.from({ length: 10 }, (_, i) => `sw:stale:${i}`),
      ].sort(),
    );
    expect(await sweeper.sweepExpired()).toEqual({ deleted: 0, skipped: false });
    await sweeper.close();
  });

  it('skips when another process holds the sweeper lock', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(${0x62676333 + 1}, hashtext($1))`, [schema]);
      await tier.set('sw:x', { value: 1, freshUntil: Date.now() - 10, staleUntil: Date.now() - 5 });
      expect(await tier.sweepExpired()).toEqual({ deleted: 0, skipped: true });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
    expect((await tier.sweepExpired()).deleted).toBe(1);
  });

  it('runs on its interval without being asked', async () => {
    const auto = new PostgresTier({ pool, schema, sweepIntervalMs: 50 });
    await tier.set('sw:auto', { value: 1, freshUntil: Date.now() - 10, staleUntil: Date.now() - 5 });
    for (let i = 0; i < 40; i++) {
      const { rows } = await pool.query(`SELECT 1 FROM ${table} WHERE key = 'sw:auto'`);
      if (rows.length === 0) break;
      await sleep(50);
    }
    const { rows } = await pool.query(`SELECT 1 FROM ${table} WHERE key = 'sw:auto'`);
    expect(rows).toHaveLength(0);
    await auto.close();
  });
});

describe('keys', () => {
  it('stores keys over 512 bytes hashed, keeps the full key and checks it on read', async () => {
    const long = `k:${'ç'.repeat(400)}`; // 802 bytes
    await tier.set(long, entry('long', 60_000));
    const { id, full } = storageKey(long);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const { rows } = await pool.query(`SELECT key, full_key FROM ${table} WHERE key = $1`, [id]);
    expect(rows[0]).toEqual({ key: id, full_key: full });
    expect((await tier.get(long))?.value).toBe('long');
    expect((await tier.getMany([long, 'nope']))[0]?.value).toBe('long');
    // A row whose full key is another key (a forged or colliding hash) is a miss.
    await pool.query(`UPDATE ${table} SET full_key = 'other' WHERE key = $1`, [id]);
    expect(await tier.get(long)).toBeUndefined();
    expect(await tier.delete(long)).toBe(true);
  });

  it('keeps unicode, emoji and pattern-like keys distinct, in batches too', async () => {
    const keys = [
      '日本:🚢',
      '日本:🚣',
      'São Paulo',
      'sao paulo',
      'a%3Ab',
      'a:b',
      "it's",
      'x'.repeat(171),
      'ü'.repeat(300),
    ];
    await tier.setMany(keys.map((key, i) => ({ key, entry: entry(i, 60_000) })));
    expect((await tier.getMany(keys)).map((e) => e?.value)).toEqual(keys.map((_, i) => i));
    expect(await tier.deleteMany([...keys, 'absent'])).toBe(keys.length);
  });

  it('setMany keeps the last write of a key given twice', async () => {
    await tier.setMany([
      { key: 'dup', entry: entry('first', 60_000) },
      { key: 'dup', entry: entry('second', 60_000) },
    ]);
    expect((await tier.get('dup'))?.value).toBe('second');
    await tier.setMany([]);
    expect(await tier.deleteMany([])).toBe(0);
  });
});

describe('values', () => {
  it('rejects values JSON cannot hold', async () => {
    await expect(tier.set('bad', entry(undefined, 1000))).rejects.toBeInstanceOf(InvalidValueError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(tier.set('bad', entry(cyclic, 1000))).rejects.toBeInstanceOf(InvalidValueError);
  });

  it('treats a stored __proto__ / constructor.prototype payload as a miss and reports it', async () => {
    const now = Date.now();
    const insert = `INSERT INTO ${table} (key, value, fresh_until, stale_until, created_at, updated_at) VALUES ($1, $2::jsonb, $3, $3, $4, $4)`;
    await pool.query(insert, [
      'poison:proto',
      '{"a": 1, "__proto__": {"polluted": true}}',
      now + 60_000,
      now,
    ]);
    await pool.query(insert, [
      'poison:ctor',
      '{"constructor": {"prototype": {"polluted": true}}}',
      now + 60_000,
      now,
    ]);
    errors.length = 0;
    expect(await tier.get('poison:proto')).toBeUndefined();
    expect(await tier.getMany(['poison:ctor'])).toEqual([undefined]);
    expect(errors).toHaveLength(2);
    expect(errors[0]).toBeInstanceOf(SerializationError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('merged reads (readConcurrency)', () => {
  it('answers a burst of single reads with a few statements, each caller its own entry, misses and expired rows included', async () => {
    const burstPool = testPool(4);
    let statements = 0;
    const query = burstPool.query.bind(burstPool);
    // Counts the statements the tier sends (the spy sits where the tier's queries go).
    (burstPool as unknown as { query: unknown }).query = (...args: Parameters<typeof query>) => {
      statements++;
      return query(...args);
    };
    const burst = new PostgresTier({ pool: burstPool, schema, sweepIntervalMs: 0, readConcurrency: 2 });
    try {
      await tier.setMany(
        Array.from({ length: 200 }, (_, i) => ({
          key: `burst:${i}`,
          entry: entry({ i, at: new Date(0) }, 60_000),
        })),
      );
      await tier.set('burst:expired', entry('old', -1000));
      statements = 0;
      // 200 present keys, 50 absent, an expired row, and 20 keys asked twice.
      const keys = [
        ...Array.from({ length: 200 }, (_, i) => `burst:${i}`),
        ...Array.from({ length: 50 }, (_, i) => `burst:absent:${i}`),
        'burst:expired',
        ...Array.from({ length: 20 }, (_, i) => `burst:${i}`),
      ];
      const got = await Promise.all(keys.map((k) => burst.get(k)));
      expect(got.slice(0, 200).map((e) => (e?.value as { i: number } | undefined)?.i)).toEqual(
        Array.from({ length: 200 }, (_, i) => i),
      );
      expect((got[0]?.value as { at: Date } | undefined)?.at).toEqual(new Date(0));
      expect(got.slice(200, 251).every((e) => e === undefined)).toBe(true);
      expect(got.slice(251).map((e) => (e?.value as { i: number } | undefined)?.i)).toEqual(
        Array.from({ length: 20 }, (_, i) => i),
      );
      // A key asked twice: equal entries, not one object shared by two callers.
      expect(got[251]).toEqual(got[0]);
      expect(got[251]).not.toBe(got[0]);
      // Two single reads went at once; the other 269 waited for one of them and went together.
      expect(statements).toBeLessThanOrEqual(4);
    } finally {
      await burst.close();
      await burstPool.end();
    }
  });

  it('a merged read that fails rejects each of its callers with a TierError, and reads work again after', async () => {
    const failing = new PostgresTier({
      connectionString: DATABASE_URL,
      schema,
      sweepIntervalMs: 0,
      readConcurrency: 1,
    });
    try {
      await failing.connect();
      const reads = Array.from({ length: 10 }, (_, i) => failing.get(`burst:${i}`));
      // Closing under the reads: the waiting ones go once the first finishes, on a closed tier.
      const closing = failing.close();
      const settled = await Promise.allSettled(reads);
      await closing;
      const rejected = settled.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      expect(rejected.length).toBeGreaterThanOrEqual(9);
      for (const r of rejected) expect(r.reason).toBeInstanceOf(TierError);
    } finally {
      await failing.close();
    }
  });

  it('refuses a readConcurrency that is not a positive number', () => {
    expect(() => new PostgresTier({ pool, schema, readConcurrency: 0 })).toThrow(/readConcurrency/);
  });
});

describe('failures', () => {
  it('rejects with E_L3_TIMEOUT within operationTimeoutMs when the table is locked', async () => {
    const fast = new PostgresTier({ pool, schema, sweepIntervalMs: 0, operationTimeoutMs: 150 });
    await fast.init();
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      const error = await fast.get('anything').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TierError);
      expect((error as TierError).code).toBe(L3_ERROR_CODES.timeout);
      expect((error as TierError).operation).toBe('get');
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    expect(await fast.get('anything')).toBeUndefined();
    await fast.close();
  });

  it('maps a server-side statement_timeout cancel to E_L3_TIMEOUT', async () => {
    const own = new PostgresTier({
      connectionString: DATABASE_URL,
      schema,
      sweepIntervalMs: 0,
      statementTimeoutMs: 100,
      operationTimeoutMs: 5000,
    });
    const locker = await pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      const error = (await own.set('x', entry(1, 1000)).catch((e: unknown) => e)) as TierError;
      expect(error.code).toBe(L3_ERROR_CODES.timeout);
      expect(error.message).toMatch(/statement_timeout/);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    await own.close();
  });

  it('a connection killed mid-query is a TierError (E_L3_CONNECTION), and the tier works again after', async () => {
    const own = new PostgresTier({
      connectionString: DATABASE_URL,
      schema,
      sweepIntervalMs: 0,
      poolSize: 2,
      operationTimeoutMs: 10_000,
      statementTimeoutMs: 10_000,
    });
    await own.set('kill', entry('before', 60_000));
    const locker = await pool.connect();
    let pending: Promise<unknown> | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      pending = own.get('kill').catch((e: unknown) => e);
      let pid: number | undefined;
      for (let i = 0; i < 100 && pid === undefined; i++) {
        await sleep(20);
        const { rows } = await pool.query(
          `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1 AND pid <> pg_backend_pid()`,
          [`%${schema}%`],
        );
        pid = rows[0]?.pid;
      }
      expect(pid).toBeDefined();
      await pool.query('SELECT pg_terminate_backend($1)', [pid]);
      const error = await pending;
      expect(error).toBeInstanceOf(TierError);
      expect(BgcCacheError.isInstance(error)).toBe(true);
      expect((error as TierError).code).toBe(L3_ERROR_CODES.connection);
    } finally {
      await locker.query('ROLLBACK');
      locker.release();
    }
    expect((await own.get('kill'))?.value).toBe('before');
    await own.set('kill', entry('after', 60_000));
    expect((await own.getMany(['kill']))[0]?.value).toBe('after');
    await own.close();
  });

  it('an unreachable server rejects with E_L3_CONNECTION within the connection timeout', async () => {
    const down = new PostgresTier({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      sweepIntervalMs: 0,
      connectionTimeoutMs: 300,
    });
    const error = (await down.get('k').catch((e: unknown) => e)) as TierError;
    expect(error.code).toBe(L3_ERROR_CODES.connection);
    await expect(down.ping()).rejects.toBeInstanceOf(TierError);
    await expect(down.sweepExpired()).rejects.toBeInstanceOf(TierError);
    await down.close();
  });

  it('a missing table says to migrate', async () => {
    const bare = new PostgresTier({ pool, schema: uniqueSchema('none'), sweepIntervalMs: 0 });
    const error = (await bare.get('k').catch((e: unknown) => e)) as TierError;
    expect(error.code).toBe(L3_ERROR_CODES.postgres);
    expect(error.message).toMatch(/migrate/);
    await bare.close();
  });

  it('a failed start (migration) is retried by the next call, and init() reports it', async () => {
    const down = new PostgresTier({
      connectionString: 'postgres://postgres@127.0.0.1:1/test',
      migrate: true,
      sweepIntervalMs: 0,
      connectionTimeoutMs: 200,
    });
    await expect(down.init()).rejects.toBeInstanceOf(TierError);
    await expect(down.init()).rejects.toBeInstanceOf(TierError);
    await down.close();
  });

  it('rejects with E_L3_CLOSED after close, and close is idempotent', async () => {
    const t = new PostgresTier({ pool, schema, sweepIntervalMs: 10_000 });
    await t.ping();
    await t.close();
    await t.close();
    expect(((await t.get('k').catch((e: unknown) => e)) as TierError).code).toBe(L3_ERROR_CODES.closed);
    await expect(t.database()).rejects.toBeInstanceOf(TierError);
    // The given pool is still usable.
    expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });

  it('refuses an invalid schema name or an ambiguous connection', async () => {
    expect(() => new PostgresTier({ pool, schema: 'bad; drop' })).toThrow(/schema/);
    const both = new PostgresTier({ pool, connectionString: DATABASE_URL, sweepIntervalMs: 0 });
    await expect(both.get('k')).rejects.toThrow(/only one/);
    const none = new PostgresTier({ sweepIntervalMs: 0 });
    await expect(none.get('k')).rejects.toThrow(/no database given/);
  });
});
