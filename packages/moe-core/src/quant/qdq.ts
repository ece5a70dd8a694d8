/**
 * Low-precision GEMMs as quantize–dequantize with the exact formats: `quantizedMatMul(a, b,
 * recipe)` computes Y = Q(A)·Q(B) in forward and, in backward, dA = Q(dY)·Q(B)ᵀ and
 * dB = Q(A)ᵀ·Q(dY), each operand quantized along that GEMM's reduction dimension as the recipe
 * prescribes (Transformer Engine's roles: input, weight, gradient). The quantizers are
 * straight-through: no gradient of the rounding itself.
 */
import { type Rng, tf } from '@kiln/tensor';
import type { MoEConfig } from '../config.js';
import { DelayedScaling, type Matrix, qdqBlockwise, qdqMxfp8, qdqTensorwise } from './fp8.js';
import { applyRht16, qdqNvfp4 } from './nvfp4.js';

/** A low-precision recipe for the expert GEMMs. */
export type QuantRecipe =
  | { kind: 'none' }
  | {
      kind: 'fp8';
      /** 'delayed' | 'tensorwise' | 'blockwise' | 'mxfp8'. */
      scaling: 'delayed' | 'tensorwise' | 'blockwise' | 'mxfp8';
      /** 'e4m3' everywhere, or 'hybrid': E4M3 forward operands, E5M2 gradients. */
      format: 'e4m3' | 'hybrid';
      /** Delayed scaling states per role (created by createQuantRecipe). */
      delayed?: { input: DelayedScaling; weight: DelayedScaling; grad: DelayedScaling };
    }
  | {
      kind: 'nvfp4';
      /** 16×16 tiles for the weight operand (default true). */
      weight2d?: boolean;
      /** Stochastic rounding of gradients (default true when `rng` is given). */
      stochasticRounding?: boolean;
      /** Random Hadamard transform on the weight-gradient operands (default true). */
      rht?: boolean;
      rng?: Rng;
    };

/** Operand role of a GEMM operand, deciding the format and block shape. */
export type OperandRole = 'input' | 'weight' | 'grad';

/** The recipe a config selects (fp4 wins over fp8; none when neither is set). */
export function createQuantRecipe(
  config: Pick<MoEConfig, 'fp8' | 'fp8Recipe' | 'fp8Margin' | 'fp8AmaxHistoryLen' | 'fp8AmaxComputeAlgo' | 'fp4'>,
  rng?: Rng,
): QuantRecipe {
  if (config.fp4) return { kind: 'nvfp4', weight2d: true, rht: true, stochasticRounding: rng !== undefined, rng };
  if (!config.fp8) return { kind: 'none' };
  const recipe: QuantRecipe = { kind: 'fp8', scaling: config.fp8Recipe, format: config.fp8 };
  if (config.fp8Recipe === 'delayed') {
    const opts = { historyLen: config.fp8AmaxHistoryLen, margin: config.fp8Margin, algo: config.fp8AmaxComputeAlgo };
    recipe.delayed = {
      input: new DelayedScaling('e4m3', opts),
      weight: new DelayedScaling('e4m3', opts),
      grad: new DelayedScaling(config.fp8 === 'hybrid' ? 'e5m2' : 'e4m3', opts),
    };
  }
  return recipe;
}

function transpose(m: Matrix): Matrix {
  const out = new Float32Array(m.data.length);
  for (let r = 0; r < m.rows; r++) for (let c = 0; c < m.cols; c++) out[c * m.rows + r] = m.data[r * m.cols + c]!;
  return { data: out, rows: m.cols, cols: m.rows };
}

/**
 * Quantize–dequantize a matrix whose reduction dimension is its columns (`reduceAlong` =
 * 'cols') or its rows ('rows'), for the given role. Returns the dequantized matrix in the
 * same layout.
 */
export function qdqOperand(m: Matrix, role: OperandRole, recipe: QuantRecipe, reduceAlong: 'rows' | 'cols', options: { rht?: boolean } = {}): Matrix {
  if (recipe.kind === 'none') return m;
  // Work with the reduction dimension along the columns, transposing back afterwards.
  const along = reduceAlong === 'cols' ? m : transpose(m);
  let out: Matrix;
  if (recipe.kind === 'fp8') {
    const fmt = role === 'grad' && recipe.format === 'hybrid' ? 'e5m2' : 'e4m3';
    switch (recipe.scaling) {
      case 'tensorwise':
        out = qdqTensorwise(along, fmt);
        break;
      case 'delayed': {
        const st = recipe.delayed?.[role];
        if (!st) throw new Error("quantizedMatMul: the 'delayed' recipe needs its DelayedScaling states (use createQuantRecipe)");
        out = st.qdq(along, { update: false });
        break;
      }
      case 'blockwise':
        out = qdqBlockwise(along, fmt, role === 'weight' ? [128, 128] : [1, 128]);
        break;
      case 'mxfp8':
        out = qdqMxfp8(along, fmt, [1, 32]);
        break;
      default:
        throw new Error(`quantizedMatMul: unknown fp8 scaling '${String((recipe as { scaling: string }).scaling)}'`);
    }
  } else {
    const src = options.rht ? applyRht16(along) : along;
    const rng = recipe.rng;
    const sr = role === 'grad' && (recipe.stochasticRounding ?? rng !== undefined);
    if (sr && !rng) throw new Error('quantizedMatMul: NVFP4 stochastic rounding needs recipe.rng');
    out = qdqNvfp4(src, {
      tile: role === 'weight' && (recipe.weight2d ?? true) ? [16, 16] : [1, 16],
      random: sr ? () => rng!.next() : undefined,
    });
  }
  return reduceAlong === 'cols' ? out : transpose(out);
}

