/**
 * The backbone's row movements on host-side index arrays, through `@kiln/gpu-kernels`' fused
 * ops (one kernel forward, one backward each): one-to-one gathers into and out of scan order
 * (`permuteRows`, whose gradient is the gather by the inverse map) and pooling of points into
 * clusters and back (`segmentPool` / `segmentBroadcast`, each the other's gradient). tfjs's
 * own `gather` gradient is an `unsortedSegmentSum` that its `cpu` backend evaluates in
 * O(rows × segments).
 */
import { permuteRows, type Segmentation, segmentBroadcast, segmentPool } from '@kiln/gpu-kernels';
import { type Tensor, tf } from '@kiln/tensor';

/**
 * out[i] = x[index[i]] (an index outside [0, m) selects a zero row), where every row of
 * x [m, c] is selected at most once; `inverse[r]` is the output row holding x[r] (or
 * index.length when x[r] is not selected).
 */
export function gatherRows(x: Tensor, index: Int32Array, inverse: Int32Array): Tensor {
  const m = x.shape[0]!;
  if (inverse.length !== m) throw new Error(`gatherRows: inverse has ${inverse.length} entries for ${m} rows`);
  const idx = tf.tensor1d(index, 'int32');
  const inv = tf.tensor1d(inverse, 'int32');
  const out = permuteRows(x, idx, inv);
  tf.dispose([idx, inv]);
  return out;
}

/** The inverse map `gatherRows` needs, for an index that selects each row at most once. */
export function inverseIndex(index: Int32Array, m: number): Int32Array {
  const inv = new Int32Array(m).fill(index.length);
  for (let i = 0; i < index.length; i++) {
    const r = index[i]!;
    if (r < m) {
      if (inv[r] !== index.length) throw new Error(`inverseIndex: row ${r} is selected twice`);
      inv[r] = i;
    }
  }
  return inv;
}

/**
 * Points grouped by segment: segment s owns sorted[ptr[s] .. ptr[s+1]) (no empty segments);
 * segment[p] is point p's segment.
 */
export interface Grouping {
  segment: Int32Array;
  sorted: Int32Array;
  ptr: Int32Array;
}

export function groupingOf(segment: Int32Array, segments: number): Grouping {
  const counts = new Int32Array(segments);
  for (const s of segment) counts[s]!++;
  const ptr = new Int32Array(segments + 1);
  for (let s = 0; s < segments; s++) {
    if (counts[s] === 0) throw new Error(`groupingOf: segment ${s} is empty`);
    ptr[s + 1] = ptr[s]! + counts[s]!;
  }
  const fill = ptr.slice(0, segments);
  const sorted = new Int32Array(segment.length);
  for (let p = 0; p < segment.length; p++) sorted[fill[segment[p]!]!++] = p;
  return { segment, sorted, ptr };
}

/** Runs `f` with the grouping as int32 tensors (disposed after; the ops keep what their gradients need). */
function withSegmentation(grouping: Grouping, f: (seg: Segmentation) => Tensor): Tensor {
  const seg = {
    segment: tf.tensor1d(grouping.segment, 'int32'),
    sorted: tf.tensor1d(grouping.sorted, 'int32'),
    ptr: tf.tensor1d(grouping.ptr, 'int32'),
  };
  const out = f(seg);
  tf.dispose([seg.segment, seg.sorted, seg.ptr]);
  return out;
}

/** Sum (or, with `mean`, the average) of the rows of x [n, c] in each segment → [segments, c]. */
export function segmentSum(x: Tensor, grouping: Grouping, mean = false): Tensor {
  return withSegmentation(grouping, (seg) => segmentPool(x, seg, mean));
}

/** out[p] = parent[segment[p]]: each parent row copied to its children. */
export function broadcastToChildren(parent: Tensor, grouping: Grouping): Tensor {
  return withSegmentation(grouping, (seg) => segmentBroadcast(parent, seg));
}
