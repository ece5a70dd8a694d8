/**
 * The paper's three analyses on one data set, each with intervals, as one JSON report:
 *
 * 1. **Groups** — LInCo of judges split by each attribute (region, gender), each against its
 *    own null interval, and the difference of the first two excesses (Welch t interval).
 * 2. **Periods** — the first attribute's panel, broken down by period of the case's year:
 *    each period's excess against the null interval of the same cases, and the trend
 *    (Spearman ρ between year and per-case excess, bootstrap interval).
 * 3. **Severity** — the same panel by severity band from the law, and Spearman ρ between a
 *    case's severity score (statutory maximum of its gravest offence) and its excess.
 *
 * Optionally (4) **de-biasing**: each method judged against its null interval over several
 * seeds (debias.ts). A case's excess is its disagreement in the group panel minus its mean
 * disagreement in the random-split panels: it is what the group split adds on that case.
 */
import { LincoInputError } from './errors.js';
import { compareDebiasing, type DebiasComparison } from './debias.js';
import { type AttributeCoverage, attributeValues, caseYear, describeCoverage } from './groups.js';
import { type LincoOptions, type LincoRun, lincoRun, MIN_NULL_PANELS } from './linco.js';
import { METRIC_RANGE, METRICS, type MetricName, type MetricValues } from './metric.js';
import type { ReadReport } from './readers.js';
import { SEVERITY_BANDS, severityBand, severityScore } from './severity.js';
import { bootstrapSpearman, compareWithNull, differenceOfEstimates, mean } from './stats.js';
import type { DebiasMethod, DebiasOptions } from './train.js';
import type { JudgmentCase } from './types.js';

type PerMetric<T> = Record<MetricName, T>;

export interface Interval {
  value: number;
  ci: [number, number];
  p?: number;
}

/** One attribute's judges against the null interval (analysis 1). */
export interface AttributeResult {
  attribute: string;
  coverage: AttributeCoverage;
  /** Set when this attribute could not be analysed (e.g. fewer than 2 groups with enough cases). */
  error?: string;
  judges?: { group: string; cases: number }[];
  dropped?: { group: string; available: number }[];
  perJudge?: number;
  testSize?: number;
  overall?: MetricValues;
  ci?: PerMetric<[number, number]>;
  baseline?: { overall: MetricValues; ci: PerMetric<[number, number]>; splitSd?: MetricValues; repeats: MetricValues[] };
  excess?: { overall: MetricValues; ci: PerMetric<[number, number]>; p?: MetricValues; sd?: MetricValues; df?: number };
}

/** A breakdown group of the held-out cases against the null interval of the same cases. */
export interface SubsetRow {
  group: string;
  n: number;
  value: MetricValues;
  baseline: MetricValues;
  /** Where this subset's LInCo would fall if the groups did not matter. */
  nullInterval?: PerMetric<[number, number]>;
  excess: PerMetric<Interval>;
}

export interface LincoReport {
  kind: 'linco-analysis';
  version: 1;
  createdAt: string;
  seconds: number;
  data: ReadReport & { cases: number };
  /** Settings the analyses ran with (the resolved config when run from one). */
  config: Record<string, unknown>;
  groups: {
    attributes: AttributeResult[];
    /** First attribute's excess minus the second's. */
    comparison?: {
      first: string;
      second: string;
      difference: PerMetric<Interval & { df: number }>;
      /** Which attribute's judges disagree more beyond chance: the interval of the difference decides. */
      larger: PerMetric<string>;
    };
  };
  periods: {
    attribute: string;
    periodYears: number;
    coverage: AttributeCoverage;
    rows: SubsetRow[];
    /** Spearman ρ(year, per-case excess) over the held-out cases with a year. */
    trend: PerMetric<{ rho: number; ci: [number, number]; n: number }>;
    /** Largest minus smallest period excess. */
    spread: MetricValues;
  };
  severity: {
    attribute: string;
    coverage: AttributeCoverage;
    rows: SubsetRow[];
    /** Spearman ρ(severity score 1–5, per-case excess) over the held-out cases with a severity. */
    correlation: PerMetric<{ rho: number; ci: [number, number]; n: number }>;
  };
  debias?: DebiasComparison;
  /** Plain-language notes on what limits the reading (small subsets, missing attributes). */
  notes: string[];
}

export interface AnalyzeOptions {
  /** Attributes compared in analysis 1; the first (that can be analysed) drives 2 and 3. */
  attributes: string[];
  /** De-biasing methods to judge (analysis 4); none by default. */
  debiasMethods?: Exclude<DebiasMethod, 'none'>[];
  /** Seeds of the de-biasing comparison (≥ 3). Default 3. */
  debiasSeeds?: number;
  /** The methods' settings (λ, objective, DRO step). */
  debiasSettings?: Omit<DebiasOptions, 'method'>;
  /** What the data reader reported (formats, exclusions); synthetic data when absent. */
  readReport?: ReadReport;
  config?: Record<string, unknown>;
  onAnalysis?: (name: 'groups' | 'periods' | 'severity' | 'debias', detail: string) => void;
}

