/**
 * LInCo: the disagreement among virtual judges on the same cases.
 *
 * Terms. Each judge's sentence is put on a log scale, y = ln(1 + months) (the scale of
 * CAIL's own term score), and life imprisonment and death either get fixed month
 * equivalents (`lifeDeath: 'map'`, default) or are treated as categories
 * (`'category'`: same kind → 0, different kinds → `categoryDistance`). Per case, the
 * default is the mean absolute difference over judge pairs (Gini's mean difference);
 * `'std'` gives the judges' standard deviation computed from the same pairwise distances.
 * Charges. Per case, the default is the share of judge pairs that disagree (Gini–Simpson);
 * `'majority'` is 1 − the majority's share, `'entropy'` the vote entropy over ln K.
 * The coefficient is the mean over cases.
 */
import { bootstrapDifference, bootstrapMean, type BootstrapOptions, clampInterval, compareWithNull, type Estimate, mean, type NullComparison } from './stats.js';
import type { Term } from './types.js';

export interface TermMetricOptions {
  /** How life and death enter: month equivalents or categories. Default 'map'. */
  lifeDeath?: 'map' | 'category';
  /** Month equivalent of life imprisonment. Default 300 (25 years). */
  lifeMonths?: number;
  /** Month equivalent of death. Default 480 (40 years). */
  deathMonths?: number;
  /** Distance between different kinds in 'category' mode (log scale). Default 1. */
  categoryDistance?: number;
  /** Per-case statistic. Default 'pairwise'. */
  perCase?: 'pairwise' | 'std';
}

export interface ChargeMetricOptions {
  /** Per-case statistic. Default 'pairwise'. */
  perCase?: 'pairwise' | 'majority' | 'entropy';
}

export interface MetricOptions {
  term?: TermMetricOptions;
  charge?: ChargeMetricOptions;
}

export type MetricName = 'term' | 'charge';
export const METRICS: readonly MetricName[] = ['term', 'charge'];
/**
 * The values each metric can take: a term distance is ≥ 0; a charge disagreement (a share
 * of judge pairs, a Jaccard distance, a normalized entropy) lies in [0, 1]. Intervals are
 * cut to these ranges.
 */
export const METRIC_RANGE: Record<MetricName, readonly [number, number]> = { term: [0, Infinity], charge: [0, 1] };

function checkTermOptions(o: TermMetricOptions): Required<TermMetricOptions> {
  const r: Required<TermMetricOptions> = {
    lifeDeath: o.lifeDeath ?? 'map',
    lifeMonths: o.lifeMonths ?? 300,
    deathMonths: o.deathMonths ?? 480,
    categoryDistance: o.categoryDistance ?? 1,
    perCase: o.perCase ?? 'pairwise',
  };
  if (r.lifeDeath !== 'map' && r.lifeDeath !== 'category') throw new Error(`metric.term.lifeDeath must be 'map' or 'category', got ${JSON.stringify(r.lifeDeath)}`);
  if (r.perCase !== 'pairwise' && r.perCase !== 'std') throw new Error(`metric.term.perCase must be 'pairwise' or 'std', got ${JSON.stringify(r.perCase)}`);
  for (const k of ['lifeMonths', 'deathMonths', 'categoryDistance'] as const) {
    if (!(Number.isFinite(r[k]) && r[k] >= 0)) throw new Error(`metric.term.${k} must be a finite number ≥ 0, got ${r[k]}`);
  }
  return r;
}

/** Distance between two sentences on the log scale. */
export function termDistance(a: Term, b: Term, options: TermMetricOptions = {}): number {
  const o = checkTermOptions(options);
  return termDistanceChecked(a, b, o);
}

function termDistanceChecked(a: Term, b: Term, o: Required<TermMetricOptions>): number {
  if (o.lifeDeath === 'category') {
    const ka = a.death ? 2 : a.life ? 1 : 0;
    const kb = b.death ? 2 : b.life ? 1 : 0;
    if (ka !== kb) return o.categoryDistance;
    if (ka !== 0) return 0;
  }
  const ya = Math.log1p(a.death ? o.deathMonths : a.life ? o.lifeMonths : a.months);
  const yb = Math.log1p(b.death ? o.deathMonths : b.life ? o.lifeMonths : b.months);
  return Math.abs(ya - yb);
}

