/**
 * The row movements of a serialized point backbone (PTv3 / Pointcept style), each one kernel
 * forward and one backward:
 *
 * - `permuteRows`: points into scan order and back. out[i] = x[index[i]], or a zero row when
 *   index[i] is outside [0, m) (the padding slots of a sequence). Every row of x is selected
 *   at most once, so the gradient is the same gather with the inverse map
 *   (dx[r] = dy[inverse[r]], zero where inverse[r] is outside [0, s)).
 * - `segmentPool`: points into clusters (grid pooling). out[s] = Σ x[p] over the points p of
 *   segment s, divided by the segment's size when `mean`.
 * - `segmentBroadcast`: clusters back to their points (unpooling). out[p] = x[segment[p]],
 *   divided by the segment's size when `mean`; the adjoint of `segmentPool`, and the other
 *   way round.
 *
 * A segmentation is given three ways, all int32: `segment` [n] (each point's segment),
 * `sorted` [n] (points grouped by segment) and `ptr` [S + 1] (segment s owns
 * sorted[ptr[s] .. ptr[s+1]); no segment is empty). Kernels walk whichever form is cheap for
 * their direction, so no kernel needs atomics or a sort.
 */
import { defineOp, type Op, type OpKernel, tf } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32, readI32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireRank, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { nativeOps } from '../native.js';

type Tensor = tf.Tensor;
type NoAttrs = Record<string, never>;

function requireInt1d(op: string, name: string, t: Tensor | undefined, length?: number, what?: string): Tensor {
  const v = requireTensor(op, name, t);
  requireRank(op, name, v, 1, what ?? 'n');
  if (v.dtype !== 'int32') throw new Error(`${op}: '${name}' must be int32, got ${v.dtype} with shape ${fmtShape(v.shape)}`);
  if (length !== undefined && v.shape[0] !== length) throw new Error(`${op}: '${name}' ${fmtShape(v.shape)} must have ${length} entries (${what})`);
  return v;
}

function requireRows(op: string, x: Tensor | undefined): Tensor {
  const t = requireTensor(op, 'x', x);
  requireRank(op, 'x', t, 2, 'rows, C');
  requireFloat(op, 'x', t);
  return t;
}

// ---------------------------------------------------------------- permuteRows

type PermuteInput = 'x' | 'index' | 'inverse';

/** index selects each row at most once and inverse is its inverse map (checked on the host). */
function checkPermutation(index: Int32Array, inverse: Int32Array): void {
  const m = inverse.length;
  const s = index.length;
  for (let i = 0; i < s; i++) {
    const r = index[i]!;
    if (r >= 0 && r < m && inverse[r] !== i) throw new Error(`permuteRows: index[${i}] = ${r} but inverse[${r}] = ${inverse[r]} (index must select each row at most once and inverse must be its inverse)`);
  }
  for (let r = 0; r < m; r++) {
    const i = inverse[r]!;
    if (i >= 0 && i < s && index[i] !== r) throw new Error(`permuteRows: inverse[${r}] = ${i} but index[${i}] = ${index[i]} (inverse must be the inverse of index)`);
  }
}

function permuteHost(x: Float32Array, index: Int32Array, C: number, out: Float32Array): void {
  const m = x.length / C;
  for (let i = 0; i < index.length; i++) {
    const r = index[i]!;
    if (r >= 0 && r < m) out.set(x.subarray(r * C, r * C + C), i * C);
    else out.fill(0, i * C, i * C + C);
  }
}

const permuteCpu: OpKernel = ({ inputs, backend }) => {
  const b = cpuBackend(backend);
  const info = inputInfo(inputs, 'x')!;
  const C = info.shape[1]!;
  const x = readF32(b, info)!;
  const index = readI32(b, inputInfo(inputs, 'index')!);
  checkPermutation(index, readI32(b, inputInfo(inputs, 'inverse')!));
  const out = nativeOutput(backend, index.length * C);
  const native = C > 0 ? nativeOps(backend, 'permuteRows') : undefined;
  if (native) native.permuteRows(x, index, out, C);
  else permuteHost(x, index, C, out);
  return b.makeTensorInfo([index.length, C], 'float32', out);
};

