import { isPublishedMonth } from './comexstat-ttl.js';
import type { ComexStatFlow, ComexStatMonthValue, ComexStatRelease, GeneralRow } from './comexstat-types.js';
import { normalizeName } from './country-table.js';

/** What one `POST /general` asked for: every year of the range × the month window × NCMs × countries. */
export interface SealedCall {
  flow: ComexStatFlow;
  /** First and last year (every year between is covered: the API's years × month window). */
  fromYear: number;
  toYear: number;
  /** Month window, applied to every year. */
  fromMonth: number;
  toMonth: number;
  ncms: readonly string[];
  /** The countries asked (filter), or, with `allCountries`, those whose cells must be answered. */
  countries: readonly string[];
  /**
   * No country filter: the call answers every country. Cells are then made for `countries` and
   * for every country some row named (its months without rows are "no trade").
   */
  allCountries?: boolean;
}

/** One cell of a call's answer. */
export interface FannedCell {
  ano: number;
  mes: number;
  ncm: string;
  pais: string;
  value: ComexStatMonthValue;
  /**
   * `false` when the cell must not be cached beyond the caller that asked for it: a month that may
   * not be published yet (release unknown) without rows, or a cell whose (month, NCM) had a row of
   * an unknown country.
   */
  storable: boolean;
  /** Set when a row of the cell's (month, NCM) named an unknown country: the cell is uncertain. */
  unmapped?: boolean;
}

/** Input of {@link fanOutRows}. */
export interface FanOutInput {
  call: SealedCall;
  rows: readonly GeneralRow[];
  /** Normalized Portuguese name → code, over the call's countries. */
  codesByName: ReadonlyMap<string, string>;
  /** The latest release, when known. */
  release: ComexStatRelease | undefined;
  /** When the release is unknown: whether (ano, mes) may not be published yet. */
  maybeUnpublished: (ano: number, mes: number) => boolean;
  /** The request's send time, epoch ms (stamped on every value). */
  fetchedAt: number;
  keyFor: (cell: { flow: ComexStatFlow; ano: number; mes: number; ncm: string; pais: string }) => string;
}

/** Output of {@link fanOutRows}. */
export interface FanOutResult {
  /** Every cell the call covered, by cache key. */
  cells: Map<string, FannedCell>;
  /** Rows whose country name is not one of the call's countries. */
  unmappedRows: number;
}

/**
 * Pure: turns the rows of one `POST /general` into one value per (year, month, NCM, country) cell
 * the call covered, `rows: []` for combinations without trade (negative caching). Rows are
 * attributed by the country CODES the call filtered on (their names looked up in the Portuguese
 * table). Months past the release are not cells; when the release is unknown, months that may be
 * unpublished are answered `not_published` and marked not storable unless rows came for that month
 * (a row of any NCM or country proves the month published: its other cells are "no trade").
 */
export function fanOutRows(input: FanOutInput): FanOutResult {
  const { call, release, fetchedAt } = input;
  const cells = new Map<string, FannedCell>();
  // A row's country name, normalized and looked up once per distinct spelling (a call's rows
  // repeat a few dozen names thousands of times; normalizing is the costly part).
  const codeOfName = new Map<string, string | null>();
  const codeOf = (name: string | undefined): string | undefined => {
    const raw = name ?? '';
    let code = codeOfName.get(raw);
    if (code === undefined) {
      code = input.codesByName.get(normalizeName(raw)) ?? null;
      codeOfName.set(raw, code);
    }
    return code ?? undefined;
  };
  let countries: readonly string[] = call.countries;
  if (call.allCountries) {
    const seen = new Set(call.countries);
    for (const row of input.rows) {
      const code = codeOf(row.country);
      if (code !== undefined) seen.add(code);
    }
    countries = [...seen];
  }
  // Cells by position (month, NCM, country) as well as by key: a row finds its cell without
  // building its key again.
  const months = call.toMonth - call.fromMonth + 1;
  const ncmIndex = new Map<string, number>();
  for (const ncm of call.ncms) if (!ncmIndex.has(ncm)) ncmIndex.set(ncm, ncmIndex.size);
  const countryIndex = new Map<string, number>();
  for (const pais of countries) if (!countryIndex.has(pais)) countryIndex.set(pais, countryIndex.size);
  const nNcm = ncmIndex.size;
  const nCountry = countryIndex.size;
  const byPosition: (FannedCell | undefined)[] = new Array(
    Math.max(0, (call.toYear - call.fromYear + 1) * Math.max(0, months) * nNcm * nCountry),
  );
  const position = (ano: number, mes: number, ncmAt: number, paisAt: number): number =>
    (((ano - call.fromYear) * months + (mes - call.fromMonth)) * nNcm + ncmAt) * nCountry + paisAt;
  for (let ano = call.fromYear; ano <= call.toYear; ano++) {
    for (let mes = call.fromMonth; mes <= call.toMonth; mes++) {
      if (release && !isPublishedMonth(ano, mes, release)) continue;
      const unsure = !release && input.maybeUnpublished(ano, mes);
      for (const [ncm, ncmAt] of ncmIndex) {
        for (const [pais, paisAt] of countryIndex) {
          const key = input.keyFor({ flow: call.flow, ano, mes, ncm, pais });
          const cell: FannedCell = {
            ano,
            mes,
            ncm,
            pais,
            value: { status: unsure ? 'not_published' : 'ok', rows: [], fetchedAt },
            storable: !unsure,
          };
          cells.set(key, cell);
          byPosition[position(ano, mes, ncmAt, paisAt)] = cell;
        }
      }
    }
  }
  let unmappedRows = 0;
  const unmappedGroups = new Set<string>();
  /** Months (ano × 12 + mes) some row came for: published, whatever the release says. */
  const published = new Set<number>();
  for (const row of input.rows) {
    const ano = Number(row.year);
    const mes = Number(row.monthNumber);
    const ncm = row.coNcm ?? '';
    const pais = codeOf(row.country);
    if (pais === undefined) {
      unmappedRows++;
      unmappedGroups.add(`${ano}|${mes}|${ncm}`);
      continue;
    }
    const ncmAt = ncmIndex.get(ncm);
    const paisAt = countryIndex.get(pais);
    if (
      ncmAt === undefined ||
      paisAt === undefined ||
      !Number.isInteger(ano) ||
      !Number.isInteger(mes) ||
      ano < call.fromYear ||
      ano > call.toYear ||
      mes < call.fromMonth ||
      mes > call.toMonth
    )
      continue;
    const cell = byPosition[position(ano, mes, ncmAt, paisAt)];
    if (!cell) continue;
    published.add(ano * 12 + mes);
    cell.value.rows.push({
      flow: call.flow,
      ano,
      mes,
      ncm,
      pais,
      fob: Number(row.metricFOB ?? 0),
      kg: Number(row.metricKG ?? 0),
    });
  }
  if (published.size > 0) {
    // A row of a month proves the month published: its cells without rows are "no trade", not
    // "not yet published" (so they are cached like any other, and asking again costs no call).
    for (const cell of cells.values()) {
      if (cell.value.status === 'not_published' && published.has(cell.ano * 12 + cell.mes)) {
        cell.value.status = 'ok';
        cell.storable = true;
      }
    }
  }
  if (unmappedGroups.size > 0) {
    for (const cell of cells.values()) {
      if (cell.value.rows.length === 0 && unmappedGroups.has(`${cell.ano}|${cell.mes}|${cell.ncm}`)) {
        cell.storable = false;
        cell.unmapped = true;
      }
    }
  }
  return { cells, unmappedRows };
}
