import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { KernelPermuter, ReferencePermuter, permuteRows, planPermutation } from './permute.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// tokens × experts routing map: token 0 → {1, 2}, token 1 → {0, 2}, token 2 → {2, 3}
const map = [0, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1];

/** The permutation as a dense [rows, tokens] 0/1 matrix P: permute = P·X, unpermute = Pᵀ·(w ⊙ R). */
function dense(plan: ReturnType<typeof planPermutation>) {
  const P = new Float32Array(plan.rowToken.length * plan.numTokens);
  plan.rowToken.forEach((t, r) => {
    if (t < plan.numTokens) P[r * plan.numTokens + t] = 1;
  });
  return tf.tensor2d(P, [plan.rowToken.length, plan.numTokens]);
}

describe('planPermutation', () => {
  it("orders rows expert-major with tokens in order inside each expert (Megatron's permute)", () => {
    const plan = planPermutation(map, 3, 4);
    expect(Array.from(plan.rowToken)).toEqual([1, 0, 0, 1, 2, 2]);
    expect(Array.from(plan.rowsPerExpert)).toEqual([1, 1, 3, 1]);
    expect(Array.from(plan.rowProb)).toEqual([4, 1, 2, 6, 10, 11]);
  });

  it('pads every expert to a row multiple with zero rows, and covers a slice of experts', () => {
    const plan = planPermutation(map, 3, 4, { padToMultiple: 4 });
    expect(Array.from(plan.rowsPerExpert)).toEqual([4, 4, 4, 4]);
    expect(Array.from(plan.tokensPerExpert)).toEqual([1, 1, 3, 1]);
    expect(plan.rowToken.filter((t) => t === 3).length).toBe(16 - 6);
    const local = planPermutation(map, 3, 4, { expertOffset: 2, numExperts: 2 });
    expect(Array.from(local.rowToken)).toEqual([0, 1, 2, 2]);
  });

  it('rejects a routing map of the wrong size and an expert over capacity', () => {
    expect(() => planPermutation(map, 3, 5)).toThrow(/12 entries, expected tokens 3 × experts 5/);
    expect(() => planPermutation(map, 3, 4, { padToCapacity: 2 })).toThrow(/expert 2 has 3 tokens/);
  });
});

describe('ReferencePermuter and KernelPermuter (gpu-kernels)', () => {
  for (const [name, permuter, pad] of [
    ['ReferencePermuter', new ReferencePermuter(), null],
    ['ReferencePermuter', new ReferencePermuter(), 4],
    ['KernelPermuter', new KernelPermuter(), null],
    ['KernelPermuter', new KernelPermuter(), 4],
  ] as const) {
    it(`${name}: permute and prob-weighted unpermute match dense matrix products, forward and gradient (padding ${pad})`, () => {
      const plan = planPermutation(map, 3, 4, { padToMultiple: pad });
      const rng = createRng(3);
      const x = rng.normal([3, 5]) as tf.Tensor2D;
      const probs = rng.uniform([3, 4]) as tf.Tensor2D;
      const P = dense(plan);
      const w = () => tf.gather(tf.concat([tf.reshape(probs, [-1]), tf.zeros([1])]), tf.tensor1d(plan.rowProb, 'int32'));
      const dy = rng.normal([3, 5]);
      const ours = (a: tf.Tensor, p: tf.Tensor) => tf.sum(tf.mul(permuter.unpermute(tf.sin(permuter.permute(a as tf.Tensor2D, plan)), plan, p as tf.Tensor2D), dy));
      const ref = (a: tf.Tensor, p: tf.Tensor) => {
        const wr = tf.gather(tf.concat([tf.reshape(p, [-1]), tf.zeros([1])]), tf.tensor1d(plan.rowProb, 'int32'));
        return tf.sum(tf.mul(tf.matMul(P, tf.mul(tf.sin(tf.matMul(P, a)), tf.expandDims(wr, 1)), true, false), dy));
      };
      expect(w().shape).toEqual([plan.rowToken.length]);
      expect(ours(x, probs).dataSync()[0]).toBeCloseTo(ref(x, probs).dataSync()[0]!, 5);
      const g1 = tf.grads(ours)([x, probs]);
      const g2 = tf.grads(ref)([x, probs]);
      g1.forEach((g, i) => {
        expect(Array.from(g.dataSync()).map((v) => +v.toFixed(5))).toEqual(Array.from(g2[i]!.dataSync()).map((v) => +v.toFixed(5)));
      });
    });
  }

  it('KernelPermuter: unweighted unpermute over padded rows (padding scatters with weight 0) matches the reference, forward and gradient', () => {
    const plan = planPermutation(map, 3, 4, { padToMultiple: 4 });
    expect(plan.padded).toBe(true);
    const x = createRng(6).normal([3, 5]) as tf.Tensor2D;
    const dy = createRng(7).normal([3, 5]);
    const f = (p: ReferencePermuter | KernelPermuter) => (a: tf.Tensor) => tf.sum(tf.mul(p.unpermute(tf.exp(p.permute(a as tf.Tensor2D, plan)), plan), dy));
    const want = f(new ReferencePermuter());
    const got = f(new KernelPermuter());
    expect(got(x).dataSync()[0]).toBeCloseTo(want(x).dataSync()[0]!, 5);
    const [g1] = tf.grads(got)([x]);
    const [g2] = tf.grads(want)([x]);
    expect(Array.from(g1!.dataSync()).map((v) => +v.toFixed(5))).toEqual(Array.from(g2!.dataSync()).map((v) => +v.toFixed(5)));
  });

  it('permuteRows gradient is the inverse gather', () => {
    const x = createRng(4).normal([4, 2]) as tf.Tensor2D;
    const order = Int32Array.from([2, 0, 3, 1]);
    const inverse = Int32Array.from([1, 3, 0, 2]);
    const dy = createRng(5).normal([4, 2]);
    const [g] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(permuteRows(a as tf.Tensor2D, order, inverse), dy)))([x]);
    const [r] = tf.grads((a: tf.Tensor) => tf.sum(tf.mul(tf.gather(a, tf.tensor1d(order, 'int32')), dy)))([x]);
    expect(g!.arraySync()).toEqual(r!.arraySync());
  });
});
