/**
 * Segmentation metrics from a confusion matrix (label −1 ignored) and the cross-scene
 * semantic-consistency score.
 */

export interface SegMetrics {
  /** Mean IoU over classes that occur in the labels or the predictions (union > 0). */
  mIoU: number;
  /** Mean per-class accuracy over classes that occur in the labels. */
  mAcc: number;
  /** Overall accuracy over labelled points. */
  OA: number;
  /** IoU per class (NaN where the class is absent from labels and predictions). */
  iou: number[];
  /** Accuracy per class (NaN where the class is absent from the labels). */
  acc: number[];
  /** confusion[t·k + p] = points of true class t predicted p. */
  confusion: Float64Array;
}

export function confusionMatrix(pred: Int32Array, label: Int32Array, classes: number, into?: Float64Array): Float64Array {
  if (pred.length !== label.length) throw new Error(`confusionMatrix: ${pred.length} predictions for ${label.length} labels`);
  const m = into ?? new Float64Array(classes * classes);
  for (let i = 0; i < label.length; i++) {
    const t = label[i]!;
    if (t < 0) continue;
    const p = pred[i]!;
    if (t >= classes || p < 0 || p >= classes) throw new Error(`confusionMatrix: point ${i} has label ${t} / prediction ${p} outside 0..${classes - 1}`);
    m[t * classes + p]!++;
  }
  return m;
}

export function segMetrics(confusion: Float64Array, classes: number): SegMetrics {
  const iou: number[] = [];
  const acc: number[] = [];
  let correct = 0;
  let total = 0;
  for (let c = 0; c < classes; c++) {
    let rowSum = 0;
    let colSum = 0;
    for (let k = 0; k < classes; k++) {
      rowSum += confusion[c * classes + k]!;
      colSum += confusion[k * classes + c]!;
    }
    const tp = confusion[c * classes + c]!;
    const union = rowSum + colSum - tp;
    iou.push(union > 0 ? tp / union : Number.NaN);
    acc.push(rowSum > 0 ? tp / rowSum : Number.NaN);
    correct += tp;
    total += rowSum;
  }
  const mean = (xs: number[]) => {
    const v = xs.filter((x) => !Number.isNaN(x));
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0;
  };
  return { mIoU: mean(iou), mAcc: mean(acc), OA: total > 0 ? correct / total : 0, iou, acc, confusion };
}

export interface ConsistencyResult {
  /** same − different (higher = same classes closer across scenes than different classes). */
  score: number;
  /** Mean cosine between prototypes of the same class in different scenes. */
  same: number;
  /** Mean cosine between prototypes of different classes in different scenes. */
  different: number;
  /** Number of (scene, class) prototypes used. */
  prototypes: number;
}

/**
 * Cross-scene semantic consistency. For every scene s and class k with at least `minPoints`
 * labelled points, the prototype p(s,k) is the mean of the L2-normalised features of those
 * points, normalised again. Over all pairs of prototypes from DIFFERENT scenes,
 * same = mean cos(p(s,k), p(s',k)) and different = mean cos(p(s,k), p(s',k')) with k ≠ k';
 * score = same − different.
 */
export function semanticConsistency(features: Float32Array, channels: number, label: Int32Array, scene: Int32Array, minPoints = 3): ConsistencyResult {
  const n = label.length;
  if (features.length !== n * channels) throw new Error(`semanticConsistency: ${features.length} feature values for ${n} points × ${channels} channels`);
  const sums = new Map<string, { s: number; k: number; v: Float64Array; count: number }>();
  for (let i = 0; i < n; i++) {
    const k = label[i]!;
    if (k < 0) continue;
    const key = `${scene[i]}:${k}`;
    let e = sums.get(key);
    if (!e) {
      e = { s: scene[i]!, k, v: new Float64Array(channels), count: 0 };
      sums.set(key, e);
    }
    let norm = 0;
    for (let c = 0; c < channels; c++) norm += features[i * channels + c]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let c = 0; c < channels; c++) e.v[c]! += features[i * channels + c]! / norm;
    e.count++;
  }
  const protos = [...sums.values()].filter((e) => e.count >= minPoints);
  for (const e of protos) {
    let norm = 0;
    for (const x of e.v) norm += x * x;
    norm = Math.sqrt(norm) || 1;
    for (let c = 0; c < channels; c++) e.v[c]! /= norm;
  }
  let same = 0;
  let sameN = 0;
  let diff = 0;
  let diffN = 0;
  for (let a = 0; a < protos.length; a++) {
    for (let b = a + 1; b < protos.length; b++) {
      const pa = protos[a]!;
      const pb = protos[b]!;
      if (pa.s === pb.s) continue;
      let cos = 0;
      for (let c = 0; c < channels; c++) cos += pa.v[c]! * pb.v[c]!;
      if (pa.k === pb.k) {
        same += cos;
        sameN++;
      } else {
        diff += cos;
        diffN++;
      }
    }
  }
  const sameMean = sameN ? same / sameN : 0;
  const diffMean = diffN ? diff / diffN : 0;
  return { score: sameMean - diffMean, same: sameMean, different: diffMean, prototypes: protos.length };
}
