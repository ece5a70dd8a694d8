/**
 * The LInCo pipeline: plan judges → train the group panel → train random-split panels →
 * every judge predicts the held-out cases → per-case disagreement → LincoFrame.
 */
import { LincoInputError } from './errors.js';
import { chargeVocabulary, encodeLabels, hasMultiCharge } from './labels.js';
import { type BreakdownName, breakdownTables } from './breakdowns.js';
import { type AttributeOptions, caseYear, describeCoverage, withAttribute } from './groups.js';
import { UNRECORDED_CHARGE } from './readers.js';
import { caseScores, type CaseScores, buildFrame, type LincoFrame, type MetricOptions } from './metric.js';
import { createModel, type ModelSpec } from './models/registry.js';
import type { LjpModel, PreparedTexts } from './models/types.js';
import { type JudgePlan, planJudges, randomSplitJudges, type SamplingOptions } from './judges.js';
import type { BootstrapOptions } from './stats.js';
import { combineJudgeOutputs, type DebiasOptions, type JudgeData, type JudgeOutputs, type JudgePrediction, panelOutputs, type TrainOptions, trainPanel } from './train.js';
import { type JudgmentCase, type Term, TERM_KINDS } from './types.js';

export type LincoProgress =
  | { stage: 'plan'; judges: number; perJudge: number; testSize: number }
  | { stage: 'train'; panel: string; epoch: number; epochs: number; loss: number }
  | { stage: 'predict'; panel: string }
  | { stage: 'done'; seconds: number };

export interface LincoOptions {
  /**
   * Judges: sampling by this group attribute (required), sizes, held-out set. The attribute
   * may be a metadata field, a derived attribute (region, gender, year, period, severity) or
   * a record field (groups.ts); cases without it are counted in `info.coverage`.
   */
  sampling: SamplingOptions;
  /** Width in years of the `period` attribute (group-by or breakdown). Default 2. */
  periodYears?: number;
  /**
   * 'separate' (default): every judge its own model. 'shared': one encoder for the whole
   * panel, trained on every judge's cases, and a head per judge (the adversarial de-biasing
   * method needs it and turns it on).
   */
  encoder?: 'separate' | 'shared';
  /** The LJP model every judge uses. Default the hashed n-gram baseline. */
  model?: ModelSpec;
  train?: Omit<TrainOptions, 'onEpoch' | 'debias'>;
  /**
   * Training replicates per panel. Replicate s trains every judge on equal-size resample s
   * of its group's cases with training seed s (initialization and batch order); a panel's
   * per-case scores are the mean over its replicates. The group panel and every random-split
   * panel get the same replicates (same seeds), so they stay exchangeable when groups do not
   * matter, while seed noise is averaged down. Default 1.
   */
  replicates?: number;
  /** @deprecated The former name of `replicates`. */
  groupRepeats?: number;
  /**
   * Random splits in the baseline, each trained `replicates` times: 0 disables the baseline,
   * 1 gives a case bootstrap only, and from 3 on (MIN_NULL_PANELS) the null interval holds
   * the between-split variance. 2 is refused: its t interval would rest on 1 degree of
   * freedom (t = 12.7 at 95 %). Default 1.
   */
  baselineRepeats?: number;
  /**
   * How the baseline's random groups are drawn. 'permute' (default): the group labels of
   * the training pool are permuted, so placebo groups keep the real sizes and go through
   * the same equal-size sampling. 'uniform': each judge draws its cases from the whole pool.
   */
  baselineSplit?: 'permute' | 'uniform';
  /**
   * Charge prediction. 'single': a softmax over charges, trained on the primary charge; a
   * judge hands down one charge. 'multi': per-charge sigmoids trained on every charge of a
   * case; a judge hands down the set of charges with probability > 0.5 (at least its most
   * likely one), and charge disagreement is the Jaccard distance between sets. 'auto'
   * (default): 'multi' when some case has more than one charge, else 'single'.
   */
  charges?: 'auto' | 'single' | 'multi';
  /**
   * How a judge's replicate models are combined. 'ensemble' (default): the judge decides from
   * the mean of its models' probabilities and log terms (bagging), so model noise that is not
   * the group's tendency averages out of every judge, in the group panel and the random
   * splits alike. 'average': each replicate panel is scored on its own and the per-case
   * scores are averaged.
   */
  combineReplicates?: 'ensemble' | 'average';
  bootstrap?: BootstrapOptions;
  metric?: MetricOptions;
  /** Breakdowns of the held-out cases (any attribute). Default ['charge', 'severity', 'year']. */
  breakdowns?: BreakdownName[];
  /**
   * De-biasing of every panel's training. The random-split panels are trained with the same
   * method (their placebo groups as the group attribute), so the null interval stays the
   * interval of the same procedure when groups do not matter.
   */
  debias?: DebiasOptions;
  seed?: number;
  onProgress?: (event: LincoProgress) => void;
}

