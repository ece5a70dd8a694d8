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
      /** Delayed scaling: one amax history per tensor (created by createQuantRecipe). */
      delayed?: DelayedScalingTable;
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

/**
 * Delayed scaling's state for every tensor of a model (Transformer Engine keeps one amax
 * history and scale per GEMM operand: each linear layer's input, weight and output gradient,
 * and in a grouped linear each expert's). Quantizing a tensor records its amax; `step()` —
 * once per training step, after backward — turns each history into the next step's scale and
 * rolls it, so a history of N covers the last N steps whatever the number of GEMMs.
 */
export class DelayedScalingTable {
  private readonly states = new Map<string, DelayedScaling>();
  /** Training steps ended with `step()`. */
  steps = 0;

  constructor(
    readonly options: { historyLen: number; margin: number; algo: 'max' | 'most_recent'; gradFormat: 'e4m3' | 'e5m2' },
  ) {}

  /** The state of one tensor (e.g. 'fc1.3.weight': expert 3's fc1 weight), made on first use. */
  state(tensor: string, role: OperandRole): DelayedScaling {
    let s = this.states.get(tensor);
    if (!s) {
      s = new DelayedScaling(role === 'grad' ? this.options.gradFormat : 'e4m3', this.options);
      this.states.set(tensor, s);
    }
    return s;
  }

  /** Names of the tensors seen so far. */
  get tensors(): string[] {
    return [...this.states.keys()];
  }

  /** End of a training step: every tensor's scale from its amax history, then one roll each. */
  step(): void {
    for (const s of this.states.values()) s.update();
    this.steps++;
  }
}

/** The recipe a config selects (fp4 wins over fp8; none when neither is set). */
export function createQuantRecipe(
  config: Pick<MoEConfig, 'fp8' | 'fp8Recipe' | 'fp8Margin' | 'fp8AmaxHistoryLen' | 'fp8AmaxComputeAlgo' | 'fp4'>,
  rng?: Rng,
): QuantRecipe {
  if (config.fp4) return { kind: 'nvfp4', weight2d: true, rht: true, stochasticRounding: rng !== undefined, rng };
  if (!config.fp8) return { kind: 'none' };
  const recipe: QuantRecipe = { kind: 'fp8', scaling: config.fp8Recipe, format: config.fp8 };
  if (config.fp8Recipe === 'delayed') {
    recipe.delayed = new DelayedScalingTable({
      historyLen: config.fp8AmaxHistoryLen,
      margin: config.fp8Margin,
      algo: config.fp8AmaxComputeAlgo,
      gradFormat: config.fp8 === 'hybrid' ? 'e5m2' : 'e4m3',
    });
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
 * same layout. Delayed scaling uses (and records the amax into) the history of `tensor`
 * (default: the role's name).
 */
export function qdqOperand(
  m: Matrix,
  role: OperandRole,
  recipe: QuantRecipe,
  reduceAlong: 'rows' | 'cols',
  options: { rht?: boolean; tensor?: string } = {},
): Matrix {
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
        if (!recipe.delayed) throw new Error("quantizedMatMul: the 'delayed' recipe needs its DelayedScalingTable (use createQuantRecipe)");
        out = recipe.delayed.state(options.tensor ?? role, role).qdq(along, { update: false });
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
 * amax is recorded under `tensor` (default the role); the scale changes at the table's `step()`.
 */
export function fakeQuantize(x: tf.Tensor2D, role: OperandRole, recipe: QuantRecipe, reduceAlong: 'rows' | 'cols' = 'cols', tensor?: string): tf.Tensor2D {
  if (recipe.kind === 'none') return x;
  const f = tf.customGrad(((t: tf.Tensor) => {
    const [rows, cols] = t.shape as [number, number];
    const q = qdqOperand({ data: Float32Array.from(t.dataSync() as ArrayLike<number>), rows, cols }, role, recipe, reduceAlong, { tensor });
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
 * The three GEMMs of one quantized linear layer Y = A·B, each operand quantized for its role
 * along that GEMM's reduction dimension (Transformer Engine's fprop / dgrad / wgrad):
 * - `fprop(a, b)` = Q(A)·Q(B): A [M, K] blocks along K (input), B [K, N] along K (weight);
 * - `dgrad(dy, b)` = Q(dY)·Q(B)ᵀ: reduction over N, dY as a gradient;
 * - `wgrad(a, dy)` = Q(Aᵀ)·Q(dY): reduction over the M tokens (NVFP4 applies its Hadamard
 *   transform to both operands along M, which leaves the exact product unchanged).
 * Delayed scaling keeps the histories of `name`'s three tensors: `${name}.input`,
 * `${name}.weight`, `${name}.grad`.
 */
export interface QuantizedGemms {
  fprop(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D;
  dgrad(dy: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D;
  wgrad(a: tf.Tensor2D, dy: tf.Tensor2D): tf.Tensor2D;
}

export function quantizedGemms(recipe: QuantRecipe, name = 'gemm'): QuantizedGemms {
  const rht = recipe.kind === 'nvfp4' && (recipe.rht ?? true);
  const q = (m: Matrix, role: OperandRole, along: 'rows' | 'cols', useRht = false) =>
    toTensor(qdqOperand(m, role, recipe, along, { tensor: `${name}.${role}`, rht: useRht }));
  return {
    fprop: (a, b) => tf.tidy(() => tf.matMul(q(hostMatrix(a), 'input', 'cols'), q(hostMatrix(b), 'weight', 'rows'))),
    // dY blocks along its columns (N), B along its columns too.
    dgrad: (dy, b) => tf.tidy(() => tf.matMul(q(hostMatrix(dy), 'grad', 'cols'), q(hostMatrix(b), 'weight', 'cols'), false, true)),
    // Aᵀ [K, M] and dYᵀ [N, M] with blocks along M.
    wgrad: (a, dy) =>
      tf.tidy(() => {
        const aT = transpose(hostMatrix(a));
        const dyT = transpose(hostMatrix(dy));
        return tf.matMul(q(aT, 'input', 'cols', rht && aT.cols % 16 === 0), q(dyT, 'grad', 'cols', rht && dyT.cols % 16 === 0), false, true);
      }),
  };
}

/**
 * Y = A·B through `quantizedGemms`: quantized forward, and a backward whose dA and dB are the
 * quantized dgrad and wgrad. Delayed scaling records amaxes under `name` and changes its
 * scales only at `recipe.delayed.step()`.
 */
export function quantizedMatMul(a: tf.Tensor2D, b: tf.Tensor2D, recipe: QuantRecipe, name = 'gemm'): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2 || a.shape[1] !== b.shape[0]) {
    throw new Error(`quantizedMatMul: shapes [${a.shape}] and [${b.shape}] do not multiply (a: [M, K], b: [K, N])`);
  }
  if (recipe.kind === 'none') return tf.matMul(a, b);
  const gemms = quantizedGemms(recipe, name);
  const f = tf.customGrad(((at: tf.Tensor2D, bt: tf.Tensor2D, save: tf.GradSaveFunc) => {
    save([at, bt]);
    return {
      value: gemms.fprop(at, bt),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [as, bs] = saved as [tf.Tensor2D, tf.Tensor2D];
        return [gemms.dgrad(dy as tf.Tensor2D, bs), gemms.wgrad(as, dy as tf.Tensor2D)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as unknown as (x: tf.Tensor, y: tf.Tensor) => tf.Tensor2D)(a, b);
}
