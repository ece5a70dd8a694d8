/**
 * Trains a panel of virtual judges in lockstep: the same architecture, initialization,
 * batch size and number of steps for every judge, each on its own cases. With separate
 * encoders and no de-biasing the judges share nothing (the summed loss has disjoint
 * parameters, and Adam is per-parameter, so this equals training them one by one). With
 * `sharedEncoder` every judge reads one encoder (trained on all judges' cases) through its
 * own heads. De-biasing, as in the fairness literature, hooks in here; every method works on
 * the *group attribute of each training case* (its region, say), never on which judge
 * produced an output, so none of them optimizes the judges' disagreement directly:
 *
 * - `adversarial` (Ganin & Lempitsky, 2015; adversarial removal of a protected attribute,
 *   Elazar & Goldberg, 2018): a group classifier reads the shared encoder's representation
 *   of each training case through gradient reversal and must name the case's group; the
 *   reversed gradient pushes the encoder to drop what tells the groups apart. Needs the
 *   shared encoder: with one encoder per judge, whose cases are all of one group, the
 *   classifier could name the group by recognising the encoder.
 * - `reweight` (Kamiran & Calders, 2012): every group in a judge's data carries equal total
 *   weight in its loss;
 * - `group-dro` (Sagawa et al., 2020): online Group DRO, exponentiated-gradient weights on
 *   per-group losses, so the worst-off group drives the update.
 */
import { adam, createRng, tf } from '@kiln/tensor';
import { gradientReversal } from './gradient-reversal.js';
import { glorot, zeros } from './models/init.js';
import type { EncodedLabels, LjpModel, LjpOutputs, PreparedTexts } from './models/types.js';
import { TERM_KINDS } from './types.js';

export type DebiasMethod = 'none' | 'adversarial' | 'reweight' | 'group-dro';
export const DEBIAS_METHODS: readonly Exclude<DebiasMethod, 'none'>[] = ['adversarial', 'reweight', 'group-dro'];

export interface DebiasOptions {
  method: DebiasMethod;
  /** Adversarial: λ of the gradient reversal. Default 1. */
  adversaryWeight?: number;
  /**
   * Adversarial: 'ramp' (default) raises λ from 0 to adversaryWeight over training as
   * Ganin & Lempitsky (2015) do, λ_p = λ · (2 / (1 + e^(−10p)) − 1) at progress p, so the
   * classifier learns what to look for before the encoder is pushed against it; 'constant'
   * uses adversaryWeight from the first step.
   */
  adversarySchedule?: 'ramp' | 'constant';
  /**
   * Adversarial: what the encoder is trained to do to the group classifier. 'reverse'
   * (default; gradient reversal, Ganin & Lempitsky 2015): maximize its cross-entropy.
   * 'confusion' (Alvi et al., 2018): make its prediction uniform over the groups; unlike
   * maximizing its error, this is not served by flipping which group looks like which.
   */
  adversaryObjective?: 'reverse' | 'confusion';
  /** Adversarial: hidden width of the group classifier. Default 32. */
  adversaryHidden?: number;
  /**
   * Adversarial: extra updates of the group classifier per training step, on the current
   * (fixed) representations, before the joint step. Without them the classifier lags the
   * encoder and stays at chance while the group is still plainly decodable. Default 5.
   */
  adversarySteps?: number;
  /** Group DRO: step size of the group weights. Default 0.05. */
  droStep?: number;
}