/** Term disagreement of one case's K judge sentences. */
export function caseTermDisagreement(terms: Term[], options: TermMetricOptions = {}): number {
  const o = checkTermOptions(options);
  return termDisagreementChecked(terms, o);
}

function termDisagreementChecked(terms: Term[], o: Required<TermMetricOptions>): number {
  const k = terms.length;
  if (k < 2) throw new Error(`LInCo needs at least 2 judges, got ${k}`);
  let sum = 0;
  let sumSq = 0;
  for (let i = 0; i < k; i++) {
    for (let j = i + 1; j < k; j++) {
      const d = termDistanceChecked(terms[i]!, terms[j]!, o);
      sum += d;
      sumSq += d * d;
    }
  }
  // Σ_{i<j} (y_i − y_j)² = K² · Var(y) for real y, so this std is exact in 'map' mode
  // and extends to category distances.
  return o.perCase === 'pairwise' ? sum / ((k * (k - 1)) / 2) : Math.sqrt(sumSq / (k * k));
}

export type ChargeLabel = string | number;
/** A judge's decision on a case's charges: one charge, or the set of charges it convicts of. */
export type ChargeDecision = ChargeLabel | readonly ChargeLabel[];

/** Jaccard distance 1 − |A ∩ B| / |A ∪ B| between two charge sets (duplicates ignored; two empty sets: 0). */
export function jaccardDistance(a: readonly ChargeLabel[], b: readonly ChargeLabel[]): number {
  const sa = new Set(a);
  const sb = new Set(b);
  let inter = 0;
  for (const x of sa) if (sb.has(x)) inter++;
  const union = sa.size + sb.size - inter;
  return union === 0 ? 0 : 1 - inter / union;
}

/** A canonical key of a decision: the sorted, de-duplicated set. */
function decisionKey(d: ChargeDecision): string {
  const set = Array.isArray(d) ? [...new Set(d as readonly ChargeLabel[])] : [d as ChargeLabel];
  return JSON.stringify(set.map((x) => (typeof x === 'number' ? x : `s:${x}`)).sort());
}

/**
 * Charge disagreement of one case's K judge decisions. A decision is one charge or a set
 * of charges. 'pairwise' (default) is the mean over judge pairs of the Jaccard distance
 * between their charge sets; a single charge is the set {c}, so on single-charge decisions
 * it is the share of pairs that disagree (Gini–Simpson). 'majority' and 'entropy' treat
 * each distinct set as one category (exact-set agreement).
 */
export function caseChargeDisagreement(charges: ArrayLike<ChargeDecision>, options: ChargeMetricOptions = {}): number {
  const perCase = options.perCase ?? 'pairwise';
  const k = charges.length;
  if (k < 2) throw new Error(`LInCo needs at least 2 judges, got ${k}`);
  const counts = new Map<string, number>();
  for (let i = 0; i < k; i++) {
    const key = decisionKey(charges[i]!);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  if (perCase === 'pairwise') {
    let anySet = false;
    for (let i = 0; i < k && !anySet; i++) anySet = Array.isArray(charges[i]);
    if (anySet) {
      const sets = Array.from({ length: k }, (_, i) => {
        const d = charges[i]!;
        return Array.isArray(d) ? (d as readonly ChargeLabel[]) : [d as ChargeLabel];
      });
      let sum = 0;
      for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) sum += jaccardDistance(sets[i]!, sets[j]!);
      return sum / ((k * (k - 1)) / 2);
    }
    let agree = 0;
    for (const c of counts.values()) agree += c * (c - 1);
    return 1 - agree / (k * (k - 1));
  }
  if (perCase === 'majority') return 1 - Math.max(...counts.values()) / k;
  if (perCase === 'entropy') {
    let h = 0;
    for (const c of counts.values()) h -= (c / k) * Math.log(c / k);
    return h / Math.log(k);
  }
  throw new Error(`metric.charge.perCase must be 'pairwise', 'majority' or 'entropy', got ${JSON.stringify(perCase)}`);
}

/**
 * The judges' predictions on the same cases: `charges[judge][case]` (a charge, or a set of
 * charges for multi-label judges), `terms[judge][case]`.
 */
export interface PanelPredictions {
  charges: ChargeDecision[][];
  terms: Term[][];
}

export interface CaseScores {
  term: Float64Array;
  charge: Float64Array;
}

