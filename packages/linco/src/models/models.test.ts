import { initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { gradientReversal } from '../gradient-reversal.js';
import { chargeVocabulary, encodeLabels } from '../labels.js';
import { JsAdam } from '../optimizer.js';
import { generateCases } from '../synthetic.js';
import { predictPanel, sampleLosses, trainPanel } from '../train.js';
import { embeddingBag } from './embedding-bag.js';
import { createModel, type ModelSpec } from './registry.js';

beforeAll(async () => {
  await initBackend({ env: { KILN_BACKEND: 'cpu' } });
});

describe('embeddingBag', () => {
  it('matches gather + unsortedSegmentSum, forward and gradient', () => {
    const table = tf.tensor2d([...Array(18).keys()].map((x) => Math.sin(x)), [6, 3]);
    const bag = { ids: Int32Array.from([0, 5, 5, 2, 1]), segments: Int32Array.from([0, 0, 1, 1, 2]), weights: Float32Array.from([0.5, 0.5, 1, 2, 1]), numSegments: 3 };
    const upstream = tf.tensor2d([1, -2, 3, 0.5, 4, -1, 2, 2, 2], [3, 3]);
    const reference = (t: tf.Tensor2D) =>
      tf.unsortedSegmentSum(tf.mul(tf.gather(t, tf.tensor1d(bag.ids, 'int32')), tf.tensor2d(bag.weights, [5, 1])), tf.tensor1d(bag.segments, 'int32'), 3);
    expect(embeddingBag(table, bag).arraySync()).toEqual(
      (reference(table).arraySync() as number[][]).map((r) => r.map((x) => expect.closeTo(x, 5))),
    );
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embeddingBag(t as tf.Tensor2D, bag), upstream)))(table);
    const gRef = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(reference(t as tf.Tensor2D), upstream)))(table);
    expect(Array.from(g.dataSync())).toEqual(Array.from(gRef.dataSync()).map((x) => expect.closeTo(x, 5)));
    expect(() => embeddingBag(table, { ...bag, ids: Int32Array.from([0, 6, 0, 0, 0]) })).toThrow(/id 6 at position 1/);
  });
});

describe('gradientReversal', () => {
  it('is the identity forward and multiplies gradients by −λ', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const w = tf.tensor1d([0.5, -1, 2]);
    expect(Array.from(gradientReversal(x, 0.7).dataSync())).toEqual([1, 2, 3]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(gradientReversal(v, 0.7), w)))(x);
    expect(Array.from(g.dataSync())).toEqual([-0.35, 0.7, -1.4].map((v) => expect.closeTo(v, 6)));
    expect(() => gradientReversal(x, -1)).toThrow(/lambda/);
  });
});

describe('JsAdam', () => {
  it('takes the same steps as tf.train.adam', () => {
    const init = [0.3, -1.2, 2.5, 0];
    const a = tf.variable(tf.tensor1d(init));
    const b = tf.variable(tf.tensor1d(init));
    const target = tf.tensor1d([1, 1, -1, 0.5]);
    const loss = (v: tf.Variable) => () => tf.sum(tf.square(tf.sub(v, target))) as tf.Scalar;
    const ours = new JsAdam({ learningRate: 0.1, epsilon: 1e-7 });
    const theirs = tf.train.adam(0.1, 0.9, 0.999, 1e-7);
    for (let i = 0; i < 5; i++) {
      const { grads } = tf.variableGrads(loss(a), [a]);
      ours.apply([a], grads);
      theirs.minimize(loss(b), false, [b]);
    }
    // tfjs computes the bias corrections in float32; agreement to float32 rounding noise.
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()).map((x) => expect.closeTo(x, 4)));
  });
});

describe('sampleLosses', () => {
  it('is ln C + ln 3 for uniform logits, plus the squared log-term error of fixed terms only', () => {
    const out = { hidden: tf.zeros([2, 1]) as tf.Tensor2D, chargeLogits: tf.zeros([2, 4]) as tf.Tensor2D, kindLogits: tf.zeros([2, 3]) as tf.Tensor2D, logTerm: tf.tensor1d([1, 1]) };
    const l = sampleLosses(out, Int32Array.from([0, 3]), Int32Array.from([0, 1]), Float32Array.from([3, 3]), 0.5);
    const base = Math.log(4) + Math.log(3);
    expect(Array.from(l.dataSync())).toEqual([base + 0.5 * 4, base].map((x) => expect.closeTo(x, 5)));
  });
});

describe('training reduces the loss', () => {
  const cases = generateCases({ count: 160, seed: 6 });
  const vocab = chargeVocabulary(cases);
  const labels = encodeLabels(cases, vocab);
  const specs: ModelSpec[] = [
    { type: 'hashed-ngram', buckets: 512, dim: 16, head: 'linear' },
    { type: 'hashed-ngram', buckets: 512, dim: 16, head: 'mlp', hidden: 16 },
    { type: 'text-cnn', vocab: 256, embed: 8, filters: 8, widths: [2, 3], maxLength: 40 },
  ];
  for (const spec of specs) {
    it(`${spec.type}${'head' in spec ? ` (${spec.head})` : ''}`, () => {
      const model = createModel(spec, { numCharges: vocab.length, seed: 3 });
      const pool = model.prepare(cases.map((c) => c.fact));
      const rows = Int32Array.from(cases.keys());
      const before = tf.memory().numTensors;
      const result = trainPanel([model], pool, [{ rows, labels }], { epochs: spec.type === 'text-cnn' ? 4 : 10, learningRate: 0.03 });
      expect(tf.memory().numTensors).toBe(before); // no leaks across steps
      expect(result.losses.at(-1)!).toBeLessThan(result.losses[0]! * 0.6);
      const [pred] = predictPanel([model], pool, rows);
      const acc = pred!.charge.filter((c, i) => c === labels.charge[i]).length / rows.length;
      expect(acc).toBeGreaterThan(0.5); // 10 charges: chance is 0.1
      model.dispose();
    });
  }

  it('rejects an unknown model type', () => {
    expect(() => createModel({ type: 'transformer-xl' }, { numCharges: 2, seed: 1 })).toThrow(/model.type: unknown model "transformer-xl"/);
  });
});
