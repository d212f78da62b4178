/**
 * Charts of a sweep, drawn with Vega-Lite and rendered to SVG by Vega in Node (no canvas, no
 * browser): a row of line panels sharing the sweep on the x axis, one line per series.
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';

/** One point of one line. */
export interface ChartPoint {
  readonly x: number;
  readonly y: number;
  /** The line's colour. */
  readonly series: string;
  /** Optional second grouping drawn as the line's dash (e.g. live vs simulated). */
  readonly style?: string;
}

export interface Panel {
  readonly title: string;
  readonly yLabel: string;
  readonly points: readonly ChartPoint[];
  readonly yLog?: boolean;
  /** Horizontal reference lines (e.g. the 30 s wait target, conflict fraction 1.0). */
  readonly rules?: readonly { readonly y: number; readonly label: string }[];
}

export interface ChartSpec {
  readonly title: string;
  readonly xLabel: string;
  readonly xLog: boolean;
  readonly panels: readonly Panel[];
  /** Panels per row (default all in one row). */
  readonly columns?: number;
}

/** Log scales cannot show 0: such points are lifted to a small floor and say so in the tooltip-less SVG by sitting on it. */
const LOG_FLOOR = 1e-4;

function panelSpec(chart: ChartSpec, panel: Panel): Record<string, unknown> {
  const values = panel.points
    .filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y))
    .map((p) => ({ x: p.x, y: panel.yLog === true ? Math.max(LOG_FLOOR, p.y) : p.y, series: p.series, style: p.style ?? '' }));
  const styled = values.some((v) => v.style !== '');
  const line = {
    data: { values },
    mark: { type: 'line', point: { size: 30 }, strokeWidth: 1.5 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: chart.xLabel, scale: chart.xLog ? { type: 'log' } : { zero: false }, axis: { grid: true } },
      y: { field: 'y', type: 'quantitative', title: panel.yLabel, scale: panel.yLog === true ? { type: 'log' } : { zero: true } },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 2, labelLimit: 400 } },
      ...(styled ? { strokeDash: { field: 'style', type: 'nominal', title: null, legend: { orient: 'bottom' } }, detail: { field: 'style', type: 'nominal' } } : {}),
    },
  };
  const layers: Record<string, unknown>[] = [line];
  for (const rule of panel.rules ?? []) {
    layers.push({
      data: { values: [{ y: rule.y, label: rule.label }] },
      layer: [
        { mark: { type: 'rule', strokeDash: [4, 4], color: '#888' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
        { mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#666', fontSize: 10 }, encoding: { y: { field: 'y', type: 'quantitative' }, x: { value: 0 }, text: { field: 'label' } } },
      ],
    });
  }
  return { title: panel.title, width: 300, height: 220, layer: layers };
}

/** The Vega-Lite spec of a chart (exported for tests and for people who want to restyle it). */
export function vegaLiteSpec(chart: ChartSpec): Record<string, unknown> {
  const columns = chart.columns ?? chart.panels.length;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: chart.title, fontSize: 14 },
    config: { font: 'DejaVu Sans, Helvetica, Arial, sans-serif', view: { stroke: '#ddd' } },
    background: 'white',
    padding: 10,
    columns,
    concat: chart.panels.map((p) => panelSpec(chart, p)),
    resolve: { scale: { color: 'shared' } },
  };
}

/** Renders a chart to an SVG document. */
export async function renderSvg(chart: ChartSpec): Promise<string> {
  const compiled = vl.compile(vegaLiteSpec(chart) as unknown as vl.TopLevelSpec);
  const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
