/**
 * Embedding bag: out[s] = Σ_{i: segment[i] = s} weight[i] · table[ids[i]].
 *
 * Written as one custom-gradient op because tfjs's `gather` gradient goes through
 * `unsortedSegmentSum`, whose cpu kernel loops over every segment (every row of the
 * table) with a full mask: O(rows × n × dim) per step, minutes for a 4096-row table. Here
 * the forward and the table gradient are single passes over the n lookups, O(n × dim),
 * over the host arrays of the CPU-memory backends (read in place). On a GPU backend they
 * are a gather and a segment sum on the device (webgpu's segment sum is one pass too).
 */
import { hostArray, tf } from '@kiln/tensor';

export interface BagIndex {
  ids: Int32Array;
  segments: Int32Array;
  /** Per-lookup weight (e.g. 1 / bag length for mean pooling). */
  weights: Float32Array;
  numSegments: number;
}

export function embeddingBagReference(table: Float32Array, dim: number, bag: BagIndex): Float32Array {
  const out = new Float32Array(bag.numSegments * dim);
  for (let i = 0; i < bag.ids.length; i++) {
    const src = bag.ids[i]! * dim;
    const dst = bag.segments[i]! * dim;
    const w = bag.weights[i]!;
    for (let d = 0; d < dim; d++) out[dst + d]! += w * table[src + d]!;
  }
  return out;
}

export function embeddingBag(table: tf.Tensor2D, bag: BagIndex): tf.Tensor2D {
  const [rows, dim] = table.shape;
  for (let i = 0; i < bag.ids.length; i++) {
    const id = bag.ids[i]!;
    if (id < 0 || id >= rows) throw new Error(`embeddingBag: id ${id} at position ${i} outside [0, ${rows})`);
    const s = bag.segments[i]!;
    if (s < 0 || s >= bag.numSegments) throw new Error(`embeddingBag: segment ${s} at position ${i} outside [0, ${bag.numSegments})`);
  }
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor2D;
    const table = hostArray(t);
    const value = table instanceof Float32Array ? tf.tensor2d(embeddingBagReference(table, dim, bag), [bag.numSegments, dim]) : deviceBag(t, bag.ids, bag.segments, bag.weights, bag.numSegments);
    return {
      value,
      gradFunc: (dy: tf.Tensor) => {
        const g = hostArray(dy);
        // The adjoint: lookups and segments swap roles.
        if (!(g instanceof Float32Array)) return deviceBag(dy as tf.Tensor2D, bag.segments, bag.ids, bag.weights, rows);
        const grad = new Float32Array(rows * dim);
        for (let i = 0; i < bag.ids.length; i++) {
          const dst = bag.ids[i]! * dim;
          const src = bag.segments[i]! * dim;
          const w = bag.weights[i]!;
          for (let d = 0; d < dim; d++) grad[dst + d]! += w * g[src + d]!;
        }
        return tf.tensor2d(grad, [rows, dim]);
      },
    };
  });
  return op(table) as tf.Tensor2D;
}

/** out[s] = Σ_{i: into[i] = s} weight[i] · source[from[i]], as device ops. */
function deviceBag(source: tf.Tensor2D, from: Int32Array, into: Int32Array, weights: Float32Array, rows: number): tf.Tensor2D {
  return tf.tidy(() => {
    const picked = tf.mul(tf.gather(source, tf.tensor1d(from, 'int32')), tf.tensor2d(weights, [weights.length, 1]));
    return tf.unsortedSegmentSum(picked, tf.tensor1d(into, 'int32'), rows) as tf.Tensor2D;
  });
}
