// What the dashboard computes before it draws, as plain functions (tested in Node by
// src/view-model.test.ts): curve smoothing, hover look-up, the view kept in the URL, run
// filters, and the tables of a comparison.

/**
 * Exponential moving average as TensorBoard draws it: weight w in [0, 1), debiased so
 * that the first points are not pulled towards zero. Non-finite values stay as they are
 * and do not enter the average.
 */
export function smooth(values, weight) {
  const out = new Array(values.length);
  if (!(weight > 0)) {
    for (let i = 0; i < values.length; i++) out[i] = values[i];
    return out;
  }
  let last = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    count++;
    out[i] = last / (1 - weight ** count);
  }
  return out;
}

/** Index of the step nearest to x in ascending steps (-1 when there are none). */
export function nearestIndex(steps, x) {
  if (steps.length === 0) return -1;
  let lo = 0;
  let hi = steps.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (steps[mid] <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs(steps[hi] - x) < Math.abs(x - steps[lo]) ? hi : lo;
}

/** The view in the URL's fragment: one run, or runs compared, and the curve controls (x: 'step' or 'time'). */
export function parseView(hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const compare = (p.get('compare') ?? '').split(',').filter(Boolean);
  const smoothing = Number(p.get('smooth') ?? 0);
  return {
    run: p.get('run') ?? undefined,
    compare,
    smoothing: Number.isFinite(smoothing) && smoothing >= 0 && smoothing < 1 ? smoothing : 0,
    log: p.get('log') === '1',
    x: p.get('x') === 'time' ? 'time' : 'step',
  };
}

export function formatView(view) {
  const p = new URLSearchParams();
  if (view.compare.length) p.set('compare', view.compare.join(','));
  else if (view.run) p.set('run', view.run);
  if (view.smoothing > 0) p.set('smooth', String(view.smoothing));
  if (view.log) p.set('log', '1');
  if (view.x === 'time') p.set('x', 'time');
  return `#${p.toString()}`;
}

/**
 * The x coordinates of a line: its steps, or the wall time of each point (ms since 1970)
 * with the points that have none (stored before times were kept) left out.
 */
export function xCoordinates(line, x) {
  if (x !== 'time') return { xs: line.steps, values: line.values, steps: line.steps };
  const xs = [];
  const values = [];
  const steps = [];
  for (let i = 0; i < line.steps.length; i++) {
    const t = line.times?.[i];
    if (t === null || t === undefined) continue;
    xs.push(t);
    values.push(line.values[i]);
    steps.push(line.steps[i]);
  }
  return { xs, values, steps };
}

/** A wall-time tick label: clock time, with seconds for short spans and the date for long ones. */
export function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}${spanMs < 10 * 60_000 ? `:${pad(d.getSeconds())}` : ''}`;
  return spanMs > 36 * 3600_000 ? `${d.getMonth() + 1}/${d.getDate()} ${clock}` : clock;
}

/** A config as `dotted.key → value` (arrays and scalars are leaves). */
export function flatten(config, prefix = '', out = {}) {
  for (const [k, v] of Object.entries(config ?? {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = v;
  }
  return out;
}

/**
 * Filters the run list. `filter`: { kind, text (in the name), tag, config: 'key=value' }
 * — each optional; a config filter matches the flattened key and the value as written.
 */
export function filterRuns(runs, filter) {
  const [cKey, ...rest] = (filter.config ?? '').split('=');
  const cValue = rest.join('=').trim();
  const text = (filter.text ?? '').trim().toLowerCase();
  return runs.filter((r) => {
    if (filter.kind && r.kind !== filter.kind) return false;
    if (text && !r.name.toLowerCase().includes(text)) return false;
    if (filter.tag && !(r.tags ?? []).includes(filter.tag)) return false;
    if (cKey?.trim()) {
      const flat = flatten(r.config);
      if (!(cKey.trim() in flat)) return false;
      if (rest.length && JSON.stringify(flat[cKey.trim()]) !== cValue && String(flat[cKey.trim()]) !== cValue) return false;
    }
    return true;
  });
}

/** The config keys whose values differ between runs (missing counts as a value): rows of [key, values per run]. */
export function configDiff(configs) {
  const flats = configs.map((c) => flatten(c));
  const keys = [...new Set(flats.flatMap((f) => Object.keys(f)))].sort();
  const rows = [];
  for (const key of keys) {
    const values = flats.map((f) => (key in f ? JSON.stringify(f[key]) : undefined));
    if (new Set(values).size > 1) rows.push([key, values]);
  }
  return rows;
}

/** The last value of every series a run holds: Map series name → value. */
export function finalValues(held) {
  const out = new Map();
  for (const [name, s] of held) {
    for (let i = s.values.length - 1; i >= 0; i--) {
      if (Number.isFinite(s.values[i])) {
        out.set(name, s.values[i]);
        break;
      }
    }
  }
  return out;
}