/** Per-case term and charge disagreement for a panel. */
export function caseScores(preds: PanelPredictions, options: MetricOptions = {}): CaseScores {
  const k = preds.terms.length;
  if (k < 2) throw new Error(`LInCo needs at least 2 judges, got ${k}`);
  if (preds.charges.length !== k) throw new Error(`predictions: ${preds.charges.length} judges' charges but ${k} judges' terms`);
  const n = preds.terms[0]!.length;
  preds.terms.forEach((t, j) => {
    if (t.length !== n || preds.charges[j]!.length !== n) throw new Error(`predictions: judge ${j} predicted ${t.length} terms / ${preds.charges[j]!.length} charges, expected ${n}`);
  });
  const to = checkTermOptions(options.term ?? {});
  const term = new Float64Array(n);
  const charge = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    term[i] = termDisagreementChecked(preds.terms.map((t) => t[i]!), to);
    charge[i] = caseChargeDisagreement(preds.charges.map((c) => c[i]!), options.charge);
  }
  return { term, charge };
}

export type MetricValues = Record<MetricName, number>;
export interface GroupValues extends MetricValues {
  /** Cases in the group. */
  n: number;
}

/**
 * The result, shaped like fairlearn's MetricFrame: `overall`, `byGroup` (one table per
 * breakdown feature), `difference()` and `ratio()`; plus confidence intervals, the
 * random-split baseline and the excess over it.
 */
export class LincoFrame {
  readonly metrics = METRICS;
  constructor(
    readonly overall: MetricValues,
    readonly ci: Record<MetricName, [number, number]>,
    readonly byGroup: Record<string, Record<string, GroupValues>>,
    readonly baseline:
      | {
          overall: MetricValues;
          ci: Record<MetricName, [number, number]>;
          byGroup: Record<string, Record<string, GroupValues>>;
          /** LInCo of each random-split panel: the null distribution the overall value is compared with. */
          repeats: MetricValues[];
          /**
           * What `ci` covers. 'split+cases' (≥ 2 random splits): the null interval, where a
           * group-split LInCo falls when groups do not matter (between-split and seed variance
           * plus case resampling, Student's t). 'cases' (1 split): a case bootstrap only.
           */
          interval: 'split+cases' | 'cases';
          /** Between-split standard deviation of one panel's LInCo (with ≥ 2 splits). */
          splitSd?: MetricValues;
        }
      | undefined,
    readonly excess:
      | {
          overall: MetricValues;
          ci: Record<MetricName, [number, number]>;
          /** Two-sided p-value of "no excess" (with ≥ 3 random splits). */
          p?: MetricValues;
          /** Standard error of the excess (split, seed and case variance) and its t degrees of freedom. */
          sd?: MetricValues;
          df?: number;
        }
      | undefined,
    readonly info: Record<string, unknown> = {},
  ) {}

  private table(by: string): Record<string, GroupValues> {
    const t = this.byGroup[by];
    if (!t) throw new Error(`LincoFrame: no breakdown "${by}" (have: ${Object.keys(this.byGroup).join(', ')})`);
    return t;
  }

  groupMax(by: string): MetricValues {
    const rows = Object.values(this.table(by));
    return { term: Math.max(...rows.map((r) => r.term)), charge: Math.max(...rows.map((r) => r.charge)) };
  }

  groupMin(by: string): MetricValues {
    const rows = Object.values(this.table(by));
    return { term: Math.min(...rows.map((r) => r.term)), charge: Math.min(...rows.map((r) => r.charge)) };
  }

  /** fairlearn's `difference(method='between_groups')`: max − min over the groups of `by`. */
  difference(by: string): MetricValues {
    const hi = this.groupMax(by);
    const lo = this.groupMin(by);
    return { term: hi.term - lo.term, charge: hi.charge - lo.charge };
  }

  /** fairlearn's `ratio(method='between_groups')`: min / max over the groups of `by`. */
  ratio(by: string): MetricValues {
    const hi = this.groupMax(by);
    const lo = this.groupMin(by);
    return { term: hi.term === 0 ? 1 : lo.term / hi.term, charge: hi.charge === 0 ? 1 : lo.charge / hi.charge };
  }

  toJSON(): Record<string, unknown> {
    return { overall: this.overall, ci: this.ci, byGroup: this.byGroup, baseline: this.baseline, excess: this.excess, info: this.info };
  }
}

