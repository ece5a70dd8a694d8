import { describe, expect, it } from 'vitest';
import { bootstrapDifference, bootstrapMean, quantileSorted, ranks, spearman } from './stats.js';

describe('bootstrap', () => {
  const noisy = (n: number, seed: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5 + 1);

  it('brackets the mean and narrows as cases grow', () => {
    const small = bootstrapMean([noisy(40, 1)], { seed: 1 });
    const large = bootstrapMean([noisy(4000, 1)], { seed: 1 });
    for (const e of [small, large]) {
      expect(e.ci[0]).toBeLessThanOrEqual(e.value);
      expect(e.ci[1]).toBeGreaterThanOrEqual(e.value);
    }
    expect(large.ci[1] - large.ci[0]).toBeLessThan((small.ci[1] - small.ci[0]) / 4);
  });

  it('gives a zero-width interval for constant values and widens with confidence', () => {
    expect(bootstrapMean([new Float64Array(50).fill(0.3)]).ci).toEqual([0.3, 0.3].map((x) => expect.closeTo(x, 12)));
    const x = noisy(200, 2);
    const w90 = bootstrapMean([x], { confidence: 0.9 });
    const w99 = bootstrapMean([x], { confidence: 0.99 });
    expect(w99.ci[1] - w99.ci[0]).toBeGreaterThan(w90.ci[1] - w90.ci[0]);
    expect(() => bootstrapMean([x], { confidence: 1 })).toThrow(/confidence/);
  });

  it('covers the spread between replicates', () => {
    const a = new Float64Array(100).fill(1);
    const b = new Float64Array(100).fill(2);
    const e = bootstrapMean([a, b], { samples: 400 });
    expect(e.value).toBeCloseTo(1.5);
    expect(e.ci[0]).toBeCloseTo(1);
    expect(e.ci[1]).toBeCloseTo(2);
  });

  it('pairs cases in the difference', () => {
    const x = noisy(300, 3);
    const y = x.map((v) => v - 0.25);
    const d = bootstrapDifference([x], [y]);
    expect(d.value).toBeCloseTo(0.25);
    // Paired: the case-to-case noise cancels exactly.
    expect(d.ci[1] - d.ci[0]).toBeLessThan(1e-9);
  });
});

describe('spearman and ranks', () => {
  it('ranks ties by their average', () => {
    expect(ranks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
  });

  it('gives ±1 for monotone data and the textbook value otherwise', () => {
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 16])).toBeCloseTo(1);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1);
    // d = [0, 1, -1, 0, 0] (no ties): 1 − 6·2 / (5·24) = 0.9
    expect(spearman([1, 2, 3, 4, 5], [1, 3, 2, 4, 5])).toBeCloseTo(0.9);
    expect(() => spearman([1], [1, 2])).toThrow(/lengths differ/);
  });
});
