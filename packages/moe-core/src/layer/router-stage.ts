import type { Rng } from '@kiln/tensor';
import { tf } from '@kiln/tensor';
import { applyTokenDropping } from '../capacity/capacity.js';
import { type MoEConfig, auxLossCoeffFor, usesSinkhorn } from '../config.js';
import { attachAuxLoss } from '../losses/auto-scaler.js';
import { GlobalAuxLossTracker, sequenceAuxLoss, switchLoadBalancingLoss } from '../losses/load-balancing.js';
import { zLoss } from '../losses/z-loss.js';
import { ExpertBiasState } from '../router/expert-bias.js';
import { computeRoutingScoresForAuxLoss, topkRouting } from '../router/routing.js';
import { sinkhornRouting } from '../router/sinkhorn.js';

/** What the route stage hands to the rest of the layer. */
export interface RouteOutput {
  /** [T, E] routing probabilities (zero where not routed), carrying the attached aux losses. */
  probs: tf.Tensor2D;
  /** [T, E] 0/1 routing map after capacity dropping/padding, row-major on the host. */
  routingMap: Uint8Array;
  /** Capacity per expert when a capacity factor is set. */
  capacity: number | null;
}

/** Per-call values of the losses (already multiplied by their coefficients), for logging. */
export type RouterLosses = Partial<Record<'aux_loss' | 'seq_aux_loss' | 'global_aux_loss' | 'z_loss', number>>;

/** Side-channel options of one routing call. */
export interface RouteOptions {
  /** Jitter noise for the router input (pre-drawn so recomputation sees the same noise). */
  jitter?: tf.Tensor | null;
  /** Sequence length, for the sequence-level aux loss (tokens are [seq·batch] in 'sb' order). */
  seqLength?: number;
  /** Record statistics and update trackers (false while recomputing, so nothing counts twice). */
  record?: boolean;
}

/**
 * The router stage (Megatron's TopKRouter): logits = x · Wᵀ in fp32, z-loss, top-k or
 * Sinkhorn routing, capacity dropping, and the configured load-balancing losses attached to
 * the probs by gradient injection. Assembled from the router/, losses/ and capacity/ modules.
 */
export class RouterStage {
  readonly expertBias: ExpertBiasState | null;
  readonly globalTracker: GlobalAuxLossTracker | null;
  /** Losses and loads of the most recent recorded call. */
  lastLosses: RouterLosses = {};
  lastTokensPerExpert: Float32Array;
  private lastGlobalCounts: Float32Array | null = null;

  constructor(readonly config: MoEConfig) {
    this.expertBias = config.routerEnableExpertBias ? new ExpertBiasState(config.numExperts, config.routerBiasUpdateRate) : null;
    this.globalTracker = auxLossCoeffFor(config, 'global_aux_loss') > 0 ? new GlobalAuxLossTracker(config.numExperts) : null;
    this.lastTokensPerExpert = new Float32Array(config.numExperts);
  }

  /** Draws the multiplicative input jitter for `tokens` rows, or null when jitter is off. */
  drawJitter(shape: [number, number], rng: Rng | null): tf.Tensor | null {
    const eps = this.config.inputJitterEps;
    if (!eps || !rng) return null;
    return rng.uniform(shape, 1 - eps, 1 + eps);
  }

  route(hidden: tf.Tensor2D, weight: tf.Tensor2D, options: RouteOptions = {}): RouteOutput {
    const c = this.config;
    const record = options.record ?? true;
    const [T] = hidden.shape;
    const E = c.numExperts;
    const losses: RouterLosses = {};
    let capacity: number | null = null;
    const out = tf.tidy(() => {
      const input = options.jitter ? tf.mul(hidden, options.jitter) : hidden;
      let logits = tf.matMul(tf.cast(input, 'float32'), weight, false, true) as tf.Tensor2D;
      if (c.zLossCoeff) {
        const z = zLoss(logits, c.zLossCoeff);
        losses.z_loss = z.dataSync()[0]!;
        logits = attachAuxLoss(logits, z);
      }
      let probs: tf.Tensor2D;
      let map: tf.Tensor2D;
      if (usesSinkhorn(c)) {
        ({ probs, routingMap: map } = sinkhornRouting(logits, { topk: c.topk }));
      } else {
        ({ probs, routingMap: map } = topkRouting(logits, {
          topk: c.topk,
          scoreFunction: c.routerScoreFunction,
          preSoftmax: c.routerPreSoftmax,
          numGroups: c.routerNumGroups,
          groupTopk: c.routerGroupTopk,
          scalingFactor: c.routerTopkScalingFactor,
          expertBias: this.expertBias ? this.expertBias.bias : null,
        }));
        probs = this.attachLoadBalancing(logits, probs, T, losses, options, record);
      }
      const dropped = applyTokenDropping(probs, map, {
        topk: c.topk,
        capacityFactor: c.capacityFactor,
        dropPolicy: c.dropPolicy,
        padToCapacity: c.padToCapacity,
      });
      capacity = dropped.capacity;
      return { probs: dropped.probs, map: dropped.routingMap };
    });
    const routingMap = Uint8Array.from(out.map.dataSync() as ArrayLike<number>);
    out.map.dispose();
    if (record) {
      const counts = new Float32Array(E);
      for (let i = 0; i < routingMap.length; i++) if (routingMap[i]) counts[i % E]! += 1;
      this.lastTokensPerExpert = counts;
      this.lastLosses = losses;
      this.expertBias?.accumulate(counts);
    }
    return { probs: out.probs, routingMap, capacity };
  }

  private attachLoadBalancing(logits: tf.Tensor2D, probs: tf.Tensor2D, T: number, losses: RouterLosses, options: RouteOptions, record: boolean): tf.Tensor2D {
    const c = this.config;
    const E = c.numExperts;
    const aux = auxLossCoeffFor(c, 'aux_loss');
    const seq = auxLossCoeffFor(c, 'seq_aux_loss');
    const glob = auxLossCoeffFor(c, 'global_aux_loss');
    if (!(aux > 0 || seq > 0 || glob > 0)) return probs;
    const { scores, routingMap } = computeRoutingScoresForAuxLoss(logits, c.topk, c.routerScoreFunction);
    let p = probs;
    if (aux > 0) {
      const counts = tf.sum(tf.cast(routingMap, 'float32'), 0);
      const l = switchLoadBalancingLoss(scores, counts, T, c.topk, E, aux);
      losses.aux_loss = l.dataSync()[0]!;
      p = attachAuxLoss(p, l);
    }
    if (seq > 0) {
      const s = options.seqLength ?? T;
      if (T % s !== 0) throw new Error(`seq_aux_loss: ${T} tokens are not a whole number of sequences of length ${s}`);
      const l = sequenceAuxLoss(scores, routingMap, s, T / s, c.topk, E, seq);
      losses.seq_aux_loss = l.dataSync()[0]!;
      p = attachAuxLoss(p, l);
    }
    if (glob > 0 && this.globalTracker) {
      // the tracker accumulates counts once per micro-batch: a recomputation reuses the counts
      if (record || !this.lastGlobalCounts) {
        const local = tf.sum(tf.cast(routingMap, 'float32'), 0).dataSync() as Float32Array;
        this.lastGlobalCounts = this.globalTracker.accumulate(local);
      }
      const l = switchLoadBalancingLoss(scores, this.lastGlobalCounts, T, c.topk, E, glob);
      losses.global_aux_loss = l.dataSync()[0]!;
      p = attachAuxLoss(p, l);
    }
    return p;
  }
}

