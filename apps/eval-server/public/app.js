// The Kiln eval dashboard: reads the JSON API and draws runs, curves, IoU bars,
// expert-load heatmaps, LInCo intervals and the segmented point cloud. Metric series are
// fetched incrementally (series-cache.js); every chart draws any number of points.
import { AuthRequired, api, setToken } from './api.js';
import { PALETTE, ciChart, expertHeatmap, iouBars, lineChart } from './charts.js';
import { SeriesCache } from './series-cache.js';

const $ = (sel, root = document) => root.querySelector(sel);
const status = (text) => {
  $('#status').textContent = text;
};
const seriesCache = new SeriesCache(api);

let selected = new URLSearchParams(location.hash.slice(1)).get('run');
let cloudView;
let cloudViewModule;
let shownCloud;

function latest(results, kind) {
  return results.filter((r) => r.kind === kind).at(-1)?.payload;
}

async function renderRuns() {
  const { runs } = await api('/api/runs');
  const list = $('#runs');
  list.replaceChildren(
    ...runs.map((r) => {
      const li = document.createElement('li');
      li.dataset.id = r.id;
      li.className = r.id === selected ? 'selected' : '';
      li.innerHTML = '<strong></strong><small></small>';
      li.querySelector('strong').textContent = r.name;
      li.querySelector('small').textContent = `${r.kind} · ${r.lastStep ?? 0} steps · ${new Date(r.createdAt).toLocaleString()}`;
      li.addEventListener('click', () => {
        selected = r.id;
        location.hash = `run=${r.id}`;
        refresh(true);
      });
      return li;
    }),
  );
  if (!selected && runs[0]) selected = runs[0].id;
  return runs;
}

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

async function renderRun(fresh) {
  const section = $('#run');
  if (!selected) return;
  const run = await api(`/api/runs/${selected}`);
  const held = await seriesCache.update(run.id, run.series);
  const series = Object.fromEntries(held);
  if (fresh || !section.querySelector('.run-head')) {
    section.replaceChildren($('#run-template').content.cloneNode(true));
    shownCloud = undefined;
    cloudView?.dispose?.();
    cloudView = undefined;
  }
  $('.run-name', section).textContent = run.name;
  $('.run-meta', section).textContent = `${run.kind} · ${run.id} · ${run.metricCount} metric points`;
  $('.run-config', section).textContent = JSON.stringify(run.config, null, 2);

  const curves = $('.curves', section);
  // Single-point series (final evaluation values) read better as numbers than as charts.
  const names = Object.keys(series)
    .filter((n) => series[n].steps.length > 1)
    .sort();
  const singles = Object.keys(series)
    .filter((n) => series[n].steps.length === 1)
    .sort();
  const finals = $('.finals', section);
  finals.hidden = singles.length === 0;
  finals.replaceChildren(
    ...singles.map((n) => {
      const span = document.createElement('span');
      const v = series[n].values[0];
      span.textContent = `${n} ${Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : Number(v.toPrecision(5))}`;
      return span;
    }),
  );
  for (const name of names) {
    let canvas = curves.querySelector(`canvas[data-metric="${CSS.escape(name)}"]`);
    if (!canvas) {
      canvas = document.createElement('canvas');
      canvas.dataset.metric = name;
      canvas.width = 320;
      canvas.height = 180;
      canvas.style.width = '100%';
      canvas.style.height = '180px';
      curves.append(canvas);
    }
    lineChart(canvas, { title: name, steps: series[name].steps, values: series[name].values });
    canvas.dataset.rendered = String(series[name].steps.length);
    canvas.dataset.total = String(series[name].total);
  }
  if (names.length === 0 && singles.length === 0) curves.textContent = 'no metrics yet';

  const pc = latest(run.results, 'pointcloud');
  if (pc) {
    $('[data-panel="iou"]').hidden = false;
    $('.miou').textContent = `mIoU ${(100 * pc.miou).toFixed(2)}${pc.accuracy !== undefined ? ` · accuracy ${(100 * pc.accuracy).toFixed(2)}` : ''}`;
    iouBars($('#iou-chart'), pc.classes);
    $('#iou-chart').dataset.rendered = String(pc.classes.length);
    await renderCloud(run, pc);
  }
  const moe = latest(run.results, 'moe');
  if (moe) {
    $('[data-panel="experts"]').hidden = false;
    expertHeatmap($('#expert-heatmap'), moe.layers);
    $('#expert-heatmap').dataset.rendered = String(moe.layers.length);
  }
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

let busy = false;
async function refresh(fresh = false) {
  if (busy) return;
  busy = true;
  try {
    const runs = await renderRuns();
    await renderRun(fresh);
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
  const id = new URLSearchParams(location.hash.slice(1)).get('run');
  if (id && id !== selected) {
    selected = id;
    refresh(true);
  }
});
refresh(true);
setInterval(() => refresh(false), 5000);
