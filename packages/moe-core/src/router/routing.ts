/**
 * Top-k routing with a score function, as Megatron-Core's `topk_routing_with_score_function`
 * and `group_limited_topk` (megatron/core/transformer/moe/moe_utils.py).
 *
 * The choice of experts is made on host copies of the fp32 scores (exact torch.topk order,
 * see select.ts); the probabilities are then built with differentiable tf ops from a
 * constant 0/1 mask, so gradients reach the logits exactly as through torch's gather/scatter.
 */
import { tf } from '@kiln/tensor';
import type { RouterScoreFunction } from '../config.js';
import { topkIndices } from './select.js';

/** Options of `topkRouting`; names follow Megatron's arguments. */
export interface TopkRoutingOptions {
  /** Experts per token. */
  topk: number;
  /** 'softmax' (default), 'sigmoid' or 'sqrtsoftplus'. */
  scoreFunction?: RouterScoreFunction;
  /** Softmax over all experts before top-k (softmax scores only). */
  preSoftmax?: boolean;
  /** Expert groups for group-limited routing; needs groupTopk. */
  numGroups?: number | null;
  /** Groups kept per token; null/0 = plain top-k. */
  groupTopk?: number | null;
  /** Multiplier on the probabilities; null/0 = none (Python truthiness, as Megatron). */
  scalingFactor?: number | null;
  /** Per-expert bias added to the scores for the choice only (sigmoid/sqrtsoftplus). */
  expertBias?: tf.Tensor | ArrayLike<number> | null;
}

/** Result of routing: both [tokens, experts]. */
export interface RoutingResult {
  /** Routing probabilities, zero outside the chosen experts; differentiable w.r.t. the logits. */
  probs: tf.Tensor2D;
  /** Chosen experts as a bool tensor. */
  routingMap: tf.Tensor2D;
  /** Chosen expert indices per token, best first, [tokens, topk] int32. */
  topIndices: tf.Tensor2D;
}

/** Host copy of a tensor's values as fp32. */
export function hostValues(t: tf.Tensor | ArrayLike<number>): Float32Array {
  if (t instanceof tf.Tensor) return Float32Array.from(t.dataSync() as ArrayLike<number>);
  return Float32Array.from(t);
}

function check2d(logits: tf.Tensor, name = 'logits'): [number, number] {
  if (!(logits instanceof tf.Tensor) || logits.rank !== 2) {
    throw new Error(`${name} must be a 2-D tensor [tokens, experts], got shape ${logits instanceof tf.Tensor ? `[${logits.shape}]` : typeof logits}`);
  }
  return [logits.shape[0]!, logits.shape[1]!];
}

/** Router math runs in fp32, whatever the input dtype (Megatron's moe_router_dtype='fp32'). */
export function toFloat32(t: tf.Tensor): tf.Tensor {
  return t.dtype === 'float32' ? t : tf.cast(t, 'float32');
}

/** Full score matrix of a score function (no normalisation): softmax, sigmoid or sqrt(softplus). */
export function scoreFunctionScores(logits: tf.Tensor2D, scoreFunction: RouterScoreFunction): tf.Tensor2D {
  const l = toFloat32(logits) as tf.Tensor2D;
  switch (scoreFunction) {
    case 'softmax':
      return tf.softmax(l, -1);
    case 'sigmoid':
      return tf.sigmoid(l);
    case 'sqrtsoftplus':
      return tf.sqrt(tf.softplus(l));
    default:
      throw new Error(`scoreFunction must be 'softmax', 'sigmoid' or 'sqrtsoftplus', got '${String(scoreFunction)}'`);
  }
}

/**
 * Group-limited top-k of one token's scores (Megatron's `group_limited_topk`): group score =
 * sum of the top ⌊topk / groupTopk⌋ scores of the group (summed in fp32), keep the best
 * groupTopk groups, mask the rest to −∞, then top-k over all experts.
 */
export function groupLimitedTopkRow(
  scores: Float32Array,
  offset: number,
  numExperts: number,
  topk: number,
  numGroups: number,
  groupTopk: number,
): number[] {
  const per = numExperts / numGroups;
  const inGroup = Math.floor(topk / groupTopk);
  const groupScores = new Float32Array(numGroups);
  for (let g = 0; g < numGroups; g++) {
    const best = topkIndices(scores, per, inGroup, offset + g * per);
    let s = 0;
    for (const j of best) s = Math.fround(s + scores[offset + g * per + j]!);
    groupScores[g] = s;
  }
  const keep = new Set(topkIndices(groupScores, numGroups, groupTopk));
  const masked = new Float32Array(numExperts);
  for (let e = 0; e < numExperts; e++) {
    masked[e] = keep.has(Math.floor(e / per)) ? scores[offset + e]! : Number.NEGATIVE_INFINITY;
  }
  return topkIndices(masked, numExperts, topk);
}

