import { createRng, initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { relErr } from '../test-utils.js';
import { groupedMatMul, groupedMatMulOp, groupedReference } from './grouped-matmul.js';

type Tensor = tf.Tensor;

const GROUP_CASES: { sizes: number[]; K: number; N: number }[] = [
  { sizes: [3, 0, 5, 1], K: 4, N: 3 },
  { sizes: [0, 0, 2], K: 1, N: 5 },
  { sizes: [7], K: 9, N: 2 },
  { sizes: [0, 0], K: 3, N: 2 },
  { sizes: [1, 2, 3, 4, 5], K: 17, N: 13 },
];

function groupedGrads(x: Tensor, w: Tensor, sizes: number[], useRef: boolean, seed: number): Tensor[] {
  const dy = createRng(seed).normal([x.shape[0]!, w.shape[2]!]);
  return tf.grads((a: Tensor, b: Tensor) => tf.sum(tf.mul(useRef ? groupedReference(a, b, sizes, 'nn') : groupedMatMul(a, b, sizes), dy)))([x, w]);
}

describe('groupedMatMul on cpu', () => {
  beforeAll(async () => {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
  });

  it.each(GROUP_CASES.map((c, i) => [i, c] as const))('matches one matMul per group, forward and backward (case %i)', async (i, { sizes, K, N }) => {
    const rng = createRng(100 + i);
    const M = sizes.reduce((a, b) => a + b, 0);
    const x = rng.normal([M, K]);
    const w = rng.normal([sizes.length, K, N]);
    expect(groupedMatMulOp.hasKernel()).toBe(true);
    const out = groupedMatMul(x, w, sizes);
    expect(out.shape).toEqual([M, N]);
    expect(await relErr(out, groupedReference(x, w, sizes, 'nn'))).toBeLessThan(1e-5);
    // Row by row against an explicit loop.
    let r0 = 0;
    sizes.forEach((rows, g) => {
      if (rows > 0) {
        const want = tf.matMul(tf.slice(x, [r0, 0], [rows, K]), tf.squeeze(tf.slice(w, [g, 0, 0], [1, K, N]), [0]));
        expect(tf.max(tf.abs(tf.sub(tf.slice(out, [r0, 0], [rows, N]), want))).dataSync()[0]).toBeLessThan(1e-4);
      }
      r0 += rows;
    });
    const [gx, gw] = groupedGrads(x, w, sizes, false, 7);
    const [rx, rw] = groupedGrads(x, w, sizes, true, 7);
    expect(await relErr(gx!, rx!)).toBeLessThan(1e-5);
    expect(await relErr(gw!, rw!)).toBeLessThan(1e-5);
    // An empty group's weights get a zero gradient.
    sizes.forEach((rows, g) => {
      if (rows === 0) expect(tf.max(tf.abs(tf.slice(gw!, [g, 0, 0], [1, K, N]))).dataSync()[0]).toBe(0);
    });
  });

  it('rejects bad group sizes and shapes naming the argument', () => {
    const x = tf.zeros([5, 4]);
    const w = tf.zeros([2, 4, 3]);
    expect(() => groupedMatMul(x, w, [2, 2])).toThrow(/'groupSizes' sum to 4 but x has 5 rows/);
    expect(() => groupedMatMul(x, w, [5])).toThrow(/'groupSizes' has 1 entries but there are 2 groups/);
    expect(() => groupedMatMul(x, w, [6, -1])).toThrow(/'groupSizes\[1\]' must be a non-negative integer/);
    expect(() => groupedMatMul(x, tf.zeros([2, 3, 3]), [2, 3])).toThrow(/'x' \[5, 4\] has 4 features but 'weights' \[2, 3, 3\] expects 3/);
    expect(() => groupedMatMul(x, tf.zeros([4, 3]), [5])).toThrow(/'weights' must have rank 3/);
    expect(() => groupedMatMul(tf.zeros([5, 4], 'int32'), w, [2, 3])).toThrow(/'x' must be float32, got int32/);
  });
});
