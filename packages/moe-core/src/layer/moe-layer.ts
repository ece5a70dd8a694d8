import { type Rng, tf } from '@kiln/tensor';
import { type MoEConfig, type MoEConfigInput, quantizationAlignSize, validateMoEConfig } from '../config.js';
import { type PermutePlan, type Permuter, getPermuter, planPermutation } from '../dispatch/permute.js';
import { type GroupedGemm, perExpertGemm } from '../experts/grouped-gemm.js';
import { type ExpertGemms, GroupedMlp } from '../experts/grouped-mlp.js';
import { quantizedGroupedGemm } from '../experts/quantized-gemm.js';
import { sharedExpertsForward } from '../experts/shared-experts.js';
import { ActivationOffloader } from '../memory/offload.js';
import { type QuantRecipe, createQuantRecipe } from '../quant/qdq.js';
import { recompute } from '../memory/recompute.js';
import type { TokenOrder } from '../losses/load-balancing.js';
import type { MoEMetricsTracker } from '../losses/metrics.js';
import { drawInputJitter } from '../router/jitter.js';
import { type RouterLosses, TopKRouter } from '../router/router.js';
import { type RouteOutput, routeTokens } from './route.js';
import type { MoEWeights } from './weights.js';

/** Options that are not part of MoEConfig: runtime objects. */
export interface MoELayerOptions {
  /** Random stream for input jitter and NVFP4 stochastic rounding of gradients. */
  rng?: Rng;
  /** Shared host-offload accountant (one per layer if omitted). */
  offloader?: ActivationOffloader;
  /** Permuter override (default: the registered one, see setPermuter). */
  permuter?: Permuter;
  /**
   * Grouped GEMM of the fp32 experts (default: the registered one, see setGroupedGemm, or the
   * per-expert loop with `groupedGemm: false`). FP8 / NVFP4 configs use quantized GEMMs.
   */
  groupedGemm?: GroupedGemm;
  /** 1-based layer number under which the router logs its losses (default 1). */
  layerNumber?: number;
  /** Where the router logs its losses (default: the package's global tracker). */
  tracker?: MoEMetricsTracker;
}

/** Statistics of the most recent forward (per layer logging). */
export interface MoELayerStats {
  /** Tokens routed to each expert (after capacity dropping). */
  tokensPerExpert: Float32Array;
  /** Load-balancing and z losses with their coefficients applied. */
  losses: RouterLosses;
  /** Capacity per expert, when a capacity factor is set. */
  capacity: number | null;
}

/** The permute stage: routing map → plan (drop/pad applied) → expert-contiguous rows and back. */
export class PermuteStage {
  constructor(
    readonly config: MoEConfig,
    readonly permuter: Permuter,
  ) {}

  plan(route: RouteOutput, numTokens: number, expertOffset = 0, numExperts?: number): PermutePlan {
    const c = this.config;
    const align = c.padExpertRowsToMultiple ?? (quantizationAlignSize(c) > 1 ? quantizationAlignSize(c) : null);
    return planPermutation(route.routingMap, numTokens, c.numExperts, {
      expertOffset,
      numExperts: numExperts ?? c.numExperts - expertOffset,
      padToCapacity: c.padToCapacity ? route.capacity : null,
      padToMultiple: align,
    });
  }
}

/**
 * The expert GEMMs a config asks for: quantized grouped GEMMs for FP8 / NVFP4 (one per expert
 * layer, so delayed scaling keeps fc1's and fc2's tensors apart), else `override`, else the
 * registered grouped kernel (null) or, with `groupedGemm: false`, the per-expert loop.
 */
export function expertGemmsFor(config: MoEConfig, recipe: QuantRecipe, override?: GroupedGemm): ExpertGemms | GroupedGemm | null {
  if (recipe.kind !== 'none') return { fc1: quantizedGroupedGemm(recipe, 'fc1'), fc2: quantizedGroupedGemm(recipe, 'fc2') };
  return override ?? (config.groupedGemm ? null : perExpertGemm);
}

