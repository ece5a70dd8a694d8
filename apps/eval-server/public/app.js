// The Kiln eval dashboard: reads the JSON API and draws runs, curves, IoU bars,
// expert-load heatmaps, LInCo intervals and the segmented point cloud, one run at a time
// or several compared (compare.js). Metric series are fetched incrementally
// (series-cache.js); every chart draws any number of points. The view — which run or
// runs, smoothing, log scale, x axis — lives in the URL's fragment, so a link restores it.
import { AuthRequired, api, setToken } from './api.js';
import { PALETTE, ciChart, expertHeatmap, iouBars, lineChart, readoutAt } from './charts.js';
import { metricLines, renderComparison } from './compare.js';
import { SeriesCache } from './series-cache.js';
import { filterRuns, formatView, parseView } from './view-model.js';

const $ = (sel, root = document) => root.querySelector(sel);
const status = (text) => {
  $('#status').textContent = text;
};
const seriesCache = new SeriesCache(api);

let view = parseView(location.hash);
let runs = [];
let cloudView;
let cloudViewModule;
let shownCloud;
/** What the open view drew from, so that curve controls redraw without fetching. */
let redrawCurves = () => {};
let shownReport;

function latest(results, kind) {
  return results.filter((r) => r.kind === kind).at(-1)?.payload;
}

function setView(next, fresh = true) {
  view = next;
  const hash = formatView(view);
  if (location.hash !== hash) history.replaceState(null, '', hash);
  refresh(fresh);
}

// ------------------------------------------------------------------------- the run list

function filterValues() {
  return { kind: $('#filter-kind').value, text: $('#filter-text').value, tag: $('#filter-tag').value.trim(), config: $('#filter-config').value };
}

function renderRunList() {
  const kinds = [...new Set(runs.map((r) => r.kind))].sort();
  const kindSelect = $('#filter-kind');
  const chosen = kindSelect.value;
  kindSelect.replaceChildren(new Option('every kind', ''), ...kinds.map((k) => new Option(k, k)));
  kindSelect.value = kinds.includes(chosen) ? chosen : '';
  const shown = filterRuns(runs, filterValues());
  const comparing = new Set(view.compare);
  $('#runs').replaceChildren(
    ...shown.map((r) => {
      const li = document.createElement('li');
      li.dataset.id = r.id;
      li.className = (comparing.size ? comparing.has(r.id) : r.id === view.run) ? 'selected' : '';
      const pick = document.createElement('input');
      pick.type = 'checkbox';
      pick.className = 'pick';
      pick.title = 'compare';
      pick.checked = comparing.has(r.id);
      pick.addEventListener('click', (e) => {
        e.stopPropagation();
        const ids = view.compare.filter((id) => id !== r.id);
        if (pick.checked) ids.push(r.id);
        setView({ ...view, compare: ids, run: ids.length ? view.run : r.id });
      });
      const name = document.createElement('strong');
      name.textContent = r.name;
      const meta = document.createElement('small');
      meta.textContent = `${r.kind} · ${r.lastStep ?? 0} steps · ${new Date(r.createdAt).toLocaleString()}`;
      li.append(pick, name, meta);
      if (r.tags?.length) {
        const tags = document.createElement('small');
        tags.className = 'tags';
        for (const t of r.tags) {
          const tag = document.createElement('span');
          tag.textContent = t;
          tags.append(tag);
        }
        li.append(tags);
      }
      li.addEventListener('click', () => setView({ ...view, run: r.id, compare: [] }));
      return li;
    }),
  );
  $('#run-count').textContent = shown.length === runs.length ? `${runs.length}` : `${shown.length} of ${runs.length}`;
  $('#compare-count').textContent = view.compare.length ? `comparing ${view.compare.length}` : '';
}

for (const id of ['#filter-kind', '#filter-text', '#filter-tag', '#filter-config']) $(id).addEventListener('input', renderRunList);

// ------------------------------------------------------------------------- curves

function curveControls() {
  return { smoothing: view.smoothing, log: view.log, x: view.x };
}

function showControls() {
  $('#smoothing').value = String(view.smoothing);
  $('#smoothing-value').textContent = view.smoothing.toFixed(2);
  $('#log-scale').checked = view.log;
  $('#x-axis').value = view.x;
}

