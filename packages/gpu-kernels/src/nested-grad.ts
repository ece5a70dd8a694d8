/**
 * Tape control for kernels' gradients. (Vector-Jacobian products computed inside a backward
 * pass come from @kiln/tensor's `vjp`.)
 */
import { tf } from '@kiln/tensor';

/**
 * Runs `fn` without recording onto the gradient tape: for discrete choices (top-k
 * selection) that feed differentiable code as constants, like torch's `no_grad`.
 */
export function untaped<T>(fn: () => T): T {
  const state = (tf.engine() as unknown as { state: { gradientDepth: number } }).state;
  const depth = state.gradientDepth;
  state.gradientDepth = 0;
  try {
    return fn();
  } finally {
    state.gradientDepth = depth;
  }
}