/**
 * Megatron's `group_limited_topk` on a [tokens, experts] score tensor: the top-k scores and
 * their expert indices per token ([tokens, topk] each) after masking all but the best
 * `groupTopk` of `numGroups` expert groups.
 */
export function groupLimitedTopk(
  scores: tf.Tensor2D,
  topk: number,
  numGroups: number,
  groupTopk: number,
): { values: tf.Tensor2D; indices: tf.Tensor2D } {
  const [numTokens, numExperts] = check2d(scores, 'scores');
  validateOptions(numExperts, { topk, numGroups, groupTopk });
  const host = hostValues(scores);
  const idx = selectExperts(host, numTokens, numExperts, topk, numGroups, groupTopk);
  const vals = idx.map((row, t) => row.map((e) => host[t * numExperts + e]!));
  return { values: tf.tensor2d(vals.flat(), [numTokens, topk]), indices: tf.tensor2d(idx.flat(), [numTokens, topk], 'int32') };
}

/** Top-k (optionally group-limited) expert indices of every row of a host score matrix. */
export function selectExperts(
  scores: Float32Array,
  numTokens: number,
  numExperts: number,
  topk: number,
  numGroups: number | null | undefined,
  groupTopk: number | null | undefined,
): number[][] {
  const out: number[][] = [];
  for (let t = 0; t < numTokens; t++) {
    out.push(
      groupTopk
        ? groupLimitedTopkRow(scores, t * numExperts, numExperts, topk, numGroups!, groupTopk)
        : topkIndices(scores, numExperts, topk, t * numExperts),
    );
  }
  return out;
}

/** A [tokens, experts] 0/1 mask (fp32 values) from per-token index lists. */
export function indicesToMask(indices: number[][], numExperts: number): Float32Array {
  const m = new Float32Array(indices.length * numExperts);
  indices.forEach((row, t) => {
    for (const e of row) m[t * numExperts + e] = 1;
  });
  return m;
}

function validateOptions(numExperts: number, o: TopkRoutingOptions): void {
  const { topk } = o;
  if (!Number.isInteger(topk) || topk < 1 || topk > numExperts) {
    throw new Error(`topk must be an integer in [1, ${numExperts}] (the number of experts), got ${topk}`);
  }
  const sf = o.scoreFunction ?? 'softmax';
  if (!['softmax', 'sigmoid', 'sqrtsoftplus'].includes(sf)) {
    throw new Error(`scoreFunction must be 'softmax', 'sigmoid' or 'sqrtsoftplus', got '${String(sf)}'`);
  }
  if (o.groupTopk) {
    const g = o.numGroups;
    if (!g || !Number.isInteger(g) || g < 1) throw new Error(`numGroups must be a positive integer when groupTopk is set, got ${String(g)}`);
    if (numExperts % g !== 0) throw new Error(`numGroups (${g}) must divide the number of experts (${numExperts})`);
    if (!Number.isInteger(o.groupTopk) || o.groupTopk > g) throw new Error(`groupTopk (${o.groupTopk}) must be an integer ≤ numGroups (${g})`);
    if (o.groupTopk * (numExperts / g) < topk) {
      throw new Error(`groupTopk (${o.groupTopk}) groups of ${numExperts / g} experts hold fewer than topk (${topk}) experts`);
    }
  }
}

/**
 * Megatron's `topk_routing_with_score_function`:
 * - softmax: top-k on the logits, softmax over the k; with `preSoftmax`, softmax over all
 *   experts then top-k.
 * - sigmoid / sqrtsoftplus: s = sigmoid(l) or sqrt(softplus(l)); the choice uses s + expertBias
 *   when given, the gates use the unbiased s; probs = s / (Σ_topk s + 1e-20) when k > 1.
 * - group-limited top-k when groupTopk is set; the probabilities are multiplied by
 *   scalingFactor when it is truthy.
 */
