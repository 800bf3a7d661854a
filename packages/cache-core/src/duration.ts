import { ConfigError } from './errors/config-error.js';

const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration (`300ms`, `5m`, `1h30m`, `168h`) into milliseconds, as the seed's
 * configuration uses. A bare `0` is accepted.
 * @throws {ConfigError} naming `field` when the text is not a valid non-negative duration.
 */
export function parseDuration(text: string, field = 'duration'): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let matched = false;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    pos = re.lastIndex;
    matched = true;
  }
  if (!matched || pos !== s.length) {
    throw new ConfigError(
      field,
      `${JSON.stringify(text)} is not a duration; use Go syntax such as 300ms, 5m, 1h30m or 168h`,
    );
  }
  return Math.round(total);
}
