/**
 * FP8 scaling recipes as quantize–dequantize on row-major matrices, following Transformer
 * Engine (the library Megatron-Core's fp8 recipes select):
 * - tensorwise ("current scaling", Float8CurrentScaling): scale = fmax / amax of this tensor;
 * - delayed (DelayedScaling): scale = (fmax / amax) / 2^margin with amax from a history of
 *   previous steps ('max' of the history or 'most_recent');
 * - blockwise (Float8BlockScaling): 1×128 blocks for activations and gradients, 128×128 for
 *   weights, power-of-two scales;
 * - MXFP8 (MXFP8BlockScaling): 32-element blocks along the reduction dimension with an E8M0
 *   scale = the smallest power of two ≥ amax / fmax.
 * fp32 arithmetic is reproduced with Math.fround at each step where TE computes in fp32; the
 * casts themselves run through @kiln/gpu-kernels' `castFp8` op.
 */
import { FP8_FORMATS, type Fp8Format, castFp8Op, decodeE8M0, encodeE8M0Ceil, floorLog2 } from '@kiln/gpu-kernels';
import { tf } from '@kiln/tensor';

const FLT_MAX = 3.4028234663852886e38;
const f32 = Math.fround;

/** A row-major matrix of fp32 values. */
export interface Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

/** Quantize–dequantize result: the dequantized values and one inverse scale per block. */
export interface QdqResult extends Matrix {
  /** Dequantization multipliers, one per block, blocks in row-major block order. */
  scaleInv: Float32Array;
  /** Block shape used. */
  block: [number, number];
}

/** Quantization and dequantization scale from an amax (TE's scale_from_amax_tensor). */
export function fp8ScaleFromAmax(
  amax: number,
  fmax: number,
  options: { pow2?: boolean; eps?: number; margin?: number } = {},
): { scale: number; scaleInv: number } {
  const a = Math.max(amax, options.eps ?? 0);
  let scale = f32(fmax / a);
  if (options.margin) scale = f32(scale / 2 ** options.margin);
  if (scale === Number.POSITIVE_INFINITY) scale = FLT_MAX;
  if (options.pow2 && Number.isFinite(scale) && scale > 0) scale = 2 ** floorLog2(scale);
  if (options.pow2 && a === Number.POSITIVE_INFINITY) scale = 0;
  if (a === 0) scale = 1;
  return { scale, scaleInv: f32(1 / scale) };
}

function checkMatrix(m: Matrix, name: string): void {
  if (!(Number.isInteger(m.rows) && Number.isInteger(m.cols) && m.rows >= 0 && m.cols >= 0) || m.data.length !== m.rows * m.cols) {
    throw new Error(`${name}: data of length ${m.data.length} does not match [${m.rows}, ${m.cols}]`);
  }
}

/**
 * FP8 casts of a host array through @kiln/gpu-kernels' `castFp8` op at scale 1 (round to
 * nearest even, saturating): the op's C++ kernel on kiln-native, WGSL on webgpu.
 */
function castFp8Values(values: Float32Array, format: Fp8Format): Float32Array {
  if (values.length === 0) return values;
  return tf.tidy(() => castFp8Op({ x: tf.tensor1d(values), scale: tf.tensor1d([1]) }, { format }).dataSync() as Float32Array);
}

/**
 * Generic block quantize–dequantize: for each block of `block` = [rows, cols] (edge blocks may
 * be partial), `scaleFor(amax)` gives the quantization scale and dequantization multiplier,
 * values become cast(x · scale) · scaleInv, each product rounded to fp32 as TE computes it.
 */
export function qdqBlocks(
  m: Matrix,
  block: [number, number],
  format: Fp8Format,
  scaleFor: (amax: number) => { scale: number; scaleInv: number },
): QdqResult {
  checkMatrix(m, 'qdqBlocks');
  const [br, bc] = block;
  if (!(br >= 1 && bc >= 1)) throw new Error(`qdqBlocks: block shape must be positive, got [${block}]`);
  if (!(format in FP8_FORMATS)) throw new Error(`qdqBlocks: format must be 'e4m3' or 'e5m2', got '${String(format)}'`);
  const nbr = Math.ceil(m.rows / br);
  const nbc = Math.ceil(m.cols / bc);
  const scaled = new Float32Array(m.data.length);
  const inverse = new Float32Array(m.data.length);
  const scaleInv = new Float32Array(nbr * nbc);
  for (let bi = 0; bi < nbr; bi++) {
    for (let bj = 0; bj < nbc; bj++) {
      const r1 = Math.min(m.rows, (bi + 1) * br);
      const c1 = Math.min(m.cols, (bj + 1) * bc);
      let amax = 0;
      for (let r = bi * br; r < r1; r++) {
        for (let c = bj * bc; c < c1; c++) {
          const v = Math.abs(m.data[r * m.cols + c]!);
          if (Number.isNaN(v)) amax = Number.NaN;
          else if (v > amax) amax = v;
        }
      }
      const { scale, scaleInv: inv } = scaleFor(amax);
      scaleInv[bi * nbc + bj] = inv;
      for (let r = bi * br; r < r1; r++) {
        for (let c = bj * bc; c < c1; c++) {
          const i = r * m.cols + c;
          scaled[i] = m.data[i]! * scale; // stored as fp32
          inverse[i] = inv;
        }
      }
    }
  }
  const q = castFp8Values(scaled, format);
  const out = new Float32Array(m.data.length);
  for (let i = 0; i < out.length; i++) out[i] = q[i]! * inverse[i]!;
  return { data: out, rows: m.rows, cols: m.cols, scaleInv, block: [br, bc] };
}

