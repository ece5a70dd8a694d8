import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { casesOf, expectClose } from '../fixtures/reference.js';
import { applyTokenDropping, expertCapacity, padCountsToMultiple, padRoutingMap } from './capacity.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const asInt = (t: tf.Tensor) => tf.cast(t, 'int32').arraySync();

describe('expertCapacity', () => {
  it('is ceil(tokens / experts · factor) with an optional minimum', () => {
    expect(expertCapacity(16, 8, 1)).toBe(2);
    expect(expertCapacity(20, 8, 1.25)).toBe(4); // 3.125 → 4
    expect(expertCapacity(10, 4, 0.5)).toBe(2); // 1.25 → 2
    expect(expertCapacity(8, 4, 1.0, 5)).toBe(5);
    expect(expertCapacity(0, 4, 1)).toBe(0);
    // float product as Python computes it: (7/3)·3 = 7.000000000000001 → 8
    expect(expertCapacity(7, 3, 3)).toBe(Math.ceil((7 / 3) * 3));
    expect(() => expertCapacity(8, 0, 1)).toThrow(/experts/);
    expect(() => expertCapacity(8, 2, 0)).toThrow(/factor/);
  });
});

describe('applyTokenDropping against Megatron-Core (PyTorch reference)', () => {
  for (const c of casesOf('drop')) {
    it(`policy ${c.policy}, pad ${c.pad}, factor ${c.factor}`, () => {
      const out = applyTokenDropping(tf.tensor2d(c.probs), tf.cast(tf.tensor2d(c.map), 'bool') as tf.Tensor2D, {
        topk: c.topk,
        capacityFactor: c.factor,
        dropPolicy: c.policy,
        padToCapacity: c.pad,
      });
      expect(out.capacity).toBe(c.capacity);
      expect(asInt(out.routingMap)).toEqual(c.outMap);
      expectClose(out.probs.arraySync(), c.outProbs);
    });
  }
});

describe('drop policies', () => {
  const probs = tf.tensor2d([
    [0.1, 0.9],
    [0.8, 0.2],
    [0.3, 0.7],
    [0.6, 0.4],
  ]);
  const map = tf.cast(tf.tensor2d([
    [1, 1],
    [1, 1],
    [1, 1],
    [1, 1],
  ]), 'bool') as tf.Tensor2D;

  it("'probs' keeps each expert's most probable tokens, 'position' the earliest", () => {
    // 4 tokens · top-2 / 2 experts · 0.5 = capacity 2
    const p = applyTokenDropping(probs, map, { topk: 2, capacityFactor: 0.5, dropPolicy: 'probs' });
    expect(asInt(p.routingMap)).toEqual([
      [0, 1],
      [1, 0],
      [0, 1],
      [1, 0],
    ]);
    const q = applyTokenDropping(probs, map, { topk: 2, capacityFactor: 0.5, dropPolicy: 'position', positionTieBreak: 'earliest' });
    expect(asInt(q.routingMap)).toEqual([
      [1, 1],
      [1, 1],
      [0, 0],
      [0, 0],
    ]);
    expectClose(q.probs.arraySync(), [
      [0.1, 0.9],
      [0.8, 0.2],
      [0, 0],
      [0, 0],
    ]);
  });

  it('dropless without a factor, and gradients flow only through kept entries', () => {
    const d = applyTokenDropping(probs, map, { topk: 2, capacityFactor: null });
    expect(d.probs).toBe(probs);
    const g = tf.grad((p: tf.Tensor) =>
      tf.sum(applyTokenDropping(p as tf.Tensor2D, map, { topk: 2, capacityFactor: 0.5, dropPolicy: 'position', positionTieBreak: 'earliest' }).probs),
    )(probs);
    expect(g.arraySync()).toEqual([
      [1, 1],
      [1, 1],
      [0, 0],
      [0, 0],
    ]);
  });

  it("'position' with torch tie order reproduces PyTorch's CPU top-k over the 0/1 column", () => {
    // all four tokens routed to both experts, capacity 2: torch.topk([1,1,1,1], 2) = [2, 3]
    const q = applyTokenDropping(probs, map, { topk: 2, capacityFactor: 0.5, dropPolicy: 'position' });
    expect(asInt(q.routingMap)).toEqual([
      [0, 0],
      [0, 0],
      [1, 1],
      [1, 1],
    ]);
  });

  it('pads every expert to exactly its capacity', () => {
    const sparse = tf.cast(tf.tensor2d([
      [1, 0],
      [0, 0],
      [0, 0],
      [1, 0],
    ]), 'bool') as tf.Tensor2D;
    const out = applyTokenDropping(probs, sparse, { topk: 1, capacityFactor: 1, padToCapacity: true });
    const m = asInt(out.routingMap) as number[][];
    expect(m.reduce((s, r) => s + r[0]!, 0)).toBe(2);
    expect(m.reduce((s, r) => s + r[1]!, 0)).toBe(2);
  });
});

describe('padRoutingMap against Megatron-Core', () => {
  for (const c of casesOf('pad')) {
    it(`multiple ${c.multiple}`, () => {
      const out = padRoutingMap(tf.cast(tf.tensor2d(c.map), 'bool') as tf.Tensor2D, c.multiple);
      expect(asInt(out)).toEqual(c.out);
    });
  }
  it('makes every column count a multiple when tokens allow', () => {
    const m = tf.cast(tf.tensor2d([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]), 'bool') as tf.Tensor2D;
    const cols = tf.sum(tf.cast(padRoutingMap(m, 4), 'int32'), 0).arraySync();
    expect(cols).toEqual([4, 4, 4]);
  });
});

describe('padCountsToMultiple', () => {
  it('rounds each count up', () => {
    expect(padCountsToMultiple([0, 1, 16, 17], 16)).toEqual({ padded: [0, 16, 16, 32], padding: [0, 15, 0, 15] });
    expect(() => padCountsToMultiple([1.5], 4)).toThrow(/counts\[0\]/);
  });
});