export interface TrainOptions {
  /** Passes over each judge's cases. Default 12. */
  epochs?: number;
  /** Cases per judge per step. Default 32. */
  batchSize?: number;
  /** Adam learning rate. Default 0.02. */
  learningRate?: number;
  /** Weight of the log-term squared error against the two cross-entropies. Default 1. */
  termWeight?: number;
  seed?: number;
  /** All judges read model 0's encoder through their own heads. Default false. */
  sharedEncoder?: boolean;
  debias?: DebiasOptions;
  /** Called after every epoch with the mean task loss over judges and steps. */
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface JudgeData {
  /** Rows of the shared prepared pool this judge trains on. */
  rows: Int32Array;
  /** Labels aligned with `rows`. */
  labels: EncodedLabels;
  /** Group id of each row (needed by the de-biasing methods). */
  groups?: Int32Array;
  numGroups?: number;
}

export interface TrainResult {
  /** Mean task loss per epoch. */
  losses: number[];
  /** Adversarial: the group classifier's mean cross-entropy per epoch (ln G is chance). */
  adversaryLosses?: number[];
  steps: number;
}

/**
 * Per-sample loss: charge loss + kind CE + termWeight · squared error on log(1+months) of
 * fixed terms. The charge loss is the softmax cross-entropy of the primary charge, or, with
 * `chargeSet` (multi-hot rows, n × charges), the per-charge sigmoid cross-entropy summed over
 * charges: Σ_c softplus(z_c) − y_c z_c, each charge its own yes/no decision.
 */
export function sampleLosses(out: LjpOutputs, charge: Int32Array, kind: Int32Array, logMonths: Float32Array, termWeight: number, chargeSet?: Float32Array): tf.Tensor1D {
  const n = charge.length;
  const numCharges = out.chargeLogits.shape[1];
  const ce = (logits: tf.Tensor2D, labels: Int32Array, k: number): tf.Tensor1D =>
    tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, oneHotRows(labels, k)), 1)) as tf.Tensor1D;
  let chargeLoss: tf.Tensor1D;
  if (chargeSet) {
    if (chargeSet.length !== n * numCharges) throw new Error(`sampleLosses: chargeSet has ${chargeSet.length} entries, expected ${n} × ${numCharges}`);
    const y = tf.tensor2d(chargeSet, [n, numCharges]);
    chargeLoss = tf.sum(tf.sub(tf.softplus(out.chargeLogits), tf.mul(y, out.chargeLogits)), 1) as tf.Tensor1D;
  } else {
    chargeLoss = ce(out.chargeLogits, charge, numCharges);
  }
  const fixed = new Float32Array(n);
  for (let i = 0; i < n; i++) fixed[i] = kind[i] === 0 ? 1 : 0;
  const se = tf.mul(tf.square(tf.sub(out.logTerm, tf.tensor1d(logMonths))), tf.tensor1d(fixed));
  return tf.addN([chargeLoss, ce(out.kindLogits, kind, TERM_KINDS.length), tf.mul(se, termWeight)]) as tf.Tensor1D;
}

/** One-hot rows built in JavaScript (tf.oneHot refuses a depth of 1: a data set with one charge). */
function oneHotRows(labels: Int32Array, k: number): tf.Tensor2D {
  const m = new Float32Array(labels.length * k);
  labels.forEach((l, i) => {
    m[i * k + l] = 1;
  });
  return tf.tensor2d(m, [labels.length, k]);
}

/** Rows `idx` of a row-major matrix with `width` columns. */
function takeRows(a: Float32Array, idx: Int32Array, width: number): Float32Array {
  const out = new Float32Array(idx.length * width);
  for (let i = 0; i < idx.length; i++) out.set(a.subarray(idx[i]! * width, (idx[i]! + 1) * width), i * width);
  return out;
}

