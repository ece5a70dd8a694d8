/**
 * `groupedMatMul`: one GEMM per expert over contiguous row groups (rows sorted by expert),
 * as Megatron-Core's GroupedMLP runs all local experts in one call. Empty groups are fine.
 *
 * One internal op covers the three products forward and backward need:
 *   'nn'  out[rows_g] = x[rows_g] · W_g            x [M, K], W [G, K, N] → [M, N]
 *   'nt'  out[rows_g] = x[rows_g] · W_gᵀ           x [M, N], W [G, K, N] → [M, K]   (dx)
 *   'tn'  out[g]      = x[rows_g]ᵀ · y[rows_g]     x [M, K], y [M, N]    → [G, K, N] (dW)
 */
import { defineOp, type Op, type OpKernel, tf } from '@kiln/tensor';
import { hostKernels } from '../host-kernels.js';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { nativeOps } from '../native.js';
import { groupedWgsl } from '../wgsl/moe.js';
import { groupedOutShape } from './grouped-shape.js';
import { fmtShape, requireFloat, requireRank, requireTensor } from '../checks.js';

type Tensor = tf.Tensor;
import type { GroupedAttrs, GroupedMode } from './grouped-shape.js';

export type { GroupedAttrs, GroupedMode } from './grouped-shape.js';

const OP = 'groupedMatMul';

export function checkGroupSizes(op: string, groupSizes: unknown, groups: number, rows: number): number[] {
  if (!Array.isArray(groupSizes) && !ArrayBuffer.isView(groupSizes)) {
    throw new Error(`${op}: 'groupSizes' must be an array of ${groups} row counts, got ${String(groupSizes)}`);
  }
  const sizes = Array.from(groupSizes as ArrayLike<number>);
  if (sizes.length !== groups) {
    throw new Error(`${op}: 'groupSizes' has ${sizes.length} entries but there are ${groups} groups (weights' first dimension)`);
  }
  let sum = 0;
  for (const [i, s] of sizes.entries()) {
    if (!Number.isInteger(s) || s < 0) throw new Error(`${op}: 'groupSizes[${i}]' must be a non-negative integer, got ${s}`);
    sum += s;
  }
  if (sum !== rows) throw new Error(`${op}: 'groupSizes' sum to ${sum} but x has ${rows} rows`);
  return sizes;
}

function validate(inputs: Partial<Record<'x' | 'w', Tensor>>, attrs: GroupedAttrs): void {
  const x = requireTensor(OP, 'x', inputs.x);
  const w = requireTensor(OP, attrs.mode === 'tn' ? 'dy' : 'weights', inputs.w);
  requireFloat(OP, 'x', x);
  requireFloat(OP, 'weights', w);
  requireRank(OP, 'x', x, 2, 'rows, features');
  if (attrs.mode === 'tn') {
    requireRank(OP, 'dy', w, 2, 'rows, outFeatures');
    if (w.shape[0] !== x.shape[0]) throw new Error(`${OP}: 'dy' ${fmtShape(w.shape)} and 'x' ${fmtShape(x.shape)} differ in rows`);
    return;
  }
  requireRank(OP, 'weights', w, 3, 'groups, inFeatures, outFeatures');
  const inner = attrs.mode === 'nn' ? w.shape[1] : w.shape[2];
  if (x.shape[1] !== inner) {
    throw new Error(`${OP}: 'x' ${fmtShape(x.shape)} has ${x.shape[1]} features but 'weights' ${fmtShape(w.shape)} expects ${inner}`);
  }
  checkGroupSizes(OP, attrs.groupSizes, w.shape[0]!, x.shape[0]!);
}

export function groupedReference(x: Tensor, w: Tensor, groupSizes: number[], mode: GroupedMode, groups = groupSizes.length): Tensor {
  const parts: Tensor[] = [];
  let start = 0;
  groupSizes.forEach((rows, g) => {
    if (mode === 'tn') {
      const K = x.shape[1]!;
      const N = w.shape[1]!;
      parts.push(
        rows === 0
          ? tf.zeros([1, K, N])
          : tf.expandDims(tf.matMul(tf.slice(x, [start, 0], [rows, -1]), tf.slice(w, [start, 0], [rows, -1]), true, false), 0),
      );
    } else if (rows > 0) {
      const wg = tf.squeeze(tf.slice(w, [g, 0, 0], [1, -1, -1]), [0]);
      parts.push(tf.matMul(tf.slice(x, [start, 0], [rows, -1]), wg, false, mode === 'nt'));
    }
    start += rows;
  });
  if (mode === 'tn') return groups === 0 ? tf.zeros([0, x.shape[1]!, w.shape[1]!]) : tf.concat(parts, 0);
  const outCols = mode === 'nn' ? w.shape[2]! : w.shape[1]!;
  // No rows at all: still a function of x and w (zero), so autodiff reaches both.
  if (parts.length === 0) return tf.add(tf.matMul(x, tf.zeros([x.shape[1]!, outCols])), tf.mul(tf.sum(w), 0));
  return tf.concat(parts, 0);
}