export const permuteRowsOp: Op<PermuteInput, NoAttrs, Tensor> = defineOp<PermuteInput, NoAttrs, Tensor>({
  name: 'permuteRows',
  inputs: ['x', 'index', 'inverse'] as const,
  nonDifferentiable: ['index', 'inverse'],
  validate: ({ x, index, inverse }) => {
    const t = requireRows('permuteRows', x);
    requireInt1d('permuteRows', 'index', index, undefined, 'output rows');
    requireInt1d('permuteRows', 'inverse', inverse, t.shape[0]!, `one per row of x ${fmtShape(t.shape)}`);
  },
  reference: ({ x, index }) =>
    tf.tidy(() => {
      const m = x!.shape[0]!;
      const valid = tf.logicalAnd(tf.greaterEqual(index!, 0), tf.less(index!, m));
      const safe = tf.where(valid, index!, tf.fill(index!.shape, m, 'int32'));
      return tf.gather(tf.concat([x!, tf.zeros([1, x!.shape[1]!])], 0), safe);
    }),
  kernels: hostKernels(permuteCpu),
  gradient: ({ inputs, dy }) => ({ x: permuteRowsOp({ x: dy[0]!, index: inputs.inverse!, inverse: inputs.index! }) }),
});

/**
 * Rows of x [m, C] in the order `index` [s] gives (out-of-range entries give zero rows);
 * `inverse` [m] is the output row of each input row (out of range when unused). Each row
 * may be selected at most once.
 */
export function permuteRows(x: Tensor, index: Tensor, inverse: Tensor): Tensor {
  return permuteRowsOp({ x, index, inverse });
}

// ---------------------------------------------------------------- segmentPool / segmentBroadcast

type SegmentInput = 'x' | 'segment' | 'sorted' | 'ptr';
export type SegmentAttrs = { mean?: boolean };

/** ptr runs 0..n with no empty segment; sorted lists each segment's points, segment agrees. */
function checkSegmentation(op: string, segment: Int32Array, sorted: Int32Array, ptr: Int32Array): void {
  const n = segment.length;
  const S = ptr.length - 1;
  if (ptr[0] !== 0 || ptr[S] !== n) throw new Error(`${op}: 'ptr' must run from 0 to ${n}, got ${ptr[0]} .. ${ptr[S]}`);
  for (let s = 0; s < S; s++) {
    if (ptr[s + 1]! <= ptr[s]!) throw new Error(`${op}: segment ${s} is empty (ptr[${s}] = ${ptr[s]}, ptr[${s + 1}] = ${ptr[s + 1]})`);
    for (let j = ptr[s]!; j < ptr[s + 1]!; j++) {
      const p = sorted[j]!;
      if (!(p >= 0 && p < n) || segment[p] !== s) throw new Error(`${op}: sorted[${j}] = ${p} is listed under segment ${s} but segment[${p}] = ${segment[p]}`);
    }
  }
}

function validateSegments(op: string, inputs: Partial<Record<SegmentInput, Tensor>>, pool: boolean): void {
  const x = requireRows(op, inputs.x);
  const ptr = requireInt1d(op, 'ptr', inputs.ptr, undefined, 'segments + 1');
  const S = ptr.shape[0]! - 1;
  if (S < 0) throw new Error(`${op}: 'ptr' must have at least one entry`);
  const segment = requireInt1d(op, 'segment', inputs.segment, undefined, 'points');
  const n = segment.shape[0]!;
  requireInt1d(op, 'sorted', inputs.sorted, n, 'one per point, as segment');
  const rows = pool ? n : S;
  if (x.shape[0] !== rows) throw new Error(`${op}: 'x' ${fmtShape(x.shape)} must have ${rows} rows (${pool ? 'one per point' : 'one per segment'})`);
}

/** 1 / segment size as a column [S, 1]. */
function inverseCounts(ptr: Tensor): Tensor {
  const S = ptr.shape[0]! - 1;
  const counts = tf.sub(tf.slice(ptr, [1], [S]), tf.slice(ptr, [0], [S]));
  return tf.reshape(tf.div(1, tf.cast(counts, 'float32')), [S, 1]);
}

function segmentHost(backend: unknown, inputs: tf.NamedTensorInfoMap, op: string) {
  const b = cpuBackend(backend);
  const info = inputInfo(inputs, 'x')!;
  const segment = readI32(b, inputInfo(inputs, 'segment')!);
  const sorted = readI32(b, inputInfo(inputs, 'sorted')!);
  const ptr = readI32(b, inputInfo(inputs, 'ptr')!);
  checkSegmentation(op, segment, sorted, ptr);
  return { b, x: readF32(b, info)!, C: info.shape[1]!, segment, sorted, ptr };
}

const poolCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const { b, x, C, sorted, ptr } = segmentHost(backend, inputs, 'segmentPool');
  const mean = Boolean((attrs as unknown as SegmentAttrs).mean);
  const S = ptr.length - 1;
  const out = nativeOutput(backend, S * C);
  const native = C > 0 ? nativeOps(backend, 'segmentPool') : undefined;
  if (native) native.segmentPool(x, sorted, ptr, out, C, mean);
  else {
    out.fill(0);
    for (let s = 0; s < S; s++) {
      for (let j = ptr[s]!; j < ptr[s + 1]!; j++) {
        const p = sorted[j]! * C;
        for (let c = 0; c < C; c++) out[s * C + c]! += x[p + c]!;
      }
      if (mean) {
        const inv = Math.fround(1 / (ptr[s + 1]! - ptr[s]!));
        for (let c = 0; c < C; c++) out[s * C + c]! *= inv;
      }
    }
  }
  return b.makeTensorInfo([S, C], 'float32', out);
};

const broadcastCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const { b, x, C, segment, ptr } = segmentHost(backend, inputs, 'segmentBroadcast');
  const mean = Boolean((attrs as unknown as SegmentAttrs).mean);
  const n = segment.length;
  const out = nativeOutput(backend, n * C);
  const native = C > 0 ? nativeOps(backend, 'segmentBroadcast') : undefined;
  if (native) native.segmentBroadcast(x, segment, ptr, out, C, mean);
  else {
    for (let p = 0; p < n; p++) {
      const s = segment[p]!;
      const inv = mean ? Math.fround(1 / (ptr[s + 1]! - ptr[s]!)) : 1;
      for (let c = 0; c < C; c++) out[p * C + c] = mean ? x[s * C + c]! * inv : x[s * C + c]!;
    }
  }
  return b.makeTensorInfo([n, C], 'float32', out);
};

const SEGMENT_INPUTS = ['x', 'segment', 'sorted', 'ptr'] as const;
const INDEX_INPUTS = ['segment', 'sorted', 'ptr'] as const;

export const segmentPoolOp: Op<SegmentInput, SegmentAttrs, Tensor> = defineOp<SegmentInput, SegmentAttrs, Tensor>({
  name: 'segmentPool',
  inputs: SEGMENT_INPUTS,
  nonDifferentiable: INDEX_INPUTS,
  validate: (inputs) => validateSegments('segmentPool', inputs, true),
  reference: ({ x, segment, ptr }, attrs) =>
    tf.tidy(() => {
      const sums = tf.unsortedSegmentSum(x!, segment as tf.Tensor1D, ptr!.shape[0]! - 1);
      return attrs.mean ? tf.mul(sums, inverseCounts(ptr!)) : sums;
    }),
  kernels: hostKernels(poolCpu),
  gradient: ({ inputs, dy, attrs }) => ({ x: segmentBroadcastOp({ ...inputs, x: dy[0]! }, attrs) }),
});

export const segmentBroadcastOp: Op<SegmentInput, SegmentAttrs, Tensor> = defineOp<SegmentInput, SegmentAttrs, Tensor>({
  name: 'segmentBroadcast',
  inputs: SEGMENT_INPUTS,
  nonDifferentiable: INDEX_INPUTS,
  validate: (inputs) => validateSegments('segmentBroadcast', inputs, false),
  reference: ({ x, segment, ptr }, attrs) =>
    tf.tidy(() => {
      const rows = attrs.mean ? tf.mul(x!, inverseCounts(ptr!)) : x!;
      return tf.gather(rows, segment!);
    }),
  kernels: hostKernels(broadcastCpu),
  gradient: ({ inputs, dy, attrs }) => ({ x: segmentPoolOp({ ...inputs, x: dy[0]! }, attrs) }),
});

/** The three int32 forms of one segmentation of n points into S non-empty segments. */
export interface Segmentation {
  /** [n] segment of each point */
  segment: Tensor;
  /** [n] points grouped by segment */
  sorted: Tensor;
  /** [S + 1] segment s owns sorted[ptr[s] .. ptr[s+1]) */
  ptr: Tensor;
}

/** x [n, C] → [S, C]: per-segment sums, or means with `mean`. */
export function segmentPool(x: Tensor, seg: Segmentation, mean = false): Tensor {
  return segmentPoolOp({ x, ...seg }, { mean });
}

/** x [S, C] → [n, C]: each segment's row copied to its points (divided by the segment's size with `mean`). */
export function segmentBroadcast(x: Tensor, seg: Segmentation, mean = false): Tensor {
  return segmentBroadcastOp({ x, ...seg }, { mean });
}
