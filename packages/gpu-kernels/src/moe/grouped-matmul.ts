/**
 * `groupedMatMul`: one GEMM per expert over contiguous row groups (rows sorted by expert),
 * as Megatron-Core's GroupedMLP runs all local experts in one call. Empty groups are fine.
 *
 * One internal op covers the three products forward and backward need:
 *   'nn'  out[rows_g] = x[rows_g] · W_g            x [M, K], W [G, K, N] → [M, N]
 *   'nt'  out[rows_g] = x[rows_g] · W_gᵀ           x [M, N], W [G, K, N] → [M, K]   (dx)
 *   'tn'  out[g]      = x[rows_g]ᵀ · y[rows_g]     x [M, K], y [M, N]    → [G, K, N] (dW)
 *
 * The group sizes are host numbers (attrs) or an int32 tensor (`sizes` input), so a plan
 * computed on the device never has to be read back. Tensor sizes may sum to less than M:
 * the rows past the sum belong to no group (zero rows out of 'nn'/'nt', ignored by 'tn'),
 * which lets a device plan use a static row count.
 */
import { defineOp, type Op, type OpKernel, tf } from '@kiln/tensor';
import { hostKernels } from '../host-kernels.js';
import { cpuBackend, inputInfo, nativeOutput, readF32, readI32 } from '../backend-data.js';
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

type GroupedInputs = Partial<Record<'x' | 'w' | 'sizes', Tensor>>;

function validate(inputs: GroupedInputs, attrs: GroupedAttrs): void {
  const x = requireTensor(OP, 'x', inputs.x);
  const w = requireTensor(OP, attrs.mode === 'tn' ? 'dy' : 'weights', inputs.w);
  requireFloat(OP, 'x', x);
  requireFloat(OP, 'weights', w);
  requireRank(OP, 'x', x, 2, 'rows, features');
  if ((inputs.sizes === undefined) === (attrs.groupSizes === undefined)) {
    throw new Error(`${OP}: give the group sizes either as numbers or as a tensor, not ${inputs.sizes ? 'both' : 'neither'}`);
  }
  if (attrs.mode === 'tn') {
    requireRank(OP, 'dy', w, 2, 'rows, outFeatures');
    if (w.shape[0] !== x.shape[0]) throw new Error(`${OP}: 'dy' ${fmtShape(w.shape)} and 'x' ${fmtShape(x.shape)} differ in rows`);
  } else {
    requireRank(OP, 'weights', w, 3, 'groups, inFeatures, outFeatures');
    const inner = attrs.mode === 'nn' ? w.shape[1] : w.shape[2];
    if (x.shape[1] !== inner) {
      throw new Error(`${OP}: 'x' ${fmtShape(x.shape)} has ${x.shape[1]} features but 'weights' ${fmtShape(w.shape)} expects ${inner}`);
    }
  }
  if (inputs.sizes) {
    requireRank(OP, 'groupSizes', inputs.sizes, 1, 'groups');
    if (inputs.sizes.dtype !== 'int32') throw new Error(`${OP}: 'groupSizes' must be int32, got ${inputs.sizes.dtype} with shape ${fmtShape(inputs.sizes.shape)}`);
    if (attrs.mode !== 'tn' && inputs.sizes.shape[0] !== w.shape[0]) {
      throw new Error(`${OP}: 'groupSizes' ${fmtShape(inputs.sizes.shape)} has ${inputs.sizes.shape[0]} entries but there are ${w.shape[0]} groups (weights' first dimension)`);
    }
  } else if (attrs.mode !== 'tn') checkGroupSizes(OP, attrs.groupSizes, w.shape[0]!, x.shape[0]!);
}

/** G: the entries of the group sizes, host or tensor. */
function groupCount(sizes: { shape: readonly number[] } | undefined, attrs: GroupedAttrs): number {
  return sizes ? sizes.shape[0]! : attrs.groupSizes!.length;
}

/**
 * The reference for sizes on the device: every row times every group's weights, masked by
 * group membership (G times the work of the sliced reference; it only defines the op).
 */
