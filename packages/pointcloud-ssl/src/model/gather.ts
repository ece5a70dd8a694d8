/**
 * Row gathers with cheap gradients. tfjs differentiates `gather` with
 * `unsortedSegmentSum`, which its `cpu` backend evaluates in O(rows × segments) — 30 s for one
 * pooling of 1,200 points. Every gather the backbone does is either one-to-one (a
 * permutation, possibly with padding) or a broadcast of parents to children, so both
 * gradients are again gathers plus a cumulative sum.
 */
import { type Tensor, tf } from '@kiln/tensor';

/**
 * out[i] = x[index[i]] (index = m selects a zero row), where every row of x [m, c] is
 * selected at most once; `inverse[r]` is the output row holding x[r] (or index.length when
 * x[r] is not selected).
 */
export function gatherRows(x: Tensor, index: Int32Array, inverse: Int32Array): Tensor {
  const [m, c] = x.shape as [number, number];
  if (inverse.length !== m) throw new Error(`gatherRows: inverse has ${inverse.length} entries for ${m} rows`);
  const f = tf.customGrad(((xs: Tensor) => {
    const idx = tf.tensor1d(index, 'int32');
    const value = tf.gather(tf.concat([xs as Tensor, tf.zeros([1, c])], 0), idx);
    idx.dispose();
    return {
      value,
      gradFunc: (dy: Tensor) => {
        const inv = tf.tensor1d(inverse, 'int32');
        const g = tf.gather(tf.concat([dy, tf.zeros([1, c])], 0), inv);
        inv.dispose();
        return g;
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x);
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

/** Points grouped by segment: segment s owns sorted[ptr[s] .. ptr[s+1]) (no empty segments). */
export interface Grouping {
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
  return { sorted, ptr };
}

/** Sum of the rows of x [n, c] in each segment → [segments, c], by sorted cumulative sums. */
export function segmentSum(x: Tensor, grouping: Grouping): Tensor {
  const [n, c] = x.shape as [number, number];
  const segments = grouping.ptr.length - 1;
  const sorted = gatherRows(x, grouping.sorted, inverseIndex(grouping.sorted, n));
  // cumsum along the last axis (tfjs's cumsum gradient is wrong for inner axes).
  const cum = tf.transpose(tf.cumsum(tf.transpose(sorted), 1));
  const padded = tf.concat([tf.zeros([1, c]), cum], 0); // padded[k] = Σ of the first k sorted rows
  const ends = grouping.ptr.slice(1);
  const starts = grouping.ptr.slice(0, segments);
  return tf.sub(gatherRows(padded, ends, inverseIndex(ends, n + 1)), gatherRows(padded, starts, inverseIndex(starts, n + 1)));
}

/** out[p] = parent[segment[p]]: each parent row copied to its children. */
export function broadcastToChildren(parent: Tensor, segment: Int32Array, grouping: Grouping): Tensor {
  const f = tf.customGrad(((ps: Tensor) => {
    const idx = tf.tensor1d(segment, 'int32');
    const value = tf.gather(ps as Tensor, idx);
    idx.dispose();
    return { value, gradFunc: (dy: Tensor) => segmentSum(dy, grouping) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(parent);
}
