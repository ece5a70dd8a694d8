import { gatherRowsOp, scatterRowsOp } from '@kiln/gpu-kernels';
import { tf } from '@kiln/tensor';

/**
 * Where every row of the expert-contiguous ("permuted") layout comes from. Built on the host
 * from the routing map, like Megatron's `permute` (`routing_map.T.nonzero()`): experts in
 * order, and inside an expert its tokens in token order. Padding rows (to a capacity, or to a
 * row multiple for low-precision GEMMs) read a zero row and write nowhere.
 */
export interface PermutePlan {
  numTokens: number;
  /** Experts this plan covers: `expertOffset … expertOffset + numExperts − 1` of the routing map. */
  numExperts: number;
  expertOffset: number;
  /** Column count of the routing map (all experts), for indexing the probs. */
  totalExperts: number;
  /** Source token of each permuted row; `numTokens` marks a padding row. */
  rowToken: Int32Array;
  /** Index into the flattened [tokens, totalExperts] probs of each row; `numTokens·totalExperts` for padding. */
  rowProb: Int32Array;
  /** Rows per covered expert, padding included (the grouped GEMM's group sizes). */
  rowsPerExpert: Int32Array;
  /** Routed tokens per covered expert, padding excluded (for load statistics and losses). */
  tokensPerExpert: Int32Array;
  /** Whether any padding row exists (the permute then needs a zero row). */
  padded: boolean;
  /** Most rows any token occupies (≤ topk). */
  maxRowsPerToken: number;
  /** [tokens, maxRowsPerToken]: the rows of each token, `rows` (a zero row) where fewer. */
  tokenRows: Int32Array;
  /** [tokens·totalExperts]: the row of each (token, expert) pair, `rows` where not routed here. */
  probRow: Int32Array;
}

export interface PlanOptions {
  /** Cover only experts [expertOffset, expertOffset + numExperts) (a rank's local experts). */
  expertOffset?: number;
  numExperts?: number;
  /** Every expert gets exactly this many rows (Megatron's pad-to-capacity); counts above it are an error. */
  padToCapacity?: number | null;
  /** Round every expert's rows up to a multiple of this (FP8/FP4 GEMM alignment). */
  padToMultiple?: number | null;
}

/**
 * Builds the permutation for a [tokens, totalExperts] 0/1 routing map given as row-major
 * values (a boolean tensor's `dataSync()` or any numeric array, non-zero = routed).
 */
