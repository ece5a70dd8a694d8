/**
 * `moePermute` / `moeUnpermute`: gather tokens into expert-contiguous order and scatter
 * them back, weighted by their routing probabilities — Megatron-Core's `permute` /
 * `unpermute` (moe_utils.py), including its drop-and-pad mode under an expert capacity.
 *
 * The plan (which token goes to which row) is computed on the host from the routing map;
 * the data movement is two ops with kernels on every backend: `moeGatherRows` and its
 * adjoint `moeScatterRows`.
 */
import { defineOp, hostArray, type Op, type OpKernel, tf } from '@kiln/tensor';
import { oneHot } from '../tf-helpers.js';
import { hostKernels } from '../host-kernels.js';
import { cpuBackend, inputInfo, nativeOutput, readF32, readI32 } from '../backend-data.js';
import { EMPTY_F32, nativeOps } from '../native.js';
import { gatherRowsWgsl, scatterRowsWgsl } from '../wgsl/moe.js';

import { fmtShape, requireFloat, requirePositiveInt, requireRank, requireTensor } from '../checks.js';

type Tensor = tf.Tensor;

// ---------------------------------------------------------------- row gather / scatter

function checkIndices(op: string, indices: Tensor, rows: number, allowedRows: number): void {
  requireRank(op, 'indices', indices, 1, 'rows');
  if (indices.dtype !== 'int32') throw new Error(`${op}: 'indices' must be int32, got ${indices.dtype} with shape ${fmtShape(indices.shape)}`);
  if (indices.shape[0] !== rows) throw new Error(`${op}: 'indices' ${fmtShape(indices.shape)} must have one entry per row (${rows})`);
  void allowedRows;
}

function checkIndexValues(op: string, idx: Int32Array, rows: number): void {
  for (let r = 0; r < idx.length; r++) {
    if (idx[r]! < 0 || idx[r]! >= rows) throw new Error(`${op}: 'indices[${r}]' = ${idx[r]} is outside [0, ${rows})`);
  }
}

export const gatherRowsCpu: OpKernel = ({ inputs, backend }) => {
  const b = cpuBackend(backend);
  const x = inputInfo(inputs, 'x')!;
  const idx = readI32(b, inputInfo(inputs, 'indices')!);
  const H = x.shape[1]!;
  const xs = readF32(b, x)!;
  checkIndexValues('moeGatherRows', idx, x.shape[0]!);
  const native = nativeOps(backend, 'moeGatherRows');
  if (native && H > 0) {
    const rows = nativeOutput(backend, idx.length * H); // every row is copied
    native.moeGatherRows(xs, idx, rows, H);
    return b.makeTensorInfo([idx.length, H], 'float32', rows);
  }
  const out = new Float32Array(idx.length * H);
  for (let r = 0; r < idx.length; r++) out.set(xs.subarray(idx[r]! * H, idx[r]! * H + H), r * H);
  return b.makeTensorInfo([idx.length, H], 'float32', out);
};

export const scatterRowsCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const x = inputInfo(inputs, 'x')!;
  const idx = readI32(b, inputInfo(inputs, 'indices')!);
  const w = readF32(b, inputInfo(inputs, 'weights'));
  const { numRows } = attrs as unknown as { numRows: number };
  const H = x.shape[1]!;
  const xs = readF32(b, x)!;
  checkIndexValues('moeScatterRows', idx, numRows);
  const native = nativeOps(backend, 'moeScatterRows');
  if (native && H > 0) {
    const sums = nativeOutput(backend, numRows * H); // the kernel zeroes it before adding
    native.moeScatterRows(xs, idx, w ?? EMPTY_F32, sums, H);
    return b.makeTensorInfo([numRows, H], 'float32', sums);
  }
  const out = new Float32Array(numRows * H);
  for (let r = 0; r < idx.length; r++) {
    const wr = w ? w[r]! : 1;
    const o = idx[r]! * H;
    for (let h = 0; h < H; h++) out[o + h]! += xs[r * H + h]! * wr;
  }
  return b.makeTensorInfo([numRows, H], 'float32', out);
};