const confidenceOf = (o: LincoOptions) => o.bootstrap?.confidence ?? 0.95;

/** Per-case excess: group-panel disagreement minus the mean over random-split panels. */
export function caseExcess(run: Pick<LincoRun, 'scores' | 'baseline'>, metric: MetricName): Float64Array {
  const g = run.scores[metric];
  return Float64Array.from(g, (v, i) => v - mean(run.baseline.map((b) => b[metric][i]!)));
}

function pick(values: ArrayLike<number>, idx: number[]): Float64Array {
  return Float64Array.from(idx, (i) => values[i]!);
}

/** Each group of `labels` (cases with an undefined label left out) against its null interval. */
export function subsetRows(run: Pick<LincoRun, 'scores' | 'baseline'>, labels: (string | undefined)[], options: LincoOptions, order?: readonly string[]): SubsetRow[] {
  const byGroup = new Map<string, number[]>();
  labels.forEach((l, i) => {
    if (l === undefined) return;
    const list = byGroup.get(l) ?? [];
    list.push(i);
    byGroup.set(l, list);
  });
  const names = order ? order.filter((g) => byGroup.has(g)) : [...byGroup.keys()].sort();
  return names.map((group) => {
    const idx = byGroup.get(group)!;
    const row: SubsetRow = {
      group,
      n: idx.length,
      value: { term: 0, charge: 0 },
      baseline: { term: 0, charge: 0 },
      excess: { term: { value: 0, ci: [Number.NaN, Number.NaN] }, charge: { value: 0, ci: [Number.NaN, Number.NaN] } },
    };
    const nullInterval = {} as PerMetric<[number, number]>;
    for (const m of METRICS) {
      const g = pick(run.scores[m], idx);
      const panels = run.baseline.map((b) => pick(b[m], idx));
      row.value[m] = mean(g);
      row.baseline[m] = panels.length ? mean(panels.map((p) => mean(p))) : Number.NaN;
      if (panels.length >= MIN_NULL_PANELS) {
        const c = compareWithNull(g, panels, { ...options.bootstrap, range: METRIC_RANGE[m] });
        nullInterval[m] = c.nullInterval;
        row.excess[m] = { value: c.excess, ci: c.excessCi, p: c.p };
      } else {
        row.excess[m] = { value: row.value[m] - row.baseline[m], ci: [Number.NaN, Number.NaN] };
      }
    }
    if (run.baseline.length >= MIN_NULL_PANELS) row.nullInterval = nullInterval;
    return row;
  });
}

function attributeResult(attribute: string, run: LincoRun): AttributeResult {
  const f = run.frame;
  const r: AttributeResult = {
    attribute,
    coverage: f.info['coverage'] as AttributeCoverage,
    judges: run.plan.judges.map((j) => ({ group: j.group, cases: j.rows.length })),
    dropped: run.plan.dropped,
    perJudge: run.plan.perJudge,
    testSize: run.plan.testRows.length,
    overall: f.overall,
    ci: f.ci,
  };
  if (f.baseline) r.baseline = { overall: f.baseline.overall, ci: f.baseline.ci, repeats: f.baseline.repeats, ...(f.baseline.splitSd ? { splitSd: f.baseline.splitSd } : {}) };
  if (f.excess) r.excess = f.excess;
  return r;
}

/** Which attribute's judges disagree more beyond chance: only an interval of the difference that excludes 0 decides. */
export function largerAttribute(first: string, second: string, d: Pick<Interval, 'ci'>): string {
  if (d.ci[0] > 0) return first;
  if (d.ci[1] < 0) return second;
  return 'neither (the interval of the difference contains 0)';
}

