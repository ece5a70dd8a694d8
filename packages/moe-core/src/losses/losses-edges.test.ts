/**
 * The auxiliary losses at their edges: padding masks (in Megatron's two conventions: true =
 * padding for the z-loss, false = padding for the Switch loss), counts given as tensors or
 * arrays, the global tracker's averaging before and after a reset, and every argument check
 * with the message it gives.
 */
import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { MoEAuxLossAutoScaler, attachAuxLoss, getAuxLossScale, setAuxLossScale } from './auto-scaler.js';
import { GlobalAuxLossTracker, globalAuxLoss, sequenceAuxLoss, switchLoadBalancingLoss } from './load-balancing.js';
import { zLoss } from './z-loss.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const value = (t: tf.Tensor) => t.dataSync()[0]!;
/** log Σ_i exp(l_i), in float64. */
const lse = (row: number[]) => {
  const m = Math.max(...row);
  return m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
};

describe('zLoss', () => {
  const rows = [
    [1, 2, 0.5],
    [-1, 0, 3],
    [2, 2, 2],
  ];
  const logits = tf.tensor2d(rows);

  it('is coeff · mean over tokens of logsumexp²', () => {
    const want = (0.1 * rows.reduce((s, r) => s + lse(r) ** 2, 0)) / 3;
    expect(value(zLoss(logits, 0.1))).toBeCloseTo(want, 5);
    expect(value(zLoss(tf.cast(tf.tensor2d([[1, 2]]), 'int32') as tf.Tensor2D, 1))).toBeCloseTo(lse([1, 2]) ** 2, 5);
  });

  it('averages over the valid tokens only when a padding mask (true = padding) is given, and over at least one', () => {
    const mask = tf.tensor1d([false, true, false], 'bool');
    const want = (0.1 * (lse(rows[0]!) ** 2 + lse(rows[2]!) ** 2)) / 2;
    expect(value(zLoss(logits, 0.1, mask))).toBeCloseTo(want, 5);
    expect(value(zLoss(logits, 0.1, tf.tensor1d([true, true, true], 'bool')))).toBe(0);
    expect(value(zLoss(logits, 0.1, null))).toBeCloseTo(value(zLoss(logits, 0.1)), 7);
  });

  it('refuses what is not [tokens, experts] and a non-finite coefficient', () => {
    expect(() => zLoss(tf.tensor1d([1, 2]) as unknown as tf.Tensor2D, 1)).toThrow('zLoss: logits must be a 2-D tensor [tokens, experts]');
    expect(() => zLoss([[1]] as unknown as tf.Tensor2D, 1)).toThrow(/zLoss: logits must be a 2-D tensor/);
    expect(() => zLoss(logits, Number.NaN)).toThrow('zLoss: coeff must be finite, got NaN');
    expect(() => zLoss(logits, Number.POSITIVE_INFINITY)).toThrow(/coeff must be finite/);
  });
});

describe('switchLoadBalancingLoss', () => {
  const probs = tf.tensor2d([
    [0.7, 0.2, 0.1],
    [0.1, 0.6, 0.3],
    [0.3, 0.3, 0.4],
    [0.5, 0.25, 0.25],
  ]);

  it('is coeff · E / (k · T²) · Σ_i (Σ_x p(x, i)) · count_i, with counts as an array or a tensor', () => {
    // Σp = [1.6, 1.35, 1.05]; counts [3, 3, 2] (top-2 of 4 tokens); E = 3, k = 2, T = 4
    const want = ((0.05 * 3) / (2 * 16)) * (1.6 * 3 + 1.35 * 3 + 1.05 * 2);
    expect(value(switchLoadBalancingLoss(probs, [3, 3, 2], 4, 2, 3, 0.05))).toBeCloseTo(want, 6);
    expect(value(switchLoadBalancingLoss(probs, tf.tensor1d([3, 3, 2], 'int32'), 4, 2, 3, 0.05))).toBeCloseTo(want, 6);
    expect(value(switchLoadBalancingLoss(probs, tf.tensor2d([[3, 3, 2]]), 4, 2, 3, 0.05))).toBeCloseTo(want, 6);
  });

  it('leaves out rows whose padding mask is false (Megatron: true = keep)', () => {
    const mask = tf.tensor1d([true, false, true, true], 'bool');
    const want = ((1 * 3) / (1 * 9)) * (1.5 * 2 + 0.75 * 1 + 0.75 * 1);
    expect(value(switchLoadBalancingLoss(probs, [2, 1, 1], 3, 1, 3, 1, mask))).toBeCloseTo(want, 6);
  });

  it('checks its arguments', () => {
    expect(() => switchLoadBalancingLoss(tf.tensor1d([1]) as unknown as tf.Tensor2D, [1], 1, 1, 1, 1)).toThrow(
      'switchLoadBalancingLoss: probs must be a 2-D tensor [tokens, experts]',
    );
    expect(() => switchLoadBalancingLoss(probs, [1, 1, 1], 0, 1, 3, 1)).toThrow('switchLoadBalancingLoss: totalTokens must be > 0, got 0');
    expect(() => switchLoadBalancingLoss(probs, [1, 1, 1], Number.NaN, 1, 3, 1)).toThrow(/totalTokens must be > 0/);
    expect(() => switchLoadBalancingLoss(probs, [1, 1, 1], 4, 0, 3, 1)).toThrow('switchLoadBalancingLoss: topk must be ≥ 1, got 0');
    expect(() => switchLoadBalancingLoss(probs, [1, 1, 1], 4, 1, 4, 1)).toThrow('switchLoadBalancingLoss: probs has 3 columns, numExperts is 4');
    expect(() => switchLoadBalancingLoss(probs, [1, 1], 4, 1, 3, 1)).toThrow('tokensPerExpert has 2 entries, expected 3');
  });
});

