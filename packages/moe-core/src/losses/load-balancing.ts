/**
 * Load-balancing losses (Megatron's `switch_load_balancing_loss_func` and the router's
 * `_apply_aux_loss` / `_apply_seq_aux_loss` / `_apply_global_aux_loss`).
 */
import { tf } from '@kiln/tensor';

function countsTensor(tokensPerExpert: tf.Tensor | ArrayLike<number>, numExperts: number, name = 'tokensPerExpert'): tf.Tensor1D {
  const t = tokensPerExpert instanceof tf.Tensor ? tf.cast(tokensPerExpert, 'float32') : tf.tensor1d(Float32Array.from(tokensPerExpert));
  if (t.size !== numExperts) throw new Error(`${name} has ${t.size} entries, expected ${numExperts}`);
  return tf.reshape(t, [numExperts]) as tf.Tensor1D;
}

/**
 * Switch Transformer aux loss:
 *   coeff · E / (k · T²) · Σ_i (Σ_x probs(x, i)) · tokensPerExpert_i
 * where probs is the full score distribution [tokens, E] of this rank's tokens and
 * tokensPerExpert / totalTokens are counted at the level the loss balances (micro-batch,
 * sequence, or global batch). Perfect balance gives exactly coeff. Rows where `paddingMask`
 * is false (padding tokens) are excluded from the probability sums.
 */
export function switchLoadBalancingLoss(
  probs: tf.Tensor2D,
  tokensPerExpert: tf.Tensor | ArrayLike<number>,
  totalTokens: number,
  topk: number,
  numExperts: number,
  coeff: number,
  paddingMask?: tf.Tensor1D | null,
): tf.Scalar {
  if (!(probs instanceof tf.Tensor) || probs.rank !== 2) throw new Error('switchLoadBalancingLoss: probs must be a 2-D tensor [tokens, experts]');
  if (probs.shape[1] !== numExperts) throw new Error(`switchLoadBalancingLoss: probs has ${probs.shape[1]} columns, numExperts is ${numExperts}`);
  if (!(totalTokens > 0)) throw new Error(`switchLoadBalancingLoss: totalTokens must be > 0, got ${totalTokens}`);
  if (!(topk >= 1)) throw new Error(`switchLoadBalancingLoss: topk must be ≥ 1, got ${topk}`);
  return switchLossCore(probs, tokensPerExpert, totalTokens, topk, numExperts, coeff, paddingMask);
}

/** The Switch loss without the column check: seq_aux_loss folds the batch into the columns. */
function switchLossCore(
  probs: tf.Tensor2D,
  tokensPerExpert: tf.Tensor | ArrayLike<number>,
  totalTokens: number,
  topk: number,
  numExperts: number,
  coeff: number,
  paddingMask?: tf.Tensor1D | null,
): tf.Scalar {
  return tf.tidy(() => {
    let p: tf.Tensor2D = probs;
    if (paddingMask) p = tf.mul(p, tf.expandDims(tf.cast(paddingMask, 'float32'), -1));
    const aggregated = tf.sum(p, 0);
    const c = countsTensor(tokensPerExpert, probs.shape[1]);
    // The scalar factor is formed in double precision, as Python does before multiplying.
    const factor = (numExperts * coeff) / (topk * totalTokens * totalTokens);
    return tf.mul(tf.sum(tf.mul(aggregated, c)), factor) as tf.Scalar;
  });
}

/** Token order of a flattened [tokens, …] tensor: 'sb' = Megatron's sequence-major, 'bs' = batch-major. */
export type TokenOrder = 'sb' | 'bs';

/**
 * Sequence-level aux loss (Megatron's seq_aux_loss): the Switch loss of every sequence on its
 * own, averaged over the batch. Computed as Megatron does, by folding the batch into the
 * expert axis: scores and map become [seqLength, bsz·E], counts per (sequence, expert), and
 * the summed loss is divided by bsz. `scores` and `routingMap` are the aux-loss scores and
 * plain top-k map of [seqLength·bsz, E] tokens in `order` ('sb' default, token = s·bsz + b).
 * `reduceGroupSize` > 1 when the counts were summed over tensor/context-parallel ranks.
 */