function take<T extends Int32Array | Float32Array>(a: T, idx: Int32Array): T {
  const out = new (a.constructor as new (n: number) => T)(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = a[idx[i]!]!;
  return out;
}

/** Judge j's outputs on `rows`: its own model, or model 0's encoder and judge j's heads. */
export function judgeForward(models: LjpModel[], j: number, pool: PreparedTexts, rows: ArrayLike<number>, sharedEncoder = false): LjpOutputs {
  return sharedEncoder ? models[j]!.decode(models[0]!.encode(pool, rows)) : models[j]!.forward(pool, rows);
}

/** The variables a panel trains: every model's, or model 0's encoder plus every judge's heads. */
function panelVariables(models: LjpModel[], sharedEncoder: boolean): tf.Variable[] {
  return sharedEncoder ? [...models[0]!.encoderVariables(), ...models.flatMap((m) => m.headVariables())] : models.flatMap((m) => m.trainableVariables());
}

export async function trainPanel(models: LjpModel[], pool: PreparedTexts, data: JudgeData[], options: TrainOptions = {}): Promise<TrainResult> {
  if (models.length !== data.length) throw new Error(`trainPanel: ${models.length} models for ${data.length} datasets`);
  if (models.length === 0) throw new Error('trainPanel: no judges');
  const epochs = options.epochs ?? 12;
  const batchSize = options.batchSize ?? 32;
  const termWeight = options.termWeight ?? 1;
  const method = options.debias?.method ?? 'none';
  const shared = options.sharedEncoder ?? false;
  if (method === 'adversarial' && !shared) {
    throw new Error('trainPanel: debias.method "adversarial" needs sharedEncoder (with one encoder per judge the group classifier could tell the groups apart by the encoder)');
  }
  const rng = createRng(options.seed ?? 7);
  const k = models.length;
  // Multi-label charges when the labels carry charge sets (all judges alike).
  const multi = data[0]!.labels.chargeSet !== undefined;
  const numCharges = models[0]!.numCharges;
  for (const [j, d] of data.entries()) {
    if ((d.labels.chargeSet !== undefined) !== multi) throw new Error(`trainPanel: judge ${j} ${multi ? 'lacks' : 'has'} charge sets, unlike judge 0`);
    if (d.rows.length === 0) throw new Error(`trainPanel: judge ${j} has no cases`);
    if (method !== 'none' && (!d.groups || !d.numGroups)) throw new Error(`trainPanel: debias.method "${method}" needs groups for judge ${j}`);
  }
  // Reweighting: each group present in a judge's data gets equal total weight.
  const sampleWeights = data.map((d) => {
    if (method !== 'reweight') return undefined;
    const counts = new Float64Array(d.numGroups!);
    for (const g of d.groups!) counts[g]!++;
    const present = counts.filter((c) => c > 0).length;
    const w = new Float32Array(d.rows.length);
    d.groups!.forEach((g, i) => {
      w[i] = d.rows.length / (present * counts[g]!);
    });
    return w;
  });
  const droWeights = data.map((d) => (method === 'group-dro' ? new Float64Array(d.numGroups!).fill(1 / d.numGroups!) : undefined));
  const droStep = options.debias?.droStep ?? 0.05;

  // The group classifier: shared representation (through gradient reversal) → the case's group.
  const numGroups = Math.max(0, ...data.map((d) => d.numGroups ?? 0));
  const hiddenWidth = method === 'adversarial' ? tf.tidy(() => models[0]!.encode(pool, [data[0]!.rows[0]!]).shape[1]) : 0;
  const advHidden = options.debias?.adversaryHidden ?? 32;
  const adversary =
    method === 'adversarial'
      ? { w1: glorot((options.seed ?? 7) + 501, [hiddenWidth, advHidden]), b1: zeros([advHidden]), w2: glorot((options.seed ?? 7) + 502, [advHidden, numGroups]), b2: zeros([numGroups]) }
      : undefined;
  const lambda = options.debias?.adversaryWeight ?? 1;
  const adversarySteps = options.debias?.adversarySteps ?? 5;
  const schedule = options.debias?.adversarySchedule ?? 'ramp';
  const objective = options.debias?.adversaryObjective ?? 'reverse';
  if (objective !== 'reverse' && objective !== 'confusion') throw new Error(`trainPanel: debias.adversaryObjective must be 'reverse' or 'confusion', got ${JSON.stringify(objective)}`);
  if (schedule !== 'ramp' && schedule !== 'constant') throw new Error(`trainPanel: debias.adversarySchedule must be 'ramp' or 'constant', got ${JSON.stringify(schedule)}`);
  if (!Number.isInteger(adversarySteps) || adversarySteps < 0) throw new Error(`trainPanel: debias.adversarySteps must be an integer ≥ 0, got ${adversarySteps}`);
  const adversaryVars = adversary ? Object.values(adversary) : [];
  const adversaryOptimizer = adversary ? adam({ learningRate: options.learningRate ?? 0.02 }) : undefined;
  /** The group classifier's mean cross-entropy on representations `h` of cases of groups `labels`. */
  const adversaryLoss = (h: tf.Tensor2D, labels: Int32Array): tf.Scalar => {
    const a = tf.relu(tf.add(tf.matMul(h, adversary!.w1), adversary!.b1));
    const logits = tf.add(tf.matMul(a, adversary!.w2), adversary!.b2) as tf.Tensor2D;
    return tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, tf.oneHot(tf.tensor1d(labels, 'int32'), numGroups)), 1))) as tf.Scalar;
  };

  const optimizer = adam({ learningRate: options.learningRate ?? 0.02 });
  const varList = [...panelVariables(models, shared), ...adversaryVars];
  const maxRows = Math.max(...data.map((d) => d.rows.length));
  const stepsPerEpoch = Math.ceil(maxRows / batchSize);
  // One permutation stream per judge, but all drawn from the same seed: equal budgets.
  const orders: Int32Array[] = data.map(() => new Int32Array(0));
  const cursors = data.map(() => 0);
  const losses: number[] = [];
  const adversaryLosses: number[] = [];
  let steps = 0;

  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      let epochLoss = 0;
      let epochAdv = 0;
      for (let s = 0; s < stepsPerEpoch; s++) {
        const batches = data.map((d, j) => {
          const idx = new Int32Array(Math.min(batchSize, d.rows.length));
          for (let b = 0; b < idx.length; b++) {
            if (cursors[j]! >= orders[j]!.length) {
              orders[j] = rng.permutation(d.rows.length);
              cursors[j] = 0;
            }
            idx[b] = orders[j]![cursors[j]!++]!;
          }
          return idx;
        });
        const groupLabels = adversary ? Int32Array.from(data.flatMap((d, j) => [...take(d.groups!, batches[j]!)])) : undefined;
        if (adversary && adversarySteps > 0) {
          // Let the classifier catch up with the encoder as it is now.
          const fixed = tf.tidy(() => tf.concat(data.map((d, j) => models[0]!.encode(pool, take(d.rows, batches[j]!))), 0) as tf.Tensor2D);
          for (let a = 0; a < adversarySteps; a++) {
            const { value: av, grads: ag } = tf.variableGrads(() => adversaryLoss(fixed, groupLabels!), adversaryVars);
            adversaryOptimizer!.applyGradients(ag as unknown as Parameters<typeof optimizer.applyGradients>[0]);
            av.dispose();
            for (const g of Object.values(ag)) g.dispose();
          }
          fixed.dispose();
        }
        const groupLossOut: (tf.Tensor | undefined)[] = data.map(() => undefined);
        const taskOut: tf.Tensor[] = [];
        const advOut: tf.Tensor[] = [];
        const { value, grads } = tf.variableGrads(() => {
          const hidden: tf.Tensor2D[] = [];
          const judgeLosses = models.map((model, j) => {
            const d = data[j]!;
            const idx = batches[j]!;
            const rows = take(d.rows, idx);
            let out: LjpOutputs;
            if (shared) {
              const h = models[0]!.encode(pool, rows);
              hidden.push(h);
              out = model.decode(h);
            } else {
              out = model.forward(pool, rows);
            }
            const set = d.labels.chargeSet ? takeRows(d.labels.chargeSet, idx, numCharges) : undefined;
            const l = sampleLosses(out, take(d.labels.charge, idx), take(d.labels.kind, idx), take(d.labels.logMonths, idx), termWeight, set);
            const w = sampleWeights[j];
            const q = droWeights[j];
            if (w) {
              const wb = take(w, idx);
              const total = wb.reduce((a, b) => a + b, 0);
              return tf.div(tf.sum(tf.mul(l, tf.tensor1d(wb))), total);
            }
            if (q) {
              const g = take(d.groups!, idx);
              const oh = tf.cast(tf.oneHot(tf.tensor1d(g, 'int32'), q.length), 'float32');
              const counts = tf.maximum(tf.sum(oh, 0), 1);
              const groupLoss = tf.div(tf.reshape(tf.matMul(tf.reshape(l, [1, -1]), oh), [-1]), counts);
              groupLossOut[j] = tf.keep(groupLoss.clone());
              return tf.sum(tf.mul(groupLoss, tf.tensor1d(Float32Array.from(q))));
            }
            return tf.mean(l);
          });
          const task = tf.addN(judgeLosses) as tf.Scalar;
          taskOut.push(tf.keep(task.clone()));
          if (!adversary) return task;
          // Every judge's training cases, through the reversal, to the group classifier.
          const progress = steps / (epochs * stepsPerEpoch);
          const weight = schedule === 'ramp' ? lambda * (2 / (1 + Math.exp(-10 * progress)) - 1) : lambda;
          const h = tf.concat(hidden, 0) as tf.Tensor2D;
          if (objective === 'reverse') {
            const advLoss = adversaryLoss(gradientReversal(h, weight), groupLabels!);
            advOut.push(tf.keep(advLoss.clone()));
            return tf.add(task, advLoss) as tf.Scalar;
          }
          // Confusion: the classifier learns on a frozen representation (reversal with λ = 0
          // passes no gradient); the encoder, through a frozen classifier, is pulled towards
          // uniform group predictions: cross-entropy with the uniform distribution.
          const advLoss = adversaryLoss(gradientReversal(h, 0), groupLabels!);
          const frozen = (v: tf.Variable) => gradientReversal(v as tf.Tensor, 0);
          const a = tf.relu(tf.add(tf.matMul(h, frozen(adversary.w1)), frozen(adversary.b1)));
          const logits = tf.add(tf.matMul(a, frozen(adversary.w2)), frozen(adversary.b2)) as tf.Tensor2D;
          const confusion = tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.mean(logits, 1)));
          advOut.push(tf.keep(advLoss.clone()));
          return tf.addN([task, advLoss, tf.mul(confusion, weight)]) as tf.Scalar;
        }, varList);
        optimizer.applyGradients(grads as unknown as Parameters<typeof optimizer.applyGradients>[0]);
        value.dispose();
        for (const g of Object.values(grads)) g.dispose();
        const t = taskOut[0]!;
        epochLoss += (await t.data())[0]! / k;
        t.dispose();
        if (advOut[0]) {
          epochAdv += (await advOut[0].data())[0]!;
          advOut[0].dispose();
        }
        for (const [j, gl] of groupLossOut.entries()) {
          if (!gl) continue;
          const q = droWeights[j]!;
          const present = new Set(take(data[j]!.groups!, batches[j]!));
          const vals = await gl.data();
          let z = 0;
          for (let g = 0; g < q.length; g++) {
            if (present.has(g)) q[g]! *= Math.exp(droStep * vals[g]!);
            z += q[g]!;
          }
          for (let g = 0; g < q.length; g++) q[g]! /= z;
          gl.dispose();
        }
        steps++;
      }
      losses.push(epochLoss / stepsPerEpoch);
      if (adversary) adversaryLosses.push(epochAdv / stepsPerEpoch);
      options.onEpoch?.(epoch, losses[losses.length - 1]!);
    }
  } finally {
    optimizer.dispose();
    adversaryOptimizer?.dispose();
    if (adversary) for (const v of Object.values(adversary)) v.dispose();
  }
  return adversary ? { losses, adversaryLosses, steps } : { losses, steps };
}

