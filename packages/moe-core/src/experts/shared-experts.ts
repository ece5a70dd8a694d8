import { tf } from '@kiln/tensor';
import type { ExpertActivation } from '../config.js';
import { applyActivation } from './activation.js';

/** Weights of the shared experts (Megatron's SharedExpertMLP): one dense MLP of width S. */
export interface SharedExpertWeights {
  /** [H, S₁], S₁ = 2S for SwiGLU. */
  fc1: tf.Tensor2D;
  /** [S, H]. */
  fc2: tf.Tensor2D;
  /** [H, 1] gate (`moe_shared_expert_gate`), or null. */
  gate: tf.Tensor2D | null;
}

/**
 * Shared experts: every token goes through one dense MLP, replicated on every EP rank, whose
 * output is added to the routed experts' output; with a gate it is scaled by
 * sigmoid(x · gate) per token first.
 */
export function sharedExpertsForward(x: tf.Tensor2D, w: SharedExpertWeights, activation: ExpertActivation): tf.Tensor2D {
  return tf.tidy(() => {
    const y = tf.matMul(applyActivation(activation, tf.matMul(x, w.fc1)), w.fc2);
    return (w.gate ? tf.mul(y, tf.sigmoid(tf.matMul(x, w.gate))) : y) as tf.Tensor2D;
  });
}
