// A line chart as a standalone SVG document: axes, ticks, one polyline per series, a legend.

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const WIDTH = 760;
const HEIGHT = 420;
const MARGIN = { left: 70, right: 250, top: 40, bottom: 65 };

const escape = (text) => String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** About five round tick values from 0 to at least MAX (1, 2, 2.5 or 5 times a power of ten). */
export function niceTicks(max) {
  if (!(max > 0)) return [0, 1];
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * Renders SERIES ([{name, points: [[x, y], ...]}]) with a logarithmic x axis (image sizes span
 * 200 MB to 2 GB) labelled by `formatX`, and a linear y axis from 0.
 */
export function lineChart({ title, xLabel, yLabel, series, formatX = String }) {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const xs = [...new Set(series.flatMap((s) => s.points.map(([x]) => x)))].sort((a, b) => a - b);
  const yTicks = niceTicks(Math.max(0, ...series.flatMap((s) => s.points.map(([, y]) => y))));
  const yMax = yTicks[yTicks.length - 1];
  const [lo, hi] = [Math.log(xs[0] ?? 1), Math.log(xs[xs.length - 1] ?? 1)];
  // Room on both sides so points at the ends are not on the frame.
  const px = (x) => MARGIN.left + (hi === lo ? plotW / 2 : plotW * (0.05 + (0.9 * (Math.log(x) - lo)) / (hi - lo)));
  const py = (y) => MARGIN.top + plotH - (plotH * y) / yMax;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`);
  out.push(`<text x="${WIDTH / 2 - MARGIN.right / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`);
  for (const y of yTicks) {
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${py(y)}" y2="${py(y)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${py(y) + 4}" text-anchor="end">${y}</text>`);
  }
  let lastLabelX = -Infinity;
  let lowered = false;
  for (const x of xs) {
    // Labels of close sizes (167 MB, 211 MB on a log axis) would overlap: the second goes a line lower.
    lowered = px(x) - lastLabelX < 55 && !lowered;
    lastLabelX = px(x);
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 5}" stroke="black"/>`);
    out.push(`<text x="${px(x)}" y="${MARGIN.top + plotH + (lowered ? 31 : 18)}" text-anchor="middle">${escape(formatX(x))}</text>`);
  }
  out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="black"/>`);
  out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="black"/>`);
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 8}" text-anchor="middle">${escape(xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    const points = [...s.points].sort((a, b) => a[0] - b[0]);
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of points) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${color}"/>`);
    const ly = MARGIN.top + 10 + i * 20;
    const lx = WIDTH - MARGIN.right + 15;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${escape(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
