/**
 * adam(): the fused kiln-native update against tf.train.adam over many steps on several
 * shapes (size 1, odd, a multi-thread size), state save/restore in both directions, the
 * plain-tfjs fallback on cpu, and that variables sharing data with other tensors are never
 * written in place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adam, FusedAdamOptimizer, hasFusedAdam } from './adam.js';
import { NATIVE_BACKEND_NAME, registerNativeBackend } from './native-backend.js';
import { createRng } from './rng.js';
import { initTestBackend, testBackendName } from './test-backend.js';
import { tf } from './tf.js';

const native = (await registerNativeBackend()).ok;

const SHAPES: number[][] = [[1], [7], [3, 5], [33, 17], [70001]];

/** Seeded gradients for every step, the same for both optimizers. */
function gradientsFor(shapes: number[][], steps: number, seed: number): Float32Array[][] {
  const rng = createRng(seed);
  return Array.from({ length: steps }, () => shapes.map((s) => rng.normalArray(s.reduce((a, b) => a * b, 1))));
}

function makeVars(shapes: number[][], seed: number, prefix: string): tf.Variable[] {
  const rng = createRng(seed);
  return shapes.map((s, i) => tf.variable(tf.tensor(rng.normalArray(s.reduce((a, b) => a * b, 1)), s), true, `${prefix}${i}`));
}

function runSteps(opt: tf.Optimizer, vars: tf.Variable[], grads: Float32Array[][]): void {
  for (const step of grads) {
    tf.tidy(() => {
      opt.applyGradients(vars.map((v, i) => ({ name: v.name, tensor: tf.tensor(step[i]!, v.shape) })));
    });
  }
}

/**
 * Relative error with a floor of 0.01: weights, moments and gradients here are O(0.1–1), so
 * an element that cancels to ~1e-4 carries the rounding of its O(1) terms (FMA contraction
 * and operation order differ from tfjs's op-by-op float32 evaluation).
 */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, label: string, tol = 2e-5): void {
  expect(got.length, label).toBe(want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i]! - want[i]!) / (1e-2 + Math.abs(want[i]!));
    if (e > worst) [worst, at] = [e, i];
  }
  if (worst > tol) throw new Error(`${label}: element ${at} is ${got[at]} against ${want[at]} (relative error ${worst})`);
}

async function weightsOf(opt: tf.Optimizer): Promise<{ name: string; values: Float32Array }[]> {
  return (await opt.getWeights()).map((w) => ({ name: w.name, values: w.tensor.dataSync() as Float32Array }));
}

describe('adam() options', () => {
  it('builds a tfjs Adam optimizer with the given hyper-parameters', () => {
    const opt = adam({ learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6 });
    expect(opt).toBeInstanceOf(tf.AdamOptimizer);
    expect(opt).toBeInstanceOf(FusedAdamOptimizer);
    expect(opt.getConfig()).toEqual({ learningRate: 0.01, beta1: 0.8, beta2: 0.99, epsilon: 1e-6 });
    expect(opt.getClassName()).toBe('Adam');
    opt.dispose();
  });

  it('defaults to tf.train.adam defaults', () => {
    const opt = adam();
    const ref = tf.train.adam();
    expect(opt.getConfig()).toEqual(ref.getConfig());
    opt.dispose();
    ref.dispose();
  });

  it('rejects bad hyper-parameters by name', () => {
    expect(() => adam({ learningRate: Number.NaN })).toThrow(/learningRate must be a finite number, got NaN/);
    expect(() => adam({ beta1: 1 })).toThrow(/beta1 must be in \[0, 1\), got 1/);
    expect(() => adam({ beta2: -0.1 })).toThrow(/beta2 must be in \[0, 1\), got -0.1/);
    expect(() => adam({ epsilon: -1 })).toThrow(/epsilon must be >= 0, got -1/);
  });
});

