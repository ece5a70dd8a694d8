import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostBackends, hostNormal, kernelVsReference } from '../test-utils.js';
import { silu, siluGate, siluGateOp, siluOp } from './silu.js';

const backends = await hostBackends();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('silu and siluGate', () => {
  it('compute x·σ(x) and x·silu(z)', () => {
    const x = tf.tensor1d([-2, 0, 3]);
    const z = tf.tensor1d([1, -1, 0.5]);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const s = silu(x).dataSync();
    [-2, 0, 3].forEach((v, i) => {
      expect(s[i]).toBeCloseTo(v * sig(v), 6);
    });
    const g = siluGate(x, z).dataSync();
    [-2, 0, 3].forEach((v, i) => {
      const zi = [1, -1, 0.5][i]!;
      expect(g[i]).toBeCloseTo(v * zi * sig(zi), 6);
    });
  });

  const shapes = [[1], [7, 3], [2, 33, 5], [40000]];
  for (const backend of backends) {
    for (const shape of shapes) {
      it(`${backend}: kernels = references, forward and gradient, [${shape}]`, async () => {
        const errSilu = await kernelVsReference(backend, { x: hostNormal(shape, 1, 3) }, ['x'], (t, reference) => (reference ? siluOp.reference : siluOp)(t));
        expect(errSilu).toBeLessThan(1e-5);
        const errGate = await kernelVsReference(backend, { x: hostNormal(shape, 2), z: hostNormal(shape, 3, 3) }, ['x', 'z'], (t, reference) =>
          (reference ? siluGateOp.reference : siluGateOp)(t),
        );
        expect(errGate).toBeLessThan(1e-5);
      });
    }
  }

  it('rejects mismatched shapes and dtypes', () => {
    expect(() => siluGate(tf.zeros([2, 3]), tf.zeros([3, 2]))).toThrow(/siluGate: 'z' \[3, 2\] must have the shape of 'x' \[2, 3\]/);
    expect(() => silu(tf.zeros([2], 'int32'))).toThrow(/silu: 'x' must be float32/);
  });
});
