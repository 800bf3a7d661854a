import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { COUNTRIES_SNAPSHOT, fanOutRows, normalizeName, type SealedCall } from '../src/internal.js';
import { SIM_COUNTRIES } from '../src/simulator/index.js';

describe('the bundled countries snapshot', () => {
  it("equals the simulator's table (which mirrors /tables/countries), names trimmed", () => {
    expect(COUNTRIES_SNAPSHOT.map(([id, text]) => ({ id, text }))).toEqual(
      SIM_COUNTRIES.map((c) => ({ id: c.id, text: c.text.trim() })),
    );
    expect(new Set(COUNTRIES_SNAPSHOT.map(([id]) => id)).size).toBe(COUNTRIES_SNAPSHOT.length);
  });

  it('normalizes names for matching: case, accents and spaces', () => {
    expect(normalizeName('  Países  Baixos ')).toBe(normalizeName('paises baixos'));
    expect(normalizeName('Índia')).toBe('india');
  });
});

describe('fanOutRows (pure)', () => {
  const call: SealedCall = {
    flow: 'export',
    fromYear: 2025,
    toYear: 2026,
    fromMonth: 1,
    toMonth: 12,
    ncms: ['12019000'],
    countries: ['160', '063'],
  };
  const keyFor = (c: { ano: number; mes: number; ncm: string; pais: string }) =>
    `${c.ano}:${c.mes}:${c.ncm}:${c.pais}`;
  const codesByName = new Map([
    ['china', '160'],
    ['argentina', '063'],
  ]);
  const row = (year: number, month: number, country: string, fob: string) => ({
    coNcm: '12019000',
    year: String(year),
    monthNumber: String(month).padStart(2, '0'),
    country,
    metricFOB: fob,
    metricKG: '0',
  });

  it('covers years × window up to the release, attributes rows by the codes asked for, stamps fetchedAt', () => {
    const release = { updated: '2026-09-05', updatedAt: 0, year: 2026, month: 8 };
    const { cells, unmappedRows } = fanOutRows({
      call,
      rows: [row(2025, 3, 'China', '10'), row(2026, 8, ' Argentina', '7')],
      codesByName,
      release,
      maybeUnpublished: () => true,
      fetchedAt: 42,
      keyFor,
    });
    // 2025: 12 months, 2026: 8 published months; × 1 NCM × 2 countries.
    expect(cells.size).toBe((12 + 8) * 2);
    expect(cells.get('2025:3:12019000:160')?.value).toEqual({
      status: 'ok',
      fetchedAt: 42,
      rows: [{ flow: 'export', ano: 2025, mes: 3, ncm: '12019000', pais: '160', fob: 10, kg: 0 }],
    });
    expect(cells.get('2026:8:12019000:063')?.value.rows).toHaveLength(1);
    expect(cells.get('2025:4:12019000:160')).toMatchObject({ storable: true, value: { rows: [] } });
    expect(cells.has('2026:9:12019000:160')).toBe(false);
    expect(unmappedRows).toBe(0);
  });

  it('release unknown: months that may be unpublished are not_published and not storable unless rows came', () => {
    const { cells } = fanOutRows({
      call,
      rows: [row(2026, 11, 'China', '5')],
      codesByName,
      release: undefined,
      maybeUnpublished: (ano, mes) => ano === 2026 && mes >= 10,
      fetchedAt: 1,
      keyFor,
    });
    expect(cells.get('2026:12:12019000:160')).toMatchObject({
      storable: false,
      value: { status: 'not_published' },
    });
    expect(cells.get('2026:11:12019000:160')).toMatchObject({ storable: true, value: { status: 'ok' } });
    expect(cells.get('2026:9:12019000:160')).toMatchObject({
      storable: true,
      value: { status: 'ok', rows: [] },
    });
  });

  it('release unknown: a row of a month proves it published, so its cells without rows are "no trade", cached', () => {
    const { cells } = fanOutRows({
      call,
      rows: [row(2026, 11, 'China', '5')],
      codesByName,
      release: undefined,
      maybeUnpublished: (ano, mes) => ano === 2026 && mes >= 10,
      fetchedAt: 1,
      keyFor,
    });
    // Argentina had no row in November, China had one: November is published, Argentina traded nothing.
    expect(cells.get('2026:11:12019000:063')).toMatchObject({
      storable: true,
      value: { status: 'ok', rows: [] },
    });
    // October: no row at all, it may not be published yet.
    expect(cells.get('2026:10:12019000:063')).toMatchObject({ storable: false });
  });

  it('allCountries: cells for the asked countries and for every country some row named', () => {
    const { cells, unmappedRows } = fanOutRows({
      call: { ...call, fromYear: 2025, toYear: 2025, countries: ['160'], allCountries: true },
      rows: [row(2025, 3, 'China', '10'), row(2025, 4, 'Argentina', '7'), row(2025, 4, 'Japão', '1')],
      codesByName: new Map([...codesByName, ['japao', '399']]),
      release: { updated: '2026-09-05', updatedAt: 0, year: 2026, month: 8 },
      maybeUnpublished: () => false,
      fetchedAt: 1,
      keyFor,
    });
    expect(unmappedRows).toBe(0);
    // 12 months × 1 NCM × {China (asked), Argentina, Japan (named by rows)}.
    expect(cells.size).toBe(36);
    expect(cells.get('2025:4:12019000:399')?.value.rows).toHaveLength(1);
    expect(cells.get('2025:5:12019000:063')).toMatchObject({ storable: true, value: { rows: [] } });
    // A country no row named (and nobody asked) is not answered: unknown, not "no trade".
    expect(cells.has('2025:4:12019000:249')).toBe(false);
  });

  it('a row of an unknown country makes the empty cells of its (month, NCM) uncertain, never "no trade"', () => {
    const { cells, unmappedRows } = fanOutRows({
      call,
      rows: [row(2025, 5, 'República Popular da China', '9'), row(2025, 5, 'Argentina', '3')],
      codesByName,
      release: { updated: '2026-09-05', updatedAt: 0, year: 2026, month: 8 },
      maybeUnpublished: () => false,
      fetchedAt: 1,
      keyFor,
    });
    expect(unmappedRows).toBe(1);
    expect(cells.get('2025:5:12019000:160')).toMatchObject({ storable: false, unmapped: true });
    expect(cells.get('2025:5:12019000:063')).toMatchObject({ storable: true });
    expect(cells.get('2025:6:12019000:160')).toMatchObject({ storable: true });
  });
});

