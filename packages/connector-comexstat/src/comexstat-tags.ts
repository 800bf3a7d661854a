import type { ComexStatFlow } from './comexstat-types.js';

/** What a monthly cell's tags are computed from. */
export interface ComexStatTaggedCell {
  flow: ComexStatFlow;
  ano: number;
  ncm: string;
  pais: string;
}

/**
 * The tags of a monthly cell's cache entry, one per dimension a ComexStat correction or a release
 * touches: `comexstat:flow:<export|import>`, `comexstat:year:<ano>`, `comexstat:ncm:<ncm>` and
 * `comexstat:country:<pais>`. `cache.deleteByTag(['comexstat:ncm:12019000'])` then drops every
 * month of that NCM, whatever the key pattern.
 */
export function comexstatTags(cell: ComexStatTaggedCell): string[] {
  return [
    `comexstat:flow:${cell.flow}`,
    `comexstat:year:${cell.ano}`,
    `comexstat:ncm:${cell.ncm}`,
    `comexstat:country:${cell.pais}`,
  ];
}
