/** Router z-loss (ST-MoE, Megatron's `z_loss_func`). */
import { tf } from '@kiln/tensor';

/**
 * coeff · mean_x (logsumexp_i l(x, i))². With `paddingMask` (true = padding token, as in
 * Megatron), the mean runs over the valid tokens only (at least 1).
 */
export function zLoss(logits: tf.Tensor2D, coeff: number, paddingMask?: tf.Tensor1D | null): tf.Scalar {
  if (!(logits instanceof tf.Tensor) || logits.rank !== 2) throw new Error('zLoss: logits must be a 2-D tensor [tokens, experts]');
  if (!Number.isFinite(coeff)) throw new Error(`zLoss: coeff must be finite, got ${coeff}`);
  return tf.tidy(() => {
    const l = logits.dtype === 'float32' ? logits : tf.cast(logits, 'float32');
    const z = tf.square(tf.logSumExp(l, -1));
    if (!paddingMask) return tf.mul(tf.mean(z), coeff) as tf.Scalar;
    const valid = tf.sub(1, tf.cast(paddingMask, 'float32'));
    const n = tf.maximum(tf.sum(valid), 1);
    return tf.mul(tf.div(tf.sum(tf.mul(z, valid)), n), coeff) as tf.Scalar;
  });
}
