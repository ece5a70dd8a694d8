import { createRng, tf } from '@kiln/tensor';

/** Glorot-uniform weights from a seeded generator, so every judge can share one init. */
export function glorot(seed: number, shape: [number, number] | [number, number, number]): tf.Variable {
  const fanIn = shape.length === 3 ? shape[0] * shape[1] : shape[0];
  const fanOut = shape.length === 3 ? shape[0] * shape[2] : shape[1];
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.variable(createRng(seed).uniform(shape, -limit, limit));
}

export function zeros(shape: number[]): tf.Variable {
  return tf.variable(tf.zeros(shape));
}

export function normalInit(seed: number, shape: [number, number], std: number): tf.Variable {
  return tf.variable(createRng(seed).normal(shape, 0, std));
}
