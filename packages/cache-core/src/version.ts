/**
 * Entry versions: a hybrid logical clock, `Date.now() * 1024` advanced by one for every version
 * taken in the same millisecond, and never below a version this process has already seen
 * ({@link observeVersion}). Versions from different instances order by wall clock within the clocks'
 * skew, and versions from one instance are strictly increasing. A version is an exact integer in a
 * double (and fits PostgreSQL's `bigint` and Redis' Lua numbers) until `Date.now()` passes 8.79e12,
 * in the year 2248.
 *
 * The clock's state lives on `globalThis` under {@link VERSION_CLOCK_KEY}, not in this module: two
 * copies of the package in one process (a duplicated install, or the `@bgc/cache-core/testing`
 * bundle, which carries its own copy of this file) share one clock, so their versions stay ordered
 * within a millisecond.
 */

/** The `Symbol.for` key of the process-wide clock state on `globalThis`. */
const VERSION_CLOCK_KEY: unique symbol = Symbol.for('@bgc/cache-core/version-clock');

/** The shared clock state: the last version taken or observed in this process. */
interface VersionClock {
  last: number;
}

type ClockHost = { [VERSION_CLOCK_KEY]?: VersionClock };

const host = globalThis as ClockHost;
const clock: VersionClock = host[VERSION_CLOCK_KEY] ?? (host[VERSION_CLOCK_KEY] = { last: 0 });

/** Multiplier from epoch ms to version units: 1,024 versions per millisecond per instance. */
export const VERSIONS_PER_MS = 1024;

/** A new version, greater than every version this process has taken or observed. */
export function nextVersion(now: number = Date.now()): number {
  const v = now * VERSIONS_PER_MS;
  const last = clock.last;
  clock.last = v > last ? v : last + 1;
  return clock.last;
}

/** Records a version seen elsewhere (another instance's write or bus message), so later local versions exceed it. */
export function observeVersion(version: number): void {
  if (Number.isSafeInteger(version) && version > clock.last) clock.last = version;
}

/** The epoch ms a version was taken at (within the clock's resolution). */
export function versionTime(version: number): number {
  return Math.floor(version / VERSIONS_PER_MS);
}
