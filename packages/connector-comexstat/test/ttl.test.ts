import { describe, expect, it } from 'vitest';
import {
  CLOSED_MONTH_TTL_MS,
  CURRENT_MONTH_TTL_MS,
  isFrozenYear,
  isOutdatedByRelease,
  isPublishedMonth,
  PAST_YEAR_TTL_MS,
  ttlForComexStat,
} from '../src/index.js';

const H = 3_600_000;
const at = (iso: string) => new Date(iso);

describe('ttlForComexStat (seed GetTTLForComexStat)', () => {
  it('uses the seed figures: 7 d, 1 d, 6 h', () => {
    expect(PAST_YEAR_TTL_MS).toBe(168 * H);
    expect(CLOSED_MONTH_TTL_MS).toBe(24 * H);
    expect(CURRENT_MONTH_TTL_MS).toBe(6 * H);
  });

  it('mid-year: past years 7 d, closed months 1 d, current and future months 6 h', () => {
    const now = at('2026-06-15T12:00:00Z');
    expect(ttlForComexStat(2025, 12, now)).toBe(168 * H);
    expect(ttlForComexStat(1997, 1, now)).toBe(168 * H);
    expect(ttlForComexStat(2026, 5, now)).toBe(24 * H);
    expect(ttlForComexStat(2026, 1, now)).toBe(24 * H);
    expect(ttlForComexStat(2026, 6, now)).toBe(6 * H);
    expect(ttlForComexStat(2026, 7, now)).toBe(6 * H);
    expect(ttlForComexStat(2027, 1, now)).toBe(6 * H);
  });

  it('year boundary: on Dec 31 23:59:59.999 December is current; one ms later it is a past year', () => {
    const before = at('2025-12-31T23:59:59.999Z');
    const after = at('2026-01-01T00:00:00.000Z');
    expect(ttlForComexStat(2025, 12, before)).toBe(6 * H);
    expect(ttlForComexStat(2025, 11, before)).toBe(24 * H);
    expect(ttlForComexStat(2025, 12, after)).toBe(168 * H);
    expect(ttlForComexStat(2025, 11, after)).toBe(168 * H);
    expect(ttlForComexStat(2026, 1, after)).toBe(6 * H);
  });

  it('month boundary: the last instant of March keeps March current, April 1st closes it', () => {
    expect(ttlForComexStat(2026, 3, at('2026-03-31T23:59:59.999Z'))).toBe(6 * H);
    expect(ttlForComexStat(2026, 3, at('2026-04-01T00:00:00.000Z'))).toBe(24 * H);
    expect(ttlForComexStat(2026, 2, at('2026-03-01T00:00:00.000Z'))).toBe(24 * H);
    expect(ttlForComexStat(2026, 2, at('2026-02-28T23:59:59.999Z'))).toBe(6 * H);
  });

  it('defaults to the current clock', () => {
    expect(ttlForComexStat(2000, 1)).toBe(168 * H);
  });
});

describe('release calendar', () => {
  const aug = { updated: '2026-09-04', updatedAt: Date.parse('2026-09-04T00:00:00Z'), year: 2026, month: 8 };
  const jan = { updated: '2026-02-05', updatedAt: Date.parse('2026-02-05T00:00:00Z'), year: 2026, month: 1 };
  const dec = { updated: '2026-01-06', updatedAt: Date.parse('2026-01-06T00:00:00Z'), year: 2025, month: 12 };

  it("years before the latest published month's year are frozen", () => {
    expect(isFrozenYear(2025, aug)).toBe(true);
    expect(isFrozenYear(2026, aug)).toBe(false);
    expect(isFrozenYear(2025, dec)).toBe(false);
    expect(isFrozenYear(2025, jan)).toBe(true);
  });

  it('published months stop at the release month', () => {
    expect(isPublishedMonth(2026, 8, aug)).toBe(true);
    expect(isPublishedMonth(2026, 9, aug)).toBe(false);
    expect(isPublishedMonth(2025, 12, aug)).toBe(true);
    expect(isPublishedMonth(2027, 1, aug)).toBe(false);
  });

  it('current-year values fetched before a release are outdated; frozen years are not', () => {
    const before = aug.updatedAt - 1;
    expect(isOutdatedByRelease(2026, before, aug)).toBe(true);
    expect(isOutdatedByRelease(2026, aug.updatedAt, aug)).toBe(false);
    expect(isOutdatedByRelease(2025, before, aug)).toBe(false);
    // The February release (January data) reprocesses the previous year one last time.
    expect(isOutdatedByRelease(2025, jan.updatedAt - 1, jan)).toBe(true);
    expect(isOutdatedByRelease(2024, jan.updatedAt - 1, jan)).toBe(false);
  });
});
