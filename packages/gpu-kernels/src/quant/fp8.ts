/**
 * `castFp8`: quantize to FP8 (E4M3 or E5M2) with a per-tensor scale and return the
 * dequantized values: y = round_fmt(x · scale) / scale. Nearest-even or stochastic
 * rounding, saturating at the format's max; straight-through gradient.
 */
import { defineOp, type OpKernel, tf } from '@kiln/tensor';
import { hostKernels } from '../host-kernels.js';
import { cpuBackend, inputInfo, readF32 } from '../backend-data.js';
import { nativeOps } from '../native.js';
import { castWgsl } from '../wgsl/quant.js';
import { fmtShape, requireFiniteScale, requireFloat, requireTensor } from '../checks.js';
import { untaped } from '../nested-grad.js';
import { FP8_FORMATS, type Fp8Format, hashUniform, roundToFormat } from './minifloat.js';
import { noiseTensor, roundToFormatRef, straightThrough } from './round-ref.js';

type Tensor = tf.Tensor;
export type CastAttrs = { format: Fp8Format; stochastic?: boolean; seed?: number };

const OP = 'castFp8';

function validate(inputs: Partial<Record<'x' | 'scale', Tensor>>, attrs: CastAttrs): void {
  const x = requireTensor(OP, 'x', inputs.x);
  requireFloat(OP, 'x', x);
  const scale = requireTensor(OP, 'scale', inputs.scale);
  requireFloat(OP, 'scale', scale);
  if (scale.size !== 1) throw new Error(`${OP}: 'scale' must hold one value, got shape ${fmtShape(scale.shape)}`);
  // A scale tensor's value is checked by the kernels that hold it on the host (cpu,
  // kiln-native); reading it here would cost a device read per cast on a GPU.
  if (!(attrs.format in FP8_FORMATS)) throw new Error(`${OP}: 'format' must be 'e4m3' or 'e5m2', got '${String(attrs.format)}'`);
  if (attrs.stochastic && !Number.isInteger(attrs.seed)) throw new Error(`${OP}: stochastic rounding needs an integer 'seed', got ${String(attrs.seed)}`);
}

export function castHost(x: Float32Array, scale: number, attrs: CastAttrs): Float32Array {
  const f = FP8_FORMATS[attrs.format];
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.fround(x[i]! * scale);
    const q = roundToFormat(v, f, attrs.stochastic ? hashUniform(attrs.seed!, i) : undefined);
    out[i] = q / scale;
  }
  return out;
}

export const castCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const x = inputInfo(inputs, 'x')!;
  const scale = readF32(b, inputInfo(inputs, 'scale'))![0]!;
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`${OP}: 'scale' must be a finite number > 0, got ${scale} (a tensor of shape ${fmtShape(inputInfo(inputs, 'scale')!.shape)})`);
  const a = attrs as unknown as CastAttrs;
  const native = nativeOps(backend, 'castFp8');
  if (native) {
    const out = new Float32Array(x.shape.reduce((p, q) => p * q, 1));
    native.castFp8(readF32(b, x)!, out, scale, a.format === 'e4m3' ? 0 : 1, Boolean(a.stochastic), a.seed ?? 0);
    return b.makeTensorInfo([...x.shape], 'float32', out);
  }
  return b.makeTensorInfo([...x.shape], 'float32', castHost(readF32(b, x)!, scale, attrs as unknown as CastAttrs));
};

export const castFp8Op = defineOp<'x' | 'scale', CastAttrs, Tensor>({
  name: OP,
  inputs: ['x', 'scale'] as const,
  nonDifferentiable: ['scale'],
  validate,
  reference: ({ x, scale }, attrs) => {
    const s = tf.reshape(scale!, []);
    const noise = attrs.stochastic ? noiseTensor([...x!.shape], attrs.seed!) : undefined;
    const q = untaped(() => tf.div(roundToFormatRef(tf.mul(x!, s), FP8_FORMATS[attrs.format], noise), s));
    return straightThrough(x!, q);
  },
  kernels: { ...hostKernels(castCpu), webgpu: castWgsl },
  gradient: ({ dy }) => ({ x: dy[0]! }),
});

export interface CastFp8Options {
  /**
   * Multiplier into the format's range. A number must be finite and > 0. Absent: current
   * (per-tensor) scaling, max_fmt / amax(x), or 1 when x is all zeros.
   */
  scale?: number | Tensor;
  /** Round stochastically (unbiased) instead of to nearest-even; needs `seed`. */
  stochastic?: boolean;
  seed?: number;
}

/**
 * Dequantized values (x's shape) and the scale used (a scalar tensor). The third argument
 * is the scale itself (`castFp8(x, 'e4m3', 2)`) or an options object.
 */
export function castFp8(x: Tensor, format: Fp8Format, scaleOrOptions: number | Tensor | CastFp8Options = {}): { values: Tensor; scale: Tensor } {
  const options: CastFp8Options =
    typeof scaleOrOptions === 'number' || scaleOrOptions instanceof tf.Tensor ? { scale: scaleOrOptions } : scaleOrOptions;
  if (!(format in FP8_FORMATS)) throw new Error(`${OP}: 'format' must be 'e4m3' or 'e5m2', got '${String(format)}'`);
  let scale: Tensor;
  if (typeof options.scale === 'number') scale = tf.scalar(requireFiniteScale(OP, 'scale', options.scale));
  else if (options.scale) scale = options.scale;
  else {
    const amax = tf.max(tf.abs(x));
    scale = tf.where(tf.greater(amax, 0), tf.div(FP8_FORMATS[format].max, amax), tf.onesLike(amax));
  }
  const attrs: CastAttrs = { format };
  if (options.stochastic) {
    attrs.stochastic = true;
    attrs.seed = options.seed as number;
  }
  return { values: castFp8Op({ x, scale: tf.reshape(scale, [1]) }, attrs), scale: tf.reshape(scale, []) };
}