export function groupedMaskedReference(x: Tensor, w: Tensor, sizes: Tensor, mode: GroupedMode): Tensor {
  const G = sizes.shape[0]!;
  const M = x.shape[0]!;
  const end = tf.cumsum(sizes);
  const start = tf.sub(end, sizes);
  const row = tf.range(0, M, 1, 'int32');
  // member [G, M, 1]: 1 where row r lies in group g.
  const member = tf.expandDims(
    tf.cast(tf.logicalAnd(tf.greaterEqual(tf.expandDims(row, 0), tf.expandDims(start, 1)), tf.less(tf.expandDims(row, 0), tf.expandDims(end, 1))), 'float32'),
    2,
  );
  if (mode === 'tn') {
    // x [M, K], y = w [M, N] → [G, K, N]
    const xs = tf.mul(member, tf.expandDims(x, 0));
    return tf.matMul(xs, tf.tile(tf.expandDims(w, 0), [G, 1, 1]), true, false);
  }
  const all = tf.matMul(tf.tile(tf.expandDims(x, 0), [G, 1, 1]), w, false, mode === 'nt'); // [G, M, out]
  return tf.sum(tf.mul(member, all), 0);
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
export function groupedMatMulHost(x: Float32Array, w: Float32Array, sizes: number[], mode: GroupedMode, K: number, N: number, rows?: number): Float32Array {
  // Rows past the groups (tensor sizes summing to less) stay zero.
  const M = rows ?? sizes.reduce((a, b) => a + b, 0);
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

/** Host group sizes: the attrs, or the `sizes` tensor read in place (checked: the data were never seen on the host). */
function hostSizes(b: ReturnType<typeof cpuBackend>, inputs: Parameters<OpKernel>[0]['inputs'], attrs: GroupedAttrs, rows: number): number[] {
  const info = inputInfo(inputs, 'sizes');
  if (!info) return Array.from(attrs.groupSizes!);
  const sizes = Array.from(readI32(b, info));
  let sum = 0;
  for (const [i, s] of sizes.entries()) {
    if (s < 0) throw new Error(`${OP}: 'groupSizes[${i}]' must be a non-negative integer, got ${s}`);
    sum += s;
  }
  if (sum > rows) throw new Error(`${OP}: 'groupSizes' sum to ${sum}, more than the ${rows} rows of x`);
  return sizes;
}

export const groupedCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const { mode } = attrs as unknown as GroupedAttrs;
  const x = inputInfo(inputs, 'x')!;
  const w = inputInfo(inputs, 'w')!;
  const M = x.shape[0]!;
  const K = mode === 'nt' ? w.shape[1]! : x.shape[1]!;
  const N = mode === 'tn' ? w.shape[1]! : w.shape[2]!;
  const sizes = hostSizes(b, inputs, attrs as unknown as GroupedAttrs, M);
  const shape = groupedOutShape(x.shape, w.shape, sizes.length, mode);
  const used = sizes.reduce((p, q) => p + q, 0);
  const native = nativeOps(backend, 'groupedMatMul');
  if (native) {
    // every element is written: a row of each non-empty group, zeros for empty groups ('tn')
    // and for rows past the groups
    const out = nativeOutput(backend, shape.reduce((p, q) => p * q, 1));
    const xs = readF32(b, x)!;
    const ws = readF32(b, w)!;
    const xCols = mode === 'nt' ? N : K;
    native.groupedMatMul(xs.subarray(0, used * xCols), mode === 'tn' ? ws.subarray(0, used * N) : ws, mode === 'tn' ? out : out.subarray(0, used * shape[1]!), Int32Array.from(sizes), MODE_CODE[mode], K, N);
    if (mode !== 'tn') out.fill(0, used * shape[1]!);
    return b.makeTensorInfo(shape, 'float32', out);
  }
  const out = groupedMatMulHost(readF32(b, x)!, readF32(b, w)!, sizes, mode, K, N, M);
  return b.makeTensorInfo(shape, 'float32', out);
};

export const groupedMatMulOp: Op<'x' | 'w' | 'sizes', GroupedAttrs, Tensor> = defineOp<'x' | 'w' | 'sizes', GroupedAttrs, Tensor>({
  name: 'groupedMatMul',
  inputs: ['x', 'w', 'sizes'] as const,
  nonDifferentiable: ['sizes'],
  validate,
  reference: ({ x, w, sizes }, attrs) =>
    sizes ? groupedMaskedReference(x!, w!, sizes, attrs.mode) : groupedReference(x!, w!, Array.from(attrs.groupSizes!), attrs.mode, groupCount(sizes, attrs)),
  kernels: { ...hostKernels(groupedCpu), webgpu: groupedWgsl },
  gradient: ({ inputs, dy, attrs }): Partial<Record<'x' | 'w', Tensor>> => {
    const { mode } = attrs;
    if (mode !== 'nn') throw new Error(`${OP}: second-order gradients of mode '${mode}' are not supported`);
    const sizes = inputs.sizes ? { sizes: inputs.sizes } : {};
    const hostAttrs = attrs.groupSizes ? { groupSizes: attrs.groupSizes } : {};
    return {
      x: groupedMatMulOp({ x: dy[0]!, w: inputs.w!, ...sizes }, { ...hostAttrs, mode: 'nt' }),
      w: groupedMatMulOp({ x: inputs.x!, w: dy[0]!, ...sizes }, { ...hostAttrs, mode: 'tn' }),
    };
  },
});

/**
 * `x` [rows, K] with rows sorted by group, `weights` [G, K, N], `groupSizes` G row counts →
 * [rows, N], rows of group g multiplied by weights[g]. Host sizes must sum to rows (zeros
 * allowed); an int32 tensor of sizes (a plan computed on the device) may sum to less, and
 * the rows past its sum come out zero.
 */
export function groupedMatMul(x: Tensor, weights: Tensor, groupSizes: readonly number[] | Int32Array | Tensor): Tensor {
  if (groupSizes instanceof tf.Tensor) return groupedMatMulOp({ x, w: weights, sizes: groupSizes }, { mode: 'nn' });
  return groupedMatMulOp({ x, w: weights }, { groupSizes: Array.from(groupSizes), mode: 'nn' });
}
