/**
 * `causalConv1d`: the short causal depthwise convolution of a Mamba block, with its SiLU
 * fused (mamba's `causal_conv1d_fn(..., activation="silu")`), on sequence features laid out
 * channels last:
 *
 *   a[r, t, c] = bias[c] + Σ_{k<K} weight[k, c] · x[r, t − (K−1) + k, c]   (x = 0 before t = 0)
 *   out = silu(a)  (activation 'silu', the default)  or  a  (activation 'none')
 *
 * Shapes: x, out [rows, L, C]; weight [K, C]; bias [C] (optional). The weight is the
 * transpose of mamba's [C, K]: position k multiplies the input K−1−k steps back. The
 * gradient is an op of its own (`causalConv1dBackward`), one pass for dx and one for the
 * weight and bias, recomputing the pre-activation instead of keeping it.
 */
import { defineOp, type Op, type OpKernel, tf, vjp } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireRank, requireShape, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { EMPTY_F32, nativeOps } from '../native.js';

type Tensor = tf.Tensor;

export type ConvActivation = 'silu' | 'none';
export type CausalConvAttrs = { activation?: ConvActivation };
type ConvInput = 'x' | 'weight' | 'bias';
type ConvGradInput = ConvInput | 'dy';

const OP = 'causalConv1d';

interface ConvDims {
  rows: number;
  L: number;
  C: number;
  K: number;
}

function activationOf(attrs: CausalConvAttrs): ConvActivation {
  return attrs.activation ?? 'silu';
}

function validateConv(op: string, inputs: Partial<Record<ConvGradInput, Tensor>>, attrs: CausalConvAttrs): ConvDims {
  const x = requireTensor(op, 'x', inputs.x);
  requireRank(op, 'x', x, 3, 'rows, L, C');
  const [rows, L, C] = x.shape as [number, number, number];
  const w = requireTensor(op, 'weight', inputs.weight);
  requireRank(op, 'weight', w, 2, 'K, C');
  if (w.shape[1] !== C || w.shape[0]! < 1) throw new Error(`${op}: 'weight' must have shape [K ≥ 1, C=${C}] to match x ${fmtShape(x.shape)}, got ${fmtShape(w.shape)}`);
  if (inputs.bias) requireShape(op, 'bias', inputs.bias, [C], 'C');
  if (inputs.dy) requireShape(op, 'dy', inputs.dy, [rows, L, C], `rows, L, C as x ${fmtShape(x.shape)}`);
  for (const name of ['x', 'weight', 'bias', 'dy'] as const) {
    const t = inputs[name];
    if (t) requireFloat(op, name, t);
  }
  const act = activationOf(attrs);
  if (act !== 'silu' && act !== 'none') throw new Error(`${op}: 'activation' must be 'silu' or 'none', got ${String(act)}`);
  return { rows, L, C, K: w.shape[0]! };
}

/** The composition: K shifted copies of x, each scaled by its row of the weight, summed. */
function convReference({ x, weight, bias }: Partial<Record<ConvInput, Tensor>>, attrs: CausalConvAttrs): Tensor {
  return tf.tidy(() => {
    const [rows, L, C] = x!.shape as [number, number, number];
    const K = weight!.shape[0]!;
    const padded = K > 1 ? tf.pad(x!, [[0, 0], [K - 1, 0], [0, 0]]) : x!;
    let a: Tensor = bias ? tf.add(tf.zeros([rows, L, C]), bias) : tf.zeros([rows, L, C]);
    for (let k = 0; k < K; k++) {
      const wk = tf.reshape(tf.slice(weight!, [k, 0], [1, C]), [1, 1, C]);
      a = tf.add(a, tf.mul(tf.slice(padded, [0, k, 0], [rows, L, C]), wk));
    }
    return activationOf(attrs) === 'silu' ? tf.mul(a, tf.sigmoid(a)) : a;
  });
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Pre-activations a for every position (the forward's inner loop, shared by the backward). */
function preActivation(x: Float32Array, w: Float32Array, bias: Float32Array | undefined, d: ConvDims): Float32Array {
  const { rows, L, C, K } = d;
  const a = new Float32Array(rows * L * C);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < L; t++) {
      const o = (r * L + t) * C;
      if (bias) for (let c = 0; c < C; c++) a[o + c] = bias[c]!;
      for (let k = Math.max(0, K - 1 - t); k < K; k++) {
        const xo = (r * L + t - (K - 1) + k) * C;
        for (let c = 0; c < C; c++) a[o + c]! += w[k * C + c]! * x[xo + c]!;
      }
    }
  }
  return a;
}

function convDimsOf(inputs: tf.NamedTensorInfoMap): ConvDims {
  const [rows, L, C] = inputInfo(inputs, 'x')!.shape as [number, number, number];
  return { rows, L, C, K: inputInfo(inputs, 'weight')!.shape[0]! };
}

const convForwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const d = convDimsOf(inputs);
  const silu = activationOf(attrs as unknown as CausalConvAttrs) === 'silu';
  const x = readF32(b, inputInfo(inputs, 'x'))!;
  const w = readF32(b, inputInfo(inputs, 'weight'))!;
  const bias = readF32(b, inputInfo(inputs, 'bias'));
  const shape = [d.rows, d.L, d.C];
  const native = nativeOps(backend, 'causalConv1dForward');
  if (native) {
    const out = nativeOutput(backend, d.rows * d.L * d.C);
    native.causalConv1dForward(x, w, bias ?? EMPTY_F32, out, d.rows, d.L, d.C, d.K, silu);
    return b.makeTensorInfo(shape, 'float32', out);
  }
  const a = preActivation(x, w, bias, d);
  if (silu) for (let i = 0; i < a.length; i++) a[i] = a[i]! * sigmoid(a[i]!);
  return b.makeTensorInfo(shape, 'float32', a);
};

const convBackwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const d = convDimsOf(inputs);
  const { rows, L, C, K } = d;
  const silu = activationOf(attrs as unknown as CausalConvAttrs) === 'silu';
  const x = readF32(b, inputInfo(inputs, 'x'))!;
  const w = readF32(b, inputInfo(inputs, 'weight'))!;
  const bias = readF32(b, inputInfo(inputs, 'bias'));
  const dy = readF32(b, inputInfo(inputs, 'dy'))!;
  const dx = nativeOutput(backend, rows * L * C);
  const dw = new Float32Array(K * C);
  const db = new Float32Array(C);
  const native = nativeOps(backend, 'causalConv1dBackward');
  if (native) {
    native.causalConv1dBackward(x, w, bias ?? EMPTY_F32, dy, dx, dw, db, rows, L, C, K, silu);
  } else {
    let g = dy;
    if (silu) {
      g = preActivation(x, w, bias, d);
      for (let i = 0; i < g.length; i++) {
        const s = sigmoid(g[i]!);
        g[i] = dy[i]! * s * (1 + g[i]! * (1 - s));
      }
    }
    dx.fill(0);
    for (let r = 0; r < rows; r++) {
      for (let t = 0; t < L; t++) {
        const p = (r * L + t) * C;
        for (let c = 0; c < C; c++) db[c]! += g[p + c]!;
        for (let k = 0; k < K; k++) {
          const back = t - (K - 1) + k; // the input position weight k reads at step t
          if (back < 0) continue;
          const q = (r * L + back) * C;
          for (let c = 0; c < C; c++) {
            dw[k * C + c]! += g[p + c]! * x[q + c]!;
            dx[q + c]! += w[k * C + c]! * g[p + c]!;
          }
        }
      }
    }
  }
  return [b.makeTensorInfo([rows, L, C], 'float32', dx), b.makeTensorInfo([K, C], 'float32', dw), b.makeTensorInfo([C], 'float32', db)];
};

/** [dx, dweight, dbias] for the output cotangent dy (dbias is returned even without a bias). */
export const causalConv1dBackwardOp: Op<ConvGradInput, CausalConvAttrs, Tensor[]> = defineOp<ConvGradInput, CausalConvAttrs, Tensor[]>({
  name: 'causalConv1dBackward',
  inputs: ['x', 'weight', 'bias', 'dy'] as const,
  nonDifferentiable: ['x', 'weight', 'bias', 'dy'],
  validate: (inputs, attrs) => {
    validateConv('causalConv1dBackward', inputs, attrs);
    requireTensor('causalConv1dBackward', 'dy', inputs.dy);
  },
  reference: ({ x, weight, bias, dy }, attrs) =>
    tf.tidy(() => {
      const b = bias ?? tf.zeros([x!.shape[2]!]);
      return vjp((xs, ws, bs) => [convReference({ x: xs!, weight: ws!, bias: bs! }, attrs)], [x!, weight!, b], [dy!]);
    }),
  kernels: hostKernels(convBackwardCpu),
});

export const causalConv1dOp: Op<ConvInput, CausalConvAttrs, Tensor> = defineOp<ConvInput, CausalConvAttrs, Tensor>({
  name: OP,
  inputs: ['x', 'weight', 'bias'] as const,
  validate: (inputs, attrs) => void validateConv(OP, inputs, attrs),
  reference: convReference,
  kernels: hostKernels(convForwardCpu),
  gradient: ({ inputs, dy, attrs }) => {
    const [dx, dw, db] = causalConv1dBackwardOp({ ...inputs, dy: dy[0]! }, attrs);
    if (inputs.bias) return { x: dx!, weight: dw!, bias: db! };
    db!.dispose();
    return { x: dx!, weight: dw! };
  },
});

/**
 * Causal depthwise convolution along axis 1 of x [rows, L, C] with weight [K, C] and an
 * optional bias [C], followed by SiLU unless `activation` is 'none'. Differentiable in x,
 * weight and bias.
 */
export function causalConv1d(x: Tensor, weight: Tensor, bias?: Tensor, activation: ConvActivation = 'silu'): Tensor {
  return causalConv1dOp(bias ? { x, weight, bias } : { x, weight }, { activation });
}
