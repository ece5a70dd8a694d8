import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { type HostArray, hostBackends, hostNormal, kernelVsReference } from '../test-utils.js';
import { causalConv1d, causalConv1dOp } from './causal-conv1d.js';

const backends = await hostBackends();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('causalConv1d', () => {
  it('matches a hand-computed causal convolution (weight row K−1 multiplies the current step)', () => {
    // one channel, K = 2: a_t = w0·x_{t−1} + w1·x_t + b
    const x = tf.tensor3d([1, 2, 3], [1, 3, 1]);
    const w = tf.tensor2d([10, 1], [2, 1]);
    const b = tf.tensor1d([0.5]);
    expect(Array.from(causalConv1d(x, w, b, 'none').dataSync())).toEqual([1.5, 12.5, 23.5]);
    expect(Array.from(causalConv1dOp.reference({ x, weight: w, bias: b }, { activation: 'none' }).dataSync())).toEqual([1.5, 12.5, 23.5]);
    const s = causalConv1d(x, w).dataSync(); // SiLU by default
    expect(s[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
  });

  // rows, L, C, K: L = 1, L < K, K = 1, odd sizes, several rows
  const shapes: Array<[number, number, number, number]> = [
    [1, 1, 1, 4],
    [1, 1, 5, 1],
    [2, 3, 3, 4],
    [3, 17, 8, 4],
    [1, 70, 6, 3],
  ];
  for (const backend of backends) {
    for (const [rows, L, C, K] of shapes) {
      for (const activation of ['silu', 'none'] as const) {
        for (const withBias of [true, false]) {
          it(`${backend}: kernel = reference, forward and gradient, [${rows}, ${L}, ${C}] K ${K} ${activation}${withBias ? ' + bias' : ''}`, async () => {
            const inputs: Record<string, HostArray> = { x: hostNormal([rows, L, C], 1), weight: hostNormal([K, C], 2, 0.5) };
            if (withBias) inputs.bias = hostNormal([C], 3);
            const err = await kernelVsReference(backend, inputs, Object.keys(inputs), (t, reference) =>
              (reference ? causalConv1dOp.reference : causalConv1dOp)(t, { activation }),
            );
            expect(err).toBeLessThan(2e-5);
          });
        }
      }
    }
  }

  it('rejects bad shapes and activations naming the argument', () => {
    const x = tf.zeros([2, 5, 3]);
    expect(() => causalConv1d(tf.zeros([5, 3]), tf.zeros([4, 3]))).toThrow(/causalConv1d: 'x' must have rank 3/);
    expect(() => causalConv1d(x, tf.zeros([4, 2]))).toThrow(/'weight' must have shape \[K ≥ 1, C=3\]/);
    expect(() => causalConv1d(x, tf.zeros([4, 3]), tf.zeros([2]))).toThrow(/'bias' must have shape \[3\]/);
    expect(() => causalConv1dOp({ x, weight: tf.zeros([4, 3]) }, { activation: 'relu' as never })).toThrow(/'activation' must be 'silu' or 'none'/);
  });
});
