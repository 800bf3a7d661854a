import type { SimCountry, SimNcm } from './simulator-data.js';

/** The latest published month, as `/general/dates/updated` reports it. */
export interface SimRelease {
  /** Release date, `YYYY-MM-DD`. */
  updated: string;
  /** Year of the latest published month. */
  year: number;
  /** Latest published month, 1-12. */
  month: number;
}

/** FNV-1a over a string, mapped to [0, 1). Deterministic across runs and machines. */
export function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 0x1_0000_0000;
}

/** Whether (year, month) is published by `release`. */
export function isPublished(release: SimRelease, year: number, month: number): boolean {
  return year < release.year || (year === release.year && month <= release.month);
}

/** Generated figures of one (flow, year, month, NCM, country) cell; `undefined` when there is no trade. */
export interface SimCell {
  fob: number;
  kg: number;
}

/**
 * Deterministic trade for one cell. Roughly half the (NCM, country) pairs never trade, a tenth of
 * the months of trading pairs are empty, and about 2% of rows have KG 0. Current-year figures move
 * a little with each release (revisions); earlier years are frozen.
 */
export function generateCell(
  flow: 'export' | 'import',
  year: number,
  month: number,
  ncm: SimNcm,
  country: SimCountry,
  release: SimRelease,
): SimCell | undefined {
  if (country.weight <= 0 || !isPublished(release, year, month)) return undefined;
  const pair = `${flow}|${ncm.coNcm}|${country.id}`;
  const trades = unitHash(`${pair}|pair`) < Math.min(0.92, 0.3 + country.weight);
  if (!trades) return undefined;
  const cell = `${pair}|${year}|${month}`;
  if (unitHash(`${cell}|present`) < 0.1) return undefined;
  const revision = year === release.year ? release.month : 13;
  const flowScale = flow === 'export' ? 1 : 0.25;
  const yearDrift = 1 + (year - 2020) * 0.03;
  const fob = Math.max(
    1,
    Math.round(
      ncm.scale *
        country.weight *
        flowScale *
        yearDrift *
        (0.4 + 1.2 * unitHash(`${cell}|fob`)) *
        (1 + revision * 0.002),
    ),
  );
  const kg =
    unitHash(`${cell}|kg0`) < 0.02
      ? 0
      : Math.round(fob / (ncm.usdPerKg * (0.8 + 0.4 * unitHash(`${cell}|price`))));
  return { fob, kg };
}
