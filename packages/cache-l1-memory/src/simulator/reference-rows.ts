import { readFileSync } from 'node:fs';

/** One row of the traces README's reference table. Hit rates in percent. */
export interface ReferenceRow {
  trace: string;
  accesses: number;
  distinct: number;
  size: number;
  lru: number;
  wTinyLfu: number;
  opt: number;
}

/** Parses the `| trace | accesses | distinct | size | LRU | W-TinyLFU | OPT |` rows of a Markdown file. */
export function parseReferenceRows(markdown: string): ReferenceRow[] {
  const rows: ReferenceRow[] = [];
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 9 || !/\.trace\./.test(cells[1] ?? '')) continue;
    const [, trace, accesses, distinct, size, lru, wTinyLfu, opt] = cells;
    rows.push({
      trace: trace as string,
      accesses: Number(accesses),
      distinct: Number(distinct),
      size: Number(size),
      lru: Number(lru),
      wTinyLfu: Number(wTinyLfu),
      opt: Number(opt),
    });
  }
  return rows;
}

/** Reads and parses a README holding the reference table. */
export function readReferenceRows(readmePath: string): ReferenceRow[] {
  return parseReferenceRows(readFileSync(readmePath, 'utf8'));
}
