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
  let countries: readonly string[] = call.countries;
  if (call.allCountries) {
    const seen = new Set(call.countries);
    for (const row of input.rows) {
      const code = input.codesByName.get(normalizeName(row.country ?? ''));
      if (code !== undefined) seen.add(code);
    }
    countries = [...seen];
  }
  for (let ano = call.fromYear; ano <= call.toYear; ano++) {
    for (let mes = call.fromMonth; mes <= call.toMonth; mes++) {
      if (release && !isPublishedMonth(ano, mes, release)) continue;
      const unsure = !release && input.maybeUnpublished(ano, mes);
      for (const ncm of call.ncms) {
        for (const pais of countries) {
          const key = input.keyFor({ flow: call.flow, ano, mes, ncm, pais });
          cells.set(key, {
            ano,
            mes,
            ncm,
            pais,
            value: { status: unsure ? 'not_published' : 'ok', rows: [], fetchedAt },
            storable: !unsure,
          });
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
    const pais = input.codesByName.get(normalizeName(row.country ?? ''));
    if (pais === undefined) {
      unmappedRows++;
      unmappedGroups.add(`${ano}|${mes}|${ncm}`);
      continue;
    }
    const cell = cells.get(input.keyFor({ flow: call.flow, ano, mes, ncm, pais }));
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
