/**
 * Rounding to a small float format in tf ops (the reference compositions), and the
 * straight-through estimator the casts' gradients use.
 */
import { tf } from '@kiln/tensor';
import { hashUniform, type MiniFloatFormat } from './minifloat.js';

type Tensor = tf.Tensor;

/** Element-wise rounding of `v` to `f` (nearest-even, or ⌊q + noise⌋ with noise), saturating. */
export function roundToFormatRef(v: Tensor, f: MiniFloatFormat, noise?: Tensor): Tensor {
  const a = tf.abs(v);
  const safe = tf.maximum(a, 1e-30);
  let e = tf.floor(tf.div(tf.log(safe), Math.LN2));
  // log is inexact next to powers of two: correct ⌊log₂⌋ by one either way.
  e = tf.where(tf.greater(tf.pow(2, e), safe), tf.sub(e, 1), e);
  e = tf.where(tf.lessEqual(tf.pow(2, tf.add(e, 1)), safe), tf.add(e, 1), e);
  e = tf.maximum(e, f.minExponent);
  const step = tf.pow(2, tf.sub(e, f.mantissaBits));
  const q = tf.div(a, step);
  const r = noise ? tf.floor(tf.add(q, noise)) : tf.round(q); // tf.round is ties-to-even
  let mag = tf.minimum(tf.mul(r, step), f.max);
  mag = tf.where(tf.greaterEqual(a, f.max), tf.fill(a.shape, f.max), mag);
  // Negative, or −0 (1/−0 = −∞): the sign survives rounding, as in IEEE casts.
  const negative = tf.logicalOr(tf.less(v, 0), tf.less(tf.div(1, v), 0));
  const signed = tf.where(negative, tf.neg(mag), mag);
  return tf.where(tf.isNaN(v), tf.fill(v.shape, Number.NaN), signed);
}

/**
 * Value `q` (computed off the tape: rounding has no useful derivative), gradient passed
 * straight through to `x` (same shape).
 */
export function straightThrough(x: Tensor, q: Tensor): Tensor {
  const f = tf.customGrad(((_xx: Tensor) => ({
    value: tf.clone(q),
    gradFunc: (dy: Tensor | Tensor[]) => [dy as Tensor],
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as Tensor;
}

/** The stochastic-rounding noise every backend uses, as a tensor of x's shape. */
export function noiseTensor(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const u = new Float32Array(n);
  for (let i = 0; i < n; i++) u[i] = hashUniform(seed, i);
  return tf.tensor(u, shape);
}
