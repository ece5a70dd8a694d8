/**
 * Trains a panel of virtual judges in lockstep: the same architecture, initialization,
 * batch size and number of steps for every judge, each on its own cases. Without
 * de-biasing the judges share nothing (the summed loss has disjoint parameters, and Adam
 * is per-parameter, so this equals training them one by one). De-biasing hooks in here:
 *
 * - `reweight`: every group in a judge's data carries equal total weight in its loss;
 * - `group-dro`: online Group DRO (Sagawa et al., 2020): exponentiated-gradient weights
 *   on per-group losses, so the worst-off group drives the update;
 * - `adversarial`: a gradient-reversal branch. On a shared probe batch every judge
 *   predicts; an adversary sees one judge's output (through gradient reversal) beside the
 *   panel's consensus and must name the judge's group. Reversal pushes each judge to make
 *   its output uninformative about its group, i.e. towards the panel.
 */
import { createRng, tf } from '@kiln/tensor';
import { gradientReversal } from './gradient-reversal.js';
import { glorot, zeros } from './models/init.js';
import { JsAdam } from './optimizer.js';
import type { EncodedLabels, LjpModel, LjpOutputs, PreparedTexts } from './models/types.js';
import { TERM_KINDS } from './types.js';

export type DebiasMethod = 'none' | 'adversarial' | 'reweight' | 'group-dro';

export interface DebiasOptions {
  method: DebiasMethod;
  /** Adversarial: λ of the gradient reversal. Default 3 (measured: 1 too weak, 10 unstable). */
  adversaryWeight?: number;
  /** Adversarial: hidden width of the adversary. Default 16. */
  adversaryHidden?: number;
  /** Adversarial: cases per step on which all judges are compared. Default 32. */
  probeSize?: number;
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
  debias?: DebiasOptions;
  /** Called after every epoch with the mean task loss over judges and steps. */
  onEpoch?: (epoch: number, loss: number) => void;
}

export interface JudgeData {
  /** Rows of the shared prepared pool this judge trains on. */
  rows: Int32Array;
  /** Labels aligned with `rows`. */
  labels: EncodedLabels;
  /** Group id of each row (needed by reweight and group-dro). */
  groups?: Int32Array;
  numGroups?: number;
}

export interface TrainResult {
  /** Mean task loss per epoch. */
  losses: number[];
  steps: number;
}

const stopGradient = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
  value: tf.clone(args[0] as tf.Tensor),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
}));

/** Per-sample loss: charge CE + kind CE + termWeight · squared error on log(1+months) of fixed terms. */
export function sampleLosses(out: LjpOutputs, charge: Int32Array, kind: Int32Array, logMonths: Float32Array, termWeight: number): tf.Tensor1D {
  const n = charge.length;
  const numCharges = out.chargeLogits.shape[1];
  const ce = (logits: tf.Tensor2D, labels: Int32Array, k: number): tf.Tensor1D =>
    tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, tf.oneHot(tf.tensor1d(labels, 'int32'), k)), 1)) as tf.Tensor1D;
  const fixed = new Float32Array(n);
  for (let i = 0; i < n; i++) fixed[i] = kind[i] === 0 ? 1 : 0;
  const se = tf.mul(tf.square(tf.sub(out.logTerm, tf.tensor1d(logMonths))), tf.tensor1d(fixed));
  return tf.addN([ce(out.chargeLogits, charge, numCharges), ce(out.kindLogits, kind, TERM_KINDS.length), tf.mul(se, termWeight)]) as tf.Tensor1D;
}

function take<T extends Int32Array | Float32Array>(a: T, idx: Int32Array): T {
  const out = new (a.constructor as new (n: number) => T)(idx.length);
  for (let i = 0; i < idx.length; i++) out[i] = a[idx[i]!]!;
  return out;
}

/** The judge's output as the adversary sees it: probabilities and the log term. */
function outputSignature(out: LjpOutputs): tf.Tensor2D {
  return tf.concat([tf.softmax(out.chargeLogits), tf.softmax(out.kindLogits), tf.reshape(out.logTerm, [-1, 1])], 1) as tf.Tensor2D;
}

