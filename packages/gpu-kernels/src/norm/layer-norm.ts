/**
 * `layerNorm`: LayerNorm over the last axis (torch's `F.layer_norm(x, [C], γ, β, eps)`),
 * forward in one kernel and backward in one kernel:
 *
 *   x̂ = (x − mean) / √(var + eps)   (biased variance)      out = x̂·γ + β
 *   dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / √(var + eps)  with ĝ = dy·γ;  dγ = Σ dy·x̂;  dβ = Σ dy
 *
 * Shapes: x [..., C]; gamma, beta [C] (each optional). The backward recomputes the row
 * statistics rather than keeping them from the forward.
 */
import { defineOp, type Op, type OpKernel, tf, vjp } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireShape, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { EMPTY_F32, nativeOps } from '../native.js';

type Tensor = tf.Tensor;
type LnInput = 'x' | 'gamma' | 'beta';
type LnGradInput = 'x' | 'gamma' | 'dy';
export type LayerNormAttrs = { eps?: number };

const DEFAULT_EPS = 1e-5;

function epsOf(attrs: LayerNormAttrs): number {
  return attrs.eps ?? DEFAULT_EPS;
}

function validateLn(op: string, inputs: Partial<Record<LnInput | 'dy', Tensor>>, attrs: LayerNormAttrs): void {
  const x = requireTensor(op, 'x', inputs.x);
  if (x.rank < 1) throw new Error(`${op}: 'x' must have at least one axis, got shape ${fmtShape(x.shape)}`);
  const C = x.shape[x.rank - 1]!;
  if (C < 1) throw new Error(`${op}: 'x' ${fmtShape(x.shape)} must have at least one channel`);
  for (const name of ['gamma', 'beta'] as const) if (inputs[name]) requireShape(op, name, inputs[name], [C], 'C, the last axis of x');
  if (inputs.dy) requireShape(op, 'dy', inputs.dy, x.shape, `the shape of x ${fmtShape(x.shape)}`);
  for (const name of ['x', 'gamma', 'beta', 'dy'] as const) {
    const t = inputs[name];
    if (t) requireFloat(op, name, t);
  }
  const eps = epsOf(attrs);
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) throw new Error(`${op}: 'eps' must be a finite number > 0, got ${String(eps)}`);
}

/** The composition: moments over the last axis, normalise, scale and shift. */
function lnReference({ x, gamma, beta }: Partial<Record<LnInput, Tensor>>, attrs: LayerNormAttrs): Tensor {
  return tf.tidy(() => {
    const axis = x!.rank - 1;
    const { mean, variance } = tf.moments(x!, axis, true);
    let y: Tensor = tf.mul(tf.sub(x!, mean), tf.rsqrt(tf.add(variance, epsOf(attrs))));
    if (gamma) y = tf.mul(y, gamma);
    if (beta) y = tf.add(y, beta);
    return y;
  });
}

/** Row statistics as the kernels compute them (double sums, two passes). */
function rowStats(x: Float32Array, o: number, C: number, eps: number): [number, number] {
  let s = 0;
  for (let c = 0; c < C; c++) s += x[o + c]!;
  const mean = Math.fround(s / C);
  let v = 0;
  for (let c = 0; c < C; c++) {
    const d = Math.fround(x[o + c]! - mean);
    v += d * d;
  }
  return [mean, Math.fround(1 / Math.sqrt(v / C + Math.fround(eps)))];
}

const lnForwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const info = inputInfo(inputs, 'x')!;
  const C = info.shape[info.shape.length - 1]!;
  const eps = epsOf(attrs as unknown as LayerNormAttrs);
  const x = readF32(b, info)!;
  const gamma = readF32(b, inputInfo(inputs, 'gamma'));
  const beta = readF32(b, inputInfo(inputs, 'beta'));
  const out = nativeOutput(backend, x.length);
  const native = nativeOps(backend, 'layerNormForward');
  if (native) native.layerNormForward(x, gamma ?? EMPTY_F32, beta ?? EMPTY_F32, out, C, eps);
  else {
    for (let o = 0; o < x.length; o += C) {
      const [mean, rstd] = rowStats(x, o, C, eps);
      for (let c = 0; c < C; c++) {
        let v = (x[o + c]! - mean) * rstd;
        if (gamma) v *= gamma[c]!;
        if (beta) v += beta[c]!;
        out[o + c] = v;
      }
    }
  }
  return b.makeTensorInfo([...info.shape], 'float32', out);
};

const lnBackwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const info = inputInfo(inputs, 'x')!;
  const C = info.shape[info.shape.length - 1]!;
  const eps = epsOf(attrs as unknown as LayerNormAttrs);
  const x = readF32(b, info)!;
  const gamma = readF32(b, inputInfo(inputs, 'gamma'));
  const dy = readF32(b, inputInfo(inputs, 'dy'))!;
  const dx = nativeOutput(backend, x.length);
  const dgamma = new Float32Array(C);
  const dbeta = new Float32Array(C);
  const native = nativeOps(backend, 'layerNormBackward');
  if (native) native.layerNormBackward(x, gamma ?? EMPTY_F32, dy, dx, dgamma, dbeta, C, eps);
  else {
    const xhat = new Float32Array(C);
    const ghat = new Float32Array(C);
    const accG = new Float64Array(C);
    const accB = new Float64Array(C);
    for (let o = 0; o < x.length; o += C) {
      const [mean, rstd] = rowStats(x, o, C, eps);
      let sg = 0;
      let sgx = 0;
      for (let c = 0; c < C; c++) {
        xhat[c] = (x[o + c]! - mean) * rstd;
        ghat[c] = gamma ? dy[o + c]! * gamma[c]! : dy[o + c]!;
        sg += ghat[c]!;
        sgx += ghat[c]! * xhat[c]!;
        accG[c]! += dy[o + c]! * xhat[c]!;
        accB[c]! += dy[o + c]!;
      }
      for (let c = 0; c < C; c++) dx[o + c] = rstd * (ghat[c]! - sg / C - (xhat[c]! * sgx) / C);
    }
    dgamma.set(accG);
    dbeta.set(accB);
  }
  return [b.makeTensorInfo([...info.shape], 'float32', dx), b.makeTensorInfo([C], 'float32', dgamma), b.makeTensorInfo([C], 'float32', dbeta)];
};

/** [dx, dgamma, dbeta] for the output cotangent dy (dgamma, dbeta returned even when absent). */
export const layerNormBackwardOp: Op<LnGradInput, LayerNormAttrs, Tensor[]> = defineOp<LnGradInput, LayerNormAttrs, Tensor[]>({
  name: 'layerNormBackward',
  inputs: ['x', 'gamma', 'dy'] as const,
  nonDifferentiable: ['x', 'gamma', 'dy'],
  validate: (inputs, attrs) => {
    validateLn('layerNormBackward', inputs, attrs);
    requireTensor('layerNormBackward', 'dy', inputs.dy);
  },
  reference: ({ x, gamma, dy }, attrs) =>
    tf.tidy(() => {
      const C = x!.shape[x!.rank - 1]!;
      const g = gamma ?? tf.ones([C]);
      return vjp((xs, gs, bs) => [lnReference({ x: xs!, gamma: gs!, beta: bs! }, attrs)], [x!, g, tf.zeros([C])], [dy!]);
    }),
  kernels: hostKernels(lnBackwardCpu),
});

export const layerNormOp: Op<LnInput, LayerNormAttrs, Tensor> = defineOp<LnInput, LayerNormAttrs, Tensor>({
  name: 'layerNorm',
  inputs: ['x', 'gamma', 'beta'] as const,
  validate: (inputs, attrs) => validateLn('layerNorm', inputs, attrs),
  reference: lnReference,
  kernels: hostKernels(lnForwardCpu),
  gradient: ({ inputs, dy, attrs }) => {
    const grads = inputs.gamma ? { x: inputs.x!, gamma: inputs.gamma, dy: dy[0]! } : { x: inputs.x!, dy: dy[0]! };
    const [dx, dgamma, dbeta] = layerNormBackwardOp(grads, attrs);
    const result: Partial<Record<LnInput, Tensor>> = { x: dx! };
    if (inputs.gamma) result.gamma = dgamma!;
    else dgamma!.dispose();
    if (inputs.beta) result.beta = dbeta!;
    else dbeta!.dispose();
    return result;
  },
});

/** LayerNorm of x [..., C] over its last axis, scaled by gamma [C] and shifted by beta [C] when given. */
export function layerNorm(x: Tensor, gamma?: Tensor, beta?: Tensor, eps = DEFAULT_EPS): Tensor {
  const inputs: Partial<Record<LnInput, Tensor>> = { x };
  if (gamma) inputs.gamma = gamma;
  if (beta) inputs.beta = beta;
  return layerNormOp(inputs, { eps });
}