function toTerms(pred: { kind: Int32Array; months: Float32Array }): Term[] {
  return Array.from(pred.kind, (k, i) => {
    const kind = TERM_KINDS[k];
    return { months: kind === 'fixed' ? Math.round(pred.months[i]!) : 0, life: kind === 'life', death: kind === 'death' };
  });
}

interface PanelContext {
  cases: JudgmentCase[];
  vocabulary: string[];
  /** Multi-label charges (per-charge sigmoids, charge sets). */
  multi: boolean;
  pool: PreparedTexts;
  makeModel: (seed: number) => LjpModel;
  options: LincoOptions;
  testRows: Int32Array;
  sharedEncoder: boolean;
  /** Shifts the training-order seed of a resampled panel. */
  seedOffset?: number;
}

/** Trains one panel and returns every judge's outputs on the held-out cases. */
async function runPanel(ctx: PanelContext, name: string, judges: { rows: number[]; caseGroups?: string[] }[], debias?: DebiasOptions): Promise<JudgeOutputs[]> {
  const seed = (ctx.options.seed ?? 1) + 1009 * (ctx.seedOffset ?? 0);
  // Same initialization for every judge of a panel: differences then come from data, not from init.
  const models = judges.map(() => ctx.makeModel(seed));
  const groupNames = [...new Set(judges.flatMap((j) => j.caseGroups ?? []))].sort();
  const data: JudgeData[] = judges.map((j) => {
    const rows = Int32Array.from(j.rows);
    const d: JudgeData = { rows, labels: encodeLabels(j.rows.map((r) => ctx.cases[r]!), ctx.vocabulary, { multi: ctx.multi }) };
    if (j.caseGroups) {
      d.groups = Int32Array.from(j.caseGroups, (g) => groupNames.indexOf(g));
      d.numGroups = groupNames.length;
    }
    return d;
  });
  const epochs = ctx.options.train?.epochs ?? 12;
  try {
    await trainPanel(models, ctx.pool, data, {
      ...ctx.options.train,
      seed: (ctx.options.seed ?? 1) + 17 + 7919 * (ctx.seedOffset ?? 0),
      sharedEncoder: ctx.sharedEncoder,
      ...(debias ? { debias } : {}),
      onEpoch: (epoch, loss) => ctx.options.onProgress?.({ stage: 'train', panel: name, epoch, epochs, loss }),
    });
    ctx.options.onProgress?.({ stage: 'predict', panel: name });
    return await panelOutputs(models, ctx.pool, ctx.testRows, { multi: ctx.multi, sharedEncoder: ctx.sharedEncoder });
  } finally {
    for (const m of models) m.dispose();
  }
}

/** Per-case scores of a panel whose judges decided as `preds`. */
function scorePanel(ctx: PanelContext, preds: JudgePrediction[]): CaseScores {
  const charges = preds.map((p) => (ctx.multi ? p.chargeSets! : Array.from(p.charge)));
  return caseScores({ charges, terms: preds.map(toTerms) }, ctx.options.metric);
}

/** Per-case mean over replicate panels. */
function averageScores(runs: CaseScores[]): CaseScores {
  const avg = (m: 'term' | 'charge') => Float64Array.from(runs[0]![m], (_, i) => runs.reduce((a, p) => a + p[m][i]!, 0) / runs.length);
  return { term: avg('term'), charge: avg('charge') };
}

export interface LincoRun {
  frame: LincoFrame;
  plan: JudgePlan;
  /** The held-out cases, in the order of the scores (with the group attribute set). */
  test: JudgmentCase[];
  /** Per-case scores of the group panel and of each random-split panel on `test`. */
  scores: CaseScores;
  baseline: CaseScores[];
}