export function planPermutation(routingMap: ArrayLike<number | boolean>, numTokens: number, totalExperts: number, options: PlanOptions = {}): PermutePlan {
  if (routingMap.length !== numTokens * totalExperts) {
    throw new Error(`planPermutation: routingMap has ${routingMap.length} entries, expected tokens ${numTokens} × experts ${totalExperts}`);
  }
  const offset = options.expertOffset ?? 0;
  const count = options.numExperts ?? totalExperts - offset;
  if (offset < 0 || count < 0 || offset + count > totalExperts) {
    throw new Error(`planPermutation: experts [${offset}, ${offset + count}) outside the routing map's ${totalExperts}`);
  }
  const tokensPerExpert = new Int32Array(count);
  for (let t = 0; t < numTokens; t++) {
    const base = t * totalExperts + offset;
    for (let e = 0; e < count; e++) if (routingMap[base + e]) tokensPerExpert[e]!++;
  }
  const rowsPerExpert = new Int32Array(count);
  const cap = options.padToCapacity ?? null;
  const mult = options.padToMultiple ?? null;
  for (let e = 0; e < count; e++) {
    const n = tokensPerExpert[e]!;
    if (cap !== null) {
      if (n > cap) throw new Error(`planPermutation: expert ${offset + e} has ${n} tokens, more than padToCapacity ${cap} (drop tokens first)`);
      rowsPerExpert[e] = cap;
    } else if (mult !== null && mult > 1) rowsPerExpert[e] = Math.ceil(n / mult) * mult;
    else rowsPerExpert[e] = n;
  }
  let rows = 0;
  for (const r of rowsPerExpert) rows += r;
  const rowToken = new Int32Array(rows).fill(numTokens);
  const rowProb = new Int32Array(rows).fill(numTokens * totalExperts);
  let start = 0;
  let padded = false;
  for (let e = 0; e < count; e++) {
    let r = start;
    const col = offset + e;
    for (let t = 0; t < numTokens; t++) {
      if (routingMap[t * totalExperts + col]) {
        rowToken[r] = t;
        rowProb[r] = t * totalExperts + col;
        r++;
      }
    }
    if (r < start + rowsPerExpert[e]!) padded = true;
    start += rowsPerExpert[e]!;
  }
  // Inverse maps, so that both directions are gathers (tfjs's scatter-add, UnsortedSegmentSum,
  // loops over segments on the CPU backends and is orders of magnitude slower).
  const perToken = new Int32Array(numTokens);
  for (let r = 0; r < rows; r++) if (rowToken[r]! < numTokens) perToken[rowToken[r]!]!++;
  let maxRowsPerToken = 0;
  for (const n of perToken) maxRowsPerToken = Math.max(maxRowsPerToken, n);
  const tokenRows = new Int32Array(numTokens * maxRowsPerToken).fill(rows);
  perToken.fill(0);
  const probRow = new Int32Array(numTokens * totalExperts).fill(rows);
  for (let r = 0; r < rows; r++) {
    const t = rowToken[r]!;
    if (t >= numTokens) continue;
    tokenRows[t * maxRowsPerToken + perToken[t]!++] = r;
    probRow[rowProb[r]!] = r;
  }
  return { numTokens, numExperts: count, expertOffset: offset, totalExperts, rowToken, rowProb, rowsPerExpert, tokensPerExpert, padded, maxRowsPerToken, tokenRows, probRow };
}

/**
 * Moves tokens into expert-contiguous rows and back. The default is `KernelPermuter`
 * (@kiln/gpu-kernels' row gather/scatter ops, the data movement of its `moePermute` /
 * `moeUnpermute`); `ReferencePermuter` (tf gathers only) is the test oracle.
 */
export interface Permuter {
  /** [tokens, H] → [rows, H]: row i is token `plan.rowToken[i]` (zeros for padding). */
  permute(tokens: tf.Tensor2D, plan: PermutePlan): tf.Tensor2D;
  /**
   * [rows, H] → [tokens, H]: scatter-add of each row into its token, times the row's routing
   * probability (from the [tokens, totalExperts] probs) when probs are given.
   */
  unpermute(rows: tf.Tensor2D, plan: PermutePlan, probs?: tf.Tensor2D | null): tf.Tensor2D;
}

/** x with one zero row appended (the target of padding indices). */
function withZeroRow(x: tf.Tensor2D): tf.Tensor2D {
  return tf.concat([x, tf.zeros([1, x.shape[1]])], 0) as tf.Tensor2D;
}

/** Σ_j x[index[t, j]] over the j of each row t (index [T, k] into x with a zero row appended). */
function gatherSum(x: tf.Tensor2D, index: Int32Array, T: number, k: number): tf.Tensor2D {
  const width = x.shape[1];
  if (k === 0) return tf.zeros([T, width]) as tf.Tensor2D;
  const g = tf.gather(withZeroRow(x), tf.tensor1d(index, 'int32'));
  return (k === 1 ? tf.reshape(g, [T, width]) : tf.sum(tf.reshape(g, [T, k, width]), 1)) as tf.Tensor2D;
}

/**
 * Reference permute/unpermute built from gathers only, each direction's gradient being the
 * other direction's gather (custom gradients), so no scatter-add is ever run.
 */