showControls();
$('#smoothing').addEventListener('input', (e) => {
  view = { ...view, smoothing: Number(e.target.value) };
  $('#smoothing-value').textContent = view.smoothing.toFixed(2);
  history.replaceState(null, '', formatView(view));
  redrawCurves();
});
$('#log-scale').addEventListener('change', (e) => {
  view = { ...view, log: e.target.checked };
  history.replaceState(null, '', formatView(view));
  redrawCurves();
});
$('#x-axis').addEventListener('change', (e) => {
  view = { ...view, x: e.target.value === 'time' ? 'time' : 'step' };
  history.replaceState(null, '', formatView(view));
  redrawCurves();
});

/** Shows, under the pointer, each line's value at the nearest step. */
function hoverReadout(canvas) {
  if (canvas.dataset.hover) return;
  canvas.dataset.hover = '1';
  const box = $('#readout');
  canvas.addEventListener('mousemove', (e) => {
    const at = readoutAt(canvas, e.offsetX);
    if (!at || at.rows.length === 0) return;
    const when = (r) => (r.time !== undefined ? ` at ${new Date(r.time).toLocaleTimeString()}` : '');
    const lines = at.rows.map((r) => `${r.label}: step ${r.step}${when(r)} = ${fmtValue(r.value)}${r.smoothed !== undefined ? ` (smoothed ${fmtValue(r.smoothed)})` : ''}`);
    box.textContent = `${canvas.dataset.metric}\n${lines.join('\n')}`;
    box.hidden = false;
    box.style.left = `${e.pageX + 14}px`;
    box.style.top = `${e.pageY + 10}px`;
  });
  canvas.addEventListener('mouseleave', () => {
    box.hidden = true;
  });
}

function fmtValue(v) {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
}

// ------------------------------------------------------------------------- one run

async function renderCloud(run, payload) {
  const panel = $('[data-panel="cloud"]');
  if (!payload?.pointsArtifact) return;
  panel.hidden = false;
  const key = `${run.id}/${payload.pointsArtifact}`;
  if (shownCloud === key) return;
  const cloud = await api(`/api/runs/${run.id}/artifacts/${encodeURIComponent(payload.pointsArtifact)}`);
  cloudViewModule ??= await import('./cloud-view.js');
  cloudView?.dispose?.();
  const canvas = $('#cloud-view');
  cloudView = cloudViewModule.createCloudView(canvas);
  if (cloudView.error) {
    $('#cloud-legend').textContent = cloudView.error;
    return;
  }
  cloudView.show(cloud, $('#show-labels').checked);
  $('#show-labels').onchange = (e) => cloudView.recolour(e.target.checked);
  $('#cloud-legend').replaceChildren(
    ...cloud.classes.map((name, i) => {
      const span = document.createElement('span');
      const swatch = document.createElement('i');
      swatch.style.background = PALETTE[i % PALETTE.length]; // CSSOM: allowed by the CSP, unlike a style attribute
      span.append(swatch, name);
      return span;
    }),
  );
  canvas.dataset.points = String(cloud.labels.length);
  shownCloud = key;
}

/** The expert load of one MoE result; with several (over training), a slider picks the step. */
function renderExperts(section, moes) {
  $('[data-panel="experts"]').hidden = false;
  const slider = $('#expert-step', section);
  const label = $('.expert-step-label', section);
  const draw = (i) => {
    const moe = moes[i];
    expertHeatmap($('#expert-heatmap'), moe.layers);
    $('#expert-heatmap').dataset.rendered = String(moe.layers.length);
    $('#expert-heatmap').dataset.step = String(moe.step ?? '');
    label.textContent = moes.length > 1 ? `step ${moe.step ?? '?'} (${i + 1} of ${moes.length} recorded)` : moe.step !== undefined ? `step ${moe.step}` : '';
  };
  slider.hidden = moes.length < 2;
  const wasAtEnd = Number(slider.value) === Number(slider.max) || slider.dataset.count === undefined;
  slider.max = String(moes.length - 1);
  slider.dataset.count = String(moes.length);
  if (wasAtEnd) slider.value = String(moes.length - 1); // follow training unless the user went back
  slider.oninput = () => draw(Number(slider.value));
  draw(Number(slider.value));
}

