// Small canvas charts for the dashboard: no build step, no dependencies.
import { nearestIndex, smooth, timeLabel, xCoordinates } from './view-model.js';

const AXIS = '#6b7385';
const GRID = '#e3e6ec';
/** Latin first, then CJK faces, as in style.css: Chinese group and charge names must not fall back to boxes. */
export const FONT_STACK = 'system-ui, "Noto Sans", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif';
export const PALETTE = ['#c2410c', '#2563eb', '#16a34a', '#9333ea', '#ca8a04', '#0891b2', '#db2777', '#4b5563', '#65a30d', '#7c3aed', '#ea580c', '#0d9488', '#b91c1c', '#1d4ed8', '#a16207', '#be185d'];

/** Prepares a canvas for crisp drawing at the device's pixel ratio; returns ctx and size in CSS px. */
function setup(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, width, height);
  ctx.font = `11px ${FONT_STACK}`;
  return { ctx, width, height };
}

function niceTicks(min, max, count = 5) {
  if (!(max > min)) return [min];
  const span = max - min;
  const step0 = 10 ** Math.floor(Math.log10(span / count));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= count) ?? step0 * 10;
  const ticks = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/** [min, max] of the finite values, in one pass (no spread: it overflows the stack past ~10^5 values). */
export function extent(values) {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * Per pixel column, the first, minimum, maximum and last value of the points that fall in it:
 * a line drawn through these has the same pixels as one drawn through every point, at a
 * cost bounded by the width.
 */
export function pixelColumns(steps, values, x0, x1, columns) {
  const first = new Float64Array(columns).fill(Number.NaN);
  const min = new Float64Array(columns).fill(Number.NaN);
  const max = new Float64Array(columns).fill(Number.NaN);
  const last = new Float64Array(columns).fill(Number.NaN);
  const scale = columns / (x1 - x0 || 1);
  for (let i = 0; i < steps.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    const c = Math.min(columns - 1, Math.max(0, Math.floor((steps[i] - x0) * scale)));
    if (Number.isNaN(first[c])) {
      first[c] = v;
      min[c] = v;
      max[c] = v;
    } else {
      if (v < min[c]) min[c] = v;
      if (v > max[c]) max[c] = v;
    }
    last[c] = v;
  }
  return { first, min, max, last };
}

function fmt(v) {
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e4 || a < 1e-3) ? v.toExponential(1) : Number(v.toPrecision(4)).toString();
}

/**
 * Line charts of one metric: one or more lines ({ label, color, steps, values, times? },
 * steps ascending) on a shared axis — the step, or with `x: 'time'` the wall time each
 * point was logged — or a single `steps`/`values` pair. Any number of points:
 * past two per pixel column, each column is drawn as its min–max span. `smoothing` (0..1)
 * draws the exponential moving average over a faint raw line, as TensorBoard does; `log`
 * puts y on a log10 scale (values ≤ 0 are left out). The chart keeps what it drew on the
 * canvas (`canvas.chart`) for the hover read-out (readoutAt).
 */