export class ReferencePermuter implements Permuter {
  permute(tokens: tf.Tensor2D, plan: PermutePlan): tf.Tensor2D {
    checkTokens('permute', tokens, plan.numTokens);
    const T = plan.numTokens;
    const k = plan.maxRowsPerToken;
    const op = tf.customGrad((...args: unknown[]) => {
      const [x, save] = args as [tf.Tensor, (ts: tf.Tensor[]) => void];
      save([]);
      const value = tf.gather(withZeroRow(x as tf.Tensor2D), tf.tensor1d(plan.rowToken, 'int32'));
      return { value, gradFunc: (dy: tf.Tensor | tf.Tensor[]) => gatherSum(dy as tf.Tensor2D, plan.tokenRows, T, k) };
    });
    return tf.tidy(() => (op as unknown as (x: tf.Tensor) => tf.Tensor2D)(tokens));
  }

  unpermute(rows: tf.Tensor2D, plan: PermutePlan, probs?: tf.Tensor2D | null): tf.Tensor2D {
    if (rows.shape[0] !== plan.rowToken.length) {
      throw new Error(`unpermute: rows has ${rows.shape[0]} rows, the plan ${plan.rowToken.length}`);
    }
    const T = plan.numTokens;
    const k = plan.maxRowsPerToken;
    if (!probs) {
      const op = tf.customGrad((...args: unknown[]) => {
        const [r, save] = args as [tf.Tensor, (ts: tf.Tensor[]) => void];
        save([]);
        return {
          value: gatherSum(r as tf.Tensor2D, plan.tokenRows, T, k),
          gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.gather(withZeroRow(dy as tf.Tensor2D), tf.tensor1d(plan.rowToken, 'int32')),
        };
      });
      return tf.tidy(() => (op as unknown as (x: tf.Tensor) => tf.Tensor2D)(rows));
    }
    if (probs.shape[0] !== T || probs.shape[1] !== plan.totalExperts) {
      throw new Error(`unpermute: probs shape [${probs.shape}] is not [tokens ${T}, experts ${plan.totalExperts}]`);
    }
    const op = tf.customGrad((...args: unknown[]) => {
      const [r, p, save] = args as [tf.Tensor, tf.Tensor, (ts: tf.Tensor[]) => void];
      // weight of each row: its (token, expert) probability, 0 for padding rows
      const flat = tf.concat([tf.reshape(p, [-1]), tf.zeros([1])], 0);
      const w = tf.gather(flat, tf.tensor1d(plan.rowProb, 'int32'));
      const weighted = tf.mul(r, tf.expandDims(w, 1)) as tf.Tensor2D;
      save([r, w]);
      return {
        value: gatherSum(weighted, plan.tokenRows, T, k),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [sr, sw] = saved as [tf.Tensor2D, tf.Tensor1D];
          const back = tf.gather(withZeroRow(dy as tf.Tensor2D), tf.tensor1d(plan.rowToken, 'int32'));
          const dRows = tf.mul(back, tf.expandDims(sw, 1));
          // d prob(t, e) = ⟨dy[t], row(t, e)⟩, gathered back to the [T, E] layout
          const dW = tf.sum(tf.mul(back, sr), 1);
          const dProbs = tf.reshape(tf.gather(tf.concat([dW, tf.zeros([1])], 0), tf.tensor1d(plan.probRow, 'int32')), [T, plan.totalExperts]);
          return [dRows, dProbs];
        },
      };
    });
    return tf.tidy(() => (op as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor2D)(rows, probs));
  }
}

/**
 * The permuter on @kiln/gpu-kernels' ops (the default): `moeGatherRows` into the
 * expert-contiguous rows and `moeScatterRows` (scatter-add, × the row's probability) back —
 * native C++ kernels on kiln-native, host loops on cpu, WGSL on webgpu. Each op's gradient is
 * the other, so backward is one gather and one scatter too. Padding rows read a zero row and
 * scatter into token 0 with weight 0 (no value, no gradient).
 */
