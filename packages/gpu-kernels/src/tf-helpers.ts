/** Small tf compositions the references share. */
import { tf } from '@kiln/tensor';

type Tensor = tf.Tensor;

/**
 * One-hot rows as float32: indices [...] → [..., depth], as 1 − min(|i − j|, 1) in float
 * arithmetic. tf.oneHot is avoided: its webgpu path (tfjs 4.22) ends in a transpose whose
 * WGSL mixes i32 and f32 and invalidates the whole command buffer, and it refuses depth 1.
 */
export function oneHot(indices: Tensor, depth: number): Tensor {
  const diff = tf.sub(tf.expandDims(tf.cast(indices, 'float32'), -1), tf.range(0, depth, 1, 'float32'));
  return tf.sub(1, tf.minimum(tf.abs(diff), 1));
}