/** The experts stage: the grouped MLP with the configured GEMMs, recomputation and offloading. */
export class ExpertsStage {
  readonly mlp: GroupedMlp;
  constructor(
    readonly config: MoEConfig,
    readonly offloader: ActivationOffloader,
    gemms: ExpertGemms | GroupedGemm | null,
    /** The low-precision recipe of the GEMMs (its delayed-scaling histories roll in `endStep`). */
    readonly recipe: QuantRecipe = { kind: 'none' },
  ) {
    this.mlp = new GroupedMlp(config.activation, gemms);
  }

  forward(rows: tf.Tensor2D, fc1: tf.Tensor, fc2: tf.Tensor, rowsPerExpert: ArrayLike<number>): tf.Tensor2D {
    const c = this.config;
    const f1 = fc1 as tf.Tensor3D;
    const f2 = fc2 as tf.Tensor3D;
    if (c.recomputeModules.includes('experts')) {
      return recompute((x, a, b) => this.mlp.forward(x as tf.Tensor2D, a as tf.Tensor3D, b as tf.Tensor3D, rowsPerExpert))(rows, f1, f2);
    }
    const actRecompute = c.recomputeModules.includes('moe_act');
    if (actRecompute || c.offloadModules.length > 0) {
      return this.mlp.forwardManaged(rows, f1, f2, rowsPerExpert, {
        recomputeActivation: actRecompute,
        offload: c.offloadModules,
        offloader: this.offloader,
      });
    }
    return this.mlp.forward(rows, f1, f2, rowsPerExpert);
  }

  /** End of a training step: delayed FP8 scaling turns each tensor's amax history into its next scale. */
  endStep(): void {
    if (this.recipe.kind === 'fp8') this.recipe.delayed?.step();
  }
}

/** The shared-experts stage (optional gate, optional recomputation). */
export class SharedExpertsStage {
  constructor(readonly config: MoEConfig) {}

  forward(hidden: tf.Tensor2D, fc1: tf.Tensor, fc2: tf.Tensor, gate: tf.Tensor | null): tf.Tensor2D {
    const act = this.config.activation;
    const run = (x: tf.Tensor, a: tf.Tensor, b: tf.Tensor, g?: tf.Tensor) =>
      sharedExpertsForward(x as tf.Tensor2D, { fc1: a as tf.Tensor2D, fc2: b as tf.Tensor2D, gate: (g ?? null) as tf.Tensor2D | null }, act);
    if (this.config.recomputeModules.includes('shared_experts')) {
      const r = recompute((...xs) => run(xs[0]!, xs[1]!, xs[2]!, xs[3]));
      return gate ? r(hidden, fc1, fc2, gate) : r(hidden, fc1, fc2);
    }
    return run(hidden, fc1, fc2, gate ?? undefined);
  }
}

/**
 * Megatron-Core's MoELayer on one expert-parallel rank holding every expert: route →
 * (drop/pad) → permute → experts → unpermute (+ shared experts). Differentiable with tfjs
 * (use it inside `optimizer.minimize` / `tf.grads`). For expert parallelism over a
 * Communicator see `ExpertParallelMoE`, which runs the same stages with a token dispatcher.
 */
export class MoELayer {
  readonly config: MoEConfig;
  readonly router: TopKRouter;
  readonly permute: PermuteStage;
  readonly experts: ExpertsStage;
  readonly shared: SharedExpertsStage | null;
  readonly offloader: ActivationOffloader;
  stats: MoELayerStats;
  private readonly rng: Rng | null;

