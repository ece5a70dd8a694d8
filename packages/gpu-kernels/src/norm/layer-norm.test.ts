import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { type HostArray, hostBackends, hostNormal, kernelVsReference } from '../test-utils.js';
import { layerNorm, layerNormOp } from './layer-norm.js';

const backends = await hostBackends();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('layerNorm', () => {
  it('normalises each row to mean 0, variance 1 before γ and β', () => {
    const y = layerNorm(tf.tensor2d([1, 2, 3, 4, 10, 10, 10, 10], [2, 4]), tf.tensor1d([1, 1, 1, 2]), tf.tensor1d([0, 0, 0, 1])).arraySync() as number[][];
    const r = 1 / Math.sqrt(1.25 + 1e-5);
    expect(y[0]![0]).toBeCloseTo(-1.5 * r, 5);
    expect(y[0]![3]).toBeCloseTo(1.5 * r * 2 + 1, 5);
    expect(y[1]).toEqual([0, 0, 0, 1]); // a constant row: x̂ = 0
  });

  // rows × C: one row, one channel, odd sizes, more rows than a kernel block
  const shapes = [
    [1, 1],
    [1, 7],
    [5, 3],
    [300, 32],
    [2, 3, 16],
  ];
  for (const backend of backends) {
    for (const shape of shapes) {
      for (const affine of [true, false]) {
        it(`${backend}: kernel = reference, forward and gradient, [${shape}]${affine ? ' with γ, β' : ''}`, async () => {
          const C = shape.at(-1)!;
          const inputs: Record<string, HostArray> = { x: hostNormal(shape, 1, 2) };
          if (affine) {
            inputs.gamma = hostNormal([C], 2);
            inputs.beta = hostNormal([C], 3);
          }
          const err = await kernelVsReference(backend, inputs, Object.keys(inputs), (t, reference) => (reference ? layerNormOp.reference : layerNormOp)(t, { eps: 1e-5 }));
          expect(err).toBeLessThan(5e-5);
        });
      }
    }
  }

  it('rejects bad γ shapes and eps', () => {
    expect(() => layerNorm(tf.zeros([2, 3]), tf.zeros([2]))).toThrow(/layerNorm: 'gamma' must have shape \[3\]/);
    expect(() => layerNorm(tf.zeros([2, 3]), undefined, undefined, 0)).toThrow(/'eps' must be a finite number > 0/);
  });
});