export interface JudgePrediction {
  /** The most likely charge (argmax of the charge logits). */
  charge: Int32Array;
  /**
   * Multi-label prediction (`predictPanel(..., { multi: true })`): the charges whose sigmoid
   * probability exceeds `threshold` (default 0.5), or the argmax alone when none does (every
   * case has at least one charge). Sorted charge indices.
   */
  chargeSets?: number[][];
  kind: Int32Array;
  /** Predicted fixed-term months (meaningful when kind is fixed). */
  months: Float32Array;
}

export interface PredictOptions {
  /** Cases per forward pass. Default 256. */
  chunk?: number;
  /** The judges read model 0's encoder (a panel trained with `sharedEncoder`). */
  sharedEncoder?: boolean;
  /** Also predict charge sets from per-charge sigmoids. Default false. */
  multi?: boolean;
  /** Sigmoid probability above which a charge is in the set. Default 0.5. */
  threshold?: number;
}

/** Charge sets from logits: z_c > logit(threshold), or the argmax when no charge passes. */
export function chargeSetsFromLogits(logits: ArrayLike<number>, numCharges: number, threshold = 0.5): number[][] {
  if (!(threshold > 0 && threshold < 1)) throw new Error(`chargeSetsFromLogits: threshold must be in (0, 1), got ${threshold}`);
  const cut = Math.log(threshold / (1 - threshold));
  const n = logits.length / numCharges;
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const set: number[] = [];
    let best = 0;
    for (let c = 0; c < numCharges; c++) {
      const z = logits[i * numCharges + c]!;
      if (z > cut) set.push(c);
      if (z > logits[i * numCharges + best]!) best = c;
    }
    out.push(set.length > 0 ? set : [best]);
  }
  return out;
}

