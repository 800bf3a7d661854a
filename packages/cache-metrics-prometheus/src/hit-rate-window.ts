/** Cumulative lookups of one level. */
export interface LevelLookups {
  hits: number;
  misses: number;
}

interface Snapshot {
  at: number;
  totals: ReadonlyMap<string, LevelLookups>;
}

/** Snapshots kept per window: the window is resolved to 1/30th of its length. */
const RESOLUTION = 30;

/**
 * Turns cumulative hit/miss totals into a hit rate over a sliding time window, computed only when
 * metrics are collected (scrape time) so that recording a hit costs nothing extra.
 *
 * Each collection stores a snapshot of the totals (at most one per `windowMs / 30`); the rate is
 * `Δhits / (Δhits + Δmisses)` against the newest snapshot at least `windowMs` old, or against the
 * start when the process is younger than the window. `windowMs = 0` means cumulative since start.
 * @internal
 */
export class HitRateWindow {
  private snapshots: Snapshot[];
  private readonly granularityMs: number;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number,
  ) {
    this.snapshots = [{ at: now(), totals: new Map() }];
    this.granularityMs = windowMs / RESOLUTION;
  }

  /**
   * The hit rate (0..1) per level over the window. A level without lookups in the window is left
   * out: no traffic is not a 0 % hit rate.
   */
  rates(totals: ReadonlyMap<string, LevelLookups>): Map<string, number> {
    const baseline = this.windowMs > 0 ? this.advance(totals) : this.snapshots[0]!;
    const rates = new Map<string, number>();
    for (const [level, now] of totals) {
      const before = baseline.totals.get(level);
      const hits = now.hits - (before?.hits ?? 0);
      const lookups = hits + now.misses - (before?.misses ?? 0);
      if (lookups > 0) rates.set(level, hits / lookups);
    }
    return rates;
  }

  private advance(totals: ReadonlyMap<string, LevelLookups>): Snapshot {
    const at = this.now();
    const last = this.snapshots[this.snapshots.length - 1]!;
    if (at - last.at >= this.granularityMs) {
      const copy = new Map<string, LevelLookups>();
      for (const [level, t] of totals) copy.set(level, { hits: t.hits, misses: t.misses });
      this.snapshots.push({ at, totals: copy });
    }
    const windowStart = at - this.windowMs;
    let drop = 0;
    while (drop + 1 < this.snapshots.length && this.snapshots[drop + 1]!.at <= windowStart) drop++;
    if (drop > 0) this.snapshots = this.snapshots.slice(drop);
    return this.snapshots[0]!;
  }
}
