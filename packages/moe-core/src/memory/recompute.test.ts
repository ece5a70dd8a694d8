import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { recompute, vjp } from './recompute.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const mlp = (x: tf.Tensor, w1: tf.Tensor, w2: tf.Tensor) => tf.matMul(tf.tanh(tf.matMul(x, w1)), w2);

describe('recompute', () => {
  it('gives gradients identical to the plain module, nested inside an outer graph', () => {
    const rng = createRng(3);
    const x = rng.normal([6, 4]);
    const w1 = rng.normal([4, 5]);
    const w2 = rng.normal([5, 3]);
    const loss = (m: typeof mlp) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.square(tf.sin(m(tf.mul(a, 2), b, c))));
    const plain = tf.grads(loss(mlp))([x, w1, w2]);
    const rec = tf.grads(loss(recompute(mlp)))([x, w1, w2]);
    plain.forEach((g, i) => {
      expect(Array.from(rec[i]!.dataSync())).toEqual(Array.from(g.dataSync()));
    });
  });

  it('vjp matches tf.grads on a weighted sum', () => {
    const rng = createRng(4);
    const x = rng.normal([3, 4]);
    const w = rng.normal([4, 2]);
    const dy = rng.normal([3, 2]);
    const [gx, gw] = vjp(([a, b]) => [tf.matMul(a!, b!)], [x, w], [dy]);
    const [rx, rw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a, b), dy)))([x, w]);
    expect(gx!.arraySync()).toEqual(rx!.arraySync());
    expect(gw!.arraySync()).toEqual(rw!.arraySync());
  });
});