export class KernelPermuter implements Permuter {
  permute(tokens: tf.Tensor2D, plan: PermutePlan): tf.Tensor2D {
    checkTokens('permute', tokens, plan.numTokens);
    return tf.tidy(() => {
      const indices = tf.tensor1d(plan.rowToken, 'int32');
      return gatherRowsOp({ x: plan.padded ? withZeroRow(tokens) : tokens, indices }, {}) as tf.Tensor2D;
    });
  }

  unpermute(rows: tf.Tensor2D, plan: PermutePlan, probs?: tf.Tensor2D | null): tf.Tensor2D {
    if (rows.shape[0] !== plan.rowToken.length) {
      throw new Error(`unpermute: rows has ${rows.shape[0]} rows, the plan ${plan.rowToken.length}`);
    }
    const T = plan.numTokens;
    if (probs && (probs.shape[0] !== T || probs.shape[1] !== plan.totalExperts)) {
      throw new Error(`unpermute: probs shape [${probs.shape}] is not [tokens ${T}, experts ${plan.totalExperts}]`);
    }
    return tf.tidy(() => {
      const ix = this.indices(plan);
      let weights: tf.Tensor | undefined;
      if (probs) {
        // each row's (token, expert) probability, 0 for padding: a row gather on a [T·E + 1, 1]
        // column, whose gradient (a scatter) lands on the probs
        const column = tf.concat([tf.reshape(probs, [-1, 1]), tf.zeros([1, 1])], 0);
        weights = tf.reshape(gatherRowsOp({ x: column, indices: ix.prob }, {}), [-1]);
      } else if (ix.mask) weights = ix.mask;
      const inputs: { x: tf.Tensor; indices: tf.Tensor; weights?: tf.Tensor } = { x: rows, indices: ix.scatter };
      if (weights) inputs.weights = weights;
      return scatterRowsOp(inputs, { numRows: T }) as tf.Tensor2D;
    });
  }

  /** The plan's host index arrays as int32 tensors (the ops' tape keeps what backward needs). */
  private indices(plan: PermutePlan): { scatter: tf.Tensor1D; prob: tf.Tensor1D; mask: tf.Tensor1D | null } {
    const T = plan.numTokens;
    return {
      scatter: tf.tensor1d(Int32Array.from(plan.rowToken, (t) => (t < T ? t : 0)), 'int32'),
      prob: tf.tensor1d(plan.rowProb, 'int32'),
      mask: plan.padded ? tf.tensor1d(Float32Array.from(plan.rowToken, (t) => (t < T ? 1 : 0))) : null,
    };
  }
}

/**
 * Reorders rows by a permutation `order` (row i of the result is x[order[i]]); its gradient
 * is the gather by the inverse permutation.
 */
export function permuteRows(x: tf.Tensor2D, order: Int32Array, inverse: Int32Array): tf.Tensor2D {
  const op = tf.customGrad((...args: unknown[]) => {
    const [a, save] = args as [tf.Tensor, (ts: tf.Tensor[]) => void];
    save([]);
    return {
      value: tf.gather(a, tf.tensor1d(order, 'int32')),
      gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.gather(dy as tf.Tensor, tf.tensor1d(inverse, 'int32')),
    };
  });
  return tf.tidy(() => (op as unknown as (a: tf.Tensor) => tf.Tensor2D)(x));
}

function checkTokens(where: string, tokens: tf.Tensor, numTokens: number): void {
  if (tokens.rank !== 2 || tokens.shape[0] !== numTokens) {
    throw new Error(`${where}: tokens shape [${tokens.shape}] is not [tokens ${numTokens}, hidden]`);
  }
}

let activePermuter: Permuter = new KernelPermuter();
/** The permuter the layer uses (gpu-kernels' unless swapped). */
export function getPermuter(): Permuter {
  return activePermuter;
}
/** Swap in another permuter (tests compare `ReferencePermuter` with the kernels). */
export function setPermuter(p: Permuter): void {
  activePermuter = p;
}
