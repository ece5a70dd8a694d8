/**
 * De-biasing judged by LInCo: for each method and seed, LInCo of the same judge plan trained
 * without and with the method, each against its own null interval (the random-split panels
 * are trained the same way, on placebo groups), then the change over seeds with a t interval.
 * A method that works lowers the excess over the null towards 0; one that lowers raw LInCo
 * and the null alike has only made the judges agree by making every model alike.
 */
import { LincoInputError } from './errors.js';
import { type LincoOptions, lincoRun, MIN_NULL_PANELS } from './linco.js';
import { METRICS, type MetricName, type MetricValues } from './metric.js';
import { tInterval } from './stats.js';
import type { DebiasMethod, DebiasOptions } from './train.js';
import type { JudgmentCase } from './types.js';

type PerMetric<T> = Record<MetricName, T>;

export interface DebiasSummary {
  overall: MetricValues;
  ci: PerMetric<[number, number]>;
  baseline: { overall: MetricValues; ci: PerMetric<[number, number]> };
  excess: { overall: MetricValues; ci: PerMetric<[number, number]>; p?: MetricValues };
  /** Whether the group panel's LInCo lies inside the null interval. */
  inside: PerMetric<boolean>;
}

export interface SeedInterval {
  /** Mean over seeds. */
  value: number;
  /** t interval over seeds (seeds − 1 degrees of freedom). */
  ci: [number, number];
  p: number;
}

/** A method with its own settings (the adversary's objective, say) and a label for it. */
export interface DebiasVariant {
  method: Exclude<DebiasMethod, 'none'>;
  label?: string;
  settings?: Omit<DebiasOptions, 'method'>;
}

export interface DebiasRow {
  method: Exclude<DebiasMethod, 'none'>;
  /** The variant's label, when it has one ('adversarial (confusion)'). */
  label?: string;
  encoder: 'separate' | 'shared';
  crossGroupShare: number;
  seeds: { seed: number; before: DebiasSummary; after: DebiasSummary }[];
  /** Mean LInCo and excess before and after, and after − before, over seeds. */
  before: { linco: PerMetric<SeedInterval>; excess: PerMetric<SeedInterval> };
  after: { linco: PerMetric<SeedInterval>; excess: PerMetric<SeedInterval> };
  change: { linco: PerMetric<SeedInterval>; excess: PerMetric<SeedInterval> };
  /** Seeds whose term LInCo lies inside the null interval, before and after. */
  insideNull: { before: number; after: number };
}

export interface DebiasComparison {
  attribute: string;
  seeds: number;
  randomSplits: number;
  rows: DebiasRow[];
  notes: string[];
}

function summary(f: Awaited<ReturnType<typeof lincoRun>>['frame']): DebiasSummary {
  if (!f.baseline || !f.excess) throw new Error('de-biasing comparison: a run without a baseline');
  const inside = {} as PerMetric<boolean>;
  for (const m of METRICS) inside[m] = f.overall[m] >= f.baseline.ci[m][0] && f.overall[m] <= f.baseline.ci[m][1];
  return {
    overall: f.overall,
    ci: f.ci,
    baseline: { overall: f.baseline.overall, ci: f.baseline.ci },
    excess: { overall: f.excess.overall, ci: f.excess.ci, ...(f.excess.p ? { p: f.excess.p } : {}) },
    inside,
  };
}

function withoutDebias(o: LincoOptions): LincoOptions {
  const { debias: _method, ...rest } = o;
  return rest;
}

function overSeeds(values: number[], confidence: number): SeedInterval {
  const t = tInterval(values, confidence);
  return { value: t.value, ci: t.ci, p: t.p };
}

/**
 * Judges each method on `cases` split by `base.sampling.groupBy`, over `seeds` seeds (each
 * seed draws its own held-out set, judges' resamples, placebo splits and initialization).
 */
export async function compareDebiasing(
  cases: JudgmentCase[],
  base: LincoOptions,
  options: {
    /** Methods, or variants of them with their own settings; each judged on the same seeds. */
    methods: (Exclude<DebiasMethod, 'none'> | DebiasVariant)[];
    seeds: number;
    /** Settings of every method (λ, objective, DRO step), under a variant's own; default the library's. */
    settings?: Omit<DebiasOptions, 'method'>;
  },
): Promise<DebiasComparison> {
  const seeds = options.seeds;
  if (!Number.isInteger(seeds) || seeds < 3) throw new LincoInputError(`debias seeds must be an integer ≥ 3 (the change over seeds needs a variance), got ${seeds}`);
  const repeats = base.baselineRepeats ?? 1;
  if (repeats < MIN_NULL_PANELS) throw new LincoInputError(`de-biasing comparison: baselineRepeats must be at least ${MIN_NULL_PANELS} (each method is judged against the null interval)`);
  const confidence = base.bootstrap?.confidence ?? 0.95;
  const share = base.sampling.crossGroupShare ?? 0;
  const notes: string[] = [];
  if (share === 0 && options.methods.some((m) => (typeof m === 'string' ? m : m.method) !== 'adversarial')) {
    notes.push("de-biasing: with crossGroupShare 0 each judge's cases are all of one group, so reweight and group-dro cannot change anything; set crossGroupShare > 0 to judge them");
  }
  const before = new Map<string, Awaited<ReturnType<typeof lincoRun>>['frame']>();
  const rows: DebiasRow[] = [];
  for (const entry of options.methods) {
    const variant: DebiasVariant = typeof entry === 'string' ? { method: entry } : entry;
    const { method } = variant;
    const encoder = method === 'adversarial' ? 'shared' : (base.encoder ?? 'separate');
    const perSeed: DebiasRow['seeds'] = [];
    for (let s = 0; s < seeds; s++) {
      const seed = (base.seed ?? 1) + 101 * s;
      const common: LincoOptions = { ...base, encoder, seed, sampling: { ...base.sampling, seed }, bootstrap: { ...base.bootstrap, seed } };
      const key = `${encoder}/${seed}`;
      let plain = before.get(key);
      if (!plain) {
        plain = (await lincoRun(cases, withoutDebias(common))).frame;
        before.set(key, plain);
      }
      const after = (await lincoRun(cases, { ...withoutDebias(common), debias: { ...options.settings, ...variant.settings, method } })).frame;
      perSeed.push({ seed, before: summary(plain), after: summary(after) });
    }
    const stat = (which: 'before' | 'after', part: 'linco' | 'excess', m: MetricName) =>
      overSeeds(perSeed.map((r) => (part === 'linco' ? r[which].overall[m] : r[which].excess.overall[m])), confidence);
    const change = (part: 'linco' | 'excess', m: MetricName) =>
      overSeeds(perSeed.map((r) => (part === 'linco' ? r.after.overall[m] - r.before.overall[m] : r.after.excess.overall[m] - r.before.excess.overall[m])), confidence);
    const table = (f: (part: 'linco' | 'excess', m: MetricName) => SeedInterval) => ({
      linco: { term: f('linco', 'term'), charge: f('linco', 'charge') },
      excess: { term: f('excess', 'term'), charge: f('excess', 'charge') },
    });
    rows.push({
      method,
      ...(variant.label ? { label: variant.label } : {}),
      encoder,
      crossGroupShare: share,
      seeds: perSeed,
      before: table((part, m) => stat('before', part, m)),
      after: table((part, m) => stat('after', part, m)),
      change: table(change),
      insideNull: { before: perSeed.filter((r) => r.before.inside.term).length, after: perSeed.filter((r) => r.after.inside.term).length },
    });
  }
  return { attribute: base.sampling.groupBy, seeds, randomSplits: repeats, rows, notes };
}
