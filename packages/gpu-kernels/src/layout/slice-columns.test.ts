import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostBackends, hostNormal, kernelVsReference } from '../test-utils.js';
import { sliceColumns, sliceColumnsOp } from './slice-columns.js';

const backends = await hostBackends();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('sliceColumns', () => {
  it('takes a block of columns; the gradient fills the rest with zeros', () => {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(Array.from(sliceColumns(x, 1, 2).dataSync())).toEqual([2, 3, 5, 6]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(sliceColumns(v, 1, 1), tf.tensor2d([10, 20], [2, 1]))))(x);
    expect(Array.from(g.dataSync())).toEqual([0, 10, 0, 0, 20, 0]);
  });

  // rows, columns, begin, size: one element, the whole row, a middle block, the last column
  const cases: Array<[number, number, number, number]> = [
    [1, 1, 0, 1],
    [5, 7, 0, 7],
    [300, 10, 2, 4],
    [33, 64, 63, 1],
  ];
  for (const backend of backends) {
    for (const [rows, C, begin, size] of cases) {
      it(`${backend}: kernel = reference, forward and gradient, [${rows}, ${C}] columns ${begin}..${begin + size}`, async () => {
        const err = await kernelVsReference(backend, { x: hostNormal([rows, C], 1) }, ['x'], (t, reference) =>
          (reference ? sliceColumnsOp.reference : sliceColumnsOp)(t, { begin, size }),
        );
        expect(err).toBe(0);
      });
    }
  }

  it('rejects column ranges outside the matrix', () => {
    expect(() => sliceColumns(tf.zeros([2, 3]), 2, 2)).toThrow(/sliceColumns: columns begin=2, size=2 .* begin \+ size ≤ 3/);
    expect(() => sliceColumns(tf.zeros([2, 3, 1]), 0, 1)).toThrow(/'x' must have rank 2/);
  });
});
