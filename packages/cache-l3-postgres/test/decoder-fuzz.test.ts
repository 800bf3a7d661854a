import { SerializationError } from '@bgc/cache-core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresTier } from '../src/index.js';
import { ENTRIES_TABLE } from '../src/internal.js';
import { decodeRow, decodeStoredValue, type StoredRow } from '../src/row-decoder.js';
import { decodeValue, encodeValue } from '../src/value-codec.js';
import { dropSchema, testPool, uniqueSchema } from './helpers.js';

const MAX = 4096;

/** Values the codec stores: JSON plus Date, Map, Set, BigInt, undefined, NaN, ±Infinity, -0. */
const codecValue = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.string(),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt(),
    fc.date(),
    fc.constantFrom(Number.NaN, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
  ),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 4 }),
    // Any key but "__proto__", which encodeValue refuses by design (the refusal has its own tests);
    // fast-check's strings include it now and then, so leaving it in failed the fuzz by seed.
    fc.dictionary(
      fc.oneof(
        fc.string().filter((k) => k !== '__proto__'),
        fc.constant('$bgc'),
        fc.constant('v'),
      ),
      tie('node'),
      { maxKeys: 4 },
    ),
    fc.array(fc.tuple(tie('node'), tie('node')), { maxLength: 3 }).map((pairs) => new Map(pairs)),
    fc.array(tie('node'), { maxLength: 3 }).map((items) => new Set(items)),
  ),
})).node;

const TAGS = ['undefined', 'Number', 'BigInt', 'Date', 'Map', 'Set', 'Object', 'Function', '__proto__', ''];

/** JSON text an attacker (or a bug) could have stored: tags with any payload, prototype keys, deep nesting. */
const adversarialText = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.json({ maxDepth: 4 }),
  fc
    .tuple(fc.constantFrom(...TAGS), fc.jsonValue({ maxDepth: 3 }))
    .map(([tag, v]) => JSON.stringify({ $bgc: tag, v })),
  fc
    .tuple(fc.constantFrom(...TAGS), fc.jsonValue({ maxDepth: 2 }))
    .map(([tag, v]) => `[{"a": {"$bgc": ${JSON.stringify(tag)}, "v": ${JSON.stringify(v)}}}]`),
  fc.jsonValue({ maxDepth: 2 }).map((v) => `{"$bgc": "Object", "v": [["__proto__", ${JSON.stringify(v)}]]}`),
  fc.jsonValue({ maxDepth: 2 }).map((v) => `{"a": 1, "__proto__": ${JSON.stringify(v)}}`),
  fc.jsonValue({ maxDepth: 2 }).map((v) => `{"constructor": {"prototype": ${JSON.stringify(v)}}}`),
  fc.constantFrom(
    `{"\\u005f_proto__": {"x": 1}}`,
    `{"$bgc": "BigInt", "v": "${'9'.repeat(5000)}"}`,
    `{"$bgc": "Map", "v": [[1]]}`,
    `{"$bgc": "Map", "v": "not pairs"}`,
    `{"$bgc": "Date", "v": {"toString": 1}}`,
  ),
  fc.integer({ min: 1, max: 20_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 1, max: 5_000 }).map((n) => `${'[{"$bgc":"Set","v":'.repeat(n)}[]${'}]'.repeat(n)}`),
  // A valid encoding, cut or spliced at random.
  fc.tuple(codecValue, fc.nat(), fc.string({ maxLength: 5 })).map(([v, at, junk]) => {
    const text = encodeValue(v);
    const i = at % (text.length + 1);
    return text.slice(0, i) + junk + text.slice(i + 1);
  }),
);

/** The `numbers` column of a row (NUMBERS_TEXT): its six columns joined by commas, ttl_ms empty when NULL. */
function numbers(...columns: (string | number | null)[]): string {
  return columns.map((c) => (c === null ? '' : String(c))).join(',');
}
/** A row holding `text` (encoding 1), fresh until 1, stale until 2, with `meta`. */
const rowOf = (text: string, meta: string | null = null): StoredRow => [
  null,
  text,
  numbers(1, 2, 0, 0, null, 1),
  meta,
];