export function topkRouting(logits: tf.Tensor2D, options: TopkRoutingOptions): RoutingResult {
  const [numTokens, numExperts] = check2d(logits);
  validateOptions(numExperts, options);
  const { topk } = options;
  const scoreFunction = options.scoreFunction ?? 'softmax';
  // As in Megatron, preSoftmax only affects softmax scores and the expert bias only sigmoid /
  // sqrtsoftplus scores; otherwise they are ignored.
  const preSoftmax = scoreFunction === 'softmax' && (options.preSoftmax ?? false);
  let bias: Float32Array | null = null;
  if (options.expertBias !== null && options.expertBias !== undefined && scoreFunction !== 'softmax') {
    bias = hostValues(options.expertBias);
    if (bias.length !== numExperts) throw new Error(`expertBias has ${bias.length} entries, expected ${numExperts} (experts)`);
  }

  return tf.tidy(() => {
    const l = toFloat32(logits) as tf.Tensor2D;
    // Scores the choice is made on, read back to host in fp32.
    let scores: tf.Tensor2D | null = null;
    let choice: Float32Array;
    if (scoreFunction === 'softmax') {
      if (preSoftmax) {
        scores = tf.softmax(l, -1);
        choice = hostValues(scores);
      } else {
        choice = hostValues(l);
      }
    } else {
      scores = scoreFunctionScores(l, scoreFunction);
      choice = hostValues(scores);
      if (bias) {
        for (let i = 0; i < choice.length; i++) choice[i] = Math.fround(choice[i]! + bias[i % numExperts]!);
      }
    }
    const indices = selectExperts(choice, numTokens, numExperts, topk, options.numGroups, options.groupTopk);
    const maskValues = indicesToMask(indices, numExperts);
    const mask = tf.tensor2d(maskValues, [numTokens, numExperts], 'float32');
    const maskBool = tf.cast(mask, 'bool') as tf.Tensor2D;

    let probs: tf.Tensor2D;
    if (scoreFunction === 'softmax') {
      if (preSoftmax) {
        probs = tf.mul(scores!, mask);
      } else {
        // softmax over the k chosen logits = softmax over the row with the others at −∞.
        const masked = tf.where(maskBool, l, tf.fill([numTokens, numExperts], Number.NEGATIVE_INFINITY));
        probs = tf.softmax(masked, -1);
      }
    } else {
      const chosen = tf.mul(scores!, mask) as tf.Tensor2D;
      probs = topk > 1 ? tf.div(chosen, tf.add(tf.sum(chosen, -1, true), 1e-20)) : chosen;
    }
    if (options.scalingFactor) probs = tf.mul(probs, options.scalingFactor);
    const topIndices = tf.tensor2d(indices.flat(), [numTokens, topk], 'int32');
    return { probs, routingMap: maskBool, topIndices };
  });
}

/** Megatron's name for `topkRouting`. */
export const topkRoutingWithScoreFunction = topkRouting;

/**
 * Megatron's `compute_routing_scores_for_aux_loss`: the full score distribution the aux
 * losses use (softmax over all experts; sigmoid / sqrtsoftplus normalised by the row sum
 * + 1e-20) and a plain top-k routing map of it (no groups, no bias).
 */
export function computeRoutingScoresForAuxLoss(
  logits: tf.Tensor2D,
  topk: number,
  scoreFunction: RouterScoreFunction,
): { scores: tf.Tensor2D; routingMap: tf.Tensor2D } {
  const [numTokens, numExperts] = check2d(logits);
  validateOptions(numExperts, { topk, scoreFunction });
  return tf.tidy(() => {
    let scores = scoreFunctionScores(logits, scoreFunction);
    if (scoreFunction !== 'softmax') scores = tf.div(scores, tf.add(tf.sum(scores, -1, true), 1e-20));
    const host = hostValues(scores);
    const idx = selectExperts(host, numTokens, numExperts, topk, null, null);
    const routingMap = tf.cast(tf.tensor2d(indicesToMask(idx, numExperts), [numTokens, numExperts]), 'bool') as tf.Tensor2D;
    return { scores, routingMap };
  });
}

/** Tokens routed to each expert: the column sums of a routing map, as fp32 [experts]. */
export function tokensPerExpert(routingMap: tf.Tensor2D): tf.Tensor1D {
  check2d(routingMap, 'routingMap');
  return tf.tidy(() => tf.sum(tf.cast(routingMap, 'float32'), 0) as tf.Tensor1D);
}