export function sequenceAuxLoss(
  scores: tf.Tensor2D,
  routingMap: tf.Tensor2D,
  seqLength: number,
  bsz: number,
  topk: number,
  numExperts: number,
  coeff: number,
  options: { order?: TokenOrder; reduceGroupSize?: number; allReduce?: (counts: Float32Array) => ArrayLike<number> } = {},
): tf.Scalar {
  const tokens = seqLength * bsz;
  if (scores.shape[0] !== tokens || routingMap.shape[0] !== tokens) {
    throw new Error(`sequenceAuxLoss: expected ${tokens} = seqLength (${seqLength}) × bsz (${bsz}) tokens, got scores [${scores.shape}] and routingMap [${routingMap.shape}]`);
  }
  return tf.tidy(() => {
    const toSb = (t: tf.Tensor2D) =>
      (options.order ?? 'sb') === 'bs'
        ? tf.reshape(tf.transpose(tf.reshape(t, [bsz, seqLength, numExperts]), [1, 0, 2]), [seqLength, bsz * numExperts])
        : tf.reshape(t, [seqLength, bsz * numExperts]);
    const s = toSb(scores) as tf.Tensor2D;
    const m = toSb(tf.cast(routingMap, 'float32') as tf.Tensor2D) as tf.Tensor2D;
    let counts: tf.Tensor | Float32Array = tf.sum(m, 0);
    if (options.allReduce) counts = Float32Array.from(options.allReduce(counts.dataSync() as Float32Array));
    const total = seqLength * (options.reduceGroupSize ?? 1);
    return tf.reshape(tf.div(switchLossCore(s, counts, total, topk, numExperts, coeff), bsz), []) as tf.Scalar;
  }) as tf.Scalar;
}

/**
 * Global-batch token counts for the global aux loss: counts reduced over the tp·dp·cp ranks,
 * summed over the micro-batches of a global batch. Reset once per global batch.
 */
export class GlobalAuxLossTracker {
  readonly numExperts: number;
  tokensPerExpert: Float64Array;
  steps = 0;

  constructor(numExperts: number) {
    if (!Number.isInteger(numExperts) || numExperts < 1) throw new Error(`GlobalAuxLossTracker: numExperts must be a positive integer, got ${numExperts}`);
    this.numExperts = numExperts;
    this.tokensPerExpert = new Float64Array(numExperts);
  }

  /** Add one micro-batch's (already rank-reduced) counts; returns the running average per micro-batch. */
  accumulate(counts: ArrayLike<number>): Float32Array {
    if (counts.length !== this.numExperts) throw new Error(`GlobalAuxLossTracker.accumulate: ${counts.length} counts for ${this.numExperts} experts`);
    for (let i = 0; i < this.numExperts; i++) this.tokensPerExpert[i]! += counts[i]!;
    this.steps += 1;
    return this.averaged();
  }

  /** Σ counts / micro-batches so far (fp32, as Megatron's buffer). */
  averaged(): Float32Array {
    const out = new Float32Array(this.numExperts);
    if (this.steps === 0) return out;
    for (let i = 0; i < this.numExperts; i++) out[i] = Math.fround(Math.fround(this.tokensPerExpert[i]!) / this.steps);
    return out;
  }

  /** Start a new global batch (Megatron's reset_global_aux_loss_tracker). */
  reset(): void {
    this.tokensPerExpert.fill(0);
    this.steps = 0;
  }
}

/**
 * Global aux loss (Global Load Balancing Loss, arXiv 2501.11873): the Switch loss of this
 * micro-batch's scores against the token counts of the whole global batch — summed over the
 * tp·dp·cp ranks (`allReduce`, `reduceGroupSize` ranks) and averaged over the micro-batches
 * seen so far (`tracker`). The tracker is updated by this call.
 */
export function globalAuxLoss(
  scores: tf.Tensor2D,
  routingMap: tf.Tensor2D,
  tracker: GlobalAuxLossTracker,
  topk: number,
  numExperts: number,
  coeff: number,
  options: { reduceGroupSize?: number; allReduce?: (counts: Float32Array) => ArrayLike<number> } = {},
): tf.Scalar {
  const local = tf.tidy(() => tf.sum(tf.cast(routingMap, 'float32'), 0).dataSync() as Float32Array);
  const global = options.allReduce ? options.allReduce(local) : local;
  const averaged = tracker.accumulate(global);
  const total = routingMap.shape[0] * (options.reduceGroupSize ?? 1);
  return switchLoadBalancingLoss(scores, averaged, total, topk, numExperts, coeff);
}
