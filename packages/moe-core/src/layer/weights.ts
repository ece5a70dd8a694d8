import { type Rng, tf } from '@kiln/tensor';
import type { MoEConfig } from '../config.js';
import { fc1Width } from '../experts/activation.js';

/** Every trainable tensor of one MoE layer (names as in a checkpoint). */
export interface MoEWeights {
  /** Router weight [E, H] (Megatron's `router.weight`): logits = x · Wᵀ. */
  router: tf.Variable;
  /** Local experts' fc1 [L, H, F₁] (F₁ = 2F for SwiGLU). */
  fc1: tf.Variable;
  /** Local experts' fc2 [L, F, H]. */
  fc2: tf.Variable;
  sharedFc1: tf.Variable | null;
  sharedFc2: tf.Variable | null;
  sharedGate: tf.Variable | null;
}

export interface InitOptions {
  /** Std of the normal initialisation (`init_method_std`); output layers use std/√(2·layers). Default 0.02. */
  std?: number;
  /** Only experts [first, first + count) are materialised (an expert-parallel rank's share). */
  firstExpert?: number;
  numLocalExperts?: number;
  /**
   * Expert tensor parallelism: keep only slice `etpRank` of `etpSize` of every expert's FFN —
   * fc1's columns (the matching gate and up columns for SwiGLU) and fc2's rows.
   */
  etpRank?: number;
  etpSize?: number;
}

/**
 * Initialises a layer's weights from `rng`. All experts' values are always drawn in the same
 * order, so a rank that keeps experts [a, b) holds exactly the values a single process would.
 */
export function initMoEWeights(config: MoEConfig, rng: Rng, options: InitOptions = {}): MoEWeights {
  const std = options.std ?? 0.02;
  const outStd = std / Math.sqrt(2 * config.numLayers);
  const E = config.numExperts;
  const H = config.hiddenSize;
  const F = config.ffnHiddenSize;
  const F1 = fc1Width(config.activation, F);
  const first = options.firstExpert ?? 0;
  const L = options.numLocalExperts ?? E - first;
  const router = tf.variable(rng.normal([E, H], 0, std));
  const fc1All = rng.normal([E, H, F1], 0, std);
  const fc2All = rng.normal([E, F, H], 0, outStd);
  const etpSize = options.etpSize ?? 1;
  const etpRank = options.etpRank ?? 0;
  const Fs = F / etpSize;
  if (!Number.isInteger(Fs) || !Number.isInteger(etpRank) || etpRank < 0 || etpRank >= etpSize) {
    throw new Error(`initMoEWeights: etpRank ${etpRank} / etpSize ${etpSize} must split ffnHiddenSize ${F} evenly`);
  }
  const fc1 = tf.variable(
    tf.tidy(() => {
      const mine = tf.slice(fc1All, [first, 0, 0], [L, H, F1]);
      if (etpSize === 1) return mine;
      const cols = (start: number) => tf.slice(mine, [0, 0, start + etpRank * Fs], [L, H, Fs]);
      return config.activation === 'swiglu' ? tf.concat([cols(0), cols(F)], 2) : cols(0);
    }),
  );
  const fc2 = tf.variable(tf.slice(fc2All, [first, etpRank * Fs, 0], [L, Fs, H]));
  fc1All.dispose();
  fc2All.dispose();
  let sharedFc1: tf.Variable | null = null;
  let sharedFc2: tf.Variable | null = null;
  let sharedGate: tf.Variable | null = null;
  if (config.sharedExpertSize) {
    const S = config.sharedExpertSize;
    sharedFc1 = tf.variable(rng.normal([H, fc1Width(config.activation, S)], 0, std));
    sharedFc2 = tf.variable(rng.normal([S, H], 0, outStd));
    if (config.sharedExpertGate) sharedGate = tf.variable(rng.normal([H, 1], 0, std));
  }
  return { router, fc1, fc2, sharedFc1, sharedFc2, sharedGate };
}

/** The trainable weights (non-null only), for optimizers. */
export function weightList(w: MoEWeights): tf.Variable[] {
  return [w.router, w.fc1, w.fc2, w.sharedFc1, w.sharedFc2, w.sharedGate].filter((v): v is tf.Variable => v !== null);
}

/** Checkpoint names (Megatron-like) → weights, under `prefix` (e.g. `layers.0.mlp.`). */
export function namedWeights(w: MoEWeights, prefix = ''): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {
    [`${prefix}router.weight`]: w.router,
    [`${prefix}experts.fc1`]: w.fc1,
    [`${prefix}experts.fc2`]: w.fc2,
  };
  if (w.sharedFc1) out[`${prefix}shared_experts.fc1`] = w.sharedFc1;
  if (w.sharedFc2) out[`${prefix}shared_experts.fc2`] = w.sharedFc2;
  if (w.sharedGate) out[`${prefix}shared_experts.gate`] = w.sharedGate;
  return out;
}
