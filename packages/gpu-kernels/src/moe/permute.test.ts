import { createRng, initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { relErr } from '../test-utils.js';
import { gatherRowsOp, moePermute, moeUnpermute, planPermutation, scatterRowsOp } from './permute.js';

type Tensor = tf.Tensor;

/** A random top-k routing map [T, E] and probabilities. */
function randomRouting(T: number, E: number, k: number, seed: number): { map: Tensor; probs: Tensor } {
  const rng = createRng(seed);
  const m = new Float32Array(T * E);
  const p = new Float32Array(T * E);
  for (let t = 0; t < T; t++) {
    for (const e of rng.permutation(E).slice(0, k)) {
      m[t * E + e] = 1;
      p[t * E + e] = 0.1 + rng.next();
    }
  }
  return { map: tf.cast(tf.tensor(m, [T, E]), 'bool'), probs: tf.tensor(p, [T, E]) };
}

describe('moePermute / moeUnpermute on cpu', () => {
  beforeAll(async () => {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
  });

  it('orders rows expert-major with tokens ascending (Megatron-Core permute), and round-trips', async () => {
    const tokens = tf.tensor([[0], [1], [2], [3]]);
    const map = tf.tensor([
      [1, 0, 1],
      [0, 0, 1],
      [1, 0, 0],
      [0, 0, 1],
    ]);
    const probs = tf.tensor([
      [0.6, 0, 0.4],
      [0, 0, 1],
      [1, 0, 0],
      [0, 0, 1],
    ]);
    const r = moePermute(tokens, map, { probs });
    expect(Array.from(r.sortedIndices.dataSync())).toEqual([0, 2, 0, 1, 3]);
    expect(r.tokensPerExpert).toEqual([2, 0, 3]);
    expect(Array.from(r.permuted.dataSync())).toEqual([0, 2, 0, 1, 3]);
    expect(Array.from(r.permutedProbs!.dataSync())).toEqual(Array.from(Float32Array.from([0.6, 1, 0.4, 1, 1])));
    const back = moeUnpermute(r.permuted, r.sortedIndices, { numTokens: 4, probs: r.permutedProbs! });
    expect(await relErr(back, tokens)).toBeLessThan(1e-6); // probabilities sum to 1 per token
  });

  it('drops past the capacity by position or by probability, and pads to capacity', () => {
    const map = [1, 1, 1, 0, 1, 0, 0, 0]; // [4 tokens, 2 experts]: expert 0 gets tokens 0,1,2; expert 1 token 0
    const probs = [0.2, 0.8, 0.9, 0, 0.5, 0, 0, 0];
    const byPos = planPermutation(map, 4, 2, { capacity: 2 });
    expect(Array.from(byPos.sortedIndices)).toEqual([0, 1, 0]);
    expect(byPos.dropped).toBe(1);
    const byProb = planPermutation(map, 4, 2, { capacity: 2, dropPolicy: 'probs' }, probs);
    expect(Array.from(byProb.sortedIndices)).toEqual([1, 2, 0]);
    const padded = planPermutation(map, 4, 2, { capacity: 2, padToCapacity: true });
    expect(Array.from(padded.sortedIndices)).toEqual([0, 1, 0, 1]);
    expect(padded.rowsPerExpert).toEqual([2, 2]);
    expect(padded.keptPerExpert).toEqual([2, 1]);
    // The padding row (token 1 at expert 1) has probability 0.
    expect(Array.from(padded.probIndices)).toEqual([0, 1, 4, -1]);
  });

  it('padding rows contribute nothing on unpermute; dropped tokens get nothing back', async () => {
    const tokens = tf.tensor([[1], [2], [3], [4]]);
    const map = tf.tensor([
      [1, 1],
      [1, 0],
      [1, 0],
      [0, 0],
    ]);
    const probs = tf.tensor([
      [0.5, 0.5],
      [1, 0],
      [1, 0],
      [0, 0],
    ]);
    const r = moePermute(tokens, map, { probs, capacity: 2, padToCapacity: true });
    expect(r.permuted.shape).toEqual([4, 1]);
    const back = moeUnpermute(r.permuted, r.sortedIndices, { numTokens: 4, probs: r.permutedProbs! });
    expect(Array.from(back.dataSync())).toEqual([1, 2, 0, 0]);
  });

  it.each([
    [6, 4, 2, undefined],
    [1, 3, 1, undefined],
    [7, 5, 3, 3],
  ] as const)('gradients match the references (T=%i, E=%i, k=%i, capacity=%s)', async (T, E, k, capacity) => {
    const { map, probs } = randomRouting(T, E, k, T * 31 + E);
    const rng = createRng(T + E);
    const tokens = rng.normal([T, 5]);
    const opts = capacity ? { capacity, padToCapacity: true } : {};
    const plan = moePermute(tokens, map, { probs, ...opts }).plan;
    const w = rng.normal([T, 5]);
    const f = (useRef: boolean) => (x: Tensor, p: Tensor) => {
      const idx = tf.tensor1d(plan.sortedIndices, 'int32');
      const rows = useRef ? gatherRowsOp.reference({ x, indices: idx }, {}) : gatherRowsOp({ x, indices: idx }, {});
      const flat = tf.concat([tf.reshape(tf.transpose(p), [-1]), tf.zeros([1])]);
      const pw = tf.gather(flat, tf.tensor1d(plan.probIndices.map((i) => (i < 0 ? T * E : i)), 'int32'));
      const h = tf.tanh(rows); // an "expert"
      const out = useRef
        ? scatterRowsOp.reference({ x: h, indices: idx, weights: pw }, { numRows: T })
        : moeUnpermute(h, idx, { numTokens: T, probs: pw });
      return tf.sum(tf.mul(out, w));
    };
    const [gx, gp] = tf.grads(f(false))([tokens, probs]);
    const [rx, rp] = tf.grads(f(true))([tokens, probs]);
    expect(await relErr(gx!, rx!)).toBeLessThan(1e-5);
    expect(await relErr(gp!, rp!)).toBeLessThan(1e-5);
  });

  it('rejects bad arguments naming them', () => {
    const tokens = tf.zeros([4, 3]);
    expect(() => moePermute(tokens, tf.zeros([5, 2]))).toThrow(/'routingMap' \[5, 2\] and 'tokens' \[4, 3\] differ/);
    expect(() => moePermute(tokens, tf.zeros([4, 2]), { probs: tf.zeros([4, 3]) })).toThrow(/'probs' \[4, 3\] must match 'routingMap' \[4, 2\]/);
    expect(() => moePermute(tokens, tf.zeros([4, 2]), { capacity: 0 })).toThrow(/'capacity' must be a positive integer/);
    expect(() => moePermute(tokens, tf.zeros([4, 2]), { capacity: 5, padToCapacity: true })).toThrow(/'capacity' = 5 exceeds the 4 tokens/);
    expect(() => moePermute(tokens, tf.zeros([4, 2]), { capacity: 2, dropPolicy: 'probs' })).toThrow(/dropPolicy 'probs' needs 'probs'/);
    expect(() => moeUnpermute(tokens, tf.tensor1d([0, 1, 2], 'int32'), { numTokens: 4 })).toThrow(/'indices' \[3\] must have one entry per row \(4\)/);
    expect(() => moeUnpermute(tokens, tf.tensor1d([0, 1, 2, 3]), { numTokens: 4 })).toThrow(/'indices' must be int32/);
  });
});
