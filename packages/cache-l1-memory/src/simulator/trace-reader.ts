import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { ConfigError } from '@bgc/cache-core';

/**
 * Reads a key trace (such as those of the repository's `traces/` folder) into an array of integer keys:
 * - `*.gz`: gzip text, one integer key per line (blank lines and lines holding `*` skipped);
 * - `*.xz`: xz-compressed big-endian 32-bit signed integers (decompressed by the `xz` binary,
 *   since Node has no xz codec);
 * - anything else: plain text as for `.gz`.
 * @throws {ConfigError} when the file cannot be read or `xz` is missing.
 */
export function readTrace(file: string): Int32Array {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (error) {
    throw new ConfigError('--trace', `cannot read ${file}; check the path`, { cause: error });
  }
  if (file.endsWith('.xz')) return parseBinaryTrace(decompressXz(file));
  return parseTextTrace((file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8'));
}

/** Parses a text trace: one integer per line; blank lines and lines holding `*` are skipped. */
export function parseTextTrace(text: string): Int32Array {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.includes('*')) continue;
    const n = Number.parseInt(t, 10);
    if (Number.isFinite(n)) out.push(n);
  }
  return Int32Array.from(out);
}

/** Parses big-endian 32-bit signed integers (a trailing partial integer is ignored). */
export function parseBinaryTrace(bytes: Buffer): Int32Array {
  const n = Math.floor(bytes.length / 4);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = bytes.readInt32BE(i * 4);
  return out;
}

function decompressXz(file: string): Buffer {
  try {
    return execFileSync('xz', ['-dc', file], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ConfigError(
      '--trace',
      missing
        ? 'the xz binary is needed to read .xz traces; install it (apt-get install xz-utils)'
        : `xz could not decompress ${file}`,
      { cause: error },
    );
  }
}
