import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backends.js';
import { defineOp, getOp, listOps, type OpKernel } from './ops.js';
import { createRng } from './rng.js';
import { webGpuAvailable } from './test-support.js';
import { tf } from './tf.js';
import { runWgsl } from './wgsl.js';

const hasWebGpu = await webGpuAvailable();

interface CpuBackendLike {
  readSync(dataId: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo;
}

let cpuKernelCalls = 0;
let webgpuKernelCalls = 0;

/** Mamba's output gate, y = x · z · sigmoid(z): a real small op with a kernel on two backends. */
const siluGateCpu: OpKernel = ({ inputs, backend }) => {
  cpuKernelCalls++;
  const b = backend as unknown as CpuBackendLike;
  const x = b.readSync((inputs.x as tf.TensorInfo).dataId);
  const z = b.readSync((inputs.z as tf.TensorInfo).dataId);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = (x[i]! * z[i]!) / (1 + Math.exp(-z[i]!));
  return b.makeTensorInfo([...(inputs.x as tf.TensorInfo).shape], 'float32', out);
};

const siluGateWebGpu: OpKernel = ({ inputs, backend }) => {
  webgpuKernelCalls++;
  const x = inputs.x as tf.TensorInfo;
  const z = inputs.z as tf.TensorInfo;
  return runWgsl(
    backend,
    {
      key: 'test_silu_gate',
      variableNames: ['X', 'Z'],
      outputShape: [...x.shape],
      userCode: `
        fn main(index : i32) {
          if (index < uniforms.size) {
            let x = getXByOutputIndex(index);
            let z = getZByOutputIndex(index);
            setOutputAtIndex(index, x * z / (1.0 + exp(-z)));
          }
        }`,
    },
    [x, z],
  );
};

const siluGate = defineOp({
  name: 'testSiluGate',
  inputs: ['x', 'z'] as const,
  validate: ({ x, z }) => {
    if (!x || !z) throw new Error('testSiluGate: x and z are required');
    if (x.shape.join() !== z.shape.join()) throw new Error(`testSiluGate: x [${x.shape}] and z [${z.shape}] differ`);
  },
  reference: ({ x, z }) => tf.mul(x!, tf.mul(z!, tf.sigmoid(z!))),
  kernels: { cpu: siluGateCpu, webgpu: siluGateWebGpu },
  // No gradient declared: the kernel path differentiates the reference (its VJP).
});

/** Two outputs, a declared gradient, and a kernel only on a backend that is not active. */
const scaleShift = defineOp<'x', { scale: number; shift: number }, tf.Tensor[]>({
  name: 'testScaleShift',
  inputs: ['x'] as const,
  reference: ({ x }, { scale, shift }) => [tf.mul(x!, scale), tf.add(x!, shift)],
  kernels: {
    cpu: ({ inputs, backend, attrs }) => {
      const b = backend as unknown as CpuBackendLike;
      const x = b.readSync((inputs.x as tf.TensorInfo).dataId);
      const { scale, shift } = attrs as unknown as { scale: number; shift: number };
      const shape = [...(inputs.x as tf.TensorInfo).shape];
      return [b.makeTensorInfo(shape, 'float32', x.map((v) => v * scale)), b.makeTensorInfo(shape, 'float32', x.map((v) => v + shift))];
    },
  },
  gradient: ({ dy, attrs }) => ({ x: tf.add(tf.mul(dy[0]!, attrs.scale), dy[1]!) }),
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;
}

async function maxAbsDiffAsync(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = await Promise.all([a.data(), b.data()]);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

describe('defineOp on cpu', () => {
  beforeAll(async () => {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
  });

  it('runs the registered kernel and matches the reference', () => {
    const rng = createRng(1);
    const x = rng.normal([3, 5]);
    const z = rng.normal([3, 5]);
    const before = cpuKernelCalls;
    expect(siluGate.hasKernel()).toBe(true);
    const y = siluGate({ x, z });
    expect(cpuKernelCalls).toBe(before + 1);
    expect(maxAbsDiff(y, siluGate.reference({ x, z }))).toBeLessThan(1e-6);
  });

  it('gives kernel-path gradients equal to the reference and to finite differences', () => {
    const rng = createRng(2);
    const x = rng.normal([7]);
    const z = rng.normal([7]);
    const w = rng.normal([7]);
    const loss = (f: typeof siluGate) => (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(f({ x: a, z: b }) as tf.Tensor, w));
    const before = cpuKernelCalls;
    const [gx, gz] = tf.grads(loss(siluGate))([x, z]);
    expect(cpuKernelCalls).toBeGreaterThan(before);
    const [rx, rz] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(siluGate.reference({ x: a, z: b }), w)))([x, z]);
    expect(maxAbsDiff(gx!, rx!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(gz!, rz!)).toBeLessThan(1e-5);
    // Central differences on z, in float64 from the kernel's own forward pass.
    const eps = 1e-2;
    const zs = Array.from(z.dataSync());
    const xs = x.dataSync();
    const ws = w.dataSync();
    const f = (zz: number[]) => zz.reduce((s, zi, i) => s + (ws[i]! * xs[i]! * zi) / (1 + Math.exp(-zi)), 0);
    const numeric = zs.map((_, i) => {
      const up = [...zs];
      const down = [...zs];
      up[i]! += eps;
      down[i]! -= eps;
      return (f(up) - f(down)) / (2 * eps);
    });
    const analytic = Array.from(gz!.dataSync());
    for (const [i, n] of numeric.entries()) expect(analytic[i]).toBeCloseTo(n, 3);
  });

  it('supports several outputs with a declared gradient, zero-filling unused ones', () => {
    const x = tf.tensor([1, -2, 3]);
    const [a, b] = scaleShift({ x }, { scale: 3, shift: 10 });
    expect(Array.from(a!.dataSync())).toEqual([3, -6, 9]);
    expect(Array.from(b!.dataSync())).toEqual([11, 8, 13]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(scaleShift({ x: v }, { scale: 3, shift: 10 })[0]!))(x);
    expect(Array.from(g.dataSync())).toEqual([3, 3, 3]);
    const g2 = tf.grad((v: tf.Tensor) => tf.add(tf.sum(scaleShift({ x: v }, { scale: 3, shift: 0 })[0]!), tf.sum(scaleShift({ x: v }, { scale: 3, shift: 0 })[1]!)))(x);
    expect(Array.from(g2.dataSync())).toEqual([4, 4, 4]);
  });

  it('falls back to the differentiable reference where no kernel is registered', () => {
    let refCalls = 0;
    const onlyGpu = defineOp({
      name: 'testOnlyGpuSquare',
      inputs: ['x'] as const,
      reference: ({ x }) => {
        refCalls++;
        return tf.square(x!);
      },
      kernels: { webgpu: siluGateWebGpu },
    });
    expect(onlyGpu.hasKernel('cpu')).toBe(false);
    const g = tf.grad((v: tf.Tensor) => tf.sum(onlyGpu({ x: v })))(tf.tensor([1, 2, 3]));
    expect(Array.from(g.dataSync())).toEqual([2, 4, 6]);
    expect(refCalls).toBe(1);
  });

  it('rejects unknown inputs, invalid shapes and duplicate names with clear errors', () => {
    expect(() => siluGate({ x: tf.ones([2]), z: tf.ones([3]) })).toThrow(/x \[2\] and z \[3\] differ/);
    expect(() => siluGate({ x: tf.ones([2]), w: tf.ones([2]) } as never)).toThrow(/unknown input 'w'; inputs are x, z/);
    expect(() => defineOp({ name: 'testSiluGate', inputs: ['x'], reference: ({ x }) => x! })).toThrow(/already defined/);
    expect(listOps()).toContain('testSiluGate');
    expect(getOp('testSiluGate')?.kernelName).toBe('KilnTestSiluGate');
  });

  it('can add a kernel later for a backend', () => {
    const late = defineOp({ name: 'testLateKernel', inputs: ['x'] as const, reference: ({ x }) => tf.neg(x!) });
    expect(late.hasKernel('cpu')).toBe(false);
    late.registerKernel('cpu', ({ inputs, backend }) => {
      const b = backend as unknown as CpuBackendLike;
      return b.makeTensorInfo([...(inputs.x as tf.TensorInfo).shape], 'float32', b.readSync((inputs.x as tf.TensorInfo).dataId).map((v) => -v));
    });
    expect(late.hasKernel('cpu')).toBe(true);
    expect(Array.from(late({ x: tf.tensor([1, 2]) }).dataSync())).toEqual([-1, -2]);
  });
});

describe.skipIf(!hasWebGpu)('defineOp on webgpu', () => {
  beforeAll(async () => {
    await initBackend({ env: { KILN_BACKEND: 'webgpu' } });
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it('runs the WGSL kernel, matching the reference forward and backward', async () => {
    const rng = createRng(3);
    const x = rng.normal([4, 33]);
    const z = rng.normal([4, 33]);
    const w = rng.normal([4, 33]);
    const before = webgpuKernelCalls;
    const y = siluGate({ x, z });
    expect(webgpuKernelCalls).toBe(before + 1);
    expect(await maxAbsDiffAsync(y, siluGate.reference({ x, z }))).toBeLessThan(1e-5);
    const [gx, gz] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(siluGate({ x: a, z: b }), w)))([x, z]);
    const [rx, rz] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(siluGate.reference({ x: a, z: b }), w)))([x, z]);
    expect(await maxAbsDiffAsync(gx!, rx!)).toBeLessThan(1e-4);
    expect(await maxAbsDiffAsync(gz!, rz!)).toBeLessThan(1e-4);
  });
});