export function lineChart(canvas, { title, steps, values, lines, smoothing = 0, log = false, x = 'step' }) {
  const all = (lines ?? [{ label: title, color: PALETTE[0], steps, values }]).map((l) => ({ ...l, ...xCoordinates(l, x) }));
  const { ctx, width, height } = setup(canvas);
  const pad = { l: 52, r: 12, t: 20, b: 26 };
  ctx.fillStyle = AXIS;
  ctx.fillText(title, pad.l, 13);
  canvas.chart = undefined;
  const ys = (v) => (log ? (v > 0 ? Math.log10(v) : Number.NaN) : v);
  const drawn = all
    .filter((l) => l.xs.length > 0)
    .map((l) => {
      const smoothed = smoothing > 0 ? smooth(l.values, smoothing) : undefined;
      return { ...l, raw: Array.from(l.values, ys), smooth: smoothed && smoothed.map(ys), smoothed };
    });
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let x0 = Number.POSITIVE_INFINITY;
  let x1 = Number.NEGATIVE_INFINITY;
  for (const l of drawn) {
    const [a, b] = extent(l.raw);
    lo = Math.min(lo, a);
    hi = Math.max(hi, b);
    x0 = Math.min(x0, l.xs[0]);
    x1 = Math.max(x1, l.xs[l.xs.length - 1]);
  }
  if (!(hi >= lo)) {
    const why = all.some((l) => l.steps.length) && x === 'time' && drawn.length === 0 ? 'no points with a wall time (logged before times were kept)' : log ? 'no positive values (log scale)' : 'no finite values';
    ctx.fillText(why, pad.l, height / 2);
    return;
  }
  if (lo === hi) {
    lo -= Math.abs(lo) * 0.1 || 1;
    hi += Math.abs(hi) * 0.1 || 1;
  }
  if (x1 === x0) x1 = x0 + 1;
  const plotW = width - pad.l - pad.r;
  const sx = (s) => pad.l + ((s - x0) / (x1 - x0)) * plotW;
  const sy = (v) => height - pad.b - ((v - lo) / (hi - lo)) * (height - pad.t - pad.b);
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  const yTicks = log ? logTicks(lo, hi) : niceTicks(lo, hi);
  for (const t of yTicks) {
    ctx.beginPath();
    ctx.moveTo(pad.l, sy(t));
    ctx.lineTo(width - pad.r, sy(t));
    ctx.stroke();
    ctx.fillText(fmt(log ? 10 ** t : t), 4, sy(t) + 4);
  }
  const xLabel = x === 'time' ? (t) => timeLabel(t, x1 - x0) : fmt;
  for (const t of niceTicks(x0, x1, 6)) ctx.fillText(xLabel(t), sx(t) - 8, height - 8);
  const columns = Math.max(1, Math.round(plotW));
  for (const l of drawn) {
    if (l.smooth) {
      ctx.globalAlpha = 0.25;
      path(ctx, l.xs, l.raw, l.color, sx, sy, columns, pad.l, x0, x1);
      ctx.globalAlpha = 1;
      path(ctx, l.xs, l.smooth, l.color, sx, sy, columns, pad.l, x0, x1);
    } else {
      path(ctx, l.xs, l.raw, l.color, sx, sy, columns, pad.l, x0, x1);
    }
  }
  if (drawn.length > 1) {
    // The legend, right-aligned on the title's line, as far as it fits.
    let x = width - pad.r;
    ctx.textAlign = 'right';
    for (let i = drawn.length - 1; i >= 0; i--) {
      const label = drawn[i].label.length > 28 ? `${drawn[i].label.slice(0, 27)}…` : drawn[i].label;
      const w = ctx.measureText(label).width;
      if (x - w - 14 < pad.l + ctx.measureText(title).width + 8) break;
      ctx.fillStyle = drawn[i].color;
      ctx.fillRect(x - w - 12, 6, 9, 9);
      ctx.fillStyle = AXIS;
      ctx.fillText(label, x, 14);
      x -= w + 20;
    }
    ctx.textAlign = 'left';
  }
  canvas.chart = { x0, x1, x, left: pad.l, plotW, lines: drawn };
}

/** One line: per point, or per pixel column (first, min–max span, last) when denser. */
function path(ctx, steps, ys, color, sx, sy, columns, left, x0, x1) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.6;
  ctx.beginPath();
  let started = false;
  if (steps.length > 2 * columns) {
    const col = pixelColumns(steps, ys, x0, x1, columns);
    for (let c = 0; c < columns; c++) {
      if (Number.isNaN(col.first[c])) continue;
      const x = left + c + 0.5;
      if (started) ctx.lineTo(x, sy(col.first[c]));
      else ctx.moveTo(x, sy(col.first[c]));
      started = true;
      ctx.moveTo(x, sy(col.min[c]));
      ctx.lineTo(x, sy(col.max[c]));
      ctx.moveTo(x, sy(col.last[c]));
    }
  } else {
    for (let i = 0; i < steps.length; i++) {
      const v = ys[i];
      if (!Number.isFinite(v)) continue;
      if (started) ctx.lineTo(sx(steps[i]), sy(v));
      else ctx.moveTo(sx(steps[i]), sy(v));
      started = true;
    }
  }
  ctx.stroke();
  if (steps.length === 1 && Number.isFinite(ys[0])) {
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.arc(sx(steps[0]), sy(ys[0]), 3, 0, 2 * Math.PI);
    ctx.fill();
  }
}

