/**
 * Sinkhorn routing (Megatron's `sinkhorn` and `TopKRouter.sinkhorn_load_balancing`): balance
 * exp(logits) by alternating row and column normalisations, pick the top-k of the balanced
 * matrix, and gate with the plain activation (sigmoid for k = 1, softmax for k > 1).
 */
import { tf } from '@kiln/tensor';
import { hostValues, indicesToMask, selectExperts, toFloat32 } from './routing.js';

/** Options of `sinkhorn`. */
export interface SinkhornOptions {
  /** Safety stop; Megatron loops until converged. Default 10 000. */
  maxIterations?: number;
}

/**
 * Sinkhorn–Knopp normalisation of exp(cost), in fp32, not differentiated (Megatron runs it
 * under no_grad):
 *   d0 = (1/n0) / (Σ_j d1_j·C_ij + 1e-8),  d1 = (1/n1) / (Σ_i d0_i·C_ij + 1e-8),
 * until mean|d1 − d1_old| ≤ tol; returns d1 · C · d0ᵀ.
 */
export function sinkhorn(cost: tf.Tensor2D, tol = 1e-4, options: SinkhornOptions = {}): tf.Tensor2D {
  if (!(cost instanceof tf.Tensor) || cost.rank !== 2) throw new Error(`sinkhorn: cost must be a 2-D tensor, got ${cost instanceof tf.Tensor ? `[${cost.shape}]` : typeof cost}`);
  if (!(tol > 0)) throw new Error(`sinkhorn: tol must be > 0, got ${tol}`);
  const maxIterations = options.maxIterations ?? 10_000;
  const [n0, n1] = cost.shape;
  const eps = 1e-8;
  return tf.tidy(() => {
    // A constant copy: no gradient flows through the balancing (Megatron's no_grad).
    const c = tf.exp(tf.tensor2d(hostValues(toFloat32(cost)), [n0, n1])) as tf.Tensor2D;
    let d0: tf.Tensor1D = tf.ones([n0]);
    let d1: tf.Tensor1D = tf.ones([n1]);
    let d1Old = d1;
    let error = 1e9;
    let it = 0;
    while (error > tol && it < maxIterations) {
      const nd0 = tf.div(1 / n0, tf.add(tf.sum(tf.mul(d1, c), 1), eps)) as tf.Tensor1D;
      const nd1 = tf.div(1 / n1, tf.add(tf.sum(tf.mul(tf.expandDims(nd0, 1), c), 0), eps)) as tf.Tensor1D;
      const err = tf.mean(tf.abs(tf.sub(d1Old, nd1)));
      error = err.dataSync()[0]!;
      err.dispose();
      if (d0 !== nd0) d0.dispose();
      if (d1Old !== d1) d1Old.dispose();
      d0 = nd0;
      d1 = nd1;
      d1Old = d1;
      it++;
    }
    return tf.mul(tf.mul(d1, c), tf.expandDims(d0, 1)) as tf.Tensor2D;
  });
}

/** Options of `sinkhornRouting`. */
export interface SinkhornRoutingOptions extends SinkhornOptions {
  topk: number;
  /** Training picks experts on the Sinkhorn-balanced matrix; evaluation on the activation. Default true. */
  training?: boolean;
  tol?: number;
}

/**
 * Megatron's `sinkhorn_load_balancing`: probs = activation(logits) masked to the chosen
 * experts, where the activation is sigmoid for k = 1 and softmax for k > 1; differentiable
 * w.r.t. the logits through the activation.
 */
export function sinkhornRouting(
  logits: tf.Tensor2D,
  options: SinkhornRoutingOptions,
): { probs: tf.Tensor2D; routingMap: tf.Tensor2D; topIndices: tf.Tensor2D } {
  if (!(logits instanceof tf.Tensor) || logits.rank !== 2) throw new Error('sinkhornRouting: logits must be a 2-D tensor [tokens, experts]');
  const [numTokens, numExperts] = logits.shape;
  const { topk } = options;
  if (!Number.isInteger(topk) || topk < 1 || topk > numExperts) throw new Error(`sinkhornRouting: topk must be in [1, ${numExperts}], got ${topk}`);
  const training = options.training ?? true;
  return tf.tidy(() => {
    const l = toFloat32(logits) as tf.Tensor2D;
    const act = topk === 1 ? tf.sigmoid(l) : tf.softmax(l, -1);
    const basis = training ? sinkhorn(l, options.tol ?? 1e-4, options) : act;
    const idx = selectExperts(hostValues(basis), numTokens, numExperts, topk, null, null);
    const mask = tf.tensor2d(indicesToMask(idx, numExperts), [numTokens, numExperts]);
    return {
      probs: tf.mul(act, mask) as tf.Tensor2D,
      routingMap: tf.cast(mask, 'bool') as tf.Tensor2D,
      topIndices: tf.tensor2d(idx.flat(), [numTokens, topk], 'int32'),
    };
  });
}
