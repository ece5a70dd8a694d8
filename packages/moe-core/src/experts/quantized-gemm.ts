import { tf } from '@kiln/tensor';
import { type QuantRecipe, quantizedGemms } from '../quant/qdq.js';
import type { GroupedGemm } from './grouped-gemm.js';

/** The row blocks of each group (views on x, consecutive rows), with their group index. */
function groupsOf(x: tf.Tensor2D, groupSizes: ArrayLike<number>): { g: number; rows: tf.Tensor2D }[] {
  const out: { g: number; rows: tf.Tensor2D }[] = [];
  let start = 0;
  for (let g = 0; g < groupSizes.length; g++) {
    const n = groupSizes[g]!;
    if (n > 0) out.push({ g, rows: tf.slice(x, [start, 0], [n, x.shape[1]]) });
    start += n;
  }
  return out;
}

const expertWeight = (w: tf.Tensor3D, g: number): tf.Tensor2D => tf.reshape(tf.slice(w, [g, 0, 0], [1, w.shape[1], w.shape[2]]), [w.shape[1], w.shape[2]]);

/**
 * A grouped GEMM whose per-expert products are quantized (FP8 recipes, NVFP4) as Transformer
 * Engine's grouped linear does: the forward 'nn' product is fprop (input × weight), the
 * data gradient 'nt' is dgrad (gradient × weightᵀ) and `weightGrad` is wgrad (inputᵀ ×
 * gradient). `name` ('fc1', 'fc2') names the GEMM; delayed scaling keeps each expert's tensors
 * apart (`${name}.${expert}.input|weight|grad`). The 'nn' product is differentiable (its
 * gradient is the quantized dgrad and wgrad); 'nt' and `weightGrad` are the backward's
 * products and carry no gradient of their own.
 */
export function quantizedGroupedGemm(recipe: QuantRecipe, name: string): GroupedGemm {
  if (recipe.kind === 'none') throw new Error('quantizedGroupedGemm: the recipe is none; use a plain grouped GEMM');
  const gemms = (g: number) => quantizedGemms(recipe, `${name}.${g}`);
  const outCols = (w: tf.Tensor3D, transposeB: boolean) => (transposeB ? w.shape[1] : w.shape[2]);
  const concat = (parts: tf.Tensor2D[], cols: number): tf.Tensor2D =>
    parts.length === 0 ? (tf.zeros([0, cols]) as tf.Tensor2D) : parts.length === 1 ? parts[0]! : (tf.concat(parts, 0) as tf.Tensor2D);

  const dgrad = (dy: tf.Tensor2D, w: tf.Tensor3D, sizes: ArrayLike<number>) =>
    tf.tidy(() => concat(groupsOf(dy, sizes).map(({ g, rows }) => gemms(g).dgrad(rows, expertWeight(w, g))), outCols(w, true)));
  const wgrad = (a: tf.Tensor2D, dy: tf.Tensor2D, sizes: ArrayLike<number>): tf.Tensor3D =>
    tf.tidy(() => {
      const parts: tf.Tensor2D[] = [];
      let start = 0;
      for (let g = 0; g < sizes.length; g++) {
        const n = sizes[g]!;
        if (n === 0) parts.push(tf.zeros([a.shape[1], dy.shape[1]]));
        else parts.push(gemms(g).wgrad(tf.slice(a, [start, 0], [n, a.shape[1]]), tf.slice(dy, [start, 0], [n, dy.shape[1]])));
        start += n;
      }
      return tf.stack(parts) as tf.Tensor3D;
    });
  const fprop = (x: tf.Tensor2D, w: tf.Tensor3D, sizes: number[]): tf.Tensor2D => {
    const f = tf.customGrad(((xi: tf.Tensor2D, wi: tf.Tensor3D, save: tf.GradSaveFunc) => {
      save([xi, wi]);
      return {
        value: tf.tidy(() => concat(groupsOf(xi, sizes).map(({ g, rows }) => gemms(g).fprop(rows, expertWeight(wi, g))), wi.shape[2])),
        gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
          const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor3D];
          return [dgrad(dy as tf.Tensor2D, ws, sizes), wgrad(xs, dy as tf.Tensor2D, sizes)];
        },
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return (f as unknown as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor2D)(x, w);
  };
  return {
    name: `quantized ${recipe.kind === 'fp8' ? `fp8 ${recipe.scaling}` : 'nvfp4'} ${name}`,
    matmul: (x, w, groupSizes, options = {}) => {
      const sizes = Array.from(groupSizes);
      if (w.shape[0] !== sizes.length) throw new Error(`quantizedGroupedGemm: weights have ${w.shape[0]} groups, groupSizes ${sizes.length}`);
      return options.transposeB ? dgrad(x, w, sizes) : fprop(x, w, sizes);
    },
    weightGrad: (a, dy, groupSizes) => wgrad(a, dy, groupSizes),
  };
}
