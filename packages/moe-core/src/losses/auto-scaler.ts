/**
 * How an auxiliary loss reaches the gradient without being added to the main loss, as
 * Megatron's `MoEAuxLossAutoScaler`: the loss is attached to an activation on the forward
 * path (identity in forward); in backward, the activation's gradient passes through unchanged
 * and the loss receives d(aux)/d(aux) = the main loss's backward scale (1 by default, the loss
 * scale under mixed precision), which then flows into whatever the loss was computed from.
 */
import { tf } from '@kiln/tensor';

let mainLossBackwardScale = 1;

/** Megatron's `MoEAuxLossAutoScaler.set_loss_scale`: match the scale applied to the main loss. */
export function setAuxLossScale(scale: number): void {
  if (!Number.isFinite(scale)) throw new Error(`setAuxLossScale: scale must be finite, got ${scale}`);
  mainLossBackwardScale = scale;
}

/** The current backward scale of attached aux losses. */
export function getAuxLossScale(): number {
  return mainLossBackwardScale;
}

const attach = tf.customGrad(((activation: tf.Tensor, auxLoss: tf.Tensor, save: tf.GradSaveFunc) => {
  save([auxLoss]);
  return {
    value: tf.clone(activation),
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [
      dy as tf.Tensor,
      tf.mul(tf.onesLike(saved[0]!), mainLossBackwardScale),
    ],
  };
  // tfjs types the inputs as a rest list of tensors followed by `save`.
}) as unknown as Parameters<typeof tf.customGrad>[0]);

/**
 * Returns `activation` unchanged in value; differentiating anything computed from the result
 * also differentiates `auxLoss` (a scalar) with weight = the aux-loss scale.
 */
export function attachAuxLoss<T extends tf.Tensor>(activation: T, auxLoss: tf.Tensor): T {
  if (!(activation instanceof tf.Tensor)) throw new Error('attachAuxLoss: activation must be a tensor');
  if (!(auxLoss instanceof tf.Tensor)) throw new Error('attachAuxLoss: auxLoss must be a tensor');
  return (attach as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor)(activation, auxLoss) as T;
}

/** Megatron's names: `MoEAuxLossAutoScaler.apply(activation, auxLoss)` and `.setLossScale(scale)`. */
export const MoEAuxLossAutoScaler = {
  apply: attachAuxLoss,
  setLossScale: setAuxLossScale,
} as const;
