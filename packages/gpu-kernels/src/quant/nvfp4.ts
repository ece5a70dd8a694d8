/**
 * `quantizeNvfp4`: NVFP4 (docs/reference.md, "Minifloats"). E2M1 elements in 16-element blocks (1×16 along the
 * last axis, or 16×16 tiles for weights), each block with an E4M3 scale, plus one FP32
 * tensor scale:
 *   s_global = amax / (448 · 6),   s_block = e4m3((block_amax / 6) / s_global),
 *   x ≈ e2m1(x / (s_block · s_global)) · s_block · s_global.
 * Returns the dequantized values, the decoded block scales and the global scale. An all-zero
 * tensor gets s_global = 1; a block whose scale rounds to 0 quantizes to 0.
 */
import { defineOp, type OpKernel, tf } from '@kiln/tensor';
import { hostKernels } from '../host-kernels.js';
import { cpuBackend, inputInfo, readF32 } from '../backend-data.js';
import { nativeOps } from '../native.js';
import { nvfp4Wgsl } from '../wgsl/quant.js';
import { type BlockShape, blockLayout } from './block-layout.js';
import { fmtShape, requireFloat, requireTensor } from '../checks.js';
import { untaped } from '../nested-grad.js';
import { E2M1, E4M3, hashUniform, roundToFormat } from './minifloat.js';
import { noiseTensor, roundToFormatRef, straightThrough } from './round-ref.js';

type Tensor = tf.Tensor;
export type { BlockShape } from './block-layout.js';
export type Nvfp4Attrs = { blockShape?: BlockShape; stochastic?: boolean; seed?: number };

const OP = 'quantizeNvfp4';
const FP4_MAX = 6;
const FP8_MAX = 448;

function validate(inputs: Partial<Record<'x', Tensor>>, attrs: Nvfp4Attrs): void {
  const x = requireTensor(OP, 'x', inputs.x);
  requireFloat(OP, 'x', x);
  const shape = attrs.blockShape ?? '1x16';
  if (shape !== '1x16' && shape !== '16x16') throw new Error(`${OP}: 'blockShape' must be '1x16' or '16x16', got '${String(shape)}'`);
  if (x.rank < 1 || x.shape[x.rank - 1]! % 16 !== 0) throw new Error(`${OP}: the last dimension of 'x' ${fmtShape(x.shape)} must be a multiple of 16`);
  if (shape === '16x16' && (x.rank !== 2 || x.shape[0]! % 16 !== 0)) {
    throw new Error(`${OP}: 16x16 blocks need 'x' of shape [rows, cols] with both multiples of 16, got ${fmtShape(x.shape)}`);
  }
  if (attrs.stochastic && !Number.isInteger(attrs.seed)) throw new Error(`${OP}: stochastic rounding needs an integer 'seed', got ${String(attrs.seed)}`);
}


export function nvfp4Host(x: Float32Array, shape: readonly number[], attrs: Nvfp4Attrs): { values: Float32Array; blockScales: Float32Array; globalScale: number } {
  const { blockOf, blocks } = blockLayout(shape, attrs.blockShape ?? '1x16');
  const bamax = new Float32Array(blocks);
  let amax = 0;
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]!);
    amax = Math.max(amax, a);
    const b = blockOf(i);
    bamax[b] = Math.max(bamax[b]!, a);
  }
  const sGlobal = amax > 0 ? Math.fround(amax / (FP8_MAX * FP4_MAX)) : 1;
  const blockScales = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) blockScales[b] = roundToFormat(Math.fround(Math.fround(bamax[b]! / FP4_MAX) / sGlobal), E4M3);
  const values = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const denom = Math.fround(blockScales[blockOf(i)]! * sGlobal);
    if (denom === 0) continue;
    const q = roundToFormat(Math.fround(x[i]! / denom), E2M1, attrs.stochastic ? hashUniform(attrs.seed!, i) : undefined);
    values[i] = q * denom;
  }
  return { values, blockScales, globalScale: sGlobal };
}

