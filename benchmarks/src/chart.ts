import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { ScenarioReport } from './report.js';

/**
 * The vega-lite spec of a scenario's chart: one horizontal bar per implementation, one panel per
 * case (each with its own scale), ours and the peers in two colours.
 */
export function chartSpec(report: ScenarioReport): TopLevelSpec {
  const hitRate = report.metric === 'hitRate';
  const field = hitRate ? 'hitRate' : 'opsPerSec';
  const values = report.results.map((r) => ({
    impl: r.impl,
    group: r.group || report.scenario,
    value: r[field] ?? 0,
    who: r.impl.startsWith('bgc') ? 'bgc-cache' : 'peer / limit',
  }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: {
      row: { field: 'group', type: 'nominal', title: null, header: { labelAngle: 0, labelAlign: 'left' } },
    },
    spec: {
      width: 420,
      mark: { type: 'bar' },
      encoding: {
        y: { field: 'impl', type: 'nominal', sort: null, title: null },
        x: {
          field: 'value',
          type: 'quantitative',
          title: hitRate ? 'hit rate' : 'operations per second (higher is better)',
          axis: hitRate ? { format: '%' } : { format: '~s' },
        },
        color: {
          field: 'who',
          type: 'nominal',
          title: null,
          scale: { domain: ['bgc-cache', 'peer / limit'], range: ['#2f7ed8', '#9aa5b1'] },
        },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    config: { font: 'sans-serif' },
  } as TopLevelSpec;
}

/** Renders a vega-lite spec to an SVG string headless (vega's `none` renderer: no canvas, no browser). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
