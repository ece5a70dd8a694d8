/**
 * The route stage of the MoE layer: Megatron's `TopKRouter` — gating linear in fp32, input
 * jitter, z-loss, top-k or Sinkhorn routing, capacity dropping, the aux losses attached to the
 * probabilities through `attachAuxLoss`, per-layer logging, and the expert-bias counts.
 */
import { type Rng, createRng, tf } from '@kiln/tensor';
import { applyTokenDropping } from '../capacity/capacity.js';
import { type MoEConfig, auxLossCoeffFor, isAuxLossEnabled, usesSinkhorn } from '../config.js';
import { attachAuxLoss } from '../losses/auto-scaler.js';
import { GlobalAuxLossTracker, type TokenOrder, sequenceAuxLoss, switchLoadBalancingLoss } from '../losses/load-balancing.js';
import { type MoEMetricsTracker, getMoEMetricsTracker } from '../losses/metrics.js';
import { zLoss } from '../losses/z-loss.js';
import { ExpertBiasState } from './expert-bias.js';
import { applyInputJitter } from './jitter.js';
import { computeRoutingScoresForAuxLoss, toFloat32, topkRouting } from './routing.js';
import { sinkhornRouting } from './sinkhorn.js';

/**
 * Reductions the router needs across ranks. On one rank every size is 1 and every reduction
 * the identity; a multi-rank runtime supplies its own (synchronous) all-reduces.
 */
export interface RouterCollectives {
  /** Size of the tensor×context-parallel group (aux-loss and z-loss scaling). */
  tpCpSize?: number;
  /** Size of the tensor×data×context-parallel group (global aux loss). */
  tpDpCpSize?: number;
  /** Sum token counts over the tp·cp group. */
  allReduceTpCp?: (counts: Float32Array) => ArrayLike<number>;
  /** Sum token counts over the tp·dp·cp group. */
  allReduceTpDpCp?: (counts: Float32Array) => ArrayLike<number>;
}

export interface TopKRouterOptions {
  /** 1-based layer number for logging. Default 1. */
  layerNumber?: number;
  /** Initial gate weight [experts, hidden] (copied); default normal(0, 0.02) from `rng`/`seed`. */
  weight?: tf.Tensor2D;
  /** Use this variable as the gate weight itself (e.g. an MoE layer's `weights.router`), not a copy. */
  weightVariable?: tf.Variable;
  /** Random source for the initial weight and the input jitter. */
  rng?: Rng;
  seed?: number;
  tracker?: MoEMetricsTracker;
  collectives?: RouterCollectives;
}

export interface RouterForwardOptions {
  /** Training applies jitter, z-loss, aux losses and bias counting. Default true. */
  training?: boolean;
  /** Sequence length and micro-batch size of the tokens (seq_aux_loss); default [tokens, 1]. */
  seqLength?: number;
  bsz?: number;
  /** Token order of the flattened input: 'sb' (Megatron, default) or 'bs'. */
  order?: TokenOrder;
  /**
   * Log the losses, count tokens for the expert bias and the global aux loss, and update
   * `lastLosses` / `lastTokensPerExpert`. Default: `training`; false while recomputing a forward
   * (the global aux loss then reuses the counts of the recorded call), so nothing counts twice.
   */
  record?: boolean;
}

/** Per-call values of the losses (their coefficients applied), for per-layer logging. */
export type RouterLosses = Partial<Record<'aux_loss' | 'seq_aux_loss' | 'global_aux_loss' | 'z_loss', number>>;

export interface RoutingOutput {
  /** [tokens, experts] routing probabilities (zero where not routed), carrying the attached losses. */
  probs: tf.Tensor2D;
  /** [tokens, experts] bool routing map after capacity dropping / padding. */
  routingMap: tf.Tensor2D;
  /** Expert capacity when a capacity factor is set, else null. */
  capacity: number | null;
}

export interface RouterOutput extends RoutingOutput {
  logits: tf.Tensor2D;
}

export class TopKRouter {
  readonly config: MoEConfig;
  readonly layerNumber: number;
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly expertBias: ExpertBiasState | null;
  readonly globalAuxTracker: GlobalAuxLossTracker | null;
  /** Losses (coefficients applied) and routed tokens per expert of the last recorded call. */
  lastLosses: RouterLosses = {};
  lastTokensPerExpert: Float32Array;
  private lastGlobalCounts: ArrayLike<number> | null = null;
  private readonly ownsWeight: boolean;
  private readonly rng: Rng;
  private readonly tracker: MoEMetricsTracker;
  private readonly coll: Required<RouterCollectives>;

