/**
 * Vector-Jacobian products that may be computed from inside a backward pass (a custom
 * gradient that differentiates a reference composition). tfjs keeps a single active tape:
 * a gradient computation started while an outer pass back-propagates replaces it and, when
 * done, clears it, which breaks the outer pass. Keeping the outer tape aside makes the
 * nesting safe.
 */
import { tf } from './tf.js';

type Tensor = tf.Tensor;

interface EngineLike {
  state: { activeTape: unknown };
  gradients(f: () => Tensor, xs: Tensor[], dy: undefined, allowNoGradients: boolean): { value: Tensor; grads: (Tensor | undefined)[] };
}

/** d/dxs Σ_i ⟨f(xs)_i, dys_i⟩; zeros for inputs `f` does not depend on. */
export function vjp(f: (...xs: Tensor[]) => Tensor[], xs: Tensor[], dys: Tensor[]): Tensor[] {
  const engine = tf.engine() as unknown as EngineLike;
  const outerTape = engine.state.activeTape;
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
    engine.state.activeTape = outerTape;
  }
}
