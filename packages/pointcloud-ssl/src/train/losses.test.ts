import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { cosineAlignment, distillationLoss, infoNce, segmentationCrossEntropy, sinkhornKnopp, spdLoss } from './losses.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const value = (t: tf.Tensor) => t.dataSync()[0]!;

describe('losses', () => {
  it('cross-entropy skips ignored labels', () => {
    const logits = tf.tensor2d([
      [0, 0],
      [Math.log(3), 0],
      [5, 5],
    ]);
    // −(log ½ + log ¾) / 2; the third point is ignored
    expect(value(segmentationCrossEntropy(logits, Int32Array.of(1, 0, -1)))).toBeCloseTo(-(Math.log(0.5) + Math.log(0.75)) / 2, 5);
    expect(value(segmentationCrossEntropy(logits, Int32Array.of(-1, -1, -1)))).toBe(0);
    expect(() => segmentationCrossEntropy(logits, Int32Array.of(0, 2, 0))).toThrow(/label 2 at point 1/);
  });

  it('SPD = CE + λ·(1 − cos), with no gradient into the teacher', () => {
    const logits = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const labels = Int32Array.of(0, 0);
    const student = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const teacher = tf.tensor2d([
      [1, 0],
      [1, 1],
    ]);
    const r = spdLoss(logits, labels, student, teacher, 0.5);
    const ce = value(segmentationCrossEntropy(logits, labels));
    const align = 1 - (1 + Math.SQRT1_2) / 2;
    expect(value(r.align)).toBeCloseTo(align, 5);
    expect(value(r.task)).toBeCloseTo(ce, 5);
    expect(value(r.total)).toBeCloseTo(ce + 0.5 * align, 5);
    const gTeacher = tf.grad((t: tf.Tensor) => spdLoss(logits, labels, student, t, 0.5).total)(teacher);
    expect(tf.max(tf.abs(gTeacher)).dataSync()[0]).toBe(0);
    const gStudent = tf.grad((s: tf.Tensor) => spdLoss(logits, labels, s, teacher, 0.5).total)(student);
    expect(tf.max(tf.abs(gStudent)).dataSync()[0]).toBeGreaterThan(0);
    expect(value(cosineAlignment(teacher, teacher))).toBeCloseTo(0, 5);
  });

  it('Sinkhorn targets are row-stochastic with balanced prototypes', () => {
    const scores = tf.tensor2d([0.9, 0.1, 0.2, 0.8, 0.85, 0.3, 0.7, 0.6, 0.95, 0.05, 0.1, 0.2], [6, 2]);
    const q = sinkhornKnopp(scores, 0.1, 20);
    const rowSums = tf.sum(q, 1).dataSync();
    for (const r of rowSums) expect(r).toBeCloseTo(1, 4);
    const colSums = tf.sum(q, 0).dataSync();
    for (const c of colSums) expect(c).toBeCloseTo(3, 1);
    // distillation against a one-hot target is the CE of the scaled scores
    const target = tf.tensor2d([[1, 0]]);
    const s = tf.tensor2d([[0.5, 0.1]]);
    const expected = -Math.log(Math.exp(5) / (Math.exp(5) + Math.exp(1)));
    expect(value(distillationLoss(s, target, 0.1))).toBeCloseTo(expected, 4);
  });

  it('InfoNCE is low for matched views and ~log m for unrelated ones', () => {
    const a = tf.eye(4);
    expect(value(infoNce(a, a, 0.05))).toBeLessThan(1e-3);
    const same = tf.ones([4, 4]);
    expect(value(infoNce(same, same, 0.4))).toBeCloseTo(Math.log(4), 4);
  });
});