/**
 * Quantize–dequantize a tensor with a straight-through gradient. With delayed scaling the
 * role's history is updated after the call (one step per call).
 */
export function fakeQuantize(x: tf.Tensor2D, role: OperandRole, recipe: QuantRecipe, reduceAlong: 'rows' | 'cols' = 'cols'): tf.Tensor2D {
  if (recipe.kind === 'none') return x;
  const f = tf.customGrad(((t: tf.Tensor) => {
    const [rows, cols] = t.shape as [number, number];
    const q = qdqOperand({ data: Float32Array.from(t.dataSync() as ArrayLike<number>), rows, cols }, role, recipe, reduceAlong);
    if (recipe.kind === 'fp8' && recipe.delayed) recipe.delayed[role].update();
    return { value: tf.tensor2d(q.data, [rows, cols]), gradFunc: (dy: tf.Tensor) => dy };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as unknown as (t: tf.Tensor) => tf.Tensor2D)(x);
}

const hostMatrix = (t: tf.Tensor): Matrix => ({
  data: Float32Array.from(t.dataSync() as ArrayLike<number>),
  rows: t.shape[0]!,
  cols: t.shape[1]!,
});
const toTensor = (m: Matrix): tf.Tensor2D => tf.tensor2d(m.data, [m.rows, m.cols]);

/**
 * Y = A·B with both operands quantized (A: input role, blocks along K; B: weight role), and a
 * backward that quantizes dY as a gradient: dA = Q(dY)·Q(B)ᵀ (reduction over N) and
 * dB = Q(Aᵀ)·Q(dY) (reduction over the M tokens; NVFP4 applies its Hadamard transform to both
 * wgrad operands along M, which leaves the exact product unchanged). Delayed scaling updates
 * its amax histories after each backward.
 */
export function quantizedMatMul(a: tf.Tensor2D, b: tf.Tensor2D, recipe: QuantRecipe): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`quantizedMatMul: shapes [${a.shape}] and [${b.shape}] do not multiply (a: [M, K], b: [K, N])`);
  }
  if (recipe.kind === 'none') return tf.matMul(a, b);
  const rht = recipe.kind === 'nvfp4' && (recipe.rht ?? true);
  const f = tf.customGrad(((at: tf.Tensor, bt: tf.Tensor, save: tf.GradSaveFunc) => {
    save([at, bt]);
    const qa = toTensor(qdqOperand(hostMatrix(at), 'input', recipe, 'cols'));
    const qb = toTensor(qdqOperand(hostMatrix(bt), 'weight', recipe, 'rows'));
    return {
      value: tf.matMul(qa, qb),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const dyM = hostMatrix(dy as tf.Tensor);
        const [as, bs] = saved as [tf.Tensor, tf.Tensor];
        // dgrad: reduction over N, dY blocks along its columns, B along its columns.
        const qdy = toTensor(qdqOperand(dyM, 'grad', recipe, 'cols'));
        const qbT = toTensor(qdqOperand(hostMatrix(bs), 'weight', recipe, 'cols'));
        const da = tf.matMul(qdy, qbT, false, true);
        // wgrad: reduction over M. Aᵀ [K, M] and dYᵀ [N, M] with blocks along M.
        const aT = transpose(hostMatrix(as));
        const dyT = transpose(dyM);
        const qaT = toTensor(qdqOperand(aT, 'input', recipe, 'cols', { rht: rht && aT.cols % 16 === 0 }));
        const qdyT = toTensor(qdqOperand(dyT, 'grad', recipe, 'cols', { rht: rht && dyT.cols % 16 === 0 }));
        const db = tf.matMul(qaT, qdyT, false, true);
        if (recipe.kind === 'fp8' && recipe.delayed) {
          recipe.delayed.input.update();
          recipe.delayed.weight.update();
          recipe.delayed.grad.update();
        }
        return [da, db];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as unknown as (x: tf.Tensor, y: tf.Tensor) => tf.Tensor2D)(a, b);
}
