/**
 * Gradient reversal (Ganin & Lempitsky, 2015): identity forward, −λ · upstream gradient
 * backward. Placed between a model and an adversary, it lets one optimizer step train the
 * adversary to predict the group while pushing the model to make that impossible.
 */
import { tf } from '@kiln/tensor';

export function gradientReversal<T extends tf.Tensor>(x: T, lambda = 1): T {
  if (!Number.isFinite(lambda) || lambda < 0) throw new Error(`gradientReversal: lambda must be a finite number ≥ 0, got ${lambda}`);
  const reverse = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.mul(dy, tf.scalar(-lambda)),
  }));
  return reverse(x) as T;
}