  constructor(config: MoEConfig, options: TopKRouterOptions = {}) {
    this.config = config;
    this.layerNumber = options.layerNumber ?? 1;
    this.rng = options.rng ?? createRng(options.seed ?? 0);
    const shape: [number, number] = [config.numExperts, config.hiddenSize];
    if (options.weight && options.weight.shape.join() !== shape.join()) {
      throw new Error(`TopKRouter: weight shape [${options.weight.shape}] must be [numExperts, hiddenSize] = [${shape}]`);
    }
    if (options.weightVariable) {
      if (options.weightVariable.shape.join() !== shape.join()) {
        throw new Error(`TopKRouter: weightVariable shape [${options.weightVariable.shape}] must be [numExperts, hiddenSize] = [${shape}]`);
      }
      this.weight = options.weightVariable as tf.Variable<tf.Rank.R2>;
      this.ownsWeight = false;
    } else {
      const init = options.weight ? toFloat32(options.weight) : this.rng.normal(shape, 0, 0.02);
      this.weight = tf.variable(init as tf.Tensor2D, true);
      this.ownsWeight = true;
    }
    this.lastTokensPerExpert = new Float32Array(config.numExperts);
    this.expertBias = config.routerEnableExpertBias ? new ExpertBiasState(config.numExperts, config.routerBiasUpdateRate) : null;
    this.globalAuxTracker = auxLossCoeffFor(config, 'global_aux_loss') > 0 ? new GlobalAuxLossTracker(config.numExperts) : null;
    this.tracker = options.tracker ?? getMoEMetricsTracker();
    const c = options.collectives ?? {};
    this.coll = {
      tpCpSize: c.tpCpSize ?? 1,
      tpDpCpSize: c.tpDpCpSize ?? 1,
      allReduceTpCp: c.allReduceTpCp ?? ((x) => x),
      allReduceTpDpCp: c.allReduceTpDpCp ?? ((x) => x),
    };
  }

  /**
   * logits = input · Wᵀ in fp32: [tokens, hidden] → [tokens, experts]. `weight` defaults to
   * the router's variable; a layer that differentiates its weights as function inputs
   * (recomputation, staged expert parallelism) passes that input instead.
   */
  gating(input: tf.Tensor2D, weight: tf.Tensor2D = this.weight): tf.Tensor2D {
    if (input.rank !== 2 || input.shape[1] !== this.config.hiddenSize) {
      throw new Error(`TopKRouter: input must be [tokens, ${this.config.hiddenSize}], got [${input.shape}]`);
    }
    return tf.matMul(toFloat32(input) as tf.Tensor2D, toFloat32(weight) as tf.Tensor2D, false, true);
  }

  /** The full forward: jitter → gating → routing. */
  forward(input: tf.Tensor2D, options: RouterForwardOptions = {}): RouterOutput {
    const training = options.training ?? true;
    const jittered = training ? (applyInputJitter(input, this.config.inputJitterEps, this.rng) as tf.Tensor2D) : input;
    const logits = this.gating(jittered);
    return { ...this.routing(logits, options), logits };
  }

  /** Megatron's `TopKRouter.routing` on given logits. */
  routing(logitsIn: tf.Tensor2D, options: RouterForwardOptions = {}): RoutingOutput {
    const c = this.config;
    const training = options.training ?? true;
    const record = options.record ?? training;
    const numTokens = logitsIn.shape[0];
    const losses: RouterLosses = {};
    let logits = logitsIn;
    if (training && c.zLossCoeff !== null && c.zLossCoeff > 0) logits = this.applyZLoss(logits, losses, record);

    let probs: tf.Tensor2D;
    let routingMap: tf.Tensor2D;
    if (usesSinkhorn(c)) {
      ({ probs, routingMap } = sinkhornRouting(logits, { topk: c.topk, training }));
    } else {
      ({ probs, routingMap } = topkRouting(logits, {
        topk: c.topk,
        scoreFunction: c.routerScoreFunction,
        preSoftmax: c.routerPreSoftmax,
        numGroups: c.routerNumGroups,
        groupTopk: c.routerGroupTopk,
        scalingFactor: c.routerTopkScalingFactor,
        expertBias: this.expertBias ? this.expertBias.bias : null,
      }));
    }
    let capacity: number | null = null;
    if (c.capacityFactor !== null) {
      ({ probs, routingMap, capacity } = applyTokenDropping(probs, routingMap, {
        topk: c.topk,
        capacityFactor: c.capacityFactor,
        dropPolicy: c.dropPolicy,
        padToCapacity: c.padToCapacity,
      }));
    }
    if (training && isAuxLossEnabled(c)) {
      const { scores, routingMap: auxMap } = computeRoutingScoresForAuxLoss(logits, c.topk, c.routerScoreFunction);
      probs = this.applyAuxLosses(probs, scores, auxMap, numTokens, options, losses, record);
    }
    if (record) {
      const counts = tf.tidy(() => tf.sum(tf.cast(routingMap, 'float32'), 0).dataSync() as Float32Array);
      this.lastTokensPerExpert = counts;
      this.lastLosses = losses;
      if (training) this.expertBias?.accumulate(counts);
    }
    return { probs, routingMap, capacity };
  }

