/**
 * quantizedMatMul's values, not just its shape: with tensorwise FP8 scaling each operand is
 * rounded to the format's grid at scale fmax / amax (one scale per tensor, so the layout in
 * which it is quantized does not matter), and the products are exact float64 products of
 * those rounded operands. Forward uses E4M3 for both operands; backward quantizes dY as a
 * gradient (E5M2 in the 'hybrid' format) for dA = Q(dY)·Q(B)ᵀ and dB = Q(A)ᵀ·Q(dY).
 */
import { castToMiniFloat, E4M3, E5M2 } from '@kiln/gpu-kernels';
import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { validateMoEConfig } from '../config.js';
import { fp8ScaleFromAmax } from './fp8.js';
import { createQuantRecipe, quantizedMatMul } from './qdq.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Tensorwise quantize–dequantize, written from the definition. */
function qdq(values: Float32Array, format: 'e4m3' | 'e5m2'): Float64Array {
  const fmt = format === 'e4m3' ? E4M3 : E5M2;
  const amax = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const { scale, scaleInv } = fp8ScaleFromAmax(amax, format === 'e4m3' ? 448 : 57344);
  return Float64Array.from(values, (v) => Math.fround(castToMiniFloat(Math.fround(v * scale), fmt) * scaleInv));
}

/** C[m, n] = Σ_k A[m, k]·B[k, n] with optional transposes of the stored operands, in float64. */
function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number, ta = false, tb = false): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a[p * m + i]! : a[i * k + p]!) * (tb ? b[j * k + p]! : b[p * n + j]!);
      out[i * n + j] = s;
    }
  return out;
}

function expectClose(got: tf.Tensor, want: Float64Array, what: string): void {
  const g = got.dataSync();
  expect(g.length, what).toBe(want.length);
  let scale = 0;
  for (const w of want) scale = Math.max(scale, Math.abs(w));
  for (let i = 0; i < want.length; i++) expect(Math.abs(g[i]! - want[i]!), `${what}[${i}]`).toBeLessThanOrEqual(1e-5 * scale);
}

describe('quantizedMatMul with tensorwise FP8', () => {
  const [M, K, N] = [32, 32, 8];
  const rng = createRng(17);
  const a = rng.normalArray(M * K, 0, 1);
  const b = rng.normalArray(K * N, 0, 2);
  const dy = rng.normalArray(M * N, 0, 0.5);
  const cfg = (fp8: 'e4m3' | 'hybrid') =>
    createQuantRecipe(validateMoEConfig({ numExperts: 4, hiddenSize: 32, ffnHiddenSize: 32, fp8, fp8Recipe: 'tensorwise' }));

  for (const format of ['e4m3', 'hybrid'] as const) {
    it(`${format}: Y = Q(A)·Q(B) for a non-square B, and both gradients from Q(dY)`, () => {
      const recipe = cfg(format);
      const at = tf.tensor2d(a, [M, K]);
      const bt = tf.tensor2d(b, [K, N]);
      const y = quantizedMatMul(at, bt, recipe);
      expect(y.shape).toEqual([M, N]);
      const qa = qdq(a, 'e4m3');
      const qb = qdq(b, 'e4m3');
      expectClose(y, matmul(qa, qb, M, K, N), 'Y');
      // The result differs from the unquantized product: the rounding really happened.
      const exact = matmul(Float64Array.from(a), Float64Array.from(b), M, K, N);
      expect(Math.max(...Array.from(y.dataSync(), (v, i) => Math.abs(v - exact[i]!)))).toBeGreaterThan(1e-3);

      const [ga, gb] = tf.grads((x: tf.Tensor, w: tf.Tensor) =>
        tf.sum(tf.mul(quantizedMatMul(x as tf.Tensor2D, w as tf.Tensor2D, recipe), tf.tensor2d(dy, [M, N]))),
      )([at, bt]);
      const qdy = qdq(dy, format === 'hybrid' ? 'e5m2' : 'e4m3');
      expectClose(ga!, matmul(qdy, qb, M, N, K, false, true), 'dA');
      expectClose(gb!, matmul(qa, qdy, K, M, N, true, false), 'dB');
    });
  }

  it('refuses operands that do not multiply, naming both shapes', () => {
    const recipe = cfg('e4m3');
    expect(() => quantizedMatMul(tf.zeros([4, 3]) as tf.Tensor2D, tf.zeros([4, 3]) as tf.Tensor2D, recipe)).toThrow(
      'quantizedMatMul: shapes [4,3] and [4,3] do not multiply (a: [M, K], b: [K, N])',
    );
  });
});
