/**
 * Vector-Jacobian products computed from inside a backward pass. tfjs keeps a single
 * active tape; a gradient computation started while the outer pass back-propagates would
 * replace and then clear it. Keeping the outer tape aside makes the nesting safe (the same
 * technique as @kiln/tensor's defineOp uses for its default gradient).
 */
import { tf } from '@kiln/tensor';

type Tensor = tf.Tensor;

interface EngineLike {
  state: { activeTape: unknown };
  gradients(f: () => Tensor, xs: Tensor[], dy: undefined, allowNoGradients: boolean): { value: Tensor; grads: (Tensor | undefined)[] };
}

/** d/dxs Σ_i ⟨f(xs)_i, dys_i⟩; zeros for inputs f does not depend on. */
export function vjp(f: (...xs: Tensor[]) => Tensor[], xs: Tensor[], dys: Tensor[]): Tensor[] {
  const engine = tf.engine() as unknown as EngineLike;
  const outer = engine.state.activeTape;
  try {
    const { grads } = engine.gradients(
      () => {
        const outs = f(...xs);
        return tf.addN(outs.map((o, i) => tf.sum(tf.mul(o, dys[i]!))));
      },
      xs,
      undefined,
      true,
    );
    return xs.map((x, i) => grads[i] ?? tf.zerosLike(x));
  } finally {
    engine.state.activeTape = outer;
  }
}

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
