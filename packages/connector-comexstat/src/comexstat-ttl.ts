import type { ComexStatRelease } from './comexstat-types.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Past years' TTL of the seed: 7 days, ms. */
export const PAST_YEAR_TTL_MS = 7 * DAY;
/** Closed months of the current year: 1 day, ms. */
export const CLOSED_MONTH_TTL_MS = DAY;
/** The current (or a future) month: 6 hours, ms. */
export const CURRENT_MONTH_TTL_MS = 6 * HOUR;

/**
 * The seed's dynamic TTL (`GetTTLForComexStat`), in ms: past years 7 days, closed months of the
 * current year 1 day, the current month (and later ones) 6 hours. The calendar is read in UTC.
 * @param ano year, e.g. 2026
 * @param mes month, 1-12
 * @param now the clock @default new Date()
 */
export function ttlForComexStat(ano: number, mes: number, now: Date = new Date()): number {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth() + 1;
  if (ano < year) return PAST_YEAR_TTL_MS;
  if (ano === year && mes < month) return CLOSED_MONTH_TTL_MS;
  return CURRENT_MONTH_TTL_MS;
}

/**
 * Whether a year is frozen at `release`: ComexStat revises every month of the current year at each
 * release and reprocesses the previous year in February, then freezes it. So every year before the
 * year of the latest published month is frozen.
 */
export function isFrozenYear(ano: number, release: Pick<ComexStatRelease, 'year'>): boolean {
  return ano < release.year;
}

/** Whether (ano, mes) is published by `release`. */
export function isPublishedMonth(
  ano: number,
  mes: number,
  release: Pick<ComexStatRelease, 'year' | 'month'>,
): boolean {
  return ano < release.year || (ano === release.year && mes <= release.month);
}

/**
 * Whether a value of year `ano` fetched at `fetchedAt` (epoch ms) predates a release that revised
 * it: releases revise the current year, and the first release of a year (January's data, out in
 * February) reprocesses the previous year one last time.
 */
export function isOutdatedByRelease(ano: number, fetchedAt: number, release: ComexStatRelease): boolean {
  if (fetchedAt >= release.updatedAt) return false;
  return ano >= release.year || (ano === release.year - 1 && release.month === 1);
}