/** Powers of ten within [lo, hi] (log10 units); niceTicks when the range spans less than one decade. */
function logTicks(lo, hi) {
  const ticks = [];
  for (let t = Math.ceil(lo); t <= Math.floor(hi); t++) ticks.push(t);
  return ticks.length >= 2 ? ticks : niceTicks(lo, hi);
}

/**
 * What a chart shows at a horizontal position (CSS pixels from the canvas's left edge):
 * per line, the point nearest in step, with its raw and smoothed value.
 */
export function readoutAt(canvas, offsetX) {
  const chart = canvas.chart;
  if (!chart) return undefined;
  const at = chart.x0 + ((offsetX - chart.left) / chart.plotW) * (chart.x1 - chart.x0);
  const rows = [];
  for (const l of chart.lines) {
    const i = nearestIndex(l.xs, at);
    if (i < 0) continue;
    const time = chart.x === 'time' ? { time: l.xs[i] } : {};
    rows.push({ label: l.label, color: l.color, step: l.steps[i], value: l.values[i], ...time, ...(l.smoothed ? { smoothed: l.smoothed[i] } : {}) });
  }
  return { at, rows };
}

/** Horizontal bars in [0, 1], one per class, with the value written at the end. */
export function iouBars(canvas, classes) {
  const rowH = 18;
  canvas.style.height = `${Math.max(120, classes.length * rowH + 30)}px`;
  const { ctx, width } = setup(canvas);
  const left = 110;
  const right = width - 50;
  ctx.strokeStyle = GRID;
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const x = left + t * (right - left);
    ctx.beginPath();
    ctx.moveTo(x, 4);
    ctx.lineTo(x, classes.length * rowH + 8);
    ctx.stroke();
    ctx.fillStyle = AXIS;
    ctx.fillText(t.toFixed(2), x - 10, classes.length * rowH + 22);
  }
  classes.forEach((c, i) => {
    const y = 8 + i * rowH;
    ctx.fillStyle = AXIS;
    ctx.fillText(c.name.slice(0, 16), 4, y + 11);
    if (c.iou === null || c.iou === undefined) {
      ctx.fillText('n/a', left + 4, y + 11);
      return;
    }
    ctx.fillStyle = PALETTE[i % PALETTE.length];
    ctx.fillRect(left, y, c.iou * (right - left), rowH - 5);
    ctx.fillStyle = AXIS;
    ctx.fillText(c.iou.toFixed(3), left + c.iou * (right - left) + 4, y + 11);
  });
}

function heatColor(t) {
  // white → orange → dark red
  const c = Math.max(0, Math.min(1, t));
  const r = Math.round(255 - 60 * c);
  const g = Math.round(250 - 210 * c);
  const b = Math.round(240 - 230 * c);
  return `rgb(${r},${g},${b})`;
}

