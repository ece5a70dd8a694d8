import { createRng, initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { relErr } from '../test-utils.js';
import { groupedMaskedReference, groupedMatMul, groupedMatMulOp, groupedReference } from './grouped-matmul.js';

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

  it.each([
    { sizes: [3, 0, 5, 1], extra: 0 },
    { sizes: [2, 4], extra: 3 },
    { sizes: [0, 0, 0], extra: 2 },
  ])('takes the group sizes as an int32 tensor: $sizes with $extra rows past the groups', async ({ sizes, extra }) => {
    const rng = createRng(7 + extra);
    const used = sizes.reduce((a, b) => a + b, 0);
    const [M, K, N] = [used + extra, 5, 3];
    const x = rng.normal([M, K]);
    const w = rng.normal([sizes.length, K, N]);
    const dy = rng.normal([M, N]);
    const sizeTensor = tf.tensor1d(sizes, 'int32');
    const loss = (f: (a: Tensor, b: Tensor) => Tensor) => (a: Tensor, b: Tensor) => tf.sum(tf.mul(f(a, b), dy));
    const kernel = (a: Tensor, b: Tensor) => groupedMatMul(a, b, sizeTensor);
    const masked = (a: Tensor, b: Tensor) => groupedMaskedReference(a, b, sizeTensor, 'nn');
    // The used rows are the host-size product; the rows past the groups are zero.
    const head = groupedMatMul(tf.slice(x, [0, 0], [used, K]), w, sizes);
    const out = kernel(x, w);
    expect(out.shape).toEqual([M, N]);
    expect(await relErr(tf.slice(out, [0, 0], [used, N]), head)).toBeLessThan(1e-5);
    expect(Array.from(await tf.slice(out, [used, 0], [extra, N]).data()).every((v) => v === 0)).toBe(true);
    expect(await relErr(out, masked(x, w))).toBeLessThan(1e-5);
    const got = tf.grads(loss(kernel))([x, w]);
    const want = tf.grads(loss(masked))([x, w]);
    for (let i = 0; i < 2; i++) expect(await relErr(got[i]!, want[i]!)).toBeLessThan(1e-5);
    // The masked reference defines the op for tensor sizes on backends without a kernel.
    expect(await relErr(groupedMatMulOp.reference({ x, w, sizes: sizeTensor }, { mode: 'nn' }), out)).toBeLessThan(1e-5);
  });

  it('checks tensor group sizes where their values are on the host', () => {
    const x = tf.zeros([5, 4]);
    const w = tf.zeros([2, 4, 3]);
    expect(() => groupedMatMul(x, w, tf.tensor1d([4, 2], 'int32'))).toThrow(/'groupSizes' sum to 6, more than the 5 rows of x/);
    expect(() => groupedMatMul(x, w, tf.tensor1d([4, -1], 'int32'))).toThrow(/'groupSizes\[1\]' must be a non-negative integer, got -1/);
    expect(() => groupedMatMul(x, w, tf.tensor1d([4], 'int32'))).toThrow(/'groupSizes' \[1\] has 1 entries but there are 2 groups/);
    expect(() => groupedMatMul(x, w, tf.tensor1d([4, 1]))).toThrow(/'groupSizes' must be int32, got float32/);
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