// Not in the webgpu pass: these compare kiln-native with cpu.
describe.skipIf(!native || testBackendName() !== 'cpu')('adam() on kiln-native', () => {
  beforeAll(async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('has the fused kernel and uses it instead of per-op updates', async () => {
    expect(hasFusedAdam()).toBe(true);
    const w = tf.variable(tf.ones([4, 4]), true, 'adam-kernel-check');
    const opt = adam({ learningRate: 0.1 });
    const grads = [{ name: w.name, tensor: tf.fill([4, 4], 0.5) }];
    opt.applyGradients(grads); // creates the moments
    const profile = await tf.profile(() => opt.applyGradients(grads));
    const names = profile.kernels.map((k) => k.name);
    expect(names).toContain('KilnFusedAdam');
    expect(names).not.toContain('Sqrt');
    tf.dispose([w, grads[0]!.tensor]);
    opt.dispose();
  });

  it('matches tf.train.adam over 60 steps on size-1, odd and large shapes', async () => {
    const grads = gradientsFor(SHAPES, 60, 7);
    const a = makeVars(SHAPES, 3, 'fused-');
    const b = makeVars(SHAPES, 3, 'stock-');
    const fused = adam({ learningRate: 0.01, beta1: 0.85, beta2: 0.995, epsilon: 1e-6 });
    const stock = tf.train.adam(0.01, 0.85, 0.995, 1e-6);
    runSteps(fused, a, grads);
    runSteps(stock, b, grads);
    a.forEach((v, i) => {
      expectClose(v.dataSync(), b[i]!.dataSync(), `weight ${i} ${SHAPES[i]}`);
    });
    const wa = await weightsOf(fused);
    const wb = await weightsOf(stock);
    expect(wa.map((w) => w.name.replace('fused-', ''))).toEqual(wb.map((w) => w.name.replace('stock-', '')));
    wa.forEach((w, i) => {
      expectClose(w.values, wb[i]!.values, `state ${w.name}`);
    });
    tf.dispose([...a, ...b]);
    fused.dispose();
    stock.dispose();
  });

  it('trains a small model to the same loss as tf.train.adam through minimize()', () => {
    const rng = createRng(11);
    const x = tf.tensor(rng.normalArray(64 * 5), [64, 5]);
    const y = tf.tensor(rng.normalArray(64 * 3), [64, 3]);
    const losses = [adam({ learningRate: 0.05 }), tf.train.adam(0.05)].map((opt, k) => {
      const [w, bias] = makeVars([[5, 3], [3]], 5, `mlp${k}-`);
      let last = 0;
      for (let i = 0; i < 40; i++) {
        last = tf.tidy(() => {
          const loss = opt.minimize(() => tf.losses.meanSquaredError(y, tf.add(tf.matMul(x, w!), bias!)), true);
          return loss!.dataSync()[0]!;
        });
      }
      tf.dispose([w!, bias!]);
      opt.dispose();
      return last;
    });
    expect(Math.abs(losses[0]! - losses[1]!)).toBeLessThan(1e-5 * (1 + losses[1]!));
  });

  it('resumes from saved state: fused → fused, fused → stock and stock → fused', async () => {
    const grads = gradientsFor(SHAPES, 20, 21);
    const first = grads.slice(0, 10);
    const second = grads.slice(10);
    // Uninterrupted reference.
    const ref = makeVars(SHAPES, 9, 'ref-');
    const refOpt = tf.train.adam(0.02);
    runSteps(refOpt, ref, grads);

    for (const [from, to] of [
      ['fused', 'fused'],
      ['fused', 'stock'],
      ['stock', 'fused'],
    ] as const) {
      const make = (kind: string) => (kind === 'fused' ? adam({ learningRate: 0.02 }) : tf.train.adam(0.02));
      const vars = makeVars(SHAPES, 9, `${from}-${to}-`);
      const opt1 = make(from);
      runSteps(opt1, vars, first);
      // A checkpoint as an app would write it: plain arrays, no live tensors.
      const saved = (await opt1.getWeights()).map((w) => ({ name: w.name, dtype: w.tensor.dtype, shape: w.tensor.shape, data: w.tensor.dataSync().slice() }));
      opt1.dispose();
      const opt2 = make(to);
      await opt2.setWeights(saved.map((s) => ({ name: s.name, tensor: tf.tensor(s.data, s.shape, s.dtype) })));
      expect(opt2.iterations).toBe(10);
      runSteps(opt2, vars, second);
      vars.forEach((v, i) => {
      expectClose(v.dataSync(), ref[i]!.dataSync(), `${from}→${to} weight ${i}`);
    });
      tf.dispose(vars);
      opt2.dispose();
    }
    tf.dispose(ref);
    refOpt.dispose();
  });

  it('never writes through shared data: the initial tensor and arrays read earlier stay as they were', () => {
    const init = tf.tensor(new Float32Array(20000).fill(1), [20000]);
    const w = tf.variable(init, true, 'shared-init');
    const before = w.dataSync(); // the backend's own array on cpu-like backends
    const initValues = init.dataSync();
    const opt = adam({ learningRate: 0.5 });
    for (let i = 0; i < 3; i++) {
      tf.tidy(() => opt.applyGradients([{ name: w.name, tensor: tf.fill([20000], 1) }]));
    }
    expect(before[0]).toBe(1);
    expect(initValues[19999]).toBe(1);
    expect(init.dataSync()[0]).toBe(1);
    expect(w.dataSync()[0]).toBeLessThan(0); // 3 steps of about -0.5
    tf.dispose([init, w]);
    opt.dispose();
  });
});

describe(`adam() without the fused kernel (${testBackendName()})`, () => {
  beforeAll(async () => {
    await initTestBackend();
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('runs tfjs Adam unchanged', async () => {
    expect(hasFusedAdam()).toBe(false);
    const shapes = [[1], [3, 5]];
    const grads = gradientsFor(shapes, 15, 4);
    const a = makeVars(shapes, 1, 'cpu-fused-');
    const b = makeVars(shapes, 1, 'cpu-stock-');
    const fused = adam({ learningRate: 0.03 });
    const stock = tf.train.adam(0.03);
    runSteps(fused, a, grads);
    runSteps(stock, b, grads);
    for (const [i, v] of a.entries()) expect(Array.from(await v.data())).toEqual(Array.from(await b[i]!.data()));
    tf.dispose([...a, ...b]);
    fused.dispose();
    stock.dispose();
  });
});
