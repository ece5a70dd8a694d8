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
  return { numTokens, numExperts: count, expertOffset: offset, totalExperts, rowToken, rowProb, rowsPerExpert, tokensPerExpert, padded };
}

/**
 * Moves tokens into expert-contiguous rows and back. The reference below is tf gathers and
 * segment sums (differentiable, every backend); @kiln/gpu-kernels' fused `moePermute` /
 * `moeUnpermute` plug in here through `setPermuter` once they land.
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

export class ReferencePermuter implements Permuter {
  permute(tokens: tf.Tensor2D, plan: PermutePlan): tf.Tensor2D {
    checkTokens('permute', tokens, plan.numTokens);
    return tf.tidy(() => {
      const source = plan.padded ? tf.concat([tokens, tf.zeros([1, tokens.shape[1]])], 0) : tokens;
      return tf.gather(source, tf.tensor1d(plan.rowToken, 'int32')) as tf.Tensor2D;
    });
  }

  unpermute(rows: tf.Tensor2D, plan: PermutePlan, probs?: tf.Tensor2D | null): tf.Tensor2D {
    if (rows.shape[0] !== plan.rowToken.length) {
      throw new Error(`unpermute: rows has ${rows.shape[0]} rows, the plan ${plan.rowToken.length}`);
    }
    return tf.tidy(() => {
      let weighted: tf.Tensor2D = rows;
      if (probs) {
        if (probs.shape[0] !== plan.numTokens || probs.shape[1] !== plan.totalExperts) {
          throw new Error(`unpermute: probs shape [${probs.shape}] is not [tokens ${plan.numTokens}, experts ${plan.totalExperts}]`);
        }
        const flat = tf.concat([tf.reshape(probs, [-1]), tf.zeros([1])], 0);
        const w = tf.gather(flat, tf.tensor1d(plan.rowProb, 'int32'));
        weighted = tf.mul(rows, tf.expandDims(w, 1));
      }
      const segments = plan.padded ? plan.numTokens + 1 : plan.numTokens;
      const summed = tf.unsortedSegmentSum(weighted, tf.tensor1d(plan.rowToken, 'int32'), segments);
      return (plan.padded ? tf.slice(summed, [0, 0], [plan.numTokens, rows.shape[1]]) : summed) as tf.Tensor2D;
    });
  }
}

function checkTokens(where: string, tokens: tf.Tensor, numTokens: number): void {
  if (tokens.rank !== 2 || tokens.shape[0] !== numTokens) {
    throw new Error(`${where}: tokens shape [${tokens.shape}] is not [tokens ${numTokens}, hidden]`);
  }
}

let activePermuter: Permuter = new ReferencePermuter();
/** The permuter the layer uses (the reference until a fused kernel is registered). */
export function getPermuter(): Permuter {
  return activePermuter;
}
/** Swap in another permuter (e.g. @kiln/gpu-kernels' fused moePermute/moeUnpermute). */
export function setPermuter(p: Permuter): void {
  activePermuter = p;
}