export interface FrameInput {
  /** Per-case scores of the group-split judges. */
  scores: CaseScores;
  /** Per-case scores of random-split panels (one per repeat), or none. */
  baseline?: CaseScores[];
  /** Breakdown feature → the value of each case. */
  breakdowns?: Record<string, string[]>;
  bootstrap?: BootstrapOptions;
  info?: Record<string, unknown>;
}

/** Aggregates per-case scores into a LincoFrame with bootstrap intervals and breakdowns. */
export function buildFrame(input: FrameInput): LincoFrame {
  const { scores } = input;
  const est = {} as Record<MetricName, Estimate>;
  for (const m of METRICS) est[m] = bootstrapMean([scores[m]], input.bootstrap);
  let baseline: LincoFrame['baseline'];
  let excess: LincoFrame['excess'];
  if (input.baseline && input.baseline.length > 0) {
    const b = {} as Record<MetricName, Estimate>;
    const e = {} as Record<MetricName, Estimate>;
    const nulls = {} as Record<MetricName, NullComparison>;
    const withSplits = input.baseline.length >= 2;
    for (const m of METRICS) {
      const reps = input.baseline.map((s) => s[m]);
      if (withSplits) {
        const c = compareWithNull(scores[m], reps, { ...input.bootstrap, range: METRIC_RANGE[m] });
        nulls[m] = c;
        b[m] = { value: c.baseline, ci: c.nullInterval };
        e[m] = { value: c.excess, ci: c.excessCi };
      } else {
        // One split: no between-split variance to estimate; case resampling only.
        b[m] = bootstrapMean(reps, input.bootstrap);
        e[m] = bootstrapDifference([scores[m]], reps, input.bootstrap);
      }
      b[m].ci = clampInterval(b[m].ci, METRIC_RANGE[m]);
    }
    // Baseline breakdowns: the mean over repeats of each case's score, then group means.
    const avg = (m: MetricName) => Float64Array.from(scores[m], (_, i) => mean(input.baseline!.map((s) => s[m][i]!)));
    baseline = {
      overall: { term: b.term.value, charge: b.charge.value },
      ci: { term: b.term.ci, charge: b.charge.ci },
      byGroup: groupTables({ term: avg('term'), charge: avg('charge') }, input.breakdowns ?? {}),
      repeats: input.baseline.map((r) => ({ term: mean(r.term), charge: mean(r.charge) })),
      interval: withSplits ? 'split+cases' : 'cases',
      ...(withSplits ? { splitSd: { term: nulls.term.splitSd, charge: nulls.charge.splitSd } } : {}),
    };
    excess = {
      overall: { term: e.term.value, charge: e.charge.value },
      ci: { term: e.term.ci, charge: e.charge.ci },
      ...(withSplits
        ? { p: { term: nulls.term.p, charge: nulls.charge.p }, sd: { term: nulls.term.excessSd, charge: nulls.charge.excessSd }, df: nulls.term.df }
        : {}),
    };
  }
  return new LincoFrame(
    { term: est.term.value, charge: est.charge.value },
    { term: est.term.ci, charge: est.charge.ci },
    groupTables(scores, input.breakdowns ?? {}),
    baseline,
    excess,
    input.info ?? {},
  );
}

/** Mean of the per-case scores within each value of each breakdown feature. */
function groupTables(scores: CaseScores, breakdowns: Record<string, string[]>): Record<string, Record<string, GroupValues>> {
  const byGroup: Record<string, Record<string, GroupValues>> = {};
  for (const [feature, values] of Object.entries(breakdowns)) {
    if (values.length !== scores.term.length) throw new Error(`breakdown "${feature}": ${values.length} values for ${scores.term.length} cases`);
    const rows: Record<string, number[]> = {};
    values.forEach((v, i) => {
      const list = rows[v] ?? [];
      list.push(i);
      rows[v] = list;
    });
    const table: Record<string, GroupValues> = {};
    for (const key of Object.keys(rows).sort()) {
      const idx = rows[key]!;
      table[key] = { term: mean(idx.map((i) => scores.term[i]!)), charge: mean(idx.map((i) => scores.charge[i]!)), n: idx.length };
    }
    byGroup[feature] = table;
  }
  return byGroup;
}