/** Layers × experts heatmap of routed-token fractions; the colour scale is relative to a uniform load. */
export function expertHeatmap(canvas, layers) {
  const experts = extent(layers.map((l) => l.load.length))[1];
  canvas.style.height = `${Math.max(120, layers.length * 22 + 50)}px`;
  const { ctx, width, height } = setup(canvas);
  const left = 60;
  const top = 8;
  const cellW = (width - left - 10) / experts;
  const cellH = (height - top - 40) / layers.length;
  let max = 0;
  for (const l of layers) {
    const total = l.load.reduce((a, b) => a + b, 0) || 1;
    for (const v of l.load) max = Math.max(max, v / total);
  }
  layers.forEach((l, row) => {
    const total = l.load.reduce((a, b) => a + b, 0) || 1;
    ctx.fillStyle = AXIS;
    ctx.fillText(`layer ${l.layer}`, 4, top + row * cellH + cellH / 2 + 4);
    l.load.forEach((v, e) => {
      ctx.fillStyle = heatColor(v / total / (max || 1));
      ctx.fillRect(left + e * cellW, top + row * cellH, Math.max(1, cellW - 1), Math.max(1, cellH - 1));
    });
  });
  ctx.fillStyle = AXIS;
  const labelEvery = Math.ceil(experts / 16);
  for (let e = 0; e < experts; e += labelEvery) ctx.fillText(String(e), left + e * cellW + cellW / 2 - 3, height - 24);
  ctx.fillText(`expert (darkest = ${(100 * max).toFixed(1)}% of tokens; uniform = ${(100 / experts).toFixed(1)}%)`, left, height - 8);
}

/**
 * Point estimates per group (with whiskers where a group has an interval), the overall value
 * as a dashed line inside its interval band, and the baseline as a grey band.
 */
export function ciChart(canvas, { overall, groups, baseline }) {
  const rowH = 22;
  canvas.style.height = `${Math.max(120, groups.length * rowH + 40)}px`;
  const { ctx, width } = setup(canvas);
  const left = 120;
  const right = width - 20;
  const all = [overall, ...(baseline ? [baseline] : []), ...groups].flatMap((g) => [g.lo, g.hi, g.value]).filter(Number.isFinite);
  let [lo, hi] = extent(all);
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const sx = (v) => left + ((v - lo) / (hi - lo)) * (right - left);
  const bottom = groups.length * rowH + 10;
  ctx.strokeStyle = GRID;
  ctx.fillStyle = AXIS;
  for (const t of niceTicks(lo, hi)) {
    ctx.beginPath();
    ctx.moveTo(sx(t), 4);
    ctx.lineTo(sx(t), bottom);
    ctx.stroke();
    ctx.fillText(fmt(t), sx(t) - 10, bottom + 14);
  }
  if (baseline) {
    ctx.fillStyle = 'rgba(75,85,99,0.12)';
    ctx.fillRect(sx(baseline.lo), 4, sx(baseline.hi) - sx(baseline.lo), bottom - 4);
  }
  ctx.fillStyle = 'rgba(194,65,12,0.12)';
  ctx.fillRect(sx(overall.lo), 4, sx(overall.hi) - sx(overall.lo), bottom - 4);
  ctx.strokeStyle = PALETTE[0];
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  ctx.moveTo(sx(overall.value), 4);
  ctx.lineTo(sx(overall.value), bottom);
  ctx.stroke();
  ctx.setLineDash([]);
  groups.forEach((g, i) => {
    const y = 14 + i * rowH;
    ctx.fillStyle = AXIS;
    ctx.fillText(String(g.group).slice(0, 18), 4, y + 4);
    ctx.strokeStyle = PALETTE[1];
    ctx.lineWidth = 2;
    if (Number.isFinite(g.lo) && Number.isFinite(g.hi)) {
      ctx.beginPath();
      ctx.moveTo(sx(g.lo), y);
      ctx.lineTo(sx(g.hi), y);
      ctx.moveTo(sx(g.lo), y - 5);
      ctx.lineTo(sx(g.lo), y + 5);
      ctx.moveTo(sx(g.hi), y - 5);
      ctx.lineTo(sx(g.hi), y + 5);
      ctx.stroke();
    }
    ctx.fillStyle = PALETTE[1];
    ctx.beginPath();
    ctx.arc(sx(g.value), y, 4, 0, 2 * Math.PI);
    ctx.fill();
  });
  ctx.lineWidth = 1;
}