/** Every judge predicts the same rows. */
export async function predictPanel(models: LjpModel[], pool: PreparedTexts, rows: Int32Array, options: number | PredictOptions = {}): Promise<JudgePrediction[]> {
  const o = typeof options === 'number' ? { chunk: options } : options;
  const chunk = o.chunk ?? 256;
  const predictions: JudgePrediction[] = [];
  for (const [j, model] of models.entries()) {
    const charge = new Int32Array(rows.length);
    const kind = new Int32Array(rows.length);
    const months = new Float32Array(rows.length);
    const chargeSets: number[][] = [];
    for (let start = 0; start < rows.length; start += chunk) {
      const part = rows.subarray(start, Math.min(rows.length, start + chunk));
      const [c, kd, t, z] = tf.tidy(() => {
        const out = judgeForward(models, j, pool, part, o.sharedEncoder);
        return [tf.argMax(out.chargeLogits, 1), tf.argMax(out.kindLogits, 1), out.logTerm, out.chargeLogits];
      });
      if (o.multi) chargeSets.push(...chargeSetsFromLogits(await z!.data(), model.numCharges, o.threshold));
      z!.dispose();
      charge.set((await c!.data()) as Int32Array, start);
      kind.set((await kd!.data()) as Int32Array, start);
      const lt = await t!.data();
      for (let i = 0; i < part.length; i++) months[start + i] = Math.max(0, Math.expm1(lt[i]!));
      c!.dispose();
      kd!.dispose();
      t!.dispose();
    }
    predictions.push(o.multi ? { charge, chargeSets, kind, months } : { charge, kind, months });
  }
  return predictions;
}

