/**
 * Top-k routing with a score function, as Megatron-Core's `topk_routing_with_score_function`
 * and `group_limited_topk` (megatron/core/transformer/moe/moe_utils.py), run by
 * @kiln/gpu-kernels' `topkRouter` op (the one router implementation): the choice of experts
 * with torch.topk's CPU tie order where the data is on the host (so ties resolve as in
 * Megatron on PyTorch), the gates differentiable in the logits.
 */
import { type TopkTieOrder, groupLimitedTopkRow, topkIndices, topkRouter } from '@kiln/gpu-kernels';
import { tf } from '@kiln/tensor';
import type { RouterScoreFunction } from '../config.js';

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
  /** Order of equal scores; default `defaultTieOrder()`. */
  tieOrder?: TopkTieOrder;
}

/**
 * torch.topk's CPU order ('torch-cpu', the Megatron anchors) on backends that keep tensors on
 * the host (cpu, kiln-native); on a GPU backend the kernels' 'lowest-index' order.
 */
export function defaultTieOrder(): TopkTieOrder {
  return tf.getBackend() === 'webgpu' ? 'lowest-index' : 'torch-cpu';
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
  const idx = selectExperts(host, numTokens, numExperts, topk, numGroups, groupTopk, defaultTieOrder());
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
  tieOrder: TopkTieOrder = defaultTieOrder(),
): number[][] {
  const out: number[][] = [];
  for (let t = 0; t < numTokens; t++) {
    const row = scores.subarray(t * numExperts, (t + 1) * numExperts);
    out.push(groupTopk ? groupLimitedTopkRow(row, numExperts, topk, numGroups!, groupTopk, tieOrder) : topkIndices(row, numExperts, topk, 0, 1, true, tieOrder));
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
  const [, numExperts] = check2d(logits);
  validateOptions(numExperts, options);
  const scoreFunction = options.scoreFunction ?? 'softmax';
  return tf.tidy(() => {
    // As in Megatron, the expert bias only affects sigmoid / sqrtsoftplus scores (the op ignores it otherwise).
    let expertBias: tf.Tensor | undefined;
    if (options.expertBias !== null && options.expertBias !== undefined && scoreFunction !== 'softmax') {
      const bias = hostValues(options.expertBias);
      if (bias.length !== numExperts) throw new Error(`expertBias has ${bias.length} entries, expected ${numExperts} (experts)`);
      expertBias = tf.tensor1d(bias);
    }
    const r = topkRouter(toFloat32(logits), {
      topk: options.topk,
      scoreFunction,
      usePreSoftmax: options.preSoftmax ?? false,
      ...(options.groupTopk ? { numGroups: options.numGroups!, groupTopk: options.groupTopk } : {}),
      ...(options.scalingFactor ? { scalingFactor: options.scalingFactor } : {}),
      ...(expertBias ? { expertBias } : {}),
      tieOrder: options.tieOrder ?? defaultTieOrder(),
    });
    return { probs: r.probs as tf.Tensor2D, routingMap: r.routingMap as tf.Tensor2D, topIndices: r.topIndices as tf.Tensor2D };
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
