import { readFileSync } from 'node:fs';
import { tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { computeRoutingScoresForAuxLoss, groupLimitedTopk, topkRouting } from './routing.js';
import { topkIndices } from '@kiln/gpu-kernels';

// Megatron-Core reference values computed with PyTorch by scripts/megatron-reference.py.
interface RouteCase {
  kind: 'route';
  config: { topk: number; fn: 'softmax' | 'sigmoid' | 'sqrtsoftplus'; pre?: boolean; num_groups?: number; group_topk?: number; scaling?: number };
  logits: number[][];
  bias: number[] | null;
  probs: number[][];
  routingMap: number[][];
  topIndices: number[][];
  weights: number[][];
  grad: number[][];
  auxScores: number[][];
  auxMap: number[][];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/megatron-reference.json', import.meta.url), 'utf8')) as {
  cases: Array<{ kind: string }>;
};
const routeCases = fixture.cases.filter((c): c is RouteCase => c.kind === 'route');

function close(a: number[][], b: number[][], tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  a.forEach((row, i) => {
    row.forEach((v, j) => {
      expect(Math.abs(v - b[i]![j]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(b[i]![j]!)));
    });
  });
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface TopkCase {
  kind: 'topk';
  values: Array<number | null>;
  k: number;
  sorted: number[];
  unsorted: number[];
}
const topkCases = fixture.cases.filter((c): c is TopkCase => c.kind === 'topk');

describe('topkIndices reproduces torch.topk (CPU) including ties and NaN', () => {
  it(`matches ${topkCases.length} torch results, sorted and unsorted`, () => {
    expect(topkCases.length).toBeGreaterThan(100);
    for (const c of topkCases) {
      const v = c.values.map((x) => (x === null ? Number.NaN : x));
      expect(topkIndices(v, v.length, c.k)).toEqual(c.sorted);
      expect(topkIndices(v, v.length, c.k, 0, 1, false)).toEqual(c.unsorted);
    }
  });

  it("'lowest-index' tie order puts equal values in index order", () => {
    expect(topkIndices([1, 1, 1, 1], 4, 2, 0, 1, true, 'lowest-index')).toEqual([0, 1]);
    expect(topkIndices([0, Number.NaN, 5, Number.NaN], 4, 3, 0, 1, true, 'lowest-index')).toEqual([1, 3, 2]);
    expect(topkIndices([1, 1, 1, 1], 4, 2)).toEqual([2, 3]);
  });

  it('reads strided columns', () => {
    expect(topkIndices([1, 9, 0, 5, 2, 0], 2, 1, 1, 3)).toEqual([0]);
    expect(() => topkIndices([1, 2], 2, 3)).toThrow(/k \(3\)/);
  });
});

describe('topkRouting against Megatron-Core (PyTorch reference)', () => {
  for (const [n, c] of routeCases.entries()) {
    const cfg = c.config;
    const name = `case ${n}: ${cfg.fn}${cfg.pre ? ' pre-softmax' : ''} k=${cfg.topk}${cfg.group_topk ? ` groups ${cfg.num_groups}/${cfg.group_topk}` : ''}${cfg.scaling ? ` ×${cfg.scaling}` : ''}${c.bias ? ' +bias' : ''}`;
    it(name, () => {
      const logits = tf.tensor2d(c.logits);
      const opts = {
        topk: cfg.topk,
        scoreFunction: cfg.fn,
        preSoftmax: cfg.pre ?? false,
        numGroups: cfg.num_groups ?? null,
        groupTopk: cfg.group_topk ?? null,
        scalingFactor: cfg.scaling ?? null,
        expertBias: c.bias,
      };
      const { probs, routingMap, topIndices } = topkRouting(logits, opts);
      expect(routingMap.dtype).toBe('bool');
      expect(tf.cast(routingMap, 'int32').arraySync()).toEqual(c.routingMap);
      expect(topIndices.arraySync()).toEqual(c.topIndices);
      close(probs.arraySync(), c.probs);
      const w = tf.tensor2d(c.weights);
      const g = tf.grad((l: tf.Tensor) => tf.sum(tf.mul(topkRouting(l as tf.Tensor2D, opts).probs, w)))(logits);
      close(g.arraySync() as number[][], c.grad, 1e-4);
      const aux = computeRoutingScoresForAuxLoss(logits, cfg.topk, cfg.fn);
      close(aux.scores.arraySync(), c.auxScores);
      expect(tf.cast(aux.routingMap, 'int32').arraySync()).toEqual(c.auxMap);
    });
  }
});

describe('topkRouting semantics', () => {
  it('sigmoid with expert bias chooses on s + bias but gates with s', () => {
    const logits = tf.tensor2d([[0, 1, 2, 3]]);
    const { probs, routingMap } = topkRouting(logits, { topk: 2, scoreFunction: 'sigmoid', expertBias: [10, 10, 0, 0] });
    expect(tf.cast(routingMap, 'int32').arraySync()).toEqual([[1, 1, 0, 0]]);
    const s0 = 1 / (1 + Math.exp(0));
    const s1 = 1 / (1 + Math.exp(-1));
    const p = probs.arraySync()[0]!;
    expect(p[0]).toBeCloseTo(s0 / (s0 + s1), 6);
    expect(p[1]).toBeCloseTo(s1 / (s0 + s1), 6);
  });

  it('group-limited routing keeps the groups with the best top-(k/g) sums', () => {
    // groups of 2: [5,0] sum of top-1 = 5, [4,3.9] = 4, [3,3.5] = 3.5, [0,0] = 0; keep 2 groups.
    const logits = tf.tensor2d([[5, 0, 4, 3.9, 3, 3.5, 0, 0]]);
    const { routingMap } = topkRouting(logits, { topk: 2, scoreFunction: 'softmax', numGroups: 4, groupTopk: 2 });
    expect(tf.cast(routingMap, 'int32').arraySync()).toEqual([[1, 0, 1, 0, 0, 0, 0, 0]]);
    // with top-2 per group: sums 5, 7.9, 6.5, 0 keep groups 1 and 2.
    const r4 = topkRouting(logits, { topk: 4, scoreFunction: 'softmax', numGroups: 4, groupTopk: 2 });
    expect(tf.cast(r4.routingMap, 'int32').arraySync()).toEqual([[0, 0, 1, 1, 1, 1, 0, 0]]);
  });

  it('sigmoid normalisation adds 1e-20 and k = 1 returns the raw score', () => {
    const logits = tf.tensor2d([[-200, -200, -200]]);
    const { probs } = topkRouting(logits, { topk: 2, scoreFunction: 'sigmoid' });
    expect(probs.arraySync()[0]!.every((v) => Number.isFinite(v))).toBe(true);
    const one = topkRouting(tf.tensor2d([[0.5, 2]]), { topk: 1, scoreFunction: 'sigmoid' });
    expect(one.probs.arraySync()[0]![1]).toBeCloseTo(1 / (1 + Math.exp(-2)), 6);
  });

  it('computes in fp32 from other dtypes and rejects bad input naming the argument', () => {
    const r = topkRouting(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'), { topk: 2 });
    expect(r.probs.dtype).toBe('float32');
    expect(() => topkRouting(tf.tensor1d([1, 2]) as never, { topk: 1 })).toThrow(/logits/);
    expect(() => topkRouting(tf.tensor2d([[1, 2]]), { topk: 3 })).toThrow(/topk/);
    // softmax ignores an expert bias, as Megatron's function does
    const withBias = topkRouting(tf.tensor2d([[1, 2]]), { topk: 1, preSoftmax: true, expertBias: [5, 0] });
    expect(tf.cast(withBias.routingMap, 'int32').arraySync()).toEqual([[0, 1]]);
    expect(() => topkRouting(tf.tensor2d([[1, 2, 3]]), { topk: 1, numGroups: 2, groupTopk: 1 })).toThrow(/numGroups/);
    expect(() => topkRouting(tf.tensor2d([[1, 2]]), { topk: 1, expertBias: [0], scoreFunction: 'sigmoid' })).toThrow(/expertBias has 1/);
  });
});

describe('groupLimitedTopk', () => {
  it('returns the masked top-k values and indices', () => {
    const { values, indices } = groupLimitedTopk(tf.tensor2d([[5, 0, 4, 3.9, 3, 3.5, 0, 0]]), 2, 4, 2);
    expect(indices.arraySync()).toEqual([[0, 2]]);
    expect(values.arraySync()).toEqual([[5, 4]]);
  });
});