function context(cases: JudgmentCase[], options: LincoOptions, testRows: number[]): PanelContext {
  const vocabulary = chargeVocabulary(cases);
  const spec = options.model ?? { type: 'hashed-ngram' };
  const makeModel = (seed: number) => createModel(spec, { numCharges: vocabulary.length, seed });
  const probe = makeModel(0);
  const pool = probe.prepare(cases.map((c) => c.fact));
  probe.dispose();
  const mode = options.charges ?? 'auto';
  if (mode !== 'auto' && mode !== 'single' && mode !== 'multi') throw new LincoInputError(`charges must be 'auto', 'single' or 'multi', got ${JSON.stringify(mode)}`);
  const multi = mode === 'multi' || (mode === 'auto' && hasMultiCharge(cases));
  const encoder = options.encoder ?? (options.debias?.method === 'adversarial' ? 'shared' : 'separate');
  if (encoder !== 'separate' && encoder !== 'shared') throw new LincoInputError(`encoder must be 'separate' or 'shared', got ${JSON.stringify(encoder)}`);
  if (encoder === 'separate' && options.debias?.method === 'adversarial') {
    throw new LincoInputError("debias.method 'adversarial' removes the group from a shared encoder's representation: it needs encoder 'shared', got 'separate'");
  }
  return { cases, vocabulary, multi, pool, makeModel, options, testRows: Int32Array.from(testRows), sharedEncoder: encoder === 'shared' };
}

/** Fewest random-split panels for a null interval with the between-split variance. */
export const MIN_NULL_PANELS = 3;

/** Checks `baselineRepeats`: 0, 1, or at least MIN_NULL_PANELS. */
export function checkBaselineRepeats(repeats: number, field = 'baselineRepeats'): number {
  if (!Number.isInteger(repeats) || repeats < 0) throw new LincoInputError(`${field} must be an integer ≥ 0, got ${repeats}`);
  if (repeats > 1 && repeats < MIN_NULL_PANELS) {
    throw new LincoInputError(
      `${field} must be 0 (no baseline), 1 (one random split, a case bootstrap only) or at least ${MIN_NULL_PANELS}, got ${repeats}: ` +
        'the null interval estimates the between-split variance from the random splits, and with 2 it rests on 1 degree of freedom (t = 12.7 at 95 %)',
    );
  }
  return repeats;
}

/** Period start from the whole data set (so held-out cases and all panels share one grid). */
function attributeOptions(cases: JudgmentCase[], options: LincoOptions, names: string[]): AttributeOptions {
  const o: AttributeOptions = { periodYears: options.periodYears ?? 2 };
  if (!names.some((n) => n === 'period' || n === 'group:period')) return o;
  let start = Infinity;
  for (const c of cases) start = Math.min(start, caseYear(c)?.year ?? Infinity);
  return Number.isFinite(start) ? { ...o, periodStart: start } : o;
}

/** Computes LInCo for `cases` split by `options.sampling.groupBy`. */
export async function linco(cases: JudgmentCase[], options: LincoOptions): Promise<LincoFrame> {
  return (await lincoRun(cases, options)).frame;
}

