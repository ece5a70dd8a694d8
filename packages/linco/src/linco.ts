/**
 * The LInCo pipeline: plan judges → train the group panel → train random-split panels →
 * every judge predicts the held-out cases → per-case disagreement → LincoFrame.
 */
import { chargeVocabulary, encodeLabels, hasMultiCharge } from './labels.js';
import { type BreakdownName, breakdownValues } from './breakdowns.js';
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
  /** Judges: sampling by this group attribute (required), sizes, held-out set. */
  sampling: SamplingOptions;
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
   * Random splits in the baseline, each trained `replicates` times; 0 disables the baseline.
   * With ≥ 2 the baseline interval includes the between-split variance. Default 1.
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
  /** Breakdowns of the held-out cases. Default ['charge', 'severity', 'year']. */
  breakdowns?: BreakdownName[];
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
      ...(debias ? { debias } : {}),
      onEpoch: (epoch, loss) => ctx.options.onProgress?.({ stage: 'train', panel: name, epoch, epochs, loss }),
    });
    ctx.options.onProgress?.({ stage: 'predict', panel: name });
    return await panelOutputs(models, ctx.pool, ctx.testRows, { multi: ctx.multi });
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
}

function context(cases: JudgmentCase[], options: LincoOptions, testRows: number[]): PanelContext {
  const vocabulary = chargeVocabulary(cases);
  const spec = options.model ?? { type: 'hashed-ngram' };
  const makeModel = (seed: number) => createModel(spec, { numCharges: vocabulary.length, seed });
  const probe = makeModel(0);
  const pool = probe.prepare(cases.map((c) => c.fact));
  probe.dispose();
  const mode = options.charges ?? 'auto';
  if (mode !== 'auto' && mode !== 'single' && mode !== 'multi') throw new Error(`charges must be 'auto', 'single' or 'multi', got ${JSON.stringify(mode)}`);
  const multi = mode === 'multi' || (mode === 'auto' && hasMultiCharge(cases));
  return { cases, vocabulary, multi, pool, makeModel, options, testRows: Int32Array.from(testRows) };
}

/** Computes LInCo for `cases` split by `options.sampling.groupBy`. */
export async function linco(cases: JudgmentCase[], options: LincoOptions): Promise<LincoFrame> {
  return (await lincoRun(cases, options)).frame;
}

/** As `linco`, also returning the judge plan (which cases each judge saw). */
export async function lincoRun(cases: JudgmentCase[], options: LincoOptions): Promise<LincoRun> {
  const t0 = performance.now();
  const plan = planJudges(cases, { ...options.sampling, seed: options.sampling.seed ?? options.seed ?? 1 });
  options.onProgress?.({ stage: 'plan', judges: plan.judges.length, perJudge: plan.perJudge, testSize: plan.testRows.length });
  const ctx = context(cases, options, plan.testRows);
  const replicates = options.replicates ?? options.groupRepeats ?? 1;
  if (!Number.isInteger(replicates) || replicates < 1) throw new Error(`replicates must be an integer ≥ 1, got ${replicates}`);
  const repeats = options.baselineRepeats ?? 1;
  if (!Number.isInteger(repeats) || repeats < 0) throw new Error(`baselineRepeats must be an integer ≥ 0, got ${repeats}`);
  const split = options.baselineSplit ?? 'permute';
  if (split !== 'permute' && split !== 'uniform') throw new Error(`baselineSplit must be 'permute' or 'uniform', got ${JSON.stringify(split)}`);
  const sampling = { ...options.sampling, seed: options.sampling.seed ?? options.seed ?? 1 };
  const combine = options.combineReplicates ?? 'ensemble';
  if (combine !== 'ensemble' && combine !== 'average') throw new Error(`combineReplicates must be 'ensemble' or 'average', got ${JSON.stringify(combine)}`);
  // One panel = `replicates` trainings (resample s, seed s) of every judge.
  const panel = async (name: string, judgesOf: (s: number) => { rows: number[]; caseGroups?: string[] }[], debias?: DebiasOptions): Promise<CaseScores> => {
    const runs: JudgeOutputs[][] = [];
    for (let s = 0; s < replicates; s++) runs.push(await runPanel({ ...ctx, seedOffset: s }, replicates > 1 ? `${name}/${s}` : name, judgesOf(s), debias));
    const decide = (outs: JudgeOutputs[]) => combineJudgeOutputs(outs, { multi: ctx.multi });
    if (combine === 'average') return averageScores(runs.map((run) => scorePanel(ctx, run.map((o) => decide([o])))));
    // Ensemble: each judge decides from the mean of its replicate models' probabilities.
    return scorePanel(ctx, runs[0]!.map((_, j) => decide(runs.map((run) => run[j]!))));
  };
  const scores = await panel('groups', (s) => (s === 0 ? plan : planJudges(cases, { ...sampling, resample: s })).judges, options.debias);
  const baseline: CaseScores[] = [];
  for (let r = 0; r < repeats; r++) {
    // The baseline never de-biases: it measures the model noise of plain judges.
    baseline.push(
      await panel(`random-${r}`, (s) =>
        split === 'permute'
          ? planJudges(cases, { ...sampling, permuteLabels: r + 1, ...(s > 0 ? { resample: s } : {}) }).judges
          : randomSplitJudges(plan, (options.seed ?? 1) * 1000 + r + 7 * s),
      ),
    );
  }
  const test = plan.testRows.map((r) => cases[r]!);
  const frame = buildFrame({
    scores,
    baseline,
    breakdowns: breakdownValues(test, options.breakdowns ?? ['charge', 'severity', 'year']),
    bootstrap: { seed: options.seed ?? 1, ...options.bootstrap },
    info: {
      groupBy: plan.groupBy,
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
      debias: options.debias?.method ?? 'none',
    },
  });
  options.onProgress?.({ stage: 'done', seconds: (performance.now() - t0) / 1000 });
  return { frame, plan };
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
