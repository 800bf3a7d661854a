// "Bytes, once": the JSON answer of a cached value is serialized, hashed (strong ETag) and, when
// asked for, compressed once per value object, then served as bytes on every later hit.
import { createHash } from 'node:crypto';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';

/** Bodies shorter than this (bytes) are never compressed: the headers would cost more. */
export const COMPRESS_MIN_BYTES = 1024;

/** One serialized answer and its lazily built variants. */
export interface AnswerBody {
  /** The JSON text. */
  readonly json: string;
  /** Strong validator: a content hash, quoted. */
  readonly etag: string;
  gzip?: Buffer;
  br?: Buffer;
  /** The JSON's length in bytes (UTF-8), once asked for. */
  byteLength?: number;
  /** `Last-Modified` text, and the epoch second it was built for. */
  lastModified?: string;
  lastModifiedS?: number;
  /** The header lists of the body's latest answers (see the server's `prepareAnswer`). */
  heads?: AnswerHeads;
}

/**
 * The response headers of a body's answers (`[name, value, ...]`), for one answer's level, state
 * and times, and the Age and max-age of one second: shared by the hits of that second, never mutated.
 */
export interface AnswerHeads {
  /** Age, s (-1: no Last-Modified). */
  readonly age: number;
  /** Cache-Control max-age, s (-1: max-age=0 and no stale-while-revalidate: stale or unknown). */
  readonly maxAge: number;
  readonly level: string;
  readonly stale: boolean;
  readonly status: string | undefined;
  readonly fetchedAt: number | undefined;
  readonly staleWindowMs: number | undefined;
  /** The validators and cache headers: a 304's headers, the start of a 200's. */
  readonly common: readonly string[];
  /** The answers (status, headers, payload): 304, and the 200s plain and per encoding (built on first use). */
  notModified?: PreparedAnswer;
  plain?: PreparedAnswer;
  gzip?: PreparedAnswer;
  br?: PreparedAnswer;
}

/** An answer ready to write: status, headers as `[name, value, name, value...]`, payload. */
export interface PreparedAnswer {
  readonly status: 200 | 304;
  /** Shared with the body's other answers: never mutated. */
  readonly headers: readonly string[];
  /** The bytes of a 200 (a 304 has none). */
  readonly payload: string | Buffer | undefined;
}

interface Slot {
  /** The query part of the answer the body was built for (the same rows may serve other queries). */
  readonly head: string;
  readonly body: AnswerBody;
}

const bodies = new WeakMap<object, Slot>();

/** A strong ETag of `text`: SHA-1, base64url, quoted. */
export function strongEtag(text: string): string {
  return `"${createHash('sha1').update(text).digest('base64url')}"`;
}

/**
 * The body `{ ...head, rows }` as bytes, built once per `rows` object (cached values are frozen and
 * shared, so an L1 hit finds the bytes of the previous answer) and per `head`.
 * @param head the JSON of the answer's leading fields, without braces, e.g. `"ano":2024,"mes":3`
 */
export function answerBody(head: string, rows: readonly unknown[]): AnswerBody {
  const slot = bodies.get(rows);
  if (slot !== undefined && slot.head === head) return slot.body;
  const json = `{${head},"rows":${JSON.stringify(rows)}}`;
  const body: AnswerBody = { json, etag: strongEtag(json) };
  // Only frozen values are the cache's own (never mutated afterwards): memoize those.
  if (Object.isFrozen(rows)) bodies.set(rows, { head, body });
  return body;
}

/** The best encoding `accept` (an Accept-Encoding header) allows: `br`, `gzip` or none. */
export function pickEncoding(accept: string | undefined): 'br' | 'gzip' | undefined {
  if (!accept) return undefined;
  let br = false;
  let gzip = false;
  for (const part of accept.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    if (name === 'br') br = true;
    else if (name === 'gzip' || name === '*') gzip = true;
  }
  return br ? 'br' : gzip ? 'gzip' : undefined;
}

/** The body's bytes in `encoding`, compressed on first use and kept with the body. */
export function encoded(body: AnswerBody, encoding: 'br' | 'gzip'): Buffer {
  if (encoding === 'br') {
    body.br ??= brotliCompressSync(body.json, {
      params: { [zlib.BROTLI_PARAM_QUALITY]: 5, [zlib.BROTLI_PARAM_SIZE_HINT]: body.json.length },
    });
    return body.br;
  }
  body.gzip ??= gzipSync(body.json, { level: 6 });
  return body.gzip;
}

/** Whether an If-None-Match header matches `etag` (weak comparison, `*`, lists). */
export function etagMatches(header: string, etag: string): boolean {
  // A client revalidating sends back the one ETag it was given.
  if (header === etag) return true;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}
