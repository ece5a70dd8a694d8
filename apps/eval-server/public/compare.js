// Runs side by side: one chart per metric with a line per run (and per series key), the
// final value of every series, the config keys that differ, and per-class IoU of
// point-cloud runs. Called by app.js with the runs' details and their held series.
import { PALETTE, lineChart } from './charts.js';
import { configDiff, finalValues } from './view-model.js';

const el = (tag, text) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  return e;
};

/** A table from a header row and body rows (cells are text; null shows as –). */
function table(className, head, rows) {
  const t = el('table');
  t.className = `grid ${className}`;
  const tr = el('tr');
  for (const h of head) tr.append(el('th', h));
  t.append(el('thead'));
  t.tHead.append(tr);
  const body = el('tbody');
  for (const row of rows) {
    const r = el('tr');
    for (const cell of row) r.append(el('td', cell ?? '–'));
    body.append(r);
  }
  t.append(body);
  return t;
}

const num = (v) => (v === undefined || v === null ? undefined : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : String(Number(v.toPrecision(5))));

/**
 * Lines of one metric across runs: every series whose metric is `metric`, one line each,
 * coloured by run (keys of one run share the colour family, told apart in the label).
 */
export function metricLines(runs, heldByRun, metric) {
  const lines = [];
  runs.forEach((run, r) => {
    const held = heldByRun.get(run.id);
    for (const info of run.series) {
      if ((info.metric ?? info.name) !== metric) continue;
      const s = held?.get(info.name);
      if (!s || s.steps.length === 0) continue;
      lines.push({ label: info.key ? `${run.name} · ${info.key}` : run.name, color: PALETTE[r % PALETTE.length], steps: s.steps, values: s.values, times: s.times, run: run.id, key: info.key });
    }
  });
  // Several keys in one run: give each its own colour after the runs' own.
  const perRun = new Map();
  for (const l of lines) perRun.set(l.run, (perRun.get(l.run) ?? 0) + 1);
  if ([...perRun.values()].some((n) => n > 1)) lines.forEach((l, i) => (l.color = PALETTE[i % PALETTE.length]));
  return lines;
}

/** `controls`: { smoothing, log, x } of the curves; `onHover(canvas)` attaches the read-out. */
export function renderComparison(section, runs, heldByRun, controls, onHover) {
  section.replaceChildren();
  const head = el('div');
  head.className = 'run-head';
  head.append(el('h2', `Comparing ${runs.length} runs`));
  const legend = el('div');
  legend.className = 'legend run-legend';
  runs.forEach((run, i) => {
    const span = el('span');
    const swatch = el('i');
    swatch.style.background = PALETTE[i % PALETTE.length];
    span.append(swatch, `${run.name} (${run.kind}, ${run.id})`);
    legend.append(span);
  });
  head.append(legend);
  section.append(head);

  // Curves: every metric any of the runs has, with more than one point somewhere.
  const panel = el('div');
  panel.className = 'panel';
  panel.dataset.panel = 'compare-curves';
  panel.append(el('h3', 'Metrics'));
  const curves = el('div');
  curves.className = 'curves';
  panel.append(curves);
  const metrics = [...new Set(runs.flatMap((r) => r.series.map((s) => s.metric ?? s.name)))].sort();
  for (const metric of metrics) {
    const lines = metricLines(runs, heldByRun, metric);
    if (!lines.some((l) => l.steps.length > 1)) continue;
    const canvas = el('canvas');
    canvas.dataset.metric = metric;
    canvas.width = 320;
    canvas.height = 200;
    canvas.style.width = '100%';
    canvas.style.height = '200px';
    curves.append(canvas);
    lineChart(canvas, { title: metric, lines, ...controls });
    canvas.dataset.lines = String(lines.length);
    onHover(canvas);
  }
  section.append(panel);

  // Final values: one row per run, one column per series.
  const finals = runs.map((run) => finalValues(heldByRun.get(run.id) ?? new Map()));
  const seriesNames = [...new Set(finals.flatMap((f) => [...f.keys()]))].sort();
  const finalsPanel = el('div');
  finalsPanel.className = 'panel';
  finalsPanel.append(el('h3', 'Final values'), table('finals-table', ['run', ...seriesNames], runs.map((run, i) => [run.name, ...seriesNames.map((n) => num(finals[i].get(n)))])));
  section.append(finalsPanel);

  // Config: only what differs.
  const diff = configDiff(runs.map((r) => r.config));
  const configPanel = el('div');
  configPanel.className = 'panel';
  configPanel.append(el('h3', diff.length === 0 ? 'Config: the same in every run' : `Config: ${diff.length} ${diff.length === 1 ? 'key differs' : 'keys differ'}`));
  if (diff.length) configPanel.append(table('config-diff', ['key', ...runs.map((r) => r.name)], diff.map(([key, values]) => [key, ...values])));
  section.append(configPanel);

  // Per-class IoU of the point-cloud runs (their latest result), side by side.
  const pcs = runs.map((r) => r.results.filter((x) => x.kind === 'pointcloud').at(-1)?.payload);
  if (pcs.some(Boolean)) {
    const classes = [...new Set(pcs.flatMap((p) => (p ? p.classes.map((c) => c.name) : [])))];
    const iou = (p, name) => num(p?.classes.find((c) => c.name === name)?.iou);
    const rows = [['mIoU', ...pcs.map((p) => num(p?.miou))], ...classes.map((name) => [name, ...pcs.map((p) => iou(p, name))])];
    const iouPanel = el('div');
    iouPanel.className = 'panel';
    iouPanel.append(el('h3', 'Per-class IoU'), table('iou-compare', ['class', ...runs.map((r) => r.name)], rows));
    section.append(iouPanel);
  }
}