const storedRow = fc
  .record({
    full_key: fc.constant(null),
    value: fc.oneof(adversarialText, fc.constant(null)),
    fresh_until: fc.oneof(fc.nat().map(String), fc.string({ maxLength: 5 })),
    stale_until: fc.oneof(fc.nat().map(String), fc.string({ maxLength: 5 })),
    created_at: fc.nat().map(String),
    meta: fc.oneof(fc.constant(null), adversarialText),
    version: fc.oneof(fc.constant('0'), fc.nat().map(String), fc.string({ maxLength: 5 })),
    ttl_ms: fc.oneof(fc.constant(null), fc.nat().map(String)),
    encoding: fc.oneof(fc.constantFrom(0, 1, 1, 1, 2), fc.string({ maxLength: 2 })),
  })
  .map(
    (r): StoredRow => [
      r.full_key,
      r.value,
      numbers(r.fresh_until, r.stale_until, r.created_at, r.version, r.ttl_ms, r.encoding),
      r.meta,
    ],
  );

describe('L3 row decoder (fuzz)', () => {
  it('round-trips every value the codec accepts: same types in, same types out', () => {
    fc.assert(
      fc.property(codecValue, (v) => {
        expect(decodeValue(encodeValue(v))).toEqual(v);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes exactly as the core decodeValue, with cheaper pre-checks (same value or both refuse)', () => {
    const outcome = (fn: () => unknown) => {
      try {
        return { value: fn() };
      } catch (error) {
        return { error: (error as Error).constructor.name };
      }
    };
    fc.assert(
      fc.property(
        fc.oneof(
          adversarialText,
          codecValue.map((v) => encodeValue(v)),
        ),
        (text) => {
          const ours = outcome(() => decodeStoredValue(text, MAX));
          const core = outcome(() => decodeValue(text, { maxBytes: MAX }));
          if ('error' in ours) {
            expect(ours.error).toBe('SerializationError');
            // The core lets a stack overflow through; both refuse the text.
            expect('error' in core).toBe(true);
          } else expect(ours).toEqual(core);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('never crashes on arbitrary or adversarial rows: an entry, or a SerializationError; no prototype touched', () => {
    fc.assert(
      fc.property(storedRow, (row) => {
        try {
          const entry = decodeRow(row, MAX);
          expect(Number.isFinite(entry.freshUntil)).toBe(true);
          if (entry.meta !== undefined) {
            expect(Object.getPrototypeOf(entry.meta)).toBe(Object.prototype);
            for (const v of Object.values(entry.meta))
              expect(['string', 'number', 'boolean']).toContain(typeof v);
          }
        } catch (error) {
          expect(error).toBeInstanceOf(SerializationError);
        }
        expect(({} as Record<string, unknown>).x).toBeUndefined();
        expect(Object.keys(Object.prototype)).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses text over the bound before parsing it', () => {
    const parse = vi.spyOn(JSON, 'parse');
    try {
      fc.assert(
        fc.property(
          fc.string({ minLength: 1, maxLength: 50 }),
          fc.integer({ min: 1, max: 200 }),
          (unit, extra) => {
            const text = JSON.stringify(unit.repeat(Math.ceil((MAX + extra) / unit.length)));
            parse.mockClear();
            expect(() => decodeValue(text, { maxBytes: MAX })).toThrow(SerializationError);
            expect(() => decodeRow(rowOf(text), MAX)).toThrow(SerializationError);
            expect(parse).not.toHaveBeenCalled();
          },
        ),
        { numRuns: 300 },
      );
      // Multi-byte text: refused by its UTF-8 size, not its length.
      expect(() => decodeValue(JSON.stringify('é'.repeat(MAX / 2)), { maxBytes: MAX })).toThrow(
        /over 4096 bytes/,
      );
      expect(decodeValue(JSON.stringify('é'.repeat(MAX / 2 - 2)), { maxBytes: MAX })).toHaveLength(
        MAX / 2 - 2,
      );
    } finally {
      parse.mockRestore();
    }
  });
});

describe('L3 row numbers (the numbers column)', () => {
  const int8 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
  const text = encodeValue('v');

  it('reads each field as Number() reads the integer PostgreSQL prints, past 2^53 and negative too', () => {
    fc.assert(
      fc.property(
        int8,
        int8,
        int8,
        fc.bigInt({ min: 0n, max: BigInt(Number.MAX_SAFE_INTEGER) }),
        fc.option(int8),
        (fresh, stale, created, version, ttl) => {
          const entry = decodeRow(
            [
              null,
              text,
              numbers(`${fresh}`, `${stale}`, `${created}`, `${version}`, ttl === null ? null : `${ttl}`, 1),
              null,
            ],
            MAX,
          );
          expect(Object.is(entry.freshUntil, Number(`${fresh}`))).toBe(true);
          expect(Object.is(entry.staleUntil, Number(`${stale}`))).toBe(true);
          expect(Object.is(entry.createdAt, Number(`${created}`))).toBe(true);
          expect(entry.version).toBe(version === 0n ? undefined : Number(version));
          expect(entry.ttlMs).toBe(ttl === null ? undefined : Number(`${ttl}`));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses a numbers text that is not six integer fields with fresh and stale times present', () => {
    for (const bad of [
      null,
      '',
      '1,2,0,0,,1,',
      '1,2,0,0,,1,5',
      '1,2,0,0,1',
      '1,,0,0,,1',
      ',2,0,0,,1',
      '-,2,0,0,,1',
      '1,2,0,x,,1',
      '1.5,2,0,0,,1',
      ' 1,2,0,0,,1',
      '1,2,0,-1,,1',
      '1,2,0,9007199254740993,,1',
      '1,2,0,0,,2',
      '1,2,0,0,,',
      `${'9'.repeat(400)},2,0,0,,1`,
    ]) {
      expect(() => decodeRow([null, text, bad, null], MAX), String(bad)).toThrow(SerializationError);
    }
    // Encoding 0: plain JSON, from before the value codec.
    expect(decodeRow([null, '{"a":1}', '5,6,4,7,,0', null], MAX)).toEqual({
      value: { a: 1 },
      freshUntil: 5,
      staleUntil: 6,
      createdAt: 4,
      version: 7,
      size: 7,
    });
  });
});

describe('L3 row meta', () => {
  it("drops the orchestrator's process-local fail-safe keys a writer of the table could forge", () => {
    const forged = JSON.stringify({ failSafe: true, retryAt: 9e15, negative: true });
    const text = encodeValue('v');
    expect(decodeRow(rowOf(text, forged), MAX).meta).toEqual({ negative: true });
    const onlyLocal = JSON.stringify({ failSafe: true, retryAt: 1 });
    expect(decodeRow(rowOf(text, onlyLocal), MAX).meta).toBeUndefined();
    expect(() => decodeRow(rowOf(text, '{"retryAt":"x"}'), MAX)).toThrow(/must be a number/);
  });
});

describe('L3 reads of planted rows on PostgreSQL (fuzz)', () => {
  const pool = testPool(3);
  const schema = uniqueSchema('fuzz');
  const errors: unknown[] = [];
  let tier: PostgresTier;

  beforeAll(async () => {
    tier = new PostgresTier({
      pool,
      schema,
      migrate: true,
      sweepIntervalMs: 0,
      maxValueBytes: MAX,
      operationTimeoutMs: 10_000,
      onError: (e) => errors.push(e),
    });
    await tier.connect();
  });
  afterAll(async () => {
    await tier.close();
    await dropSchema(pool, schema);
    await pool.end();
  });

  it('getMany of hundreds of arbitrary stored rows resolves: entries or misses, each miss reported', async () => {
    const samples = fc.sample(
      fc.record({
        value: adversarialText.filter((t) => !t.includes('\u0000')),
        meta: fc.oneof(
          fc.constant(null),
          adversarialText.filter((t) => !t.includes('\u0000')),
        ),
        encoding: fc.constantFrom(0, 1, 1, 7),
      }),
      { numRuns: 400, seed: 20_261_130 },
    );
    // Some rows over the tier's bound too.
    samples.push({ value: `"${'x'.repeat(MAX * 3)}"`, meta: null, encoding: 1 });
    const keys = samples.map((_, i) => `fuzz:${i}`);
    const now = Date.now();
    await pool.query(
      `INSERT INTO "${schema}".${ENTRIES_TABLE} (key, value, meta, encoding, fresh_until, stale_until, created_at, updated_at)
       SELECT * , $5::bigint, $5::bigint, $6::bigint, $6::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[])`,
      [
        keys,
        samples.map((s) => s.value),
        samples.map((s) => s.meta),
        samples.map((s) => s.encoding),
        now + 60_000,
        now,
      ],
    );
    errors.length = 0;
    const got = await tier.getMany(keys);
    expect(got).toHaveLength(keys.length);
    const misses = got.filter((g) => g === undefined).length;
    expect(misses).toBeGreaterThan(0);
    expect(misses).toBeLessThan(keys.length);
    expect(errors).toHaveLength(misses);
    expect(errors.every((e) => e instanceof SerializationError)).toBe(true);
    expect(got.at(-1)).toBeUndefined();
    // The single-key read agrees.
    for (let i = 0; i < 40; i++)
      expect((await tier.get(keys[i] as string)) === undefined).toBe(got[i] === undefined);
  });
});