describe('sequenceAuxLoss', () => {
  it('names both shapes when the token count is not seqLength × bsz', () => {
    const s = tf.zeros([5, 2]) as tf.Tensor2D;
    expect(() => sequenceAuxLoss(s, s, 2, 2, 1, 2, 1)).toThrow(
      'sequenceAuxLoss: expected 4 = seqLength (2) × bsz (2) tokens, got scores [5,2] and routingMap [5,2]',
    );
    expect(() => sequenceAuxLoss(tf.zeros([4, 2]) as tf.Tensor2D, s, 2, 2, 1, 2, 1)).toThrow(/routingMap \[5,2\]/);
    // Either one wrong is enough: scores with a token too many and a map that fits.
    expect(() => sequenceAuxLoss(s, tf.zeros([4, 2]) as tf.Tensor2D, 2, 2, 1, 2, 1)).toThrow(
      'sequenceAuxLoss: expected 4 = seqLength (2) × bsz (2) tokens, got scores [5,2] and routingMap [4,2]',
    );
  });

  it('of one sequence is the Switch loss of its tokens', () => {
    const scores = tf.tensor2d([
      [0.9, 0.1],
      [0.4, 0.6],
      [0.2, 0.8],
    ]);
    const map = tf.tensor2d([
      [1, 0],
      [0, 1],
      [0, 1],
    ]);
    const want = (0.3 * 2) / (1 * 9) * (1.5 * 1 + 1.5 * 2);
    expect(value(sequenceAuxLoss(scores, map, 3, 1, 1, 2, 0.3))).toBeCloseTo(want, 6);
    expect(value(sequenceAuxLoss(scores, map, 3, 1, 1, 2, 0.3, { order: 'sb' }))).toBeCloseTo(want, 6);
  });
});

describe('GlobalAuxLossTracker', () => {
  it('averages float32 counts over the micro-batches since the last reset', () => {
    const t = new GlobalAuxLossTracker(3);
    expect(Array.from(t.averaged())).toEqual([0, 0, 0]);
    expect(Array.from(t.accumulate([1, 2, 3]))).toEqual([1, 2, 3]);
    expect(Array.from(t.accumulate([2, 2, 0]))).toEqual([1.5, 2, 1.5]);
    expect(Array.from(t.accumulate([0, 0, 0.1]))).toEqual([1, Math.fround(4 / 3), Math.fround(Math.fround(3.1) / 3)]);
    expect(t.steps).toBe(3);
    t.reset();
    expect(Array.from(t.tokensPerExpert)).toEqual([0, 0, 0]);
    expect(Array.from(t.averaged())).toEqual([0, 0, 0]);
    expect(Array.from(t.accumulate([4, 0, 2]))).toEqual([4, 0, 2]);
    expect(t.numExperts).toBe(3);
  });

  it('checks the expert count and the counts’ length', () => {
    expect(() => new GlobalAuxLossTracker(0)).toThrow('GlobalAuxLossTracker: numExperts must be a positive integer, got 0');
    expect(() => new GlobalAuxLossTracker(1.5)).toThrow(/positive integer, got 1.5/);
    expect(Array.from(new GlobalAuxLossTracker(1).accumulate([7]))).toEqual([7]); // one expert is allowed
    expect(() => new GlobalAuxLossTracker(2).accumulate([1, 2, 3])).toThrow('GlobalAuxLossTracker.accumulate: 3 counts for 2 experts');
  });

  it('globalAuxLoss without a collective uses this rank’s counts and tokens', () => {
    const scores = tf.tensor2d([
      [0.6, 0.4],
      [0.3, 0.7],
    ]);
    const map = tf.tensor2d([
      [1, 0],
      [0, 1],
    ]);
    const tracker = new GlobalAuxLossTracker(2);
    const want = (1 * 2) / (1 * 4) * (0.9 * 1 + 1.1 * 1);
    expect(value(globalAuxLoss(scores, map, tracker, 1, 2, 1))).toBeCloseTo(want, 6);
    expect(Array.from(tracker.averaged())).toEqual([1, 1]);
  });
});

describe('attachAuxLoss', () => {
  it('checks its arguments and keeps the scale it is given', () => {
    expect(() => attachAuxLoss([1] as unknown as tf.Tensor, tf.scalar(1))).toThrow('attachAuxLoss: activation must be a tensor');
    expect(() => attachAuxLoss(tf.scalar(1), 1 as unknown as tf.Tensor)).toThrow('attachAuxLoss: auxLoss must be a tensor');
    expect(() => setAuxLossScale(Number.NaN)).toThrow('setAuxLossScale: scale must be finite, got NaN');
    expect(getAuxLossScale()).toBe(1);
    MoEAuxLossAutoScaler.setLossScale(4);
    expect(getAuxLossScale()).toBe(4);
    const x = tf.tensor1d([1, 2]);
    const g = tf.grad((w: tf.Tensor) => tf.sum(MoEAuxLossAutoScaler.apply(x, tf.sum(tf.mul(w, 3)))))(tf.tensor1d([5, 6]));
    expect(Array.from(g.dataSync())).toEqual([12, 12]);
    expect(Array.from(attachAuxLoss(x, tf.scalar(7)).dataSync())).toEqual([1, 2]);
    setAuxLossScale(1);
  });
});