describe('fanOutRows against a by-key reference', () => {
  /** The rule stated plainly: a row lands in the cell whose key it builds, if the call made one. */
  function reference(input: Parameters<typeof fanOutRows>[0]) {
    const out = fanOutRows({ ...input, rows: [] });
    const published = new Set<number>();
    let unmappedRows = 0;
    const unmappedGroups = new Set<string>();
    const extra = new Set<string>();
    for (const r of input.rows) {
      const code = input.codesByName.get(normalizeName(r.country ?? ''));
      if (code !== undefined) extra.add(code);
    }
    // allCountries: cells for every named country, as the real one makes them.
    const base = input.call.allCountries
      ? fanOutRows({
          ...input,
          call: {
            ...input.call,
            countries: [...new Set([...input.call.countries, ...extra])],
            allCountries: false,
          },
          rows: [],
        })
      : out;
    const cells = base.cells;
    for (const r of input.rows) {
      const ano = Number(r.year);
      const mes = Number(r.monthNumber);
      const ncm = r.coNcm ?? '';
      const pais = input.codesByName.get(normalizeName(r.country ?? ''));
      if (pais === undefined) {
        unmappedRows++;
        unmappedGroups.add(`${ano}|${mes}|${ncm}`);
        continue;
      }
      const cell = cells.get(input.keyFor({ flow: input.call.flow, ano, mes, ncm, pais }));
      if (!cell) continue;
      published.add(ano * 12 + mes);
      cell.value.rows.push({
        flow: input.call.flow,
        ano,
        mes,
        ncm,
        pais,
        fob: Number(r.metricFOB ?? 0),
        kg: Number(r.metricKG ?? 0),
      });
    }
    for (const c of cells.values()) {
      if (c.value.status === 'not_published' && published.has(c.ano * 12 + c.mes)) {
        c.value.status = 'ok';
        c.storable = true;
      }
      if (c.value.rows.length === 0 && unmappedGroups.has(`${c.ano}|${c.mes}|${c.ncm}`)) {
        c.storable = false;
        c.unmapped = true;
      }
    }
    return { cells, unmappedRows };
  }

  it('gives the same cells for random rows: outside the window, other NCMs, spellings, unknown names, odd years', () => {
    const names = ['China', ' china ', 'CHINA', 'Argentina', 'Japão', 'japao', 'Atlântida', ''];
    const codesByName = new Map([
      ['china', '160'],
      ['argentina', '063'],
      ['japao', '399'],
    ]);
    const keyFor = (c: { flow: string; ano: number; mes: number; ncm: string; pais: string }) =>
      `${c.flow}:${c.ano}:${String(c.mes).padStart(2, '0')}:${c.ncm}:${c.pais}`;
    const rowArb = fc.record({
      year: fc.constantFrom('2024', '2025', '2026', '2027', 'x', '2025.5', ''),
      monthNumber: fc.constantFrom('0', '1', '02', '3', '6', '11', '12', '13', 'y'),
      coNcm: fc.constantFrom('12019000', '02013000', '99999999', ''),
      country: fc.constantFrom(...names),
      metricFOB: fc.constantFrom('1', '2.5', '0'),
      metricKG: fc.constantFrom('3', '0'),
    });
    fc.assert(
      fc.property(
        fc.array(rowArb, { maxLength: 60 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 6, max: 12 }),
        fc.option(fc.integer({ min: 1, max: 12 }), { nil: undefined }),
        (rows, allCountries, fromMonth, toMonth, releaseMonth) => {
          const input = {
            call: {
              flow: 'import' as const,
              fromYear: 2025,
              toYear: 2026,
              fromMonth,
              toMonth,
              ncms: ['12019000', '02013000', '12019000'],
              countries: ['160'],
              allCountries,
            },
            rows,
            codesByName,
            release:
              releaseMonth === undefined
                ? undefined
                : { updated: '', updatedAt: 0, year: 2026, month: releaseMonth },
            maybeUnpublished: (ano: number, mes: number) => ano === 2026 && mes >= 9,
            fetchedAt: 7,
            keyFor,
          };
          const got = fanOutRows(input);
          const want = reference(input);
          expect(got.unmappedRows).toBe(want.unmappedRows);
          expect(new Map(got.cells)).toEqual(new Map(want.cells));
        },
      ),
      { numRuns: 300 },
    );
  });
});
