/** Input jitter (Switch Transformer; Megatron's `apply_input_jitter`). */
import { type Rng, tf } from '@kiln/tensor';

/**
 * Multiply the router input by noise drawn uniformly from [1 − eps, 1 + eps]; the gradient
 * flows through the multiplication. eps null/0 returns the input unchanged.
 */
export function applyInputJitter(input: tf.Tensor, eps: number | null | undefined, rng: Rng): tf.Tensor {
  if (!eps) return input;
  if (!(eps > 0 && eps < 1)) throw new Error(`inputJitterEps must be in (0, 1), got ${eps}`);
  return tf.tidy(() => tf.mul(input, rng.uniform(input.shape, 1 - eps, 1 + eps)));
}

/**
 * The jitter noise itself, [tokens, hidden] uniform in [1 − eps, 1 + eps], or null when eps is
 * off or no rng is given: drawn once per forward so that a recomputation sees the same noise.
 */
export function drawInputJitter(shape: [number, number], eps: number | null | undefined, rng: Rng | null | undefined): tf.Tensor | null {
  if (!eps || !rng) return null;
  if (!(eps > 0 && eps < 1)) throw new Error(`inputJitterEps must be in (0, 1), got ${eps}`);
  return rng.uniform(shape, 1 - eps, 1 + eps);
}