/** As `linco`, also returning the judge plan (which cases each judge saw). */
export async function lincoRun(input: JudgmentCase[], options: LincoOptions): Promise<LincoRun> {
  const t0 = performance.now();
  const groupBy = options.sampling.groupBy;
  const breakdownNames = options.breakdowns ?? ['charge', 'severity', 'year'];
  const attrs = attributeOptions(input, options, [groupBy, ...breakdownNames]);
  const { cases, coverage } = withAttribute(input, groupBy, attrs);
  if (coverage.found === 0) throw new LincoInputError(`sampling.groupBy: no case has the group attribute "${groupBy}" (${describeCoverage(coverage)})`);
  const plan = planJudges(cases, { ...options.sampling, seed: options.sampling.seed ?? options.seed ?? 1 });
  options.onProgress?.({ stage: 'plan', judges: plan.judges.length, perJudge: plan.perJudge, testSize: plan.testRows.length });
  const ctx = context(cases, options, plan.testRows);
  const replicates = options.replicates ?? options.groupRepeats ?? 1;
  if (!Number.isInteger(replicates) || replicates < 1) throw new LincoInputError(`replicates must be an integer ≥ 1, got ${replicates}`);
  const repeats = checkBaselineRepeats(options.baselineRepeats ?? 1);
  const split = options.baselineSplit ?? 'permute';
  if (split !== 'permute' && split !== 'uniform') throw new LincoInputError(`baselineSplit must be 'permute' or 'uniform', got ${JSON.stringify(split)}`);
  const debias = options.debias && options.debias.method !== 'none' ? options.debias : undefined;
  if (debias && split === 'uniform' && repeats > 0) {
    throw new LincoInputError("debias needs baselineSplit 'permute': uniform random splits have no groups to train the method on, so they could not be trained like the group panel");
  }
  const sampling = { ...options.sampling, seed: options.sampling.seed ?? options.seed ?? 1 };
  const combine = options.combineReplicates ?? 'ensemble';
  if (combine !== 'ensemble' && combine !== 'average') throw new LincoInputError(`combineReplicates must be 'ensemble' or 'average', got ${JSON.stringify(combine)}`);
  // One panel = `replicates` trainings (resample s, seed s) of every judge.
  const panel = async (name: string, judgesOf: (s: number) => { rows: number[]; caseGroups?: string[] }[], debias?: DebiasOptions): Promise<CaseScores> => {
    const runs: JudgeOutputs[][] = [];
    for (let s = 0; s < replicates; s++) runs.push(await runPanel({ ...ctx, seedOffset: s }, replicates > 1 ? `${name}/${s}` : name, judgesOf(s), debias));
    const decide = (outs: JudgeOutputs[]) => combineJudgeOutputs(outs, { multi: ctx.multi });
    if (combine === 'average') return averageScores(runs.map((run) => scorePanel(ctx, run.map((o) => decide([o])))));
    // Ensemble: each judge decides from the mean of its replicate models' probabilities.
    return scorePanel(ctx, runs[0]!.map((_, j) => decide(runs.map((run) => run[j]!))));
  };
  const scores = await panel('groups', (s) => (s === 0 ? plan : planJudges(cases, { ...sampling, resample: s })).judges, debias);
  const baseline: CaseScores[] = [];
  for (let r = 0; r < repeats; r++) {
    // Trained as the group panel is (de-biasing included), on placebo groups.
    baseline.push(
      await panel(
        `random-${r}`,
        (s) =>
          split === 'permute'
            ? planJudges(cases, { ...sampling, permuteLabels: r + 1, ...(s > 0 ? { resample: s } : {}) }).judges
            : randomSplitJudges(plan, (options.seed ?? 1) * 1000 + r + 7 * s),
        debias,
      ),
    );
  }
  const test = plan.testRows.map((r) => cases[r]!);
  const tables = breakdownTables(test, breakdownNames, attrs);
  const frame = buildFrame({
    scores,
    baseline,
    breakdowns: tables.values,
    bootstrap: { seed: options.seed ?? 1, ...options.bootstrap },
    info: {
      groupBy: plan.groupBy,
      coverage,
      breakdownCoverage: tables.coverage,
      chargesRecorded: cases.some((c) => c.charges[0] !== UNRECORDED_CHARGE),
      encoder: ctx.sharedEncoder ? 'shared' : 'separate',
      judges: plan.judges.map((j) => ({ group: j.group, cases: j.rows.length })),
      dropped: plan.dropped,
      perJudge: plan.perJudge,
      testSize: plan.testRows.length,
      baselineRepeats: repeats,
      baselineSplit: split,
      replicates,
      combineReplicates: combine,
      charges: ctx.multi ? 'multi' : 'single',
      model: options.model ?? { type: 'hashed-ngram' },
      debias: debias?.method ?? 'none',
      ...(debias ? { debiasOptions: debias } : {}),
    },
  });
  options.onProgress?.({ stage: 'done', seconds: (performance.now() - t0) / 1000 });
  return { frame, plan, test, scores, baseline };
}

export interface BeforeAfter {
  before: LincoFrame;
  after: LincoFrame;
}

/**
 * LInCo with and without a de-biasing method, on the same judge plan (same cases, same
 * cross-group share), so the difference is the method's alone.
 */
export async function lincoBeforeAfter(cases: JudgmentCase[], options: LincoOptions & { debias: DebiasOptions }): Promise<BeforeAfter> {
  const before = await linco(cases, { ...options, debias: { ...options.debias, method: 'none' } });
  const after = await linco(cases, options);
  return { before, after };
}