/** out[r] = x[indices[r]] — x [T, H], indices [R] → [R, H]. */
export const gatherRowsOp: Op<'x' | 'indices', Record<string, never>, Tensor> = defineOp<
  'x' | 'indices',
  Record<string, never>,
  Tensor
>({
  name: 'moeGatherRows',
  inputs: ['x', 'indices'] as const,
  nonDifferentiable: ['indices'],
  validate: ({ x, indices }) => {
    const t = requireTensor('moeGatherRows', 'x', x);
    requireRank('moeGatherRows', 'x', t, 2, 'tokens, hidden');
    checkIndices('moeGatherRows', requireTensor('moeGatherRows', 'indices', indices), indices!.shape[0]!, t.shape[0]!);
  },
  reference: ({ x, indices }) => tf.gather(x!, indices!),
  kernels: { ...hostKernels(gatherRowsCpu), webgpu: gatherRowsWgsl },
  gradient: ({ inputs, dy }) => ({ x: scatterRowsOp({ x: dy[0]!, indices: inputs.indices! }, { numRows: inputs.x!.shape[0]! }) }),
});

/** out[indices[r]] += x[r] · weights[r] — x [R, H], indices [R], weights [R] → [numRows, H]. */
export const scatterRowsOp: Op<'x' | 'indices' | 'weights', { numRows: number }, Tensor> = defineOp<
  'x' | 'indices' | 'weights',
  { numRows: number },
  Tensor
>({
  name: 'moeScatterRows',
  inputs: ['x', 'indices', 'weights'] as const,
  nonDifferentiable: ['indices'],
  validate: ({ x, indices, weights }, { numRows }) => {
    const op = 'moeScatterRows';
    const t = requireTensor(op, 'x', x);
    requireRank(op, 'x', t, 2, 'rows, hidden');
    requireFloat(op, 'x', t);
    checkIndices(op, requireTensor(op, 'indices', indices), t.shape[0]!, numRows);
    if (weights) {
      requireRank(op, 'weights', weights, 1, 'rows');
      requireFloat(op, 'weights', weights);
      if (weights.shape[0] !== t.shape[0]) throw new Error(`${op}: 'weights' ${fmtShape(weights.shape)} must have one entry per row of x ${fmtShape(t.shape)}`);
    }
    if (!Number.isInteger(numRows) || numRows < 0) throw new Error(`${op}: 'numRows' must be a non-negative integer, got ${numRows}`);
  },
  reference: ({ x, indices, weights }, { numRows }) => {
    const rows = weights ? tf.mul(x!, tf.expandDims(weights, 1)) : x!;
    // Σ_r onehot(indices[r]) ⊗ rows[r]: a dense scatter-add that tfjs can differentiate.
    return tf.matMul(oneHot(indices!, numRows), rows, true, false);
  },
  kernels: { ...hostKernels(scatterRowsCpu), webgpu: scatterRowsWgsl },
  gradient: ({ inputs, dy }) => {
    const back = gatherRowsOp({ x: dy[0]!, indices: inputs.indices! }, {});
    const grads: Partial<Record<'x' | 'weights', Tensor>> = {
      x: inputs.weights ? tf.mul(back, tf.expandDims(inputs.weights, 1)) : back,
    };
    if (inputs.weights) grads.weights = tf.sum(tf.mul(back, inputs.x!), 1);
    return grads;
  },
});

// ---------------------------------------------------------------- the plan

export interface PermutePlan {
  /** For each output row, the token it holds (Megatron's `sorted_indices`). */
  sortedIndices: Int32Array;
  /** For each output row, the flat index e·T + t of its probability in probs [T, E] read column-major. */
  probIndices: Int32Array;
  /** Output rows per expert (each equals the capacity under padding). */
  rowsPerExpert: number[];
  /** Routed tokens each expert kept (after any capacity drop; padding not counted). */
  keptPerExpert: number[];
  /** Routed (token, expert) pairs dropped by the capacity. */
  dropped: number;
}

