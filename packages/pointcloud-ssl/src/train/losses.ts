/**
 * The losses of pre-training and fine-tuning, each a small function of tensors so it can be
 * checked by hand: masked cross-entropy, Sinkhorn-Knopp targets, prototype distillation,
 * cosine alignment, InfoNCE and the SPD composition.
 */
import { type Tensor, tf } from '@kiln/tensor';
import { cols, l2Normalize, stopGradient } from '../model/params.js';

/**
 * Mean cross-entropy of logits [n, k] against labels (−1 = ignored). Returns 0 when every label
 * is ignored.
 */
export function segmentationCrossEntropy(logits: Tensor, labels: Int32Array): Tensor {
  const [n, k] = logits.shape as [number, number];
  if (labels.length !== n) throw new Error(`segmentationCrossEntropy: ${labels.length} labels for ${n} rows of logits`);
  const oneHot = new Float32Array(n * k);
  let valid = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (y < 0) continue;
    if (y >= k) throw new Error(`segmentationCrossEntropy: label ${y} at point ${i} is outside 0..${k - 1}`);
    oneHot[i * k + y] = 1;
    valid++;
  }
  if (valid === 0) return tf.scalar(0);
  const logp = tf.logSoftmax(logits);
  return tf.div(tf.neg(tf.sum(tf.mul(logp, tf.tensor2d(oneHot, [n, k])))), valid);
}

/**
 * Sinkhorn-Knopp normalisation (SwAV / DINOv2 / Sonata) of teacher scores [n, k]: rows become
 * assignments (each sums to 1) with prototypes used equally often over the batch.
 */
export function sinkhornKnopp(scores: Tensor, temperature: number, iterations: number): Tensor {
  return tf.tidy(() => {
    const [n, k] = scores.shape as [number, number];
    const scaled = tf.div(scores, temperature);
    let q = tf.exp(tf.sub(scaled, tf.max(scaled)));
    q = tf.div(q, tf.sum(q));
    for (let it = 0; it < iterations; it++) {
      q = tf.div(tf.div(q, tf.sum(q, 0, true)), k); // every prototype gets mass 1/k
      q = tf.div(tf.div(q, tf.sum(q, 1, true)), n); // every point gets mass 1/n
    }
    return tf.mul(q, n);
  });
}

/** −Σ_k q log softmax(s / τ) averaged over rows; q carries no gradient. */
export function distillationLoss(studentScores: Tensor, targets: Tensor, temperature: number): Tensor {
  const logp = tf.logSoftmax(tf.div(studentScores, temperature));
  return tf.neg(tf.mean(tf.sum(tf.mul(stopGradient(targets), logp), 1)));
}

/** mean(1 − cos(a_i, b_i)) over rows; b is not differentiated when `stopB`. */
export function cosineAlignment(a: Tensor, b: Tensor, stopB = true): Tensor {
  const bn = l2Normalize(stopB ? stopGradient(b) : b);
  const an = l2Normalize(a);
  const c = a.shape[1]!;
  const cos = tf.matMul(tf.mul(an, bn), tf.ones([c, 1]));
  return tf.sub(1, tf.mean(cos));
}

/**
 * Symmetric InfoNCE between matched rows of za, zb [m, d]: row i of one view must pick row i of
 * the other among all m rows, logits = cos / τ (MSC uses τ = 0.4).
 */
export function infoNce(za: Tensor, zb: Tensor, temperature: number): Tensor {
  const m = za.shape[0]!;
  const a = l2Normalize(za);
  const b = l2Normalize(zb);
  const logits = tf.div(tf.matMul(a, b, false, true), temperature);
  const eye = tf.eye(m);
  const ce = (l: Tensor) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(l), eye), 1)));
  return tf.div(tf.add(ce(logits), ce(tf.transpose(logits))), 2);
}

export interface SpdLossParts {
  total: Tensor;
  task: Tensor;
  align: Tensor;
}

/** SPD: CE(student logits, labels) + λ·mean(1 − cos(student features, teacher features)). */
export function spdLoss(logits: Tensor, labels: Int32Array, studentFeatures: Tensor, teacherFeatures: Tensor, lambda: number): SpdLossParts {
  if (studentFeatures.shape.join() !== teacherFeatures.shape.join()) {
    throw new Error(`spdLoss: student features [${studentFeatures.shape}] and teacher features [${teacherFeatures.shape}] differ`);
  }
  const task = segmentationCrossEntropy(logits, labels);
  const align = cosineAlignment(studentFeatures, teacherFeatures, true);
  return { total: tf.add(task, tf.mul(align, lambda)), task, align };
}

/** Row-wise mean of the features of points whose mask is 1 (for diagnostics). */
export function maskedMean(x: Tensor, mask: Float32Array): Tensor {
  const n = x.shape[0]!;
  const m = tf.tensor2d(mask, [n, 1]);
  return tf.div(tf.sum(tf.mul(x, cols(m, x.shape[1]!)), 0), Math.max(1, mask.reduce((a, b) => a + b, 0)));
}
