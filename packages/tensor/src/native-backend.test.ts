/**
 * kiln-native against cpu: every replaced kernel, forward and gradient, on shapes that
 * include empty, size-1, odd and transposed (non-contiguous before the copy) inputs.
 * Each case builds its inputs from plain arrays inside the run, once per backend, so no
 * tensor crosses backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backends.js';
import { broadcastStrides } from './native-backend-kernels.js';
import { NATIVE_BACKEND_NAME, type NativeBackend, nativeKernelNames, registerNativeBackend } from './native-backend.js';
import { createRng } from './rng.js';
import { tf } from './tf.js';

const registration = await registerNativeBackend();
const native = registration.ok;

type Result = { shape: number[]; values: number[] } | { error: string };

function capture(fn: () => tf.Tensor | tf.Tensor[]): Result[] {
  try {
    return tf.tidy(() => {
      const out = fn();
      return (Array.isArray(out) ? out : [out]).map((t) => ({ shape: t.shape, values: Array.from(t.dataSync()) }));
    });
  } catch (err) {
    return [{ error: (err as Error).message }];
  }
}

async function onBackend(name: string, fn: () => tf.Tensor | tf.Tensor[]): Promise<Result[]> {
  await tf.setBackend(name);
  return capture(fn);
}

/** Runs fn on cpu and kiln-native and expects the same shapes, values (within tol) and errors. */
async function same(label: string, fn: () => tf.Tensor | tf.Tensor[], tol = 1e-4): Promise<void> {
  const want = await onBackend('cpu', fn);
  const got = await onBackend(NATIVE_BACKEND_NAME, fn);
  expect(got.length, label).toBe(want.length);
  want.forEach((w, i) => {
    const g = got[i]!;
    if ('error' in w) {
      expect(g, `${label}: cpu threw ${w.error}`).toHaveProperty('error');
      return;
    }
    if ('error' in g) throw new Error(`${label}: kiln-native threw ${g.error}`);
    expect(g.shape, label).toEqual(w.shape);
    for (let j = 0; j < w.values.length; j++) {
      const a = g.values[j]!;
      const b = w.values[j]!;
      if (Number.isNaN(b)) {
        expect(a, `${label}[${j}]`).toBeNaN();
      } else if (!Number.isFinite(b)) {
        expect(a, `${label}[${j}]`).toBe(b);
      } else if (Math.abs(a - b) > tol * (1 + Math.abs(b))) {
        throw new Error(`${label}: element ${j} is ${a} on kiln-native, ${b} on cpu`);
      }
    }
  });
}

const rng = createRng(1234);
/** Fixed data per case: the same numbers on both backends. */
function data(shape: number[], lo = -1, hi = 1): () => tf.Tensor {
  const values = rng.uniformArray(shape.reduce((a, b) => a * b, 1), lo, hi);
  return () => tf.tensor(values, shape);
}
const sumOf = (t: tf.Tensor) => tf.sum(tf.mul(t, tf.range(0, t.size).reshape(t.shape).cast('float32').add(1).mul(0.01)));

