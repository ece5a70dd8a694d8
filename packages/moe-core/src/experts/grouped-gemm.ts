import { groupedMatMulOp } from '@kiln/gpu-kernels';
import { tf } from '@kiln/tensor';

/**
 * One GEMM per group of consecutive rows (rows of expert g times expert g's weight), the two
 * products the grouped MLP needs forward and backward. Groups may be empty.
 */
export interface GroupedGemm {
  readonly name: string;
  /**
   * x [M, K] · w[g] ([G, K, N]) for the rows of each group → [M, N]; with `transposeB`,
   * x [M, N] · w[g]ᵀ → [M, K] (the data gradient). Differentiable.
   */
  matmul(x: tf.Tensor2D, w: tf.Tensor3D, groupSizes: ArrayLike<number>, options?: { transposeB?: boolean }): tf.Tensor2D;
  /** dW[g] = a_gᵀ · dy_g for every group → [G, K, N], zeros for empty groups (the wgrad GEMM). */
  weightGrad(a: tf.Tensor2D, dy: tf.Tensor2D, groupSizes: ArrayLike<number>): tf.Tensor3D;
}

/**
 * @kiln/gpu-kernels' `groupedMatMul` (the default): one op for all experts, a C++ kernel on
 * kiln-native (one sgemm per group), host loops on cpu, WGSL on webgpu; its gradient is the
 * same op in its 'nt' / 'tn' modes.
 */
export const kernelGroupedGemm: GroupedGemm = {
  name: 'gpu-kernels',
  matmul: (x, w, groupSizes, options = {}) => {
    checkRows(x, w, groupSizes, options.transposeB ?? false);
    return groupedMatMulOp({ x, w }, { groupSizes: Array.from(groupSizes), mode: options.transposeB ? 'nt' : 'nn' }) as tf.Tensor2D;
  },
  weightGrad: (a, dy, groupSizes) => groupedMatMulOp({ x: a, w: dy }, { groupSizes: Array.from(groupSizes), mode: 'tn' }) as tf.Tensor3D,
};

/**
 * One tf.matMul per expert in a loop, differentiated by tfjs: what `groupedGemm: false` runs
 * (Megatron's SequentialMLP), and the test oracle of the grouped kernel.
 */
export const perExpertGemm: GroupedGemm = {
  name: 'per-expert',
  matmul: (x, w, groupSizes, options = {}) => {
    const groups = groupSizes.length;
    const tb = options.transposeB ?? false;
    checkRows(x, w, groupSizes, tb);
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
      // No rows at all: still a function of x and w (zero), so autodiff reaches both.
      if (parts.length === 0) return tf.add(tf.zeros([0, outCols]), tf.mul(tf.sum(w), 0)) as tf.Tensor2D;
      return (parts.length === 1 ? parts[0]! : tf.concat(parts, 0)) as tf.Tensor2D;
    });
  },
  weightGrad: (a, dy, groupSizes) =>
    tf.tidy(() => {
      const parts: tf.Tensor2D[] = [];
      let start = 0;
      for (const n of Array.from(groupSizes)) {
        if (n === 0) parts.push(tf.zeros([a.shape[1], dy.shape[1]]));
        else parts.push(tf.matMul(tf.slice(a, [start, 0], [n, a.shape[1]]), tf.slice(dy, [start, 0], [n, dy.shape[1]]), true, false));
        start += n;
      }
      return tf.stack(parts) as tf.Tensor3D;
    }),
};

function checkRows(x: tf.Tensor2D, w: tf.Tensor3D, groupSizes: ArrayLike<number>, transposeB: boolean): void {
  const groups = groupSizes.length;
  if (w.shape[0] !== groups) throw new Error(`groupedGemm: weights have ${w.shape[0]} groups, groupSizes ${groups}`);
  let total = 0;
  for (let g = 0; g < groups; g++) total += groupSizes[g]!;
  if (total !== x.shape[0]) throw new Error(`groupedGemm: group sizes sum to ${total}, x has ${x.shape[0]} rows`);
  const inner = transposeB ? w.shape[2] : w.shape[1];
  if (x.shape[1] !== inner) throw new Error(`groupedGemm: x has ${x.shape[1]} columns, weights expect ${inner}`);
}

let active: GroupedGemm = kernelGroupedGemm;
/** The grouped GEMM the experts use (gpu-kernels' unless swapped). */
export function getGroupedGemm(): GroupedGemm {
  return active;
}
/** Swap in another grouped GEMM (tests compare `perExpertGemm` with the kernel). */
export function setGroupedGemm(g: GroupedGemm): void {
  active = g;
}