/** Runs the analyses on `cases` with the pipeline options `base` (its groupBy is replaced). */
export async function analyzeCases(cases: JudgmentCase[], base: LincoOptions, options: AnalyzeOptions): Promise<LincoReport> {
  const t0 = performance.now();
  if ((base.baselineRepeats ?? 1) < MIN_NULL_PANELS) {
    throw new LincoInputError(`analyze: baselineRepeats must be at least ${MIN_NULL_PANELS}: every analysis compares with the null interval of the random splits`);
  }
  if (options.attributes.length === 0) throw new LincoInputError('analyze: attributes must name at least one attribute');
  const notes: string[] = [];
  const confidence = confidenceOf(base);
  const periodYears = base.periodYears ?? 2;
  const boot = { ...base.bootstrap, seed: (base.bootstrap?.seed ?? base.seed ?? 1) + 31 };

  // 1. Groups.
  const results: AttributeResult[] = [];
  let main: { attribute: string; run: LincoRun } | undefined;
  for (const attribute of options.attributes) {
    options.onAnalysis?.('groups', attribute);
    try {
      const run = await lincoRun(cases, { ...base, sampling: { ...base.sampling, groupBy: attribute } });
      results.push(attributeResult(attribute, run));
      main ??= { attribute, run };
    } catch (err) {
      const { coverage } = attributeValues(cases, attribute, { periodYears });
      results.push({ attribute, coverage, error: (err as Error).message });
      notes.push(`${attribute}: not analysed — ${(err as Error).message}`);
    }
  }
  if (!main) throw new LincoInputError(`analyze: none of the attributes could be analysed: ${results.map((r) => `${r.attribute}: ${r.error}`).join('; ')}`);
  for (const r of results) if (r.coverage.missing > 0) notes.push(describeCoverage(r.coverage));
  const groups: LincoReport['groups'] = { attributes: results };
  const [a, b] = results;
  if (a?.excess?.sd && b?.excess?.sd && a.excess.df && b.excess.df) {
    const difference = {} as PerMetric<Interval & { df: number }>;
    const which = {} as PerMetric<string>;
    for (const m of METRICS) {
      const d = differenceOfEstimates({ value: a.excess.overall[m], sd: a.excess.sd[m], df: a.excess.df }, { value: b.excess.overall[m], sd: b.excess.sd[m], df: b.excess.df }, confidence);
      difference[m] = { value: d.value, ci: d.ci, p: d.p, df: d.df };
      which[m] = largerAttribute(a.attribute, b.attribute, difference[m]);
    }
    groups.comparison = { first: a.attribute, second: b.attribute, difference, larger: which };
  }

  // 2. Periods of the main attribute's held-out cases.
  options.onAnalysis?.('periods', main.attribute);
  const { run } = main;
  let start = Infinity;
  for (const c of cases) start = Math.min(start, caseYear(c)?.year ?? Infinity);
  const periodOptions = Number.isFinite(start) ? { periodYears, periodStart: start } : { periodYears };
  const periods = attributeValues(run.test, 'period', periodOptions);
  const years = attributeValues(run.test, 'year').values.map((y) => (y === undefined ? Number.NaN : Number(y)));
  const periodRows = subsetRows(run, periods.values, base);
  const excessTerm = caseExcess(run, 'term');
  const excessCharge = caseExcess(run, 'charge');
  const trend = {
    term: bootstrapSpearman(years, excessTerm, boot),
    charge: bootstrapSpearman(years, excessCharge, boot),
  };
  const spread = {} as MetricValues;
  for (const m of METRICS) {
    const v = periodRows.map((r) => r.excess[m].value);
    spread[m] = v.length ? Math.max(...v) - Math.min(...v) : Number.NaN;
  }
  if (periods.coverage.found === 0) notes.push('periods: no held-out case has a year (none in the metadata, none readable in the text)');
  else if (periodRows.length < 2) notes.push('periods: the held-out cases fall in one period only');

  // 3. Severity from the law.
  options.onAnalysis?.('severity', main.attribute);
  const severity = attributeValues(run.test, 'severity');
  const scores = run.test.map((c) => severityScore(c) ?? Number.NaN);
  const severityRows = subsetRows(run, scores.map((s) => (Number.isFinite(s) ? severityBand(s) : undefined)), base, SEVERITY_BANDS);
  const correlation = {
    term: bootstrapSpearman(scores, excessTerm, boot),
    charge: bootstrapSpearman(scores, excessCharge, boot),
  };
  if (severity.coverage.missing > 0) notes.push(`severity: ${describeCoverage(severity.coverage)}`);
  for (const row of [...periodRows, ...severityRows]) if (row.n < 10) notes.push(`${row.group}: only ${row.n} held-out case${row.n === 1 ? '' : 's'}; its interval is wide`);

  const report: LincoReport = {
    kind: 'linco-analysis',
    version: 1,
    createdAt: new Date().toISOString(),
    seconds: 0,
    data: { ...(options.readReport ?? { source: 'cases', formats: [], records: cases.length, kept: cases.length, excluded: {}, chargesRecorded: true }), cases: cases.length },
    config: options.config ?? {},
    groups,
    periods: { attribute: main.attribute, periodYears, coverage: periods.coverage, rows: periodRows, trend, spread },
    severity: { attribute: main.attribute, coverage: severity.coverage, rows: severityRows, correlation },
    notes,
  };
  if (!report.data.chargesRecorded) notes.push('the data names no charges (FairLex): charge LInCo is 0 by construction; read the term columns');

  // 4. De-biasing.
  if (options.debiasMethods && options.debiasMethods.length > 0) {
    options.onAnalysis?.('debias', options.debiasMethods.join(', '));
    report.debias = await compareDebiasing(cases, { ...base, sampling: { ...base.sampling, groupBy: main.attribute } }, {
      methods: options.debiasMethods,
      seeds: options.debiasSeeds ?? 3,
      ...(options.debiasSettings ? { settings: options.debiasSettings } : {}),
    });
    notes.push(...report.debias.notes);
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