export const nvfp4Cpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const x = inputInfo(inputs, 'x')!;
  const a = attrs as unknown as Nvfp4Attrs;
  const { scaleShape, blocks } = blockLayout(x.shape, a.blockShape ?? '1x16');
  const native = nativeOps(backend, 'quantizeNvfp4');
  let result: { values: Float32Array; blockScales: Float32Array; globalScale: number };
  if (native) {
    const cols = x.shape[x.shape.length - 1]!;
    const size = x.shape.reduce((p, q) => p * q, 1);
    const values = new Float32Array(size);
    const blockScales = new Float32Array(blocks);
    const globalScale = new Float32Array(1);
    native.quantizeNvfp4(readF32(b, x)!, values, blockScales, globalScale, size / cols, cols, a.blockShape === '16x16' ? 1 : 0, Boolean(a.stochastic), a.seed ?? 0);
    result = { values, blockScales, globalScale: globalScale[0]! };
  } else result = nvfp4Host(readF32(b, x)!, x.shape, a);
  const { values, blockScales, globalScale } = result;
  return [
    b.makeTensorInfo([...x.shape], 'float32', values),
    b.makeTensorInfo(scaleShape, 'float32', blockScales),
    b.makeTensorInfo([], 'float32', Float32Array.of(globalScale)),
  ];
};

/** x → [blocks, 16 or 256] with rows = blocks, and back. */
function toBlocks(x: Tensor, blockShape: BlockShape): Tensor {
  if (blockShape === '1x16') return tf.reshape(x, [-1, 16]);
  const [R, K] = x.shape as [number, number];
  return tf.reshape(tf.transpose(tf.reshape(x, [R / 16, 16, K / 16, 16]), [0, 2, 1, 3]), [-1, 256]);
}
function fromBlocks(b: Tensor, shape: number[], blockShape: BlockShape): Tensor {
  if (blockShape === '1x16') return tf.reshape(b, shape);
  const [R, K] = shape as [number, number];
  return tf.reshape(tf.transpose(tf.reshape(b, [R / 16, K / 16, 16, 16]), [0, 2, 1, 3]), [R, K]);
}

function reference(inputs: Partial<Record<'x', Tensor>>, attrs: Nvfp4Attrs): Tensor[] {
  const x = inputs.x!;
  const [values, sBlock, sGlobal] = untaped(() => quantizeReference(x, attrs));
  return [straightThrough(x, values!), sBlock!, sGlobal!];
}

function quantizeReference(x: Tensor, attrs: Nvfp4Attrs): Tensor[] {
  const blockShape = attrs.blockShape ?? '1x16';
  const xb = toBlocks(x, blockShape);
  const amax = tf.max(tf.abs(x));
  const sGlobal = tf.where(tf.greater(amax, 0), tf.div(amax, FP8_MAX * FP4_MAX), tf.onesLike(amax));
  const sBlock = roundToFormatRef(tf.div(tf.div(tf.max(tf.abs(xb), 1, true), FP4_MAX), sGlobal), E4M3); // [blocks, 1]
  const denom = tf.mul(sBlock, sGlobal);
  const noise = attrs.stochastic ? toBlocks(noiseTensor([...x.shape], attrs.seed!), blockShape) : undefined;
  const safe = tf.where(tf.greater(denom, 0), denom, tf.onesLike(denom));
  const q = tf.where(tf.greater(tf.broadcastTo(denom, xb.shape), 0), roundToFormatRef(tf.div(xb, safe), E2M1, noise), tf.zerosLike(xb));
  const values = fromBlocks(tf.mul(q, denom), [...x.shape], blockShape);
  const { scaleShape } = blockLayout(x.shape, blockShape);
  return [values, tf.reshape(sBlock, scaleShape), sGlobal];
}

export const quantizeNvfp4Op = defineOp<'x', Nvfp4Attrs, Tensor[]>({
  name: OP,
  inputs: ['x'] as const,
  validate,
  reference,
  kernels: { ...hostKernels(nvfp4Cpu), webgpu: nvfp4Wgsl },
  gradient: ({ dy }) => ({ x: dy[0]! }),
});

export interface Nvfp4Result {
  /** Dequantized values, x's shape; straight-through gradient */
  values: Tensor;
  /** Decoded E4M3 block scales: [..., cols/16] for 1×16 blocks, [rows/16, cols/16] for 16×16 */
  blockScales: Tensor;
  /** The FP32 tensor scale s_global (scalar) */
  globalScale: Tensor;
}

/** NVFP4 quantize-dequantize of `x` (last dim a multiple of 16). */
export function quantizeNvfp4(x: Tensor, options: Nvfp4Attrs = {}): Nvfp4Result {
  const attrs: Nvfp4Attrs = { blockShape: options.blockShape ?? '1x16' };
  if (options.stochastic) {
    attrs.stochastic = true;
    attrs.seed = options.seed as number;
  }
  const [values, blockScales, globalScale] = quantizeNvfp4Op({ x }, attrs);
  return { values: values!, blockScales: blockScales!, globalScale: globalScale! };
}