export interface PermuteOptions {
  /** Rows per expert; tokens past it are dropped. Absent: dropless. */
  capacity?: number;
  /** With `capacity`: which routed tokens an expert keeps — the earliest ('position', default) or the most probable ('probs', needs probs). */
  dropPolicy?: 'position' | 'probs';
  /** With `capacity`: fill every expert to exactly `capacity` rows with unrouted tokens of probability 0 (Megatron's drop-and-pad). */
  padToCapacity?: boolean;
}

/**
 * The permutation from a routing map [T, E] (nonzero = routed), on the host. Rows are
 * expert-major, tokens ascending within an expert; padding rows (probability 0) are the
 * lowest-indexed tokens not kept by that expert, as Megatron's stable argsort yields them.
 */
export function planPermutation(routingMap: ArrayLike<number | boolean>, T: number, E: number, options: PermuteOptions = {}, probs?: ArrayLike<number>): PermutePlan {
  const { capacity, dropPolicy = 'position', padToCapacity = false } = options;
  const sorted: number[] = [];
  const probIdx: number[] = [];
  const rowsPerExpert: number[] = [];
  const keptPerExpert: number[] = [];
  let dropped = 0;
  for (let e = 0; e < E; e++) {
    let routed: number[] = [];
    for (let t = 0; t < T; t++) if (routingMap[t * E + e]) routed.push(t);
    if (capacity !== undefined && routed.length > capacity) {
      dropped += routed.length - capacity;
      if (dropPolicy === 'probs') {
        routed = [...routed].sort((a, b) => Number(probs![b * E + e]!) - Number(probs![a * E + e]!) || a - b).slice(0, capacity);
        routed.sort((a, b) => a - b);
      } else routed = routed.slice(0, capacity);
    }
    keptPerExpert.push(routed.length);
    let rows = routed;
    if (capacity !== undefined && padToCapacity && routed.length < capacity) {
      const kept = new Set(routed);
      const fill: number[] = [];
      for (let t = 0; t < T && routed.length + fill.length < capacity; t++) if (!kept.has(t)) fill.push(t);
      rows = [...routed, ...fill].sort((a, b) => a - b);
      // Padding tokens carry probability 0: point them at a zero entry.
    }
    const keptSet = new Set(routed);
    for (const t of rows) {
      sorted.push(t);
      probIdx.push(keptSet.has(t) ? e * T + t : -1);
    }
    rowsPerExpert.push(rows.length);
  }
  return { sortedIndices: Int32Array.from(sorted), probIndices: Int32Array.from(probIdx), rowsPerExpert, keptPerExpert, dropped };
}

// ---------------------------------------------------------------- public API

export interface MoePermuteResult {
  /** [rows, hidden], expert-contiguous */
  permuted: Tensor;
  /** [rows] int32, the token of each row (input to `moeUnpermute`) */
  sortedIndices: Tensor;
  /** [rows], the routing probability of each row (0 for padding), when probs were given; differentiable */
  permutedProbs?: Tensor;
  /** Rows per expert, the `groupSizes` for `groupedMatMul` */
  tokensPerExpert: number[];
  /** The plan on the host */
  plan: PermutePlan;
}

/**
 * The values a host plan is built from. On a CPU-memory backend they are read in place (no
 * transfer); a GPU backend would have to wait for the device inside the forward pass, so
 * there the caller reads them once, asynchronously, and passes `plan`.
 */
function hostValues(t: Tensor, name: string): ArrayLike<number> {
  const values = hostArray(t);
  if (!values) {
    throw new Error(
      `moePermute: the plan is built on the host, and '${name}' ${fmtShape(t.shape)} is on the ${tf.getBackend()} device; pass 'plan' (planPermutation(await routingMap.data(), T, E, options, await probs?.data()))`,
    );
  }
  return values;
}

