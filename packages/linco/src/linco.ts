/**
 * The LInCo pipeline: plan judges → train the group panel → train random-split panels →
 * every judge predicts the held-out cases → per-case disagreement → LincoFrame.
 */
import { chargeVocabulary, encodeLabels } from './labels.js';
import { type BreakdownName, breakdownValues } from './breakdowns.js';
import { caseScores, type CaseScores, buildFrame, type LincoFrame, type MetricOptions } from './metric.js';
import { createModel, type ModelSpec } from './models/registry.js';
import type { LjpModel, PreparedTexts } from './models/types.js';
import { type JudgePlan, planJudges, randomSplitJudges, type SamplingOptions } from './judges.js';
import type { BootstrapOptions } from './stats.js';
import { type DebiasOptions, type JudgeData, predictPanel, type TrainOptions, trainPanel } from './train.js';
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
   * Group panels to average, each on another equal-size resample of the groups' cases (and
   * its own training order): the estimate then carries less of one draw's training noise,
   * as the baseline's repeats do. Default 1.
   */
  groupRepeats?: number;
  /** Random-split baseline panels; 0 disables the baseline. Default 1. */
  baselineRepeats?: number;
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
  pool: PreparedTexts;
  makeModel: (seed: number) => LjpModel;
  options: LincoOptions;
  testRows: Int32Array;
  /** Shifts the training-order seed of a resampled panel. */
  seedOffset?: number;
}

/** Trains one panel and returns the per-case scores on the held-out cases. */
function runPanel(ctx: PanelContext, name: string, judges: { rows: number[]; caseGroups?: string[] }[], debias?: DebiasOptions): CaseScores {
  const seed = ctx.options.seed ?? 1;
  // Same initialization for every judge: differences then come from data, not from init.
  const models = judges.map(() => ctx.makeModel(seed));
  const groupNames = [...new Set(judges.flatMap((j) => j.caseGroups ?? []))].sort();
  const data: JudgeData[] = judges.map((j) => {
    const rows = Int32Array.from(j.rows);
    const d: JudgeData = { rows, labels: encodeLabels(j.rows.map((r) => ctx.cases[r]!), ctx.vocabulary) };
    if (j.caseGroups) {
      d.groups = Int32Array.from(j.caseGroups, (g) => groupNames.indexOf(g));
      d.numGroups = groupNames.length;
    }
    return d;
  });
  const epochs = ctx.options.train?.epochs ?? 12;
  try {
    trainPanel(models, ctx.pool, data, {
      ...ctx.options.train,
      seed: seed + 17 + 7919 * (ctx.seedOffset ?? 0),
      ...(debias ? { debias } : {}),
      onEpoch: (epoch, loss) => ctx.options.onProgress?.({ stage: 'train', panel: name, epoch, epochs, loss }),
    });
    ctx.options.onProgress?.({ stage: 'predict', panel: name });
    const preds = predictPanel(models, ctx.pool, ctx.testRows);
    return caseScores({ charges: preds.map((p) => Array.from(p.charge)), terms: preds.map(toTerms) }, ctx.options.metric);
  } finally {
    for (const m of models) m.dispose();
  }
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
  return { cases, vocabulary, pool, makeModel, options, testRows: Int32Array.from(testRows) };
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
  const groupRepeats = options.groupRepeats ?? 1;
  if (!Number.isInteger(groupRepeats) || groupRepeats < 1) throw new Error(`groupRepeats must be an integer ≥ 1, got ${groupRepeats}`);
  const panels: CaseScores[] = [runPanel(ctx, 'groups', plan.judges, options.debias)];
  for (let r = 1; r < groupRepeats; r++) {
    const again = planJudges(cases, { ...options.sampling, seed: options.sampling.seed ?? options.seed ?? 1, resample: r });
    panels.push(runPanel({ ...ctx, seedOffset: r }, `groups-${r}`, again.judges, options.debias));
  }
  // Per case, the mean over the resampled panels.
  const scores: CaseScores = {
    term: Float64Array.from(panels[0]!.term, (_, i) => panels.reduce((a, p) => a + p.term[i]!, 0) / panels.length),
    charge: Float64Array.from(panels[0]!.charge, (_, i) => panels.reduce((a, p) => a + p.charge[i]!, 0) / panels.length),
  };
  const repeats = options.baselineRepeats ?? 1;
  if (!Number.isInteger(repeats) || repeats < 0) throw new Error(`baselineRepeats must be an integer ≥ 0, got ${repeats}`);
  const baseline: CaseScores[] = [];
  for (let r = 0; r < repeats; r++) {
    // The baseline never de-biases: it measures the model noise of plain judges.
    baseline.push(runPanel(ctx, `random-${r}`, randomSplitJudges(plan, (options.seed ?? 1) * 1000 + r)));
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
      groupRepeats,
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
