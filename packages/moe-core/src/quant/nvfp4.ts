/**
 * NVFP4 quantize–dequantize (Transformer Engine's NVFP4 recipe and its reference quantizer):
 * E2M1 elements in 16-element blocks (1×16 along the reduction dimension; 16×16 2-D tiles for
 * weights), one E4M3 scale per block and one fp32 scale per tensor:
 *   s_enc = 448·6 / amax (fp32, ≤ FLT_MAX, 0 → 1),
 *   s_block = E4M3(block_amax · s_enc / 6),  q = E2M1(x / (s_block / s_enc)),
 *   x ≈ q · s_block · amax / (448·6).
 * Gradients use stochastic rounding; the weight-gradient operands get a 16-point random
 * Hadamard transform along the reduction dimension first (`applyRht16`).
 */
import type { Matrix, QdqResult } from './fp8.js';
import { E2M1, E4M3, castToMiniFloat } from '@kiln/gpu-kernels';

const FLT_MAX = 3.4028234663852886e38;
const f32 = Math.fround;

export interface Nvfp4Options {
  /** Tile shape: [1, 16] (activations, gradients) or [16, 16] (weights). Default [1, 16]. */
  tile?: [1, 16] | [16, 16];
  /** Stochastic rounding of the elements (gradients): uniform numbers in [0, 1). */
  random?: () => number;
}

export interface Nvfp4Result extends QdqResult {
  /** E4M3 block scales (decoded), one per tile in row-major tile order. */
  blockScales: Float32Array;
  /** The tensor's amax and fp32 global decode scale amax / (448·6). */
  globalAmax: number;
  globalScale: number;
}

/** NVFP4 quantize–dequantize of a row-major matrix; blocks run along the columns. */
export function qdqNvfp4(m: Matrix, options: Nvfp4Options = {}): Nvfp4Result {
  const [br, bc] = options.tile ?? [1, 16];
  if (!((br === 1 || br === 16) && bc === 16)) throw new Error(`qdqNvfp4: tile must be [1, 16] or [16, 16], got [${br}, ${bc}]`);
  if (m.data.length !== m.rows * m.cols) throw new Error(`qdqNvfp4: data of length ${m.data.length} does not match [${m.rows}, ${m.cols}]`);
  let globalAmax = 0;
  for (let i = 0; i < m.data.length; i++) {
    const v = Math.abs(m.data[i]!);
    if (v > globalAmax) globalAmax = v;
  }
  let enc = f32((448 * 6) / globalAmax);
  if (enc > FLT_MAX) enc = FLT_MAX;
  if (enc === 0) enc = 1;
  const dec = f32(1 / enc);
  const mult = f32(enc * f32(1 / 6));
  const globalScale = f32(globalAmax / (448 * 6));
  const nbr = Math.ceil(m.rows / br);
  const nbc = Math.ceil(m.cols / bc);
  const out = new Float32Array(m.data.length);
  const blockScales = new Float32Array(nbr * nbc);
  const scaleInv = new Float32Array(nbr * nbc);
  const cast = options.random ? { random: options.random } : {};
  for (let bi = 0; bi < nbr; bi++) {
    for (let bj = 0; bj < nbc; bj++) {
      const r1 = Math.min(m.rows, (bi + 1) * br);
      const c1 = Math.min(m.cols, (bj + 1) * bc);
      let amax = 0;
      for (let r = bi * br; r < r1; r++) for (let c = bj * bc; c < c1; c++) amax = Math.max(amax, Math.abs(m.data[r * m.cols + c]!));
      let sb = f32(amax * mult);
      if (sb > FLT_MAX) sb = FLT_MAX;
      sb = castToMiniFloat(Math.min(448, sb), E4M3);
      let e = f32(1 / f32(sb * dec));
      if (e > FLT_MAX) e = FLT_MAX;
      blockScales[bi * nbc + bj] = sb;
      const inv = f32(sb * globalScale);
      scaleInv[bi * nbc + bj] = inv;
      for (let r = bi * br; r < r1; r++) {
        for (let c = bj * bc; c < c1; c++) {
          const i = r * m.cols + c;
          const scaled = Math.max(-6, Math.min(6, f32(m.data[i]! * e)));
          out[i] = f32(castToMiniFloat(scaled, E2M1, cast) * inv);
        }
      }
    }
  }
  return { data: out, rows: m.rows, cols: m.cols, scaleInv, block: [br, bc], blockScales, globalAmax, globalScale };
}

/** TE's fixed random sign vector of the 16-point wgrad Hadamard transform. */
export const RHT_SIGNS: readonly number[] = [1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1];

/** The 16×16 transform diag(signs) · H16 / 4 (Sylvester H; orthogonal, so Tᵀ·T = I). */
export function rhtMatrix16(signs: readonly number[] = RHT_SIGNS): Float32Array {
  let h = [[1]];
  while (h.length < 16) {
    const n = h.length;
    const next: number[][] = [];
    for (let i = 0; i < 2 * n; i++) {
      const row: number[] = [];
      for (let j = 0; j < 2 * n; j++) row.push(h[i % n]![j % n]! * (i >= n && j >= n ? -1 : 1));
      next.push(row);
    }
    h = next;
  }
  const t = new Float32Array(256);
  for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) t[i * 16 + j] = (signs[i]! * h[i]![j]!) / 4;
  return t;
}

/**
 * Apply the 16-point transform to every 16-element segment of each row (row · T), the
 * reduction dimension being the columns. Columns must be a multiple of 16.
 */
export function applyRht16(m: Matrix, transform: Float32Array = rhtMatrix16()): Matrix {
  if (m.cols % 16 !== 0) throw new Error(`applyRht16: the reduction dimension (${m.cols}) must be a multiple of 16`);
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) {
    for (let s = 0; s < m.cols; s += 16) {
      const base = r * m.cols + s;
      for (let j = 0; j < 16; j++) {
        let acc = 0;
        for (let i = 0; i < 16; i++) acc += m.data[base + i]! * transform[i * 16 + j]!;
        out[base + j] = acc;
      }
    }
  }
  return { data: out, rows: m.rows, cols: m.cols };
}