describe.skipIf(!native)('kiln-native backend', () => {
  beforeAll(async () => {
    await tf.setBackend(NATIVE_BACKEND_NAME);
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('is chosen by initBackend over cpu and says what it runs', async () => {
    const choice = await initBackend({ env: {} });
    if (choice.name === 'webgpu') return; // a hardware GPU outranks it
    expect(choice.name).toBe('kiln-native');
    expect(choice.detail).toMatch(/@kiln\/native: \d+ threads/);
    expect(tf.getBackend()).toBe('kiln-native');
  });

  it('registers every cpu kernel and overrides the hot ones', () => {
    const cpu = tf.getKernelsForBackend('cpu').map((k) => k.kernelName);
    const mine = new Set(tf.getKernelsForBackend(NATIVE_BACKEND_NAME).map((k) => k.kernelName));
    for (const name of cpu) expect(mine.has(name), name).toBe(true);
    for (const name of nativeKernelNames()) expect(cpu, `${name} is a cpu kernel`).toContain(name);
    for (const hot of ['BatchMatMul', '_FusedMatMul', 'Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'Sum', 'Max', 'Mean', 'Softmax', 'GatherV2', 'UnsortedSegmentSum', 'Transpose']) {
      expect(nativeKernelNames()).toContain(hot);
    }
  });

  it('runs each hot kernel in the addon (the comparisons below are not all fallbacks)', () => {
    const addon = (tf.backend() as NativeBackend).addon as unknown as Record<string, unknown>;
    const x = tf.tensor([[1, -2], [3, 4]]);
    const probes: [string, () => unknown][] = [
      ['matmul', () => tf.matMul(x, x)],
      ['biasActivation', () => tf.fused.matMul({ a: x, b: x, bias: tf.tensor1d([1, 2]), activation: 'relu' })],
      ['conv2d', () => tf.conv2d(x.reshape([1, 2, 2, 1]) as tf.Tensor4D, tf.ones([1, 1, 1, 1]) as tf.Tensor4D, 1, 'same')],
      ['unary', () => tf.exp(x)],
      ['binary', () => tf.add(x, tf.scalar(1))],
      ['reduce', () => tf.sum(x, 0)],
      ['softmax', () => tf.softmax(x)],
      ['transpose', () => tf.transpose(x)],
      ['gather', () => tf.gather(x, tf.tensor1d([1], 'int32'))],
      ['unsortedSegmentSum', () => tf.unsortedSegmentSum(x, tf.tensor1d([0, 0], 'int32'), 1)],
      ['concat', () => tf.concat([x, x], 1)],
    ];
    for (const [fn, run] of probes) {
      const original = addon[fn] as (...args: unknown[]) => unknown;
      let calls = 0;
      addon[fn] = (...args: unknown[]) => {
        calls++;
        return original(...args);
      };
      try {
        tf.tidy(() => {
          run();
        });
      } finally {
        addon[fn] = original;
      }
      expect(calls, fn).toBeGreaterThan(0);
    }
  });

  it('matMul: odd, empty, size-1, transposed and batched shapes, forward and gradient', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[1, 1], [1, 1], false, false],
      [[3, 5], [5, 7], false, false],
      [[5, 3], [5, 7], true, false],
      [[3, 5], [7, 5], false, true],
      [[5, 3], [7, 5], true, true],
      [[0, 4], [4, 3], false, false],
      [[4, 0], [0, 3], false, false],
      [[33, 65], [65, 17], false, false],
      [[2, 3, 4], [2, 4, 5], false, false],
      [[1, 3, 4], [6, 4, 5], false, false],
      [[6, 3, 4], [4, 5], false, false],
      [[2, 1, 3, 4], [1, 2, 4, 5], false, false], // batch broadcast the addon leaves to cpu
      [[3, 4], [5, 6], false, false], // mismatch: same error
    ];
    for (const [sa, sb, ta, tb] of cases) {
      const a = data(sa);
      const b = data(sb);
      await same(`matMul ${sa} ${sb} ${ta} ${tb}`, () => tf.matMul(a(), b(), ta, tb));
      if (sa.length === 2 && sb.length === 2 && sa[1] !== 5 && sa[0]! * sa[1]! > 0) {
        await same(`matMul grad ${sa} ${sb}`, () => tf.grads((x: tf.Tensor, y: tf.Tensor) => sumOf(tf.matMul(x, y, ta, tb)))([a(), b()]));
      }
    }
    // A transposed view is materialized by Transpose before the product.
    const x = data([6, 9]);
    await same('matMul of transpose', () => tf.matMul(tf.transpose(x()), x()));
  });

  it('fused matMul with bias and every activation, forward and gradient', async () => {
    const a = data([7, 5]);
    const b = data([5, 9]);
    const biases: [string, () => tf.Tensor][] = [
      ['[9]', data([9])],
      ['[1,9]', data([1, 9])],
      ['[7,9]', data([7, 9])], // full bias: cpu path
    ];
    for (const activation of ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const) {
      for (const [label, bias] of biases) {
        const alpha = data([9]);
        const run = () =>
          tf.fused.matMul({ a: a(), b: b(), bias: bias(), activation, preluActivationWeights: activation === 'prelu' ? alpha() : undefined, leakyreluAlpha: 0.3 });
        await same(`fused ${activation} bias ${label}`, run);
      }
      await same(`fused ${activation} no bias transposed`, () => tf.fused.matMul({ a: a(), b: tf.transpose(b()), transposeB: true, activation: activation === 'prelu' ? 'relu' : activation }));
    }
    await same('fused grad', () =>
      tf.grads((x: tf.Tensor, w: tf.Tensor, c: tf.Tensor) => sumOf(tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: c, activation: 'relu' })))([a(), b(), biases[0]![1]()]),
    );
  });

  it('conv2d and both backprops: strides, padding, dilation, odd channels', async () => {
    const cases: { x: number[]; f: number[]; stride: number; pad: 'same' | 'valid' | number; dil: number }[] = [
      { x: [2, 7, 6, 3], f: [3, 3, 3, 5], stride: 1, pad: 'same', dil: 1 },
      { x: [1, 8, 9, 2], f: [3, 2, 2, 4], stride: 2, pad: 'valid', dil: 1 },
      { x: [3, 5, 5, 4], f: [1, 1, 4, 3], stride: 1, pad: 'valid', dil: 1 },
      { x: [1, 9, 9, 1], f: [3, 3, 1, 1], stride: 1, pad: 'same', dil: 2 },
      { x: [2, 6, 7, 3], f: [2, 3, 3, 2], stride: 2, pad: 1, dil: 1 },
      { x: [1, 1, 1, 1], f: [1, 1, 1, 1], stride: 1, pad: 'same', dil: 1 },
    ];
    for (const c of cases) {
      const x = data(c.x);
      const f = data(c.f);
      const label = `conv ${c.x} ${c.f} s${c.stride} ${c.pad} d${c.dil}`;
      await same(label, () => tf.conv2d(x() as tf.Tensor4D, f() as tf.Tensor4D, c.stride, c.pad, 'NHWC', c.dil));
      if (c.dil === 1) {
        await same(`${label} grads`, () => tf.grads((a: tf.Tensor, b: tf.Tensor) => sumOf(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad)))([x(), f()]));
      }
    }
    const x = data([2, 5, 5, 3]);
    const f = data([3, 3, 3, 4]);
    const bias = data([4]);
    await same('fused conv2d relu', () => tf.fused.conv2d({ x: x() as tf.Tensor4D, filter: f() as tf.Tensor4D, strides: 1, pad: 'same', bias: bias(), activation: 'relu' }));
    await same('conv2d NCHW falls back', () => tf.conv2d(tf.transpose(x(), [0, 3, 1, 2]) as tf.Tensor4D, f() as tf.Tensor4D, 1, 'same', 'NCHW'));
  });

  it('unary ops on empty, size-1 and odd shapes, forward and gradient', async () => {
    const ops: [string, (x: tf.Tensor) => tf.Tensor, number, number][] = [
      ['abs', tf.abs, -2, 2],
      ['neg', tf.neg, -2, 2],
      ['exp', tf.exp, -3, 3],
      ['expm1', tf.expm1, -3, 3],
      ['log', tf.log, 0.1, 4],
      ['log1p', tf.log1p, -0.5, 4],
      ['sqrt', tf.sqrt, 0.1, 4],
      ['rsqrt', tf.rsqrt, 0.1, 4],
      ['square', tf.square, -2, 2],
      ['reciprocal', tf.reciprocal, 0.5, 3],
      ['relu', tf.relu, -2, 2],
      ['relu6', tf.relu6, -3, 9],
      ['sigmoid', tf.sigmoid, -6, 6],
      ['tanh', tf.tanh, -3, 3],
      ['elu', tf.elu, -3, 3],
      ['selu', tf.selu, -3, 3],
      ['softplus', tf.softplus, -20, 20],
      ['step', (x) => tf.step(x, 0.25), -2, 2],
      ['leakyRelu', (x) => tf.leakyRelu(x, 0.1), -2, 2],
    ];
    for (const [name, op, lo, hi] of ops) {
      for (const shape of [[0], [1], [3, 0, 2], [7], [5, 13], [2, 3, 4, 5]]) {
        const x = data(shape, lo, hi);
        await same(`${name} ${shape}`, () => op(x()));
        if (shape.length > 0 && !shape.includes(0) && name !== 'step') {
          await same(`${name} grad ${shape}`, () => tf.grad((t: tf.Tensor) => sumOf(op(t)))(x()));
        }
      }
    }
    await same('nan and inf pass through', () => tf.relu(tf.tensor([Number.NaN, -Infinity, Infinity, -0])));
    const big = data([300, 700]);
    await same('large unary (parallel path)', () => tf.sigmoid(big()), 1e-5);
  });

  it('binary ops with broadcasting, forward and gradient', async () => {
    const pairs: [number[], number[]][] = [
      [[3, 4], [3, 4]],
      [[3, 4], [4]],
      [[3, 1], [1, 4]],
      [[2, 3, 4], [3, 1]],
      [[5], []],
      [[], [2, 3]],
      [[0, 3], [3]],
      [[1], [1]],
      [[2, 1, 4, 1], [3, 1, 5]],
      [[3, 4], [5, 4]], // incompatible: same error
    ];
    const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, number, number][] = [
      ['add', tf.add, -2, 2],
      ['sub', tf.sub, -2, 2],
      ['mul', tf.mul, -2, 2],
      ['div', tf.div, 0.5, 2],
      ['maximum', tf.maximum, -2, 2],
      ['minimum', tf.minimum, -2, 2],
      ['squaredDifference', tf.squaredDifference, -2, 2],
      ['pow', tf.pow, 0.5, 2],
    ];
    for (const [name, op, lo, hi] of ops) {
      for (const [sa, sb] of pairs) {
        const a = data(sa, lo, hi);
        const b = data(sb, lo, hi);
        await same(`${name} ${sa} ${sb}`, () => op(a(), b()));
        if (!sa.includes(0) && !(sa.join() === '3,4' && sb.join() === '5,4')) {
          await same(`${name} grad ${sa} ${sb}`, () => tf.grads((x: tf.Tensor, y: tf.Tensor) => sumOf(op(x, y)))([a(), b()]));
        }
      }
    }
    await same('int32 add stays on cpu', () => tf.add(tf.tensor([1, 2, 3], [3], 'int32'), tf.tensor([4], [1], 'int32')));
    const big = data([257, 1031]);
    const row = data([1031]);
    await same('large broadcast add', () => tf.add(big(), row()));
  });

  it('computes broadcast strides with merged axes', () => {
    expect(broadcastStrides([2, 3, 4], [2, 3, 4], [2, 3, 4])).toEqual({ shape: [24], aStrides: [1], bStrides: [1] });
    expect(broadcastStrides([2, 3, 4], [4], [2, 3, 4])).toEqual({ shape: [6, 4], aStrides: [4, 1], bStrides: [0, 1] });
    expect(broadcastStrides([3, 1], [1, 4], [3, 4])).toEqual({ shape: [3, 4], aStrides: [1, 0], bStrides: [0, 1] });
  });

  it('sum, mean, max, min over every axis pattern, keepDims, forward and gradient', async () => {
    const shape = [3, 4, 5, 2];
    const x = data(shape);
    const axesList: (number | number[] | undefined)[] = [undefined, 0, 1, -1, [0, 1], [1, 2], [0, 2], [1, 3], [0, 1, 2, 3]];
    const reductions: [string, (t: tf.Tensor, axis?: number | number[], keep?: boolean) => tf.Tensor][] = [
      ['sum', tf.sum],
      ['mean', tf.mean],
      ['max', tf.max],
      ['min', tf.min],
    ];
    for (const [name, op] of reductions) {
      for (const axis of axesList) {
        for (const keep of [false, true]) {
          await same(`${name} ${JSON.stringify(axis)} ${keep}`, () => op(x(), axis, keep));
        }
        await same(`${name} grad ${JSON.stringify(axis)}`, () => tf.grad((t: tf.Tensor) => sumOf(op(t, axis)))(x()));
      }
      await same(`${name} empty`, () => op(tf.zeros([0, 3]), 1));
      await same(`${name} size-1`, () => op(tf.tensor([2.5]), 0));
      const long = data([3, 70000]);
      await same(`${name} long row`, () => op(long(), 1), 1e-4);
    }
    await same('max propagates NaN', () => tf.max(tf.tensor([1, Number.NaN, 3])));
  });

  it('softmax and logSoftmax, forward and gradient', async () => {
    for (const shape of [[1], [7], [3, 5], [2, 3, 11], [4, 1]]) {
      const x = data(shape, -5, 5);
      await same(`softmax ${shape}`, () => tf.softmax(x()));
      await same(`logSoftmax ${shape}`, () => tf.logSoftmax(x()));
      await same(`softmax grad ${shape}`, () => tf.grad((t: tf.Tensor) => sumOf(tf.softmax(t)))(x()));
    }
    await same('softmax cross-entropy grad', () =>
      tf.grad((t: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d([1, 0, 2], 'int32'), 3), t))(tf.tensor([[1, 2, 3], [3, 1, 0], [0, 0, 1]])),
    );
  });

  it('transpose of float32 and int32 with every kind of permutation', async () => {
    const x = data([2, 3, 4, 5]);
    for (const perm of [[0, 1, 2, 3], [3, 2, 1, 0], [0, 2, 1, 3], [1, 0, 2, 3], [0, 1, 3, 2], [2, 3, 0, 1], [0, 3, 1, 2]]) {
      await same(`transpose ${perm}`, () => tf.transpose(x(), perm));
      await same(`transpose int32 ${perm}`, () => tf.transpose(tf.range(0, 120, 1, 'int32').reshape([2, 3, 4, 5]), perm));
    }
    const y = data([1, 7, 1, 3]);
    await same('transpose with size-1 axes', () => tf.transpose(y(), [3, 2, 1, 0]));
    await same('transpose empty', () => tf.transpose(tf.zeros([0, 3]), [1, 0]));
    const wide = data([333, 517]);
    await same('transpose large 2-D', () => tf.transpose(wide()));
  });

  it('gather (axis, batchDims, int32, errors) and its gradient (UnsortedSegmentSum)', async () => {
    const x = data([5, 4, 3]);
    const idx = () => tf.tensor1d([4, 0, 2, 2], 'int32');
    await same('gather axis 0', () => tf.gather(x(), idx()));
    await same('gather axis 1', () => tf.gather(x(), tf.tensor1d([3, 1], 'int32'), 1));
    await same('gather axis 2 2-D indices', () => tf.gather(x(), tf.tensor2d([[0, 2], [1, 1]], [2, 2], 'int32'), 2));
    await same('gather batchDims 1', () => tf.gather(x(), tf.tensor2d([[0, 1], [2, 3], [1, 1], [0, 0], [3, 2]], [5, 2], 'int32'), 1, 1));
    await same('gather int32', () => tf.gather(tf.range(0, 20, 1, 'int32').reshape([5, 4]), idx()));
    await same('gather empty indices', () => tf.gather(x(), tf.tensor1d([], 'int32')));
    await same('gather out of range', () => tf.gather(x(), tf.tensor1d([5], 'int32')));
    await same('gather grad', () => tf.grad((t: tf.Tensor) => sumOf(tf.gather(t, idx())))(x()));
    await same('gather grad axis 1', () => tf.grad((t: tf.Tensor) => sumOf(tf.gather(t, tf.tensor1d([3, 3, 0], 'int32'), 1)))(x()));
  });

  it('concat along every axis, of float32 and int32, with empty parts, and its gradient', async () => {
    const parts: [number[][], number][] = [
      [[[3, 4], [2, 4]], 0],
      [[[3, 4], [3, 1], [3, 5]], 1],
      [[[3, 4], [3, 5]], -1],
      [[[2, 3, 4], [2, 1, 4], [2, 2, 4]], 1],
      [[[2, 3, 4], [2, 3, 1]], 2],
      [[[5], [0], [7]], 0],
      [[[3, 0], [3, 2]], 1],
      [[[300, 64], [200, 64]], 0], // one long row: the copy is split across threads
      [[[3, 4], [2, 5]], 0], // mismatch: the same error
    ];
    for (const [shapes, axis] of parts) {
      const xs = shapes.map((shape) => data(shape));
      await same(`concat ${JSON.stringify(shapes)} axis ${axis}`, () => tf.concat(xs.map((x) => x()), axis));
      await same(`concat int32 ${JSON.stringify(shapes)} axis ${axis}`, () => tf.concat(xs.map((x) => tf.cast(tf.mul(x(), 100), 'int32')), axis));
    }
    const a = data([3, 4]);
    const b = data([3, 2]);
    await same('concat grad', () => tf.grads((p: tf.Tensor, q: tf.Tensor) => sumOf(tf.concat([p, q], 1)))([a(), b()]));
  });

  it('unsortedSegmentSum, including ids outside the range', async () => {
    const x = data([6, 3]);
    await same('segment sum', () => tf.unsortedSegmentSum(x(), tf.tensor1d([0, 2, 0, 1, 2, 2], 'int32'), 4));
    const v = data([6]);
    await same('segment sum 1-D', () => tf.unsortedSegmentSum(v(), tf.tensor1d([1, 1, 0, 0, 5, 3], 'int32'), 4));
    await same('segment sum grad', () => tf.grad((t: tf.Tensor) => sumOf(tf.unsortedSegmentSum(t, tf.tensor1d([0, 2, 0, 1, 2, 2], 'int32'), 3)))(x()));
  });

  it('trains a small MLP with Adam to the same weights as cpu', async () => {
    const init = [data([8, 16]), data([16]), data([16, 4]), data([4])];
    const xs = data([32, 8]);
    const ys = data([32, 4]);
    const train = () => {
      const vars = init.map((f) => tf.variable(f()));
      const [w1, b1, w2, b2] = vars as [tf.Variable, tf.Variable, tf.Variable, tf.Variable];
      const opt = tf.train.adam(0.01);
      for (let step = 0; step < 5; step++) {
        opt.minimize(() => tf.losses.meanSquaredError(ys(), tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(xs(), w1), b1)), w2), b2)) as tf.Scalar);
      }
      const out = vars.map((v) => v.clone());
      opt.dispose();
      for (const v of vars) v.dispose();
      return out;
    };
    await same('adam mlp', train, 1e-4);
  });
});

describe('kiln-native unavailable', () => {
  // @kiln/native is a workspace devDependency, so here it is always installed: the only
  // acceptable reasons for its absence are a failed/absent compile or an explicit opt-out.
  it.runIf(!registration.ok)('is unavailable only because the addon could not be built', () => {
    const reason = registration.ok ? '' : registration.reason;
    expect(reason).toMatch(/build failed|not built|KILN_NATIVE=off|failed to load/);
  });

  it('reports why instead of throwing', async () => {
    expect(await registerNativeBackend({ KILN_NATIVE: 'off' })).toEqual({ ok: false, reason: 'disabled by KILN_NATIVE=off' });
  });

  it('makes initBackend fall back to cpu and report the reason', async () => {
    process.env.KILN_NATIVE = 'off';
    try {
      const choice = await initBackend({ env: {} });
      expect(choice.skipped.find((s) => s.name === 'kiln-native')?.reason).toBe('disabled by KILN_NATIVE=off');
      if (choice.name !== 'webgpu') expect(choice.name).toBe('cpu');
    } finally {
      delete process.env.KILN_NATIVE;
      await tf.setBackend('cpu');
    }
  });
});
