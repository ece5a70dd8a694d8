/**
 * SiLU and the SiLU gate of a Mamba block, each one pass forward and one backward instead
 * of the 2 + ~5 elementwise ops tfjs records for x·σ(x):
 *
 *   silu(x)        = x·σ(x)                 d/dx = σ(x)·(1 + x·(1 − σ(x)))
 *   siluGate(x, z) = x·silu(z)              (mamba's `y * F.silu(z)`)
 *
 * Any shape; the two inputs of the gate have the same shape.
 */
import { defineOp, type Op, type OpKernel, tf } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { nativeOps } from '../native.js';

type Tensor = tf.Tensor;
type NoAttrs = Record<string, never>;

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const siluGrad = (v: number) => {
  const s = sigmoid(v);
  return s * (1 + v * (1 - s));
};

function sameShape(op: string, ref: string, a: Tensor, name: string, b: Tensor | undefined): void {
  const t = requireTensor(op, name, b);
  requireFloat(op, name, t);
  if (t.shape.join() !== a.shape.join()) throw new Error(`${op}: '${name}' ${fmtShape(t.shape)} must have the shape of '${ref}' ${fmtShape(a.shape)}`);
}

function floatInput(op: string, name: string, t: Tensor | undefined): Tensor {
  const x = requireTensor(op, name, t);
  requireFloat(op, name, x);
  return x;
}

/** An elementwise host kernel: native when the addon has `nativeName`, else `host` per element. */
function elementwise(
  nativeName: 'siluForward' | 'siluBackward' | 'siluGateForward',
  names: readonly string[],
  host: (vals: Float32Array[], i: number) => number,
): OpKernel {
  return ({ inputs, backend }) => {
    const b = cpuBackend(backend);
    const info = inputInfo(inputs, names[0]!)!;
    const vals = names.map((n) => readF32(b, inputInfo(inputs, n))!);
    const out = nativeOutput(backend, vals[0]!.length);
    const native = nativeOps(backend, nativeName) as Record<string, (...args: Float32Array[]) => void> | undefined;
    if (native) native[nativeName]!(...vals, out);
    else for (let i = 0; i < out.length; i++) out[i] = host(vals, i);
    return b.makeTensorInfo([...info.shape], 'float32', out);
  };
}

/** dx = dy·silu'(x). */
export const siluBackwardOp: Op<'x' | 'dy', NoAttrs, Tensor> = defineOp<'x' | 'dy', NoAttrs, Tensor>({
  name: 'siluBackward',
  inputs: ['x', 'dy'] as const,
  nonDifferentiable: ['x', 'dy'],
  validate: ({ x, dy }) => sameShape('siluBackward', 'x', floatInput('siluBackward', 'x', x), 'dy', dy),
  reference: ({ x, dy }) =>
    tf.tidy(() => {
      const s = tf.sigmoid(x!);
      return tf.mul(dy!, tf.mul(s, tf.add(1, tf.mul(x!, tf.sub(1, s)))));
    }),
  kernels: hostKernels(elementwise('siluBackward', ['x', 'dy'], ([x, dy], i) => dy![i]! * siluGrad(x![i]!))),
});

export const siluOp: Op<'x', NoAttrs, Tensor> = defineOp<'x', NoAttrs, Tensor>({
  name: 'silu',
  inputs: ['x'] as const,
  validate: ({ x }) => void floatInput('silu', 'x', x),
  reference: ({ x }) => tf.tidy(() => tf.mul(x!, tf.sigmoid(x!))),
  kernels: hostKernels(elementwise('siluForward', ['x'], ([x], i) => x![i]! * sigmoid(x![i]!))),
  gradient: ({ inputs, dy }) => ({ x: siluBackwardOp({ x: inputs.x!, dy: dy[0]! }) }),
});

const gateBackwardCpu: OpKernel = ({ inputs, backend }) => {
  const b = cpuBackend(backend);
  const shape = [...inputInfo(inputs, 'x')!.shape];
  const [x, z, dy] = (['x', 'z', 'dy'] as const).map((n) => readF32(b, inputInfo(inputs, n))!) as [Float32Array, Float32Array, Float32Array];
  const dx = nativeOutput(backend, x.length);
  const dz = nativeOutput(backend, x.length);
  const native = nativeOps(backend, 'siluGateBackward');
  if (native) native.siluGateBackward(x, z, dy, dx, dz);
  else {
    for (let i = 0; i < x.length; i++) {
      dx[i] = dy[i]! * z[i]! * sigmoid(z[i]!);
      dz[i] = dy[i]! * x[i]! * siluGrad(z[i]!);
    }
  }
  return [b.makeTensorInfo(shape, 'float32', dx), b.makeTensorInfo(shape, 'float32', dz)];
};

/** [dx, dz] of x·silu(z) for the output cotangent dy. */
export const siluGateBackwardOp: Op<'x' | 'z' | 'dy', NoAttrs, Tensor[]> = defineOp<'x' | 'z' | 'dy', NoAttrs, Tensor[]>({
  name: 'siluGateBackward',
  inputs: ['x', 'z', 'dy'] as const,
  nonDifferentiable: ['x', 'z', 'dy'],
  validate: ({ x, z, dy }) => {
    const t = floatInput('siluGateBackward', 'x', x);
    sameShape('siluGateBackward', 'x', t, 'z', z);
    sameShape('siluGateBackward', 'x', t, 'dy', dy);
  },
  reference: ({ x, z, dy }) =>
    tf.tidy(() => {
      const s = tf.sigmoid(z!);
      const dSilu = tf.mul(s, tf.add(1, tf.mul(z!, tf.sub(1, s))));
      return [tf.mul(dy!, tf.mul(z!, s)), tf.mul(tf.mul(dy!, x!), dSilu)];
    }),
  kernels: hostKernels(gateBackwardCpu),
});

export const siluGateOp: Op<'x' | 'z', NoAttrs, Tensor> = defineOp<'x' | 'z', NoAttrs, Tensor>({
  name: 'siluGate',
  inputs: ['x', 'z'] as const,
  validate: ({ x, z }) => sameShape('siluGate', 'x', floatInput('siluGate', 'x', x), 'z', z),
  reference: ({ x, z }) => tf.tidy(() => tf.mul(x!, tf.mul(z!, tf.sigmoid(z!)))),
  kernels: hostKernels(elementwise('siluGateForward', ['x', 'z'], ([x, z], i) => x![i]! * z![i]! * sigmoid(z![i]!))),
  gradient: ({ inputs, dy }) => {
    const [dx, dz] = siluGateBackwardOp({ x: inputs.x!, z: inputs.z!, dy: dy[0]! });
    return { x: dx!, z: dz! };
  },
});

/** x·σ(x), differentiable. */
export function silu(x: Tensor): Tensor {
  return siluOp({ x });
}

/** x·silu(z) (the gate of a Mamba block), differentiable in both. */
export function siluGate(x: Tensor, z: Tensor): Tensor {
  return siluGateOp({ x, z });
}