  constructor(
    config: MoEConfig | MoEConfigInput,
    readonly weights: MoEWeights,
    options: MoELayerOptions = {},
  ) {
    this.config = validateMoEConfig(config);
    const c = this.config;
    if (weights.fc1.shape[0] !== c.numExperts) {
      throw new Error(`MoELayer: weights hold ${weights.fc1.shape[0]} experts, config.numExperts is ${c.numExperts} (use ExpertParallelMoE for a share of the experts)`);
    }
    if (!!c.sharedExpertSize !== !!weights.sharedFc1) throw new Error('MoELayer: config.sharedExpertSize and the shared-expert weights disagree');
    if (c.sharedExpertGate !== !!weights.sharedGate) throw new Error('MoELayer: config.sharedExpertGate and the shared gate weight disagree');
    this.offloader = options.offloader ?? new ActivationOffloader();
    this.router = new TopKRouter(c, { weightVariable: weights.router, layerNumber: options.layerNumber, tracker: options.tracker });
    this.permute = new PermuteStage(c, options.permuter ?? getPermuter());
    const recipe = createQuantRecipe(c, options.rng);
    this.experts = new ExpertsStage(c, this.offloader, expertGemmsFor(c, recipe, options.groupedGemm), recipe);
    this.shared = c.sharedExpertSize ? new SharedExpertsStage(c) : null;
    this.rng = options.rng ?? null;
    this.stats = { tokensPerExpert: new Float32Array(c.numExperts), losses: {}, capacity: null };
  }

  /**
   * hidden [T, H] → [T, H]. `seqLength` and `order` (the rows' token order: 'sb', Megatron's
   * default, or 'bs' for batch-major rows) are needed only for the sequence aux loss.
   * With `recomputeModules` containing 'moe' the whole layer is recomputed in backward.
   * `training: false` is evaluation (validation, generation): no input jitter, no z-loss or
   * aux losses, no token counts for the expert bias or the global aux loss, and `stats` and
   * the metrics tracker are left as the last training forward set them.
   */
  forward(hidden: tf.Tensor2D, options: { seqLength?: number; order?: TokenOrder; training?: boolean } = {}): tf.Tensor2D {
    if (hidden.rank !== 2 || hidden.shape[1] !== this.config.hiddenSize) {
      throw new Error(`MoELayer.forward: hidden shape [${hidden.shape}] is not [tokens, hiddenSize ${this.config.hiddenSize}]`);
    }
    const training = options.training ?? true;
    const w = this.weights;
    const jitter = training ? drawInputJitter([hidden.shape[0], hidden.shape[1]], this.config.inputJitterEps, this.rng) : null;
    const inputs: tf.Tensor[] = [hidden, w.router, w.fc1, w.fc2];
    if (w.sharedFc1 && w.sharedFc2) inputs.push(w.sharedFc1, w.sharedFc2);
    if (w.sharedGate) inputs.push(w.sharedGate);
    let calls = 0;
    const body = (...xs: tf.Tensor[]) => this.body(xs, { jitter, seqLength: options.seqLength, order: options.order, training, record: training && calls++ === 0 });
    const out = this.config.recomputeModules.includes('moe') ? recompute(body)(...inputs) : body(...inputs);
    jitter?.dispose();
    return out;
  }

  /**
   * End of a training step (a global batch): the aux-loss-free expert-bias update, a fresh
   * count for the global aux loss, and delayed FP8 scaling's new scales (its amax histories
   * roll once per step).
   */
  endStep(): void {
    this.router.updateExpertBias();
    this.router.resetGlobalAuxLossTracker();
    this.experts.endStep();
  }

  private body(xs: tf.Tensor[], o: { jitter: tf.Tensor | null; seqLength?: number; order?: TokenOrder; training: boolean; record: boolean }): tf.Tensor2D {
    const [hidden, router, fc1, fc2, sFc1, sFc2, sGate] = xs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor, tf.Tensor, tf.Tensor?, tf.Tensor?, tf.Tensor?];
    return tf.tidy(() => {
      const T = hidden.shape[0];
      const route = routeTokens(this.router, hidden, router, { jitter: o.jitter, seqLength: o.seqLength, order: o.order, training: o.training, record: o.record });
      const plan = this.permute.plan(route, T);
      const rows = this.permute.permuter.permute(hidden, plan);
      const expertOut = this.experts.forward(rows, fc1, fc2, plan.rowsPerExpert);
      let out = this.permute.permuter.unpermute(expertOut, plan, route.probs);
      if (this.shared && sFc1 && sFc2) out = tf.add(out, this.shared.forward(hidden, sFc1, sFc2, sGate ?? null));
      if (o.record) this.stats = { tokensPerExpert: this.router.lastTokensPerExpert, losses: { ...this.router.lastLosses }, capacity: route.capacity };
      return out;
    });
  }
}
