/** Small tf compositions the references share. */
import { tf } from '@kiln/tensor';

type Tensor = tf.Tensor;

/** tf.oneHot as float32, also for depth 1 (which tfjs refuses). */
export function oneHot(indices: Tensor, depth: number): Tensor {
  if (depth === 1) return tf.ones([...indices.shape, 1]);
  return tf.cast(tf.oneHot(indices, depth), 'float32');
}