/** A judge model's probabilistic outputs on some rows (for ensembles of replicate models). */
export interface JudgeOutputs {
  /** rows × charges: softmax probabilities, or per-charge sigmoids when multi-label. */
  chargeProb: Float32Array;
  /** rows × 3 (fixed / life / death) softmax probabilities. */
  kindProb: Float32Array;
  /** Predicted log(1 + months) of a fixed term. */
  logTerm: Float32Array;
  numCharges: number;
}

/** Every model's probabilities on the same rows. */
export async function panelOutputs(models: LjpModel[], pool: PreparedTexts, rows: Int32Array, options: { chunk?: number; multi?: boolean; sharedEncoder?: boolean } = {}): Promise<JudgeOutputs[]> {
  const chunk = options.chunk ?? 256;
  const outputs: JudgeOutputs[] = [];
  for (const [j, model] of models.entries()) {
    const c = model.numCharges;
    const k = TERM_KINDS.length;
    const chargeProb = new Float32Array(rows.length * c);
    const kindProb = new Float32Array(rows.length * k);
    const logTerm = new Float32Array(rows.length);
    for (let start = 0; start < rows.length; start += chunk) {
      const part = rows.subarray(start, Math.min(rows.length, start + chunk));
      const [cp, kp, t] = tf.tidy(() => {
        const out = judgeForward(models, j, pool, part, options.sharedEncoder);
        return [options.multi ? tf.sigmoid(out.chargeLogits) : tf.softmax(out.chargeLogits), tf.softmax(out.kindLogits), out.logTerm];
      });
      chargeProb.set(await cp!.data(), start * c);
      kindProb.set(await kp!.data(), start * k);
      logTerm.set(await t!.data(), start);
      cp!.dispose();
      kp!.dispose();
      t!.dispose();
    }
    outputs.push({ chargeProb, kindProb, logTerm, numCharges: c });
  }
  return outputs;
}

