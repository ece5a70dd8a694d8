import { tf } from '@kiln/tensor';

/**
 * One GEMM per group of consecutive rows: rows [s_g, s_g + n_g) of `x` times `w[g]`. Groups
 * may be empty. This is the reference (slices + matMuls, differentiable everywhere);
 * @kiln/gpu-kernels' `groupedMatMul` plugs in through `setGroupedGemm` once it lands.
 */
export type GroupedGemm = (x: tf.Tensor2D, w: tf.Tensor3D, groupSizes: ArrayLike<number>, options?: { transposeB?: boolean }) => tf.Tensor2D;

export const referenceGroupedGemm: GroupedGemm = (x, w, groupSizes, options = {}) => {
  const groups = groupSizes.length;
  if (w.shape[0] !== groups) throw new Error(`groupedGemm: weights have ${w.shape[0]} groups, groupSizes ${groups}`);
  let total = 0;
  for (let g = 0; g < groups; g++) total += groupSizes[g]!;
  if (total !== x.shape[0]) throw new Error(`groupedGemm: group sizes sum to ${total}, x has ${x.shape[0]} rows`);
  const tb = options.transposeB ?? false;
  const inner = tb ? w.shape[2] : w.shape[1];
  if (x.shape[1] !== inner) throw new Error(`groupedGemm: x has ${x.shape[1]} columns, weights expect ${inner}`);
  const outCols = tb ? w.shape[1] : w.shape[2];
  return tf.tidy(() => {
    // Row blocks by a split along rows and weights by unstack: both are contiguous copies whose
    // gradients are concat/stack (tf.slice's gradient pads to the full shape, once per group).
    const sizes = Array.from(groupSizes);
    const xs = groups === 1 ? [x] : tf.split(x, sizes, 0);
    // tfjs cannot differentiate an unstack with a single output (its gradient receives one
    // tensor where it stacks a list), which is the case of one local expert per rank.
    const ws = (groups === 1 ? [tf.squeeze(w, [0])] : tf.unstack(w, 0)) as tf.Tensor2D[];
    const parts: tf.Tensor2D[] = [];
    for (let g = 0; g < groups; g++) {
      if (sizes[g] === 0) continue;
      parts.push(tf.matMul(xs[g] as tf.Tensor2D, ws[g]!, false, tb));
    }
    if (parts.length === 0) return tf.zeros([0, outCols]) as tf.Tensor2D;
    return (parts.length === 1 ? parts[0]! : tf.concat(parts, 0)) as tf.Tensor2D;
  });
};

let active: GroupedGemm = referenceGroupedGemm;
export function getGroupedGemm(): GroupedGemm {
  return active;
}
/** Swap in another grouped GEMM (e.g. @kiln/gpu-kernels' groupedMatMul). */
export function setGroupedGemm(g: GroupedGemm): void {
  active = g;
}
