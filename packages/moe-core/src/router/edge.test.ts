import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyTokenDropping } from '../capacity/capacity.js';
import { topkRouting } from './routing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('edge cases', () => {
  it('zero tokens route to empty maps and drop to nothing', () => {
    const logits = tf.zeros([0, 4]) as tf.Tensor2D;
    for (const scoreFunction of ['softmax', 'sigmoid'] as const) {
      const r = topkRouting(logits, { topk: 2, scoreFunction });
      expect(r.probs.shape).toEqual([0, 4]);
      expect(r.routingMap.shape).toEqual([0, 4]);
      const d = applyTokenDropping(r.probs, r.routingMap, { topk: 2, capacityFactor: 1 });
      expect(d.capacity).toBe(0);
      expect(d.routingMap.shape).toEqual([0, 4]);
    }
  });

  it('topk equal to the number of experts routes every token everywhere', () => {
    const r = topkRouting(tf.tensor2d([[0.3, -1, 2]]), { topk: 3 });
    expect(tf.cast(r.routingMap, 'int32').arraySync()).toEqual([[1, 1, 1]]);
    expect(tf.sum(r.probs).dataSync()[0]).toBeCloseTo(1, 6);
  });

  it('NaN logits rank first, as torch.topk does', () => {
    const r = topkRouting(tf.tensor2d([[0.3, Number.NaN, 2, 1]]), { topk: 2, scoreFunction: 'sigmoid' });
    expect(r.topIndices.arraySync()).toEqual([[1, 2]]);
  });
});