export function trainPanel(models: LjpModel[], pool: PreparedTexts, data: JudgeData[], options: TrainOptions = {}): TrainResult {
  if (models.length !== data.length) throw new Error(`trainPanel: ${models.length} models for ${data.length} datasets`);
  if (models.length === 0) throw new Error('trainPanel: no judges');
  const epochs = options.epochs ?? 12;
  const batchSize = options.batchSize ?? 32;
  const termWeight = options.termWeight ?? 1;
  const method = options.debias?.method ?? 'none';
  const rng = createRng(options.seed ?? 7);
  const k = models.length;
  for (const [j, d] of data.entries()) {
    if (d.rows.length === 0) throw new Error(`trainPanel: judge ${j} has no cases`);
    if ((method === 'reweight' || method === 'group-dro') && (!d.groups || !d.numGroups)) {
      throw new Error(`trainPanel: debias.method "${method}" needs groups for judge ${j}`);
    }
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

  // The adversary: [reversed judge output, consensus] → judge's group.
  const outDim = models[0]!.numCharges + TERM_KINDS.length + 1;
  const advHidden = options.debias?.adversaryHidden ?? 16;
  const adversary =
    method === 'adversarial'
      ? { w1: glorot((options.seed ?? 7) + 501, [2 * outDim, advHidden]), b1: zeros([advHidden]), w2: glorot((options.seed ?? 7) + 502, [advHidden, k]), b2: zeros([k]) }
      : undefined;
  const lambda = options.debias?.adversaryWeight ?? 3;
  const probeSize = options.debias?.probeSize ?? 32;
  const allRows = method === 'adversarial' ? Int32Array.from(new Set(data.flatMap((d) => [...d.rows]))) : new Int32Array(0);

  const optimizer = new JsAdam({ learningRate: options.learningRate ?? 0.02 });
  const varList = [...models.flatMap((m) => m.trainableVariables()), ...(adversary ? Object.values(adversary) : [])];
  const maxRows = Math.max(...data.map((d) => d.rows.length));
  const stepsPerEpoch = Math.ceil(maxRows / batchSize);
  // One permutation stream per judge, but all drawn from the same seed: equal budgets.
  const orders: Int32Array[] = data.map(() => new Int32Array(0));
  const cursors = data.map(() => 0);
  const losses: number[] = [];
  let steps = 0;

  for (let epoch = 0; epoch < epochs; epoch++) {
    let epochLoss = 0;
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
      const probe = adversary ? Int32Array.from({ length: probeSize }, () => allRows[rng.int(0, allRows.length)]!) : undefined;
      const groupLossOut: (tf.Tensor | undefined)[] = data.map(() => undefined);
      const taskOut: tf.Tensor[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const judgeLosses = models.map((model, j) => {
          const d = data[j]!;
          const idx = batches[j]!;
          const out = model.forward(pool, take(d.rows, idx));
          const l = sampleLosses(out, take(d.labels.charge, idx), take(d.labels.kind, idx), take(d.labels.logMonths, idx), termWeight);
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
        if (!adversary || !probe) return task;
        const sigs = models.map((m) => outputSignature(m.forward(pool, probe)));
        const consensus = stopGradient(tf.div(tf.addN(sigs), k)) as tf.Tensor2D;
        const advLosses = sigs.map((sig, j) => {
          const x = tf.concat([gradientReversal(sig, lambda), consensus], 1);
          const h = tf.relu(tf.add(tf.matMul(x, adversary.w1), adversary.b1));
          const logits = tf.add(tf.matMul(h, adversary.w2), adversary.b2) as tf.Tensor2D;
          return tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.reshape(tf.slice(logits, [0, j], [-1, 1]), [-1])));
        });
        return tf.add(task, tf.addN(advLosses)) as tf.Scalar;
      }, varList);
      optimizer.apply(varList, grads);
      value.dispose();
      for (const g of Object.values(grads)) g.dispose();
      const t = taskOut[0]!;
      epochLoss += t.dataSync()[0]! / k;
      t.dispose();
      groupLossOut.forEach((gl, j) => {
        if (!gl) return;
        const q = droWeights[j]!;
        const present = new Set(take(data[j]!.groups!, batches[j]!));
        const vals = gl.dataSync();
        let z = 0;
        for (let g = 0; g < q.length; g++) {
          if (present.has(g)) q[g]! *= Math.exp(droStep * vals[g]!);
          z += q[g]!;
        }
        for (let g = 0; g < q.length; g++) q[g]! /= z;
        gl.dispose();
      });
      steps++;
    }
    losses.push(epochLoss / stepsPerEpoch);
    options.onEpoch?.(epoch, losses[losses.length - 1]!);
  }
  if (adversary) for (const v of Object.values(adversary)) v.dispose();
  return { losses, steps };
}

export interface JudgePrediction {
  charge: Int32Array;
  kind: Int32Array;
  /** Predicted fixed-term months (meaningful when kind is fixed). */
  months: Float32Array;
}

/** Every judge predicts the same rows. */
export function predictPanel(models: LjpModel[], pool: PreparedTexts, rows: Int32Array, chunk = 256): JudgePrediction[] {
  return models.map((model) => {
    const charge = new Int32Array(rows.length);
    const kind = new Int32Array(rows.length);
    const months = new Float32Array(rows.length);
    for (let start = 0; start < rows.length; start += chunk) {
      const part = rows.subarray(start, Math.min(rows.length, start + chunk));
      const [c, kd, t] = tf.tidy(() => {
        const out = model.forward(pool, part);
        return [tf.argMax(out.chargeLogits, 1), tf.argMax(out.kindLogits, 1), out.logTerm];
      });
      charge.set(c!.dataSync() as Int32Array, start);
      kind.set(kd!.dataSync() as Int32Array, start);
      const lt = t!.dataSync();
      for (let i = 0; i < part.length; i++) months[start + i] = Math.max(0, Math.expm1(lt[i]!));
      c!.dispose();
      kd!.dispose();
      t!.dispose();
    }
    return { charge, kind, months };
  });
}