async function renderRun(fresh) {
  const section = $('#run');
  if (!view.run) return;
  const run = await api(`/api/runs/${view.run}`);
  const held = await seriesCache.update(run.id, run.series);
  if (fresh || !section.querySelector('.run-head[data-run]')) {
    section.replaceChildren($('#run-template').content.cloneNode(true));
    $('.run-head', section).dataset.run = run.id;
    shownCloud = undefined;
    cloudView?.dispose?.();
    cloudView = undefined;
    shownReport = undefined;
  }
  $('.run-name', section).textContent = run.name;
  $('.run-meta', section).textContent = `${run.kind} · ${run.id} · ${run.metricCount} metric points`;
  $('.run-tags', section).textContent = run.tags.length ? `tags: ${run.tags.join(', ')}` : '';
  $('.run-note', section).textContent = run.note;
  $('.run-config', section).textContent = JSON.stringify(run.config, null, 2);

  const curves = $('.curves', section);
  // Single-point series (final evaluation values) read better as numbers than as charts.
  const multi = run.series.filter((s) => held.get(s.name)?.steps.length > 1);
  const metrics = [...new Set(multi.map((s) => s.metric ?? s.name))].sort();
  const singles = run.series.filter((s) => held.get(s.name)?.steps.length === 1).map((s) => s.name).sort();
  const finals = $('.finals', section);
  finals.hidden = singles.length === 0;
  finals.replaceChildren(
    ...singles.map((n) => {
      const span = document.createElement('span');
      span.textContent = `${n} ${fmtValue(held.get(n).values[0])}`;
      return span;
    }),
  );
  const heldByRun = new Map([[run.id, held]]);
  const drawCurves = () => {
    for (const metric of metrics) {
      let canvas = curves.querySelector(`canvas[data-metric="${CSS.escape(metric)}"]`);
      if (!canvas) {
        canvas = document.createElement('canvas');
        canvas.dataset.metric = metric;
        canvas.width = 320;
        canvas.height = 180;
        canvas.style.width = '100%';
        canvas.style.height = '180px';
        curves.append(canvas);
        hoverReadout(canvas);
      }
      // One line per series key; a metric without keys is one line named after the metric.
      const lines = metricLines([run], heldByRun, metric).map((l, i) => ({ ...l, label: l.key ?? metric, color: PALETTE[i % PALETTE.length] }));
      lineChart(canvas, { title: metric, lines, ...curveControls() });
      canvas.dataset.lines = String(lines.length);
      canvas.dataset.rendered = String(lines.reduce((a, l) => a + l.steps.length, 0));
      canvas.dataset.total = String(multi.filter((s) => (s.metric ?? s.name) === metric).reduce((a, s) => a + (held.get(s.name)?.total ?? 0), 0));
    }
  };
  drawCurves();
  redrawCurves = drawCurves;
  if (metrics.length === 0 && singles.length === 0) curves.textContent = 'no metrics yet';

  const pc = latest(run.results, 'pointcloud');
  if (pc) {
    $('[data-panel="iou"]').hidden = false;
    $('.miou').textContent = `mIoU ${(100 * pc.miou).toFixed(2)}${pc.accuracy !== undefined ? ` · accuracy ${(100 * pc.accuracy).toFixed(2)}` : ''}`;
    iouBars($('#iou-chart'), pc.classes);
    $('#iou-chart').dataset.rendered = String(pc.classes.length);
    await renderCloud(run, pc);
  }
  const moes = run.results.filter((r) => r.kind === 'moe').map((r) => r.payload);
  if (moes.length) renderExperts(section, moes);
  // The latest LInCo result per metric (term, charge, ...), one chart each.
  const lincoByMetric = new Map();
  for (const r of run.results) if (r.kind === 'linco') lincoByMetric.set(r.payload.metric ?? 'LInCo', r.payload);
  if (lincoByMetric.size) {
    $('[data-panel="linco"]').hidden = false;
    const holder = $('.linco-charts', section);
    holder.replaceChildren();
    [...lincoByMetric].forEach(([metric, linco], i) => {
      const title = document.createElement('p');
      const pct = linco.confidence ? `${Math.round(100 * linco.confidence)}% CI` : 'CI';
      const o = linco.overall;
      const base = linco.baseline ? `; random-split baseline ${linco.baseline.value.toFixed(4)} [${linco.baseline.lo.toFixed(4)}, ${linco.baseline.hi.toFixed(4)}] (grey band)` : '';
      title.className = 'linco-overall';
      title.textContent = `${metric}: overall ${o.value.toFixed(4)} [${o.lo.toFixed(4)}, ${o.hi.toFixed(4)}] (${pct}, orange band)${base}`;
      const canvas = document.createElement('canvas');
      canvas.id = `linco-chart-${i}`;
      canvas.width = 640;
      canvas.height = 260;
      canvas.style.width = '100%';
      holder.append(title, canvas);
      ciChart(canvas, linco);
      canvas.dataset.rendered = String(linco.groups.length);
    });
  }
  // A LInCo analysis report (kiln linco analyze) comes as a run artifact.
  const report = run.artifacts.find((a) => a.name === 'linco-report.json');
  if (report && shownReport !== `${run.id}/${report.size}`) {
    $('[data-panel="linco-report"]').hidden = false;
    const { renderLincoReport } = await import('./linco-report.js');
    renderLincoReport($('.linco-report', section), await api(`/api/runs/${run.id}/artifacts/linco-report.json`));
    shownReport = `${run.id}/${report.size}`;
  }
  if (run.jobs.length) {
    $('[data-panel="jobs"]').hidden = false;
    $('table.jobs tbody').replaceChildren(
      ...run.jobs.map((j) => {
        const tr = document.createElement('tr');
        for (const text of [j.id, j.status, `${Math.round(100 * j.progress)}%`, j.message]) {
          const td = document.createElement('td');
          td.textContent = text;
          tr.append(td);
        }
        return tr;
      }),
    );
  }
  if (run.artifacts.length) {
    $('[data-panel="artifacts"]').hidden = false;
    $('ul.artifacts').replaceChildren(
      ...run.artifacts.map((a) => {
        const li = document.createElement('li');
        const link = document.createElement('a');
        link.href = `/api/runs/${run.id}/artifacts/${encodeURIComponent(a.name)}`;
        link.textContent = a.name;
        li.append(link, ` (${a.size} bytes)`);
        return li;
      }),
    );
  }
}