function argmaxRow(a: Float32Array | Float64Array, row: number, width: number): number {
  let best = 0;
  for (let j = 1; j < width; j++) if (a[row * width + j]! > a[row * width + best]!) best = j;
  return best;
}

/**
 * One judge's decisions from the outputs of its replicate models (an ensemble): mean
 * probabilities → argmax charge and term kind (charge set: mean sigmoid > threshold, or
 * the argmax), mean log term → months. With one model this equals `predictPanel`.
 */
export function combineJudgeOutputs(outputs: JudgeOutputs[], options: { multi?: boolean; threshold?: number } = {}): JudgePrediction {
  if (outputs.length === 0) throw new Error('combineJudgeOutputs: no outputs');
  const c = outputs[0]!.numCharges;
  const n = outputs[0]!.logTerm.length;
  const k = TERM_KINDS.length;
  const threshold = options.threshold ?? 0.5;
  if (!(threshold > 0 && threshold < 1)) throw new Error(`combineJudgeOutputs: threshold must be in (0, 1), got ${threshold}`);
  const cp = new Float64Array(n * c);
  const kp = new Float64Array(n * k);
  const lt = new Float64Array(n);
  for (const o of outputs) {
    if (o.numCharges !== c || o.logTerm.length !== n) throw new Error('combineJudgeOutputs: outputs differ in shape');
    for (let i = 0; i < n * c; i++) cp[i]! += o.chargeProb[i]! / outputs.length;
    for (let i = 0; i < n * k; i++) kp[i]! += o.kindProb[i]! / outputs.length;
    for (let i = 0; i < n; i++) lt[i]! += o.logTerm[i]! / outputs.length;
  }
  const charge = new Int32Array(n);
  const kind = new Int32Array(n);
  const months = new Float32Array(n);
  const chargeSets: number[][] = [];
  for (let i = 0; i < n; i++) {
    charge[i] = argmaxRow(cp, i, c);
    kind[i] = argmaxRow(kp, i, k);
    months[i] = Math.max(0, Math.expm1(lt[i]!));
    if (options.multi) {
      const set: number[] = [];
      for (let j = 0; j < c; j++) if (cp[i * c + j]! > threshold) set.push(j);
      chargeSets.push(set.length > 0 ? set : [charge[i]!]);
    }
  }
  return options.multi ? { charge, chargeSets, kind, months } : { charge, kind, months };
}