/** Largest finite value of an FP8 format. */
export function fp8Max(format: 'e4m3' | 'e5m2'): number {
  return FP8_FORMATS[format].max;
}

/** Current (tensorwise) scaling: one scale from this tensor's amax. */
export function qdqTensorwise(m: Matrix, format: 'e4m3' | 'e5m2', options: { pow2?: boolean } = {}): QdqResult {
  const fmax = fp8Max(format);
  return qdqBlocks(m, [Math.max(1, m.rows), Math.max(1, m.cols)], format, (amax) => fp8ScaleFromAmax(amax, fmax, options));
}

/**
 * Blockwise FP8 (TE Float8BlockScaling): `tile` [1, 128] for activations/gradients along the
 * reduction dimension, [128, 128] for weights; power-of-two scales by default.
 */
export function qdqBlockwise(m: Matrix, format: 'e4m3' | 'e5m2', tile: [number, number], options: { pow2?: boolean } = {}): QdqResult {
  const fmax = fp8Max(format);
  return qdqBlocks(m, tile, format, (amax) => fp8ScaleFromAmax(amax, fmax, { pow2: options.pow2 ?? true }));
}

/**
 * MXFP8: `tile` [1, 32] (or [32, 1] for a block along the rows) with an E8M0 scale: the
 * dequantization multiplier is 2^ceil(log2(amax / fmax)), so no element overflows.
 */
export function qdqMxfp8(m: Matrix, format: 'e4m3' | 'e5m2', tile: [number, number] = [1, 32]): QdqResult {
  const fmaxRcp = f32(1 / fp8Max(format));
  return qdqBlocks(m, tile, format, (amax) => {
    const inv = decodeE8M0(encodeE8M0Ceil(f32(amax * fmaxRcp)));
    return { scale: 1 / inv, scaleInv: inv };
  });
}

/**
 * Delayed scaling state of one tensor role (TE DelayedScaling): the scale used now comes from
 * the amax history of earlier steps; `observe` writes this step's amax into history[0];
 * `update` (once per step) recomputes the scale and rolls the history.
 */
export class DelayedScaling {
  readonly format: 'e4m3' | 'e5m2';
  readonly margin: number;
  readonly algo: 'max' | 'most_recent';
  amaxHistory: Float32Array;
  scale = 1;

  constructor(format: 'e4m3' | 'e5m2', options: { historyLen?: number; margin?: number; algo?: 'max' | 'most_recent' } = {}) {
    const len = options.historyLen ?? 1;
    if (!(Number.isInteger(len) && len >= 1)) throw new Error(`DelayedScaling: historyLen must be a positive integer, got ${len}`);
    this.format = format;
    this.margin = options.margin ?? 0;
    this.algo = options.algo ?? 'most_recent';
    this.amaxHistory = new Float32Array(len);
  }

  get scaleInv(): number {
    return f32(1 / this.scale);
  }

  /** Record this step's amax (the largest seen this step). */
  observe(amax: number): void {
    this.amaxHistory[0] = Math.max(this.amaxHistory[0]!, amax);
  }

  /**
   * End of step: amax = max(history) or history[0]; scale = (fmax / amax) / 2^margin, kept
   * when amax is 0 or not finite, FLT_MAX when it overflows; then roll the history by one
   * and clear the new slot 0 (TE's _default_sf_compute and _update_amax_history).
   */
  update(): void {
    const amax = this.algo === 'max' ? Math.max(...this.amaxHistory) : this.amaxHistory[0]!;
    let sf = f32(f32(fp8Max(this.format) / amax) / 2 ** this.margin);
    if (!(amax > 0) || !Number.isFinite(amax)) sf = this.scale;
    if (sf === Number.POSITIVE_INFINITY) sf = FLT_MAX;
    this.scale = sf;
    const h = this.amaxHistory;
    const first = h[0]!;
    for (let i = 0; i < h.length - 1; i++) h[i] = h[i + 1]!;
    h[h.length - 1] = first;
    h[0] = 0;
  }

  /** Quantize–dequantize with the current scale and observe the amax; `update` if asked. */
  qdq(m: Matrix, options: { update?: boolean } = {}): QdqResult {
    const scale = this.scale;
    const inv = this.scaleInv;
    let seen = 0;
    const res = qdqBlocks(m, [Math.max(1, m.rows), Math.max(1, m.cols)], this.format, (amax) => {
      seen = amax;
      return { scale, scaleInv: inv };
    });
    this.observe(seen);
    if (options.update ?? true) this.update();
    return res;
  }
}