// ------------------------------------------------------------------------- several runs

async function renderCompare() {
  const details = [];
  const heldByRun = new Map();
  for (const id of view.compare) {
    const run = await api(`/api/runs/${encodeURIComponent(id)}`);
    details.push(run);
    heldByRun.set(run.id, await seriesCache.update(run.id, run.series));
  }
  shownCloud = undefined;
  cloudView?.dispose?.();
  cloudView = undefined;
  const section = $('#run');
  const draw = () => {
    renderComparison(section, details, heldByRun, curveControls(), hoverReadout);
    section.dataset.comparing = details.map((r) => r.id).join(',');
  };
  draw();
  redrawCurves = draw;
}

// ------------------------------------------------------------------------- refresh

let busy = false;
async function refresh(fresh = false) {
  if (busy) return;
  busy = true;
  try {
    runs = (await api('/api/runs')).runs;
    if (!view.run && !view.compare.length && runs[0]) view = { ...view, run: runs[0].id };
    renderRunList();
    if (view.compare.length) await renderCompare();
    else {
      delete $('#run').dataset.comparing;
      await renderRun(fresh);
    }
    status(`${runs.length} runs · updated ${new Date().toLocaleTimeString()}`);
    document.body.dataset.state = 'ready';
  } catch (err) {
    if (err instanceof AuthRequired) {
      $('#token-form').hidden = false;
      status(err.message);
      document.body.dataset.state = 'token';
      return;
    }
    status(`error: ${err.message}`);
    document.body.dataset.state = 'error';
    console.error(err);
  } finally {
    busy = false;
  }
}

$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken($('#token-input').value.trim());
  $('#token-form').hidden = true;
  refresh(true);
});

window.addEventListener('hashchange', () => {
  view = parseView(location.hash);
  showControls();
  refresh(true);
});
refresh(true);
setInterval(() => refresh(false), 5000);
