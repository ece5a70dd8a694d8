import { createRng, initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { relErr } from '../test-utils.js';
import { type TopkRouterOptions, topkRouter, topkRouterOp } from './topk-router.js';
import { topkIndices } from './topk-select.js';

type Tensor = tf.Tensor;

const ROUTER_CASES: { name: string; E: number; opts: Omit<TopkRouterOptions, 'expertBias'>; bias?: boolean }[] = [
  { name: 'softmax top-2', E: 6, opts: { topk: 2 } },
  { name: 'softmax top-1', E: 5, opts: { topk: 1 } },
  { name: 'pre-softmax top-3 scaled', E: 7, opts: { topk: 3, usePreSoftmax: true, scalingFactor: 2.5 } },
  { name: 'sigmoid top-2 biased', E: 8, opts: { topk: 2, scoreFunction: 'sigmoid' }, bias: true },
  { name: 'sigmoid top-1', E: 4, opts: { topk: 1, scoreFunction: 'sigmoid' } },
  { name: 'sqrtsoftplus top-3 biased', E: 6, opts: { topk: 3, scoreFunction: 'sqrtsoftplus' }, bias: true },
  { name: 'group-limited softmax', E: 8, opts: { topk: 4, numGroups: 4, groupTopk: 2 } },
  { name: 'group-limited sigmoid biased scaled (DeepSeek-V3 style)', E: 16, opts: { topk: 4, scoreFunction: 'sigmoid', numGroups: 4, groupTopk: 2, scalingFactor: 2.5 }, bias: true },
  { name: 'group-limited pre-softmax, odd k', E: 12, opts: { topk: 3, usePreSoftmax: true, numGroups: 3, groupTopk: 2 } },
];

function routerGrad(logits: Tensor, opts: TopkRouterOptions, useRef: boolean, seed: number): Tensor {
  const w = createRng(seed).normal(logits.shape as number[]);
  return tf.grad((l: Tensor) => {
    if (useRef) {
      const inputs: Record<string, Tensor> = { logits: l };
      if (opts.expertBias) inputs.expertBias = opts.expertBias;
      const { expertBias: _b, ...attrs } = opts;
      return tf.sum(tf.mul(topkRouterOp.reference(inputs, attrs)[0]!, w));
    }
    return tf.sum(tf.mul(topkRouter(l, opts).probs, w));
  })(logits);
}

describe('topkRouter on cpu', () => {
  beforeAll(async () => {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
  });

  it.each(ROUTER_CASES.map((c) => [c.name, c] as const))('%s: kernel matches the reference forward and backward', async (_n, c) => {
    const rng = createRng(c.E * 7 + c.opts.topk);
    const T = 9;
    const logits = rng.normal([T, c.E], 0, 2);
    const opts: TopkRouterOptions = { ...c.opts };
    if (c.bias) opts.expertBias = rng.normal([c.E], 0, 0.3);
    expect(topkRouterOp.hasKernel()).toBe(true);
    const got = topkRouter(logits, opts);
    const { expertBias: _b, ...attrs } = opts;
    const inputs: Record<string, Tensor> = { logits };
    if (opts.expertBias) inputs.expertBias = opts.expertBias;
    const [refProbs, refIdx] = topkRouterOp.reference(inputs, attrs);
    expect(Array.from(got.topIndices.dataSync())).toEqual(Array.from(refIdx!.dataSync()));
    expect(await relErr(got.probs, refProbs!)).toBeLessThan(1e-6);
    // Each token routes to exactly k experts; the map and dense outputs agree with probs.
    const map = got.routingMap.arraySync() as unknown as boolean[][];
    for (const row of map) expect(row.filter(Boolean).length).toBe(c.opts.topk);
    const probs = got.probs.arraySync() as number[][];
    const idx = got.topIndices.arraySync() as number[][];
    const top = got.topProbs.arraySync() as number[][];
    idx.forEach((row, t) => {
      row.forEach((e, j) => {
        expect(top[t]![j]).toBe(probs[t]![e]);
      });
    });
    const g = routerGrad(logits, opts, false, 3);
    const r = routerGrad(logits, opts, true, 3);
    expect(await relErr(g, r)).toBeLessThan(1e-5);
  });

  it('follows Megatron-Core on a worked example (softmax after top-k; sigmoid with bias gates with unbiased scores)', () => {
    const logits = tf.tensor([[1, 3, 2, 0]]);
    const a = topkRouter(logits, { topk: 2 });
    const e3 = Math.exp(3);
    const e2 = Math.exp(2);
    const p = Array.from(a.probs.dataSync());
    expect(p[1]).toBeCloseTo(e3 / (e3 + e2), 6);
    expect(p[2]).toBeCloseTo(e2 / (e3 + e2), 6);
    expect(p[0]).toBe(0);
    const bias = tf.tensor([10, 0, 0, 0]);
    const b = topkRouter(logits, { topk: 2, scoreFunction: 'sigmoid', expertBias: bias });
    expect(Array.from(b.topIndices.dataSync())).toEqual([0, 1]);
    const s0 = 1 / (1 + Math.exp(-1));
    const s1 = 1 / (1 + Math.exp(-3));
    const q = Array.from(b.probs.dataSync());
    expect(q[0]).toBeCloseTo(s0 / (s0 + s1), 6);
    expect(q[1]).toBeCloseTo(s1 / (s0 + s1), 6);
    // top-1 sigmoid is not normalized.
    const c = topkRouter(logits, { topk: 1, scoreFunction: 'sigmoid' });
    expect(Array.from(c.probs.dataSync())[1]).toBeCloseTo(s1, 6);
  });

  it('group-limited routing keeps only experts of the best groups (scored by their top k/g experts)', () => {
    // 4 groups of 2. Group scores with top-1 each: g0=5, g1=4, g2=4.5, g3=1 → keep g0, g2.
    const logits = tf.tensor([[5, -9, 4, 3.9, 4.5, -1, 1, 0.9]]);
    const r = topkRouter(logits, { topk: 2, numGroups: 4, groupTopk: 2 });
    expect(Array.from(r.topIndices.dataSync())).toEqual([0, 4]);
    // Sum of top-2 per group when topk/groupTopk = 2: g1 = 7.9 beats g0 = -4, g2 = 3.5, g3 = 1.9.
    const s = topkRouter(logits, { topk: 4, numGroups: 4, groupTopk: 2 });
    expect(Array.from(s.topIndices.dataSync()).sort()).toEqual([2, 3, 4, 5]);
  });

  it('breaks ties toward the lower expert index, on the kernel and the reference alike', () => {
    const logits = tf.tensor([
      [1, 2, 2, 2, 0],
      [0, 0, 0, 0, 0],
    ]);
    const r = topkRouter(logits, { topk: 2 });
    expect(r.topIndices.arraySync()).toEqual([
      [1, 2],
      [0, 1],
    ]);
    const [, refIdx] = topkRouterOp.reference({ logits }, { topk: 2 });
    expect(refIdx!.arraySync()).toEqual(r.topIndices.arraySync());
    // Equal probabilities for tied experts.
    expect(Array.from(r.probs.dataSync()).slice(5, 7)).toEqual([0.5, 0.5]);
  });

  it("tieOrder 'torch-cpu' orders equal scores as torch.topk's CPU kernel does, on the kernel and the reference alike", () => {
    const logits = tf.tensor([
      [1, 2, 2, 2, 0],
      [0, 0, 0, 0, 0],
    ]);
    const r = topkRouter(logits, { topk: 2, tieOrder: 'torch-cpu' });
    // the replay of torch's kernel (checked against 254 torch.topk results in @kiln/moe-core's tests)
    const rows = logits.arraySync() as number[][];
    expect(r.topIndices.arraySync()).toEqual(rows.map((row) => topkIndices(row, 5, 2)));
    expect(r.topIndices.arraySync()).not.toEqual(topkRouter(logits, { topk: 2 }).topIndices.arraySync());
    const [, refIdx] = topkRouterOp.reference({ logits }, { topk: 2, tieOrder: 'torch-cpu' });
    expect(refIdx!.arraySync()).toEqual(r.topIndices.arraySync());
    // group sums in fp32 and torch's order for the groups too
    const g = topkRouter(tf.tensor([[1, 1, 1, 1, 1, 1, 1, 1]]), { topk: 2, numGroups: 4, groupTopk: 2, tieOrder: 'torch-cpu' });
    const [, gRef] = topkRouterOp.reference({ logits: tf.tensor([[1, 1, 1, 1, 1, 1, 1, 1]]) }, { topk: 2, numGroups: 4, groupTopk: 2, tieOrder: 'torch-cpu' });
    expect(g.topIndices.arraySync()).toEqual(gRef!.arraySync());
    expect(() => topkRouter(logits, { topk: 2, tieOrder: 'random' as never })).toThrow(/'tieOrder' must be one of lowest-index, torch-cpu/);
  });

  it('ignores expertBias under softmax and usePreSoftmax under sigmoid, as Megatron-Core’s function does', async () => {
    const logits = createRng(5).normal([6, 8]);
    const bias = tf.tensor([5, 0, 0, 0, 0, 0, 0, 0]);
    const plain = topkRouter(logits, { topk: 2 });
    const biased = topkRouter(logits, { topk: 2, expertBias: bias });
    expect(Array.from(biased.topIndices.dataSync())).toEqual(Array.from(plain.topIndices.dataSync()));
    expect(await relErr(biased.probs, plain.probs)).toBe(0);
    const sig = topkRouter(logits, { topk: 2, scoreFunction: 'sigmoid' });
    const sigPre = topkRouter(logits, { topk: 2, scoreFunction: 'sigmoid', usePreSoftmax: true });
    expect(await relErr(sigPre.probs, sig.probs)).toBe(0);
    const [refProbs] = topkRouterOp.reference({ logits, expertBias: bias }, { topk: 2 });
    expect(await relErr(refProbs!, plain.probs)).toBeLessThan(1e-6);
  });

  it('rejects bad arguments naming them', () => {
    const logits = tf.zeros([3, 8]);
    expect(() => topkRouter(logits, { topk: 9 })).toThrow(/'topk' = 9 exceeds the 8 experts/);
    expect(() => topkRouter(logits, { topk: 0 })).toThrow(/'topk' must be a positive integer/);
    expect(() => topkRouter(tf.zeros([8]), { topk: 2 })).toThrow(/'logits' must have rank 2/);
    expect(() => topkRouter(logits, { topk: 2, expertBias: tf.zeros([7]), scoreFunction: 'sigmoid' })).toThrow(/'expertBias' must have shape \[8\]/);
    expect(() => topkRouter(logits, { topk: 2, numGroups: 3, groupTopk: 1 })).toThrow(/do not split into 'numGroups' = 3/);
    expect(() => topkRouter(logits, { topk: 4, numGroups: 4, groupTopk: 1 })).toThrow(/'topk' = 4 exceeds the 2 experts in the 1 kept groups/);
    expect(() => topkRouter(logits, { topk: 2, scoreFunction: 'relu' as never })).toThrow(/'scoreFunction' must be one of/);
    expect(() => topkRouter(tf.zeros([3, 8], 'int32'), { topk: 2 })).toThrow(/'logits' must be float32/);
  });
});
