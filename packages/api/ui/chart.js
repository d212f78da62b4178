// A small line chart drawn as SVG with plain DOM calls (no library): one line per series,
// time on x, a value from 0 to yMax (at least the largest point) on y.
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#2f6fde', '#1f9d55', '#c77700', '#cc3333', '#7b4fd6', '#0f8f9f', '#a05a2c', '#5a6273'];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * series: [{ name, points: [{ atMs, value }] }]; format(v): the axis label of a value.
 * Returns an <svg> element.
 */
export function lineChart({ title, series, yMax = 1, format = (v) => v.toFixed(2), id }) {
  const width = 560;
  const height = 190;
  const pad = { left: 44, right: 12, top: 22, bottom: 34 };
  const svg = el('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, ...(id ? { id } : {}) });
  svg.append(el('text', { class: 'title', x: pad.left, y: 14 }, title));
  const all = series.flatMap((s) => s.points);
  const top = Math.max(yMax, ...all.map((p) => p.value));
  const now = Date.now();
  const t0 = all.length > 0 ? Math.min(...all.map((p) => p.atMs)) : now - 60_000;
  const t1 = Math.max(t0 + 1000, ...all.map((p) => p.atMs));
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    svg.append(el('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
    svg.append(el('text', { x: pad.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(v)));
  }
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  svg.append(el('text', { x: pad.left, y: height - pad.bottom + 14 }, clock(t0)));
  svg.append(el('text', { x: width - pad.right, y: height - pad.bottom + 14, 'text-anchor': 'end' }, clock(t1)));
  if (all.length === 0) svg.append(el('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle' }, 'no samples yet'));
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j === 0 ? 'M' : 'L'}${x(p.atMs).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
    if (s.points.length > 1) svg.append(el('path', { d, fill: 'none', stroke: color, 'stroke-width': 1.8 }));
    for (const p of s.points.length === 1 ? s.points : []) svg.append(el('circle', { cx: x(p.atMs), cy: y(p.value), r: 2.5, fill: color }));
    const legendX = pad.left + i * 130;
    svg.append(el('rect', { x: legendX, y: height - 14, width: 10, height: 10, fill: color }));
    svg.append(el('text', { x: legendX + 14, y: height - 5 }, s.name));
  });
  return svg;
}
