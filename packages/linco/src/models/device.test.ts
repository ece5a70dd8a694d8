/**
 * LInCo on a GPU backend (the `test:webgpu` pass, KILN_TEST_BACKEND=webgpu): the embedding
 * bag's device path against its host path on cpu, and a
 * panel trained and predicting on the device as on cpu, with no synchronous read.
 */
import { countReads, describeReads, initTestBackend, testBackendName, tf } from '@kiln/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chargeVocabulary, encodeLabels } from '../labels.js';
import { generateCases } from '../synthetic.js';
import { predictPanel, trainPanel } from '../train.js';
import { embeddingBag } from './embedding-bag.js';
import { createModel } from './registry.js';

const backend = testBackendName();

/** Runs `fn` on `name` and returns what it gives, as host arrays. */
async function on(name: string, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await tf.setBackend(name);
  const ts = fn();
  const out = await Promise.all(ts.map(async (t) => Float32Array.from(await t.data())));
  tf.dispose(ts);
  return out;
}

function expectClose(got: Float32Array[], want: Float32Array[], tol: number): void {
  expect(got.length).toBe(want.length);
  for (const [i, g] of got.entries()) {
    const w = want[i]!;
    expect(g.length).toBe(w.length);
    for (const [j, v] of g.entries()) expect(Math.abs(v - w[j]!), `tensor ${i} element ${j}: ${v} vs ${w[j]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(w[j]!)));
  }
}

describe.skipIf(backend === 'cpu')(`linco on ${backend}`, () => {
  beforeAll(async () => {
    await initTestBackend();
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('embeddingBag: forward and table gradient match the host path on cpu (repeated ids, an empty segment)', async () => {
    const bag = { ids: Int32Array.from([0, 5, 5, 2, 1, 5]), segments: Int32Array.from([0, 0, 1, 1, 3, 3]), weights: Float32Array.from([0.5, 0.5, 1, 2, 1, -1]), numSegments: 4 };
    const run = () => {
      const table = tf.tensor2d([...Array(18).keys()].map((x) => Math.sin(x)), [6, 3]);
      const upstream = tf.tensor2d([1, -2, 3, 0.5, 4, -1, 2, 2, 2, 7, 0, -3], [4, 3]);
      const value = embeddingBag(table, bag);
      const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embeddingBag(t as tf.Tensor2D, bag), upstream)))(table);
      return [value, grad];
    };
    expectClose(await on(backend, run), await on('cpu', run), 1e-5);
  });

  it('a panel trains and predicts as on cpu, reading only the logged losses (asynchronously)', async () => {
    const cases = generateCases({ count: 40, seed: 6 });
    const vocab = chargeVocabulary(cases);
    const labels = encodeLabels(cases, vocab);
    const rows = Int32Array.from(cases.keys());
    const train = async (name: string) => {
      await tf.setBackend(name);
      const model = createModel({ type: 'hashed-ngram', buckets: 128, dim: 8 }, { numCharges: vocab.length, seed: 3 });
      const pool = model.prepare(cases.map((c) => c.fact));
      const { result, count } = await countReads(() => trainPanel([model], pool, [{ rows, labels }], { epochs: 2, learningRate: 0.03, batchSize: 16 }));
      const [pred] = await predictPanel([model], pool, rows);
      model.dispose();
      return { losses: result.losses, steps: result.steps, count, pred: pred! };
    };
    const dev = await train(backend);
    const host = await train('cpu');
    expect(dev.count.sync, describeReads(dev.count)).toBe(0);
    expect(dev.count.async).toBe(dev.steps); // the logged loss of each step
    expect(dev.losses).toEqual(host.losses.map((l) => expect.closeTo(l, 4)));
    expect(Array.from(dev.pred.charge)).toEqual(Array.from(host.pred.charge));
    expect(Array.from(dev.pred.months)).toEqual(Array.from(host.pred.months).map((m) => expect.closeTo(m, 2)));
  });
});
