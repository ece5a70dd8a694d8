/**
 * The route stage of the MoE layer: Megatron's `TopKRouter` — gating linear in fp32, input
 * jitter, z-loss, top-k or Sinkhorn routing, capacity dropping, the aux losses attached to the
 * probabilities through `attachAuxLoss`, per-layer logging, and the expert-bias counts.
 */
import { type Rng, createRng, tf } from '@kiln/tensor';
import { applyTokenDropping } from '../capacity/capacity.js';
import { type MoEConfig, auxLossCoeffFor, isAuxLossEnabled, usesSinkhorn } from '../config.js';
import { attachAuxLoss } from '../losses/auto-scaler.js';
import { GlobalAuxLossTracker, type TokenOrder, globalAuxLoss, sequenceAuxLoss, switchLoadBalancingLoss } from '../losses/load-balancing.js';
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
  /** Initial gate weight [experts, hidden]; default normal(0, 0.02) from `rng`/`seed`. */
  weight?: tf.Tensor2D;
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
}

export interface RouterOutput {
  probs: tf.Tensor2D;
  routingMap: tf.Tensor2D;
  logits: tf.Tensor2D;
}

export class TopKRouter {
  readonly config: MoEConfig;
  readonly layerNumber: number;
  readonly weight: tf.Variable<tf.Rank.R2>;
  readonly expertBias: ExpertBiasState | null;
  readonly globalAuxTracker: GlobalAuxLossTracker | null;
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
    const init = options.weight ? toFloat32(options.weight) : this.rng.normal(shape, 0, 0.02);
    this.weight = tf.variable(init as tf.Tensor2D, true);
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

  /** logits = input · Wᵀ in fp32: [tokens, hidden] → [tokens, experts]. */
  gating(input: tf.Tensor2D): tf.Tensor2D {
    if (input.rank !== 2 || input.shape[1] !== this.config.hiddenSize) {
      throw new Error(`TopKRouter: input must be [tokens, ${this.config.hiddenSize}], got [${input.shape}]`);
    }
    return tf.matMul(toFloat32(input) as tf.Tensor2D, this.weight, false, true);
  }

  /** The full forward: jitter → gating → routing. */
  forward(input: tf.Tensor2D, options: RouterForwardOptions = {}): RouterOutput {
    const training = options.training ?? true;
    const jittered = training ? (applyInputJitter(input, this.config.inputJitterEps, this.rng) as tf.Tensor2D) : input;
    const logits = this.gating(jittered);
    const { probs, routingMap } = this.routing(logits, options);
    return { probs, routingMap, logits };
  }

  /** Megatron's `TopKRouter.routing` on given logits. */
  routing(logitsIn: tf.Tensor2D, options: RouterForwardOptions = {}): { probs: tf.Tensor2D; routingMap: tf.Tensor2D } {
    const c = this.config;
    const training = options.training ?? true;
    const numTokens = logitsIn.shape[0];
    let logits = logitsIn;
    if (training && c.zLossCoeff !== null && c.zLossCoeff > 0) logits = this.applyZLoss(logits);

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
    if (c.capacityFactor !== null) {
      ({ probs, routingMap } = applyTokenDropping(probs, routingMap, {
        topk: c.topk,
        capacityFactor: c.capacityFactor,
        dropPolicy: c.dropPolicy,
        padToCapacity: c.padToCapacity,
      }));
    }
    if (training && isAuxLossEnabled(c)) {
      const { scores, routingMap: auxMap } = computeRoutingScoresForAuxLoss(logits, c.topk, c.routerScoreFunction);
      probs = this.applyAuxLosses(probs, scores, auxMap, numTokens, options);
    }
    if (training && this.expertBias) this.expertBias.accumulate(routingMap);
    return { probs, routingMap };
  }

  private applyZLoss(logits: tf.Tensor2D): tf.Tensor2D {
    const coeff = this.config.zLossCoeff! / this.coll.tpCpSize;
    const z = zLoss(logits, coeff);
    const attached = this.config.calculatePerTokenLoss
      ? attachAuxLoss(logits, tf.mul(z, logits.shape[0] * this.coll.tpCpSize))
      : attachAuxLoss(logits, z);
    this.tracker.record('z_loss', z.dataSync()[0]! / coeff, this.layerNumber, this.config.numLayers);
    return attached;
  }

  private applyAuxLosses(
    probsIn: tf.Tensor2D,
    scores: tf.Tensor2D,
    auxMap: tf.Tensor2D,
    numTokens: number,
    options: RouterForwardOptions,
  ): tf.Tensor2D {
    const c = this.config;
    let probs = probsIn;
    const { tpCpSize, tpDpCpSize } = this.coll;
    const aux = auxLossCoeffFor(c, 'aux_loss');
    if (aux > 0) {
      const local = tf.tidy(() => tf.sum(tf.cast(auxMap, 'float32'), 0).dataSync() as Float32Array);
      const global = this.coll.allReduceTpCp(local);
      const loss = switchLoadBalancingLoss(scores, global, numTokens * tpCpSize, c.topk, c.numExperts, aux);
      probs = this.attachAndLog(probs, aux, loss, 'load_balancing_loss', numTokens);
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
      probs = this.attachAndLog(probs, seq, loss, 'seq_load_balancing_loss', numTokens);
    }
    const glob = auxLossCoeffFor(c, 'global_aux_loss');
    if (glob > 0 && this.globalAuxTracker) {
      const loss = globalAuxLoss(scores, auxMap, this.globalAuxTracker, c.topk, c.numExperts, glob, {
        reduceGroupSize: tpDpCpSize,
        allReduce: this.coll.allReduceTpDpCp,
      });
      probs = this.attachAndLog(probs, glob, loss, 'global_load_balancing_loss', numTokens);
    }
    return probs;
  }

  private attachAndLog(probs: tf.Tensor2D, coeff: number, loss: tf.Scalar, name: string, numLocalTokens: number): tf.Tensor2D {
    this.tracker.record(name, loss.dataSync()[0]! / coeff, this.layerNumber, this.config.numLayers);
    // Per-token main loss is divided by the global token count later: pre-multiply to cancel.
    const attached = this.config.calculatePerTokenLoss ? tf.mul(loss, numLocalTokens * this.coll.tpCpSize) : loss;
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

  dispose(): void {
    this.weight.dispose();
  }
}
