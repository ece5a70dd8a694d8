/**
 * `swiglu`: the SwiGLU activation of an expert MLP, Megatron's `glu` with SiLU on fc1's
 * output: h [rows, 2F] → silu(gate) · up [rows, F], gate = the first F columns, up = the
 * last F. One pass over h (tfjs's column split copies element by element and, with the
 * sigmoid and two products, made this activation cost as much as the expert GEMMs), and a
 * fused backward `swigluGrad`. Kernels: TypeScript loops (cpu), C++ (kiln-native), WGSL.
 */
import { defineOp, type Op, type OpKernel, tf } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireRank, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { nativeOps } from '../native.js';
import { swigluGradWgsl, swigluWgsl } from '../wgsl/moe.js';

type Tensor = tf.Tensor;

function checkH(op: string, h: Tensor | undefined): Tensor {
  const t = requireTensor(op, 'h', h);
  requireRank(op, 'h', t, 2, 'rows, 2·ffn');
  requireFloat(op, 'h', t);
  if (t.shape[1]! % 2 !== 0) throw new Error(`${op}: 'h' ${fmtShape(t.shape)} must have an even number of columns (gate and up halves)`);
  return t;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** The TypeScript loops of the CPU-memory backends (the native addon replaces them). */
export function swigluHost(h: Float32Array, rows: number, F: number): Float32Array {
  const out = new Float32Array(rows * F);
  for (let r = 0; r < rows; r++) {
    const base = r * 2 * F;
    for (let j = 0; j < F; j++) {
      const g = h[base + j]!;
      out[r * F + j] = g * sigmoid(g) * h[base + F + j]!;
    }
  }
  return out;
}

export function swigluGradHost(h: Float32Array, dy: Float32Array, rows: number, F: number): Float32Array {
  const out = new Float32Array(rows * 2 * F);
  for (let r = 0; r < rows; r++) {
    const base = r * 2 * F;
    for (let j = 0; j < F; j++) {
      const g = h[base + j]!;
      const u = h[base + F + j]!;
      const s = sigmoid(g);
      const d = dy[r * F + j]!;
      out[base + j] = d * u * s * (1 + g * (1 - s));
      out[base + F + j] = d * g * s;
    }
  }
  return out;
}

const swigluCpu: OpKernel = ({ inputs, backend }) => {
  const b = cpuBackend(backend);
  const hi = inputInfo(inputs, 'h')!;
  const [rows, width] = hi.shape as [number, number];
  const F = width / 2;
  const h = readF32(b, hi)!;
  const native = nativeOps(backend, 'swiglu');
  if (native && F > 0) {
    const out = nativeOutput(backend, rows * F);
    native.swiglu(h, out, F);
    return b.makeTensorInfo([rows, F], 'float32', out);
  }
  return b.makeTensorInfo([rows, F], 'float32', swigluHost(h, rows, F));
};

const swigluGradCpu: OpKernel = ({ inputs, backend }) => {
  const b = cpuBackend(backend);
  const hi = inputInfo(inputs, 'h')!;
  const [rows, width] = hi.shape as [number, number];
  const F = width / 2;
  const h = readF32(b, hi)!;
  const dy = readF32(b, inputInfo(inputs, 'dy'))!;
  const native = nativeOps(backend, 'swigluGrad');
  if (native && F > 0) {
    const out = nativeOutput(backend, rows * width);
    native.swigluGrad(h, dy, out, F);
    return b.makeTensorInfo([rows, width], 'float32', out);
  }
  return b.makeTensorInfo([rows, width], 'float32', swigluGradHost(h, dy, rows, F));
};

/** Cotangent of h for output cotangent dy: gate half dy·up·silu'(gate), up half dy·silu(gate). */
export const swigluGradOp: Op<'h' | 'dy', Record<string, never>, Tensor> = defineOp<'h' | 'dy', Record<string, never>, Tensor>({
  name: 'swigluGrad',
  inputs: ['h', 'dy'] as const,
  nonDifferentiable: ['h', 'dy'],
  validate: ({ h, dy }) => {
    const t = checkH('swigluGrad', h);
    const d = requireTensor('swigluGrad', 'dy', dy);
    requireFloat('swigluGrad', 'dy', d);
    if (d.rank !== 2 || d.shape[0] !== t.shape[0] || d.shape[1]! * 2 !== t.shape[1]) {
      throw new Error(`swigluGrad: 'dy' ${fmtShape(d.shape)} must be [rows, ffn] for 'h' ${fmtShape(t.shape)}`);
    }
  },
  reference: ({ h, dy }) =>
    tf.tidy(() => {
      const [g, u] = tf.split(h!, 2, 1);
      const s = tf.sigmoid(g!);
      const dSilu = tf.mul(s, tf.add(1, tf.mul(g!, tf.sub(1, s))));
      return tf.concat([tf.mul(tf.mul(dy!, u!), dSilu), tf.mul(dy!, tf.mul(g!, s))], 1);
    }),
  kernels: { ...hostKernels(swigluGradCpu), webgpu: swigluGradWgsl },
});

export const swigluOp: Op<'h', Record<string, never>, Tensor> = defineOp<'h', Record<string, never>, Tensor>({
  name: 'swiglu',
  inputs: ['h'] as const,
  validate: ({ h }) => void checkH('swiglu', h),
  reference: ({ h }) =>
    tf.tidy(() => {
      const [g, u] = tf.split(h!, 2, 1);
      return tf.mul(tf.mul(g!, tf.sigmoid(g!)), u!);
    }),
  kernels: { ...hostKernels(swigluCpu), webgpu: swigluWgsl },
  gradient: ({ inputs, dy }) => ({ h: swigluGradOp({ h: inputs.h!, dy: dy[0]! }, {}) }),
});

/** h [rows, 2F] → silu(h[:, :F]) · h[:, F:] ([rows, F]); differentiable. */
export function swiglu(h: Tensor): Tensor {
  return swigluOp({ h }, {});
}

/** The cotangent of `swiglu`'s input h for its output cotangent dy (for hand-written backward passes). */
export function swigluBackward(h: Tensor, dy: Tensor): Tensor {
  return swigluGradOp({ h, dy }, {});
}
