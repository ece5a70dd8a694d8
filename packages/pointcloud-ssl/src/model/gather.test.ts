import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { broadcastToChildren, gatherRows, groupingOf, inverseIndex, segmentSum } from './gather.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const close = (a: tf.Tensor, b: tf.Tensor) => expect(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]).toBeLessThan(1e-5);

describe('gathers with cheap gradients', () => {
  const rng = createRng(2);
  const x = rng.normal([6, 3]);
  const w = rng.normal([8, 3]);

  it('gatherRows = tf.gather on a padded copy, forward and gradient', () => {
    const index = Int32Array.of(3, 6, 0, 5, 6, 1, 2, 4); // 6 = padding
    const inv = inverseIndex(index, 6);
    const padded = (t: tf.Tensor) => tf.gather(tf.concat([t, tf.zeros([1, 3])], 0), tf.tensor1d(index, 'int32'));
    close(gatherRows(x, index, inv), padded(x));
    const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, index, inv), w)))(x);
    const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(padded(t), w)))(x);
    close(g1, g2);
    expect(() => inverseIndex(Int32Array.of(1, 1), 3)).toThrow(/selected twice/);
  });

  it('segmentSum and broadcastToChildren match unsortedSegmentSum and gather', () => {
    const segment = Int32Array.of(2, 0, 2, 1, 0, 2);
    const g = groupingOf(segment, 3);
    close(segmentSum(x, g), tf.unsortedSegmentSum(x, tf.tensor1d(segment, 'int32'), 3));
    const parent = rng.normal([3, 3]);
    const w6 = rng.normal([6, 3]);
    close(broadcastToChildren(parent, g), tf.gather(parent, tf.tensor1d(segment, 'int32')));
    const ga = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(broadcastToChildren(t, g), w6)))(parent);
    const gb = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(segment, 'int32')), w6)))(parent);
    close(ga, gb);
    const w3 = rng.normal([3, 3]);
    const sa = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(segmentSum(t, g), w3)))(x);
    const sb = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.unsortedSegmentSum(t, tf.tensor1d(segment, 'int32'), 3), w3)))(x);
    close(sa, sb);
    expect(() => groupingOf(Int32Array.of(0, 2), 3)).toThrow(/segment 1 is empty/);
  });
});