/**
 * Tokens [T, H] and a routing map [T, E] (bool or 0/1) → rows grouped by expert. With
 * `probs` [T, E] the rows' probabilities come along (for `moeUnpermute`). The plan is built
 * on the host: from the routing map on a CPU-memory backend, or given as `plan` (from
 * `planPermutation` on values read with `await routingMap.data()`) on a GPU backend.
 */
export function moePermute(
  tokens: Tensor,
  routingMap: Tensor,
  options: PermuteOptions & { probs?: Tensor; plan?: PermutePlan } = {},
): MoePermuteResult {
  const op = 'moePermute';
  requireRank(op, 'tokens', tokens, 2, 'tokens, hidden');
  requireFloat(op, 'tokens', tokens);
  requireRank(op, 'routingMap', routingMap, 2, 'tokens, experts');
  const [T, E] = routingMap.shape as [number, number];
  if (T !== tokens.shape[0]) throw new Error(`${op}: 'routingMap' ${fmtShape(routingMap.shape)} and 'tokens' ${fmtShape(tokens.shape)} differ in tokens`);
  const { probs, plan: given, ...opts } = options;
  if (probs) {
    requireFloat(op, 'probs', probs);
    if (probs.shape.join() !== routingMap.shape.join()) throw new Error(`${op}: 'probs' ${fmtShape(probs.shape)} must match 'routingMap' ${fmtShape(routingMap.shape)}`);
  }
  if (opts.capacity !== undefined) {
    requirePositiveInt(op, 'capacity', opts.capacity);
    if (opts.padToCapacity && opts.capacity > T) throw new Error(`${op}: 'capacity' = ${opts.capacity} exceeds the ${T} tokens; padding cannot fill it`);
    if (opts.dropPolicy === 'probs' && !probs && !given) throw new Error(`${op}: dropPolicy 'probs' needs 'probs' [T, E]`);
  }
  if (opts.dropPolicy && opts.dropPolicy !== 'position' && opts.dropPolicy !== 'probs') {
    throw new Error(`${op}: 'dropPolicy' must be 'position' or 'probs', got '${String(opts.dropPolicy)}'`);
  }
  const plan = given ?? planPermutation(hostValues(routingMap, 'routingMap'), T, E, opts, probs && hostValues(probs, 'probs'));
  const sortedIndices = tf.tensor1d(plan.sortedIndices, 'int32');
  const permuted = gatherRowsOp({ x: tokens, indices: sortedIndices }, {});
  const result: MoePermuteResult = { permuted, sortedIndices, tokensPerExpert: plan.rowsPerExpert, plan };
  if (probs) {
    // Column-major flat probs plus one trailing zero that padding rows point at.
    const flat = tf.concat([tf.reshape(tf.transpose(probs), [-1]), tf.zeros([1])]);
    const idx = tf.tensor1d(plan.probIndices.map((i) => (i < 0 ? T * E : i)), 'int32');
    result.permutedProbs = tf.gather(flat, idx);
  }
  return result;
}

/**
 * The inverse of `moePermute`: rows [R, H] scatter-added back to [numTokens, H], each row
 * multiplied by its probability when `probs` ([R], `permutedProbs`) is given.
 */
export function moeUnpermute(permuted: Tensor, sortedIndices: Tensor, options: { numTokens: number; probs?: Tensor }): Tensor {
  const inputs: Partial<Record<'x' | 'indices' | 'weights', Tensor>> = { x: permuted, indices: sortedIndices };
  if (options.probs) inputs.weights = options.probs;
  if (!Number.isInteger(options.numTokens) || options.numTokens < 0) {
    throw new Error(`moeUnpermute: 'numTokens' must be a non-negative integer, got ${options.numTokens}`);
  }
  return scatterRowsOp(inputs, { numRows: options.numTokens });
}