  private applyZLoss(logits: tf.Tensor2D, losses: RouterLosses, record: boolean): tf.Tensor2D {
    const coeff = this.config.zLossCoeff! / this.coll.tpCpSize;
    const z = zLoss(logits, coeff);
    const attached = this.config.calculatePerTokenLoss
      ? attachAuxLoss(logits, tf.mul(z, logits.shape[0] * this.coll.tpCpSize))
      : attachAuxLoss(logits, z);
    const value = z.dataSync()[0]!;
    losses.z_loss = value;
    if (record) this.tracker.record('z_loss', value / coeff, this.layerNumber, this.config.numLayers);
    return attached;
  }

  private applyAuxLosses(
    probsIn: tf.Tensor2D,
    scores: tf.Tensor2D,
    auxMap: tf.Tensor2D,
    numTokens: number,
    options: RouterForwardOptions,
    losses: RouterLosses,
    record: boolean,
  ): tf.Tensor2D {
    const c = this.config;
    let probs = probsIn;
    const { tpCpSize, tpDpCpSize } = this.coll;
    const log = { losses, record, numTokens };
    const aux = auxLossCoeffFor(c, 'aux_loss');
    if (aux > 0) {
      const local = tf.tidy(() => tf.sum(tf.cast(auxMap, 'float32'), 0).dataSync() as Float32Array);
      const global = this.coll.allReduceTpCp(local);
      const loss = switchLoadBalancingLoss(scores, global, numTokens * tpCpSize, c.topk, c.numExperts, aux);
      probs = this.attachAndLog(probs, aux, loss, 'load_balancing_loss', 'aux_loss', log);
    }
    const seq = auxLossCoeffFor(c, 'seq_aux_loss');
    if (seq > 0) {
      const bsz = options.bsz ?? (options.seqLength ? numTokens / options.seqLength : 1);
      const seqLength = options.seqLength ?? numTokens / bsz;
      if (!Number.isInteger(bsz) || !Number.isInteger(seqLength) || bsz * seqLength !== numTokens) {
        throw new Error(`TopKRouter: seqLength (${seqLength}) × bsz (${bsz}) must equal the ${numTokens} tokens for seq_aux_loss`);
      }
      const loss = sequenceAuxLoss(scores, auxMap, seqLength, bsz, c.topk, c.numExperts, seq, {
        order: options.order,
        reduceGroupSize: tpCpSize,
        allReduce: this.coll.allReduceTpCp,
      });
      probs = this.attachAndLog(probs, seq, loss, 'seq_load_balancing_loss', 'seq_aux_loss', log);
    }
    const glob = auxLossCoeffFor(c, 'global_aux_loss');
    if (glob > 0 && this.globalAuxTracker) {
      // The tracker averages counts over the micro-batches of the global batch: a recomputed
      // forward must not count its micro-batch again, so it reuses the recorded call's counts.
      if (record || !this.lastGlobalCounts) {
        const local = tf.tidy(() => tf.sum(tf.cast(auxMap, 'float32'), 0).dataSync() as Float32Array);
        this.lastGlobalCounts = this.globalAuxTracker.accumulate(Float32Array.from(this.coll.allReduceTpDpCp(local)));
      }
      const loss = switchLoadBalancingLoss(scores, this.lastGlobalCounts, numTokens * tpDpCpSize, c.topk, c.numExperts, glob);
      probs = this.attachAndLog(probs, glob, loss, 'global_load_balancing_loss', 'global_aux_loss', log);
    }
    return probs;
  }

  private attachAndLog(
    probs: tf.Tensor2D,
    coeff: number,
    loss: tf.Scalar,
    name: string,
    key: keyof RouterLosses,
    log: { losses: RouterLosses; record: boolean; numTokens: number },
  ): tf.Tensor2D {
    const value = loss.dataSync()[0]!;
    log.losses[key] = value;
    if (log.record) this.tracker.record(name, value / coeff, this.layerNumber, this.config.numLayers);
    // Per-token main loss is divided by the global token count later: pre-multiply to cancel.
    const attached = this.config.calculatePerTokenLoss ? tf.mul(loss, log.numTokens * this.coll.tpCpSize) : loss;
    return attachAuxLoss(probs, attached);
  }

  /** End of a global batch: apply the aux-loss-free bias update (no-op without expert bias). */
  updateExpertBias(): Float32Array | null {
    return this.expertBias ? this.expertBias.update((counts) => this.coll.allReduceTpDpCp(Float32Array.from(counts))) : null;
  }

  /** End of a global batch: restart the global aux loss's counts. */
  resetGlobalAuxLossTracker(): void {
    this.globalAuxTracker?.reset();
  }

  /** Trainable variables of the router. */
  trainableVariables(): tf.Variable[] {
    return [this.weight];
  }

  /** Disposes the weight unless it was given as `weightVariable` (then its owner does). */
  dispose(): void {
    if (this.ownsWeight) this.weight.dispose();
  }
}
