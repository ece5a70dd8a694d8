import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { casesOf, expectClose } from '../fixtures/reference.js';
import { ExpertBiasState, updateExpertBias } from './expert-bias.js';
import { applyInputJitter } from './jitter.js';
import { sinkhorn, sinkhornRouting } from './sinkhorn.js';
import { createRng } from '@kiln/tensor';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('sinkhorn', () => {
  for (const c of casesOf('sinkhorn')) {
    it(`matches Megatron-Core on ${c.logits.length}×${c.logits[0].length}`, () => {
      expectClose(sinkhorn(tf.tensor2d(c.logits)).arraySync(), c.out, 1e-4);
    });
  }
  it('balances rows and columns', () => {
    const out = sinkhorn(tf.randomNormal([8, 4], 0, 2, 'float32', 3) as tf.Tensor2D, 1e-7);
    const rows = tf.sum(out, 1).arraySync() as number[];
    const cols = tf.sum(out, 0).arraySync() as number[];
    for (const r of rows) expect(r).toBeCloseTo(1 / 8, 4);
    for (const c of cols) expect(c).toBeCloseTo(1 / 4, 4);
  });
});

describe('sinkhornRouting', () => {
  it('picks on the balanced matrix in training and gates with softmax (k > 1) or sigmoid (k = 1)', () => {
    // every token prefers expert 0: plain top-1 sends all there, Sinkhorn spreads them
    const logits = tf.tensor2d([
      [3, 0, 0, 0],
      [3.1, 0, 0.2, 0],
      [3.2, 0.1, 0, 0],
      [3.3, 0, 0, 0.3],
    ]);
    const train = sinkhornRouting(logits, { topk: 1 });
    const counts = tf.sum(tf.cast(train.routingMap, 'float32'), 0).arraySync() as number[];
    expect(Math.max(...counts)).toBeLessThan(4);
    const evalOut = sinkhornRouting(logits, { topk: 1, training: false });
    expect(tf.sum(tf.cast(evalOut.routingMap, 'float32'), 0).arraySync()).toEqual([4, 0, 0, 0]);
    const sig = tf.sigmoid(logits).arraySync() as number[][];
    const p = evalOut.probs.arraySync() as number[][];
    expect(p[0]![0]).toBeCloseTo(sig[0]![0]!, 6);
    const two = sinkhornRouting(logits, { topk: 2, training: false });
    const sm = tf.softmax(logits).arraySync() as number[][];
    expect((two.probs.arraySync() as number[][])[0]![0]).toBeCloseTo(sm[0]![0]!, 6);
    const g = tf.grad((l: tf.Tensor) => tf.sum(sinkhornRouting(l as tf.Tensor2D, { topk: 2 }).probs))(logits);
    expect(Number.isFinite((g.arraySync() as number[][])[0]![0]!)).toBe(true);
  });
});

describe('expert bias (aux-loss-free)', () => {
  for (const c of casesOf('bias')) {
    it('updateExpertBias matches Megatron-Core', () => {
      expectClose(updateExpertBias(c.tokensPerExpert, c.bias, c.rate), c.out, 1e-6);
      const t = updateExpertBias(tf.tensor1d(c.tokensPerExpert), tf.tensor1d(c.bias), c.rate) as tf.Tensor;
      expectClose(t.arraySync(), c.out, 1e-6);
    });
  }
  it('works per layer on [layers, experts] and keeps experts at the mean', () => {
    const out = updateExpertBias(tf.tensor2d([[1, 3], [2, 2]]), tf.zeros([2, 2]), 0.1) as tf.Tensor;
    expectClose(out.arraySync(), [[0.1, -0.1], [0, 0]]);
    expect(() => updateExpertBias([1, 2], [0], 0.1)).toThrow(/shape/);
  });
  it('ExpertBiasState accumulates micro-batches and updates once', () => {
    const s = new ExpertBiasState(3, 0.5);
    s.accumulate(tf.cast(tf.tensor2d([[1, 0, 0], [1, 0, 0]]), 'bool'));
    s.accumulate([0, 0, 1]);
    expect(Array.from(s.localTokensPerExpert)).toEqual([2, 0, 1]);
    expect(Array.from(s.update())).toEqual([-0.5, 0.5, 0]);
    expect(Array.from(s.localTokensPerExpert)).toEqual([0, 0, 0]);
  });
});

describe('input jitter', () => {
  it('multiplies by noise in [1 − eps, 1 + eps] and passes gradients through', () => {
    const x = tf.ones([64, 4]);
    const y = applyInputJitter(x, 0.1, createRng(1)).dataSync();
    expect(Math.min(...y)).toBeGreaterThanOrEqual(0.9);
    expect(Math.max(...y)).toBeLessThanOrEqual(1.1);
    expect(new Set(Array.from(y)).size).toBeGreaterThan(10);
    expect(applyInputJitter(x, null, createRng(1))).toBe(x);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(applyInputJitter(xx, 0.1, createRng(1))))(x).dataSync();
    expectClose(Array.from(g), Array.from(y));
  });
});
