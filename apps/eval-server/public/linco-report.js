// The LInCo analysis report (`kiln linco analyze` uploads it as the run artifact
// linco-report.json): the paper's three analyses — and the de-biasing comparison when it
// ran — as tables, each with a chart of the term excess over the null interval and its
// interval. Self-contained: reportTables() turns a report into plain rows (tested in Node),
// renderLincoReport() draws them.
import { ciChart } from './charts.js';

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '–');
const interval = (c) => (Array.isArray(c) && Number.isFinite(c[0]) && Number.isFinite(c[1]) ? `[${num(c[0])}, ${num(c[1])}]` : '–');
const pValue = (p) => (typeof p !== 'number' || !Number.isFinite(p) ? '–' : p < 0.001 ? '< 0.001' : p.toFixed(3));
const point = (value, c) => ({ value, lo: c?.[0], hi: c?.[1] });

function subsetTable(rows) {
  return rows.map((r) => [r.group, String(r.n), num(r.value.term), interval(r.nullInterval?.term), `${num(r.excess.term.value)} ${interval(r.excess.term.ci)}`, pValue(r.excess.term.p), `${num(r.excess.charge.value)} ${interval(r.excess.charge.ci)}`]);
}

const SUBSET_HEAD = ['group', 'cases', 'LInCo term', 'null interval', 'excess term [CI]', 'p', 'excess charge [CI]'];

/** The report as tables: { id, title, head, rows, chart?, lines }. */
export function reportTables(report) {
  const tables = [];
  const g = report.groups;
  const attrs = g.attributes.map((a) =>
    a.error
      ? [a.attribute, '–', '–', '–', '–', '–', `not analysed: ${a.error}`]
      : [
          a.attribute,
          `${a.judges.length} × ${a.perJudge}`,
          `${num(a.overall.term)} ${interval(a.ci.term)}`,
          interval(a.baseline?.ci.term),
          `${num(a.excess?.overall.term)} ${interval(a.excess?.ci.term)}`,
          pValue(a.excess?.p?.term),
          `${num(a.excess?.overall.charge)} ${interval(a.excess?.ci.charge)}`,
        ],
  );
  const lines = g.attributes.map((a) => `${a.attribute}: found for ${a.coverage.found} of ${a.coverage.total} cases`);
  if (g.comparison) {
    const d = g.comparison.difference.term;
    lines.push(`${g.comparison.first} − ${g.comparison.second} (term excess): ${num(d.value)} ${interval(d.ci)}, p ${pValue(d.p)} → larger: ${g.comparison.larger.term}`);
  }
  tables.push({
    id: 'groups',
    title: '1. Inconsistency by group',
    head: ['attribute', 'judges × cases', 'LInCo term [CI]', 'null interval', 'excess term [CI]', 'p', 'excess charge [CI]'],
    rows: attrs,
    chart: { overall: { value: 0, lo: 0, hi: 0 }, groups: g.attributes.filter((a) => a.excess).map((a) => ({ group: a.attribute, ...point(a.excess.overall.term, a.excess.ci.term) })) },
    lines,
  });
  const pt = report.periods.trend.term;
  tables.push({
    id: 'periods',
    title: `2. By period (${report.periods.periodYears}-year periods, ${report.periods.attribute} judges)`,
    head: SUBSET_HEAD,
    rows: subsetTable(report.periods.rows),
    chart: { overall: { value: 0, lo: 0, hi: 0 }, groups: report.periods.rows.map((r) => ({ group: r.group, ...point(r.excess.term.value, r.excess.term.ci) })) },
    lines: [`trend: Spearman ρ(year, excess term) ${num(pt.rho)} ${interval(pt.ci)} over ${pt.n} cases; spread ${num(report.periods.spread.term)}`],
  });
  const sc = report.severity.correlation.term;
  tables.push({
    id: 'severity',
    title: `3. By severity of the charge (statutory maximum; ${report.severity.attribute} judges)`,
    head: SUBSET_HEAD,
    rows: subsetTable(report.severity.rows),
    chart: { overall: { value: 0, lo: 0, hi: 0 }, groups: report.severity.rows.map((r) => ({ group: r.group, ...point(r.excess.term.value, r.excess.term.ci) })) },
    lines: [`Spearman ρ(severity, excess term) ${num(sc.rho)} ${interval(sc.ci)} over ${sc.n} cases`],
  });
  if (report.debias) {
    const d = report.debias;
    tables.push({
      id: 'debias',
      title: `4. De-biasing (${d.seeds} seeds, ${d.randomSplits} random splits each; mean [t interval over seeds])`,
      head: ['method', 'encoder', 'excess term before', 'after', 'change', 'inside the null (after)'],
      rows: d.rows.map((r) => [
        r.method,
        r.encoder,
        `${num(r.before.excess.term.value)} ${interval(r.before.excess.term.ci)}`,
        `${num(r.after.excess.term.value)} ${interval(r.after.excess.term.ci)}`,
        `${num(r.change.excess.term.value)} ${interval(r.change.excess.term.ci)}`,
        `${r.insideNull.after} of ${d.seeds}`,
      ]),
      chart: { overall: { value: 0, lo: 0, hi: 0 }, groups: d.rows.map((r) => ({ group: r.method, ...point(r.change.excess.term.value, r.change.excess.term.ci) })) },
      lines: d.notes,
    });
  }
  return tables;
}

/** One line on the data: records, cases kept, what was left out and why. */
export function dataLine(report) {
  const d = report.data;
  const left = Object.entries(d.excluded ?? {}).map(([why, e]) => `${why}: ${e.count}`);
  return `${d.source}: ${d.records} records, ${d.kept} cases${left.length ? ` (left out — ${left.join(', ')})` : ''}`;
}

export function renderLincoReport(holder, report) {
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  holder.replaceChildren(el('p', dataLine(report), 'linco-data'));
  for (const t of reportTables(report)) {
    const section = el('section');
    section.dataset.table = t.id;
    section.append(el('h4', t.title));
    const table = el('table', undefined, 'jobs');
    const head = el('tr');
    for (const h of t.head) head.append(el('th', h));
    table.append(head, ...t.rows.map((r) => {
      const tr = el('tr');
      for (const c of r) tr.append(el('td', c));
      return tr;
    }));
    section.append(table);
    for (const line of t.lines) section.append(el('p', line, 'linco-line'));
    if (t.chart && t.chart.groups.length) {
      const canvas = el('canvas');
      canvas.id = `linco-report-${t.id}`;
      canvas.width = 640;
      canvas.height = 160;
      canvas.style.width = '100%';
      section.append(el('p', 'term excess over the null (0: the dashed line) with its interval', 'linco-line'), canvas);
      ciChart(canvas, t.chart);
      canvas.dataset.rendered = String(t.chart.groups.length);
    }
    holder.append(section);
  }
  for (const n of report.notes ?? []) holder.append(el('p', `note: ${n}`, 'linco-line'));
}