/** Row-major blocked loops for the CPU-memory backends (the native addon replaces it). */
export function groupedMatMulHost(x: Float32Array, w: Float32Array, sizes: number[], mode: GroupedMode, K: number, N: number): Float32Array {
  const M = sizes.reduce((a, b) => a + b, 0);
  if (mode === 'tn') {
    // x [M, K], y=w [M, N] → [G, K, N]
    const out = new Float32Array(sizes.length * K * N);
    let r0 = 0;
    sizes.forEach((rows, g) => {
      const o = g * K * N;
      for (let r = r0; r < r0 + rows; r++) {
        for (let k = 0; k < K; k++) {
          const xv = x[r * K + k]!;
          if (xv === 0) continue;
          const orow = o + k * N;
          const yrow = r * N;
          for (let n = 0; n < N; n++) out[orow + n]! += xv * w[yrow + n]!;
        }
      }
      r0 += rows;
    });
    return out;
  }
  if (mode === 'nn') {
    const out = new Float32Array(M * N);
    let r0 = 0;
    sizes.forEach((rows, g) => {
      const wo = g * K * N;
      for (let r = r0; r < r0 + rows; r++) {
        const orow = r * N;
        for (let k = 0; k < K; k++) {
          const xv = x[r * K + k]!;
          const wrow = wo + k * N;
          for (let n = 0; n < N; n++) out[orow + n]! += xv * w[wrow + n]!;
        }
      }
      r0 += rows;
    });
    return out;
  }
  // 'nt': x [M, N], W_g [K, N] → out [M, K]
  const out = new Float32Array(M * K);
  let r0 = 0;
  sizes.forEach((rows, g) => {
    const wo = g * K * N;
    for (let r = r0; r < r0 + rows; r++) {
      for (let k = 0; k < K; k++) {
        let acc = 0;
        const wrow = wo + k * N;
        const xrow = r * N;
        for (let n = 0; n < N; n++) acc += x[xrow + n]! * w[wrow + n]!;
        out[r * K + k] = acc;
      }
    }
    r0 += rows;
  });
  return out;
}


const MODE_CODE: Record<GroupedMode, number> = { nn: 0, nt: 1, tn: 2 };

export const groupedCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const { groupSizes, mode } = attrs as unknown as GroupedAttrs;
  const x = inputInfo(inputs, 'x')!;
  const w = inputInfo(inputs, 'w')!;
  const K = mode === 'nt' ? w.shape[1]! : x.shape[1]!;
  const N = mode === 'tn' ? w.shape[1]! : w.shape[2]!;
  const shape = groupedOutShape(x.shape, w.shape, Array.from(groupSizes), mode);
  const native = nativeOps(backend, 'groupedMatMul');
  if (native) {
    // every element is written: a row of each non-empty group, zeros for empty groups ('tn')
    const out = nativeOutput(backend, shape.reduce((p, q) => p * q, 1));
    native.groupedMatMul(readF32(b, x)!, readF32(b, w)!, out, Int32Array.from(groupSizes), MODE_CODE[mode], K, N);
    return b.makeTensorInfo(shape, 'float32', out);
  }
  const out = groupedMatMulHost(readF32(b, x)!, readF32(b, w)!, Array.from(groupSizes), mode, K, N);
  return b.makeTensorInfo(shape, 'float32', out);
};

export const groupedMatMulOp: Op<'x' | 'w', GroupedAttrs, Tensor> = defineOp<'x' | 'w', GroupedAttrs, Tensor>({
  name: 'groupedMatMul',
  inputs: ['x', 'w'] as const,
  validate,
  reference: ({ x, w }, { groupSizes, mode }) => groupedReference(x!, w!, Array.from(groupSizes), mode),
  kernels: { ...hostKernels(groupedCpu), webgpu: groupedWgsl },
  gradient: ({ inputs, dy, attrs }): Partial<Record<'x' | 'w', Tensor>> => {
    const { groupSizes, mode } = attrs;
    if (mode !== 'nn') throw new Error(`${OP}: second-order gradients of mode '${mode}' are not supported`);
    return {
      x: groupedMatMulOp({ x: dy[0]!, w: inputs.w! }, { groupSizes, mode: 'nt' }),
      w: groupedMatMulOp({ x: inputs.x!, w: dy[0]! }, { groupSizes, mode: 'tn' }),
    };
  },
});

/**
 * `x` [rows, K] with rows sorted by group, `weights` [G, K, N], `groupSizes` G row counts
 * (summing to rows; zeros allowed) → [rows, N], rows of group g multiplied by weights[g].
 */
export function groupedMatMul(x: Tensor, weights: Tensor, groupSizes: readonly number[] | Int32Array): Tensor {
  return groupedMatMulOp({ x, w: weights }, { groupSizes: Array.from(groupSizes), mode: 'nn' });
}
