import { tf } from '@kiln/tensor';

/**
 * Runs `f` inside the engine's gradient machinery while the caller is itself inside a
 * gradient function. tfjs keeps one active tape: a nested `gradients()` would replace it and
 * then clear it, breaking the outer backward pass, so the outer tape is restored afterwards.
 */
export function nestedGradients(f: () => tf.Scalar, xs: tf.Tensor[]): tf.Tensor[] {
  const engine = tf.engine() as unknown as { state: { activeTape: unknown; gradientDepth: number }; gradients: typeof gradientsSig };
  const outerTape = engine.state.activeTape;
  const outerDepth = engine.state.gradientDepth;
  try {
    engine.state.gradientDepth = 0;
    const { value, grads } = engine.gradients(f, xs, undefined, true);
    value.dispose();
    return grads.map((g, i) => g ?? tf.zerosLike(xs[i]!));
  } finally {
    engine.state.activeTape = outerTape;
    engine.state.gradientDepth = outerDepth;
  }
}
declare function gradientsSig(f: () => tf.Tensor, xs: tf.Tensor[], dy?: tf.Tensor, allowNoGradients?: boolean): { value: tf.Tensor; grads: (tf.Tensor | undefined)[] };

/**
 * Vector–Jacobian product of `f` at `xs` for output cotangents `dys` (null = no gradient
 * flows into that output), by re-running `f` under a fresh tape: Σ_i ⟨f(xs)_i, dy_i⟩ is
 * differentiated with respect to every x.
 */
export function vjp(f: (xs: tf.Tensor[]) => tf.Tensor[], xs: tf.Tensor[], dys: (tf.Tensor | null)[]): tf.Tensor[] {
  return nestedGradients(() => {
    const ys = f(xs);
    let total: tf.Scalar = tf.scalar(0);
    ys.forEach((y, i) => {
      const dy = dys[i];
      if (dy) total = tf.add(total, tf.sum(tf.mul(y, dy)));
    });
    return total;
  }, xs);
}

/**
 * Selective recomputation: wraps `f` (a pure function of its tensor arguments — pass module
 * parameters as arguments too, so they receive gradients) so that the forward pass keeps
 * only the inputs, and the backward pass re-runs `f` to rebuild the activations it needs.
 * Gradients equal those of `f` itself; memory falls by the activations inside `f`, time
 * rises by one extra forward of `f`.
 */
export function recompute<T extends tf.Tensor>(f: (...xs: tf.Tensor[]) => T): (...xs: tf.Tensor[]) => T {
  const wrapped = tf.customGrad((...args: unknown[]) => {
    const save = args.pop() as (ts: tf.Tensor[]) => void;
    const xs = args as tf.Tensor[];
    const value = f(...xs);
    save(xs);
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => vjp((ins) => [f(...ins)], saved, [dy as tf.Tensor]),
    };
  });
  return (...xs: tf.Tensor[]) => (wrapped as unknown as (...a: tf.Tensor[]) => T)(...xs);
}
