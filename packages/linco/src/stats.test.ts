import { describe, expect, it } from 'vitest';
import {
  bootstrapDifference,
  bootstrapMean,
  bootstrapSpearman,
  bootstrapVarianceOfMean,
  clampInterval,
  compareWithNull,
  differenceOfEstimates,
  incompleteBeta,
  quantileSorted,
  ranks,
  sampleVariance,
  spearman,
  studentTCdf,
  studentTQuantile,
  tInterval,
} from './stats.js';

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

  it('draws every case, the last one included', () => {
    // Only the last of 5 cases is non-zero: a resampler that never drew it would give [0, 0].
    const last = Float64Array.from([0, 0, 0, 0, 1]);
    const m = bootstrapMean([last], { samples: 2000, seed: 3 });
    expect(m.ci[1]).toBeGreaterThanOrEqual(0.4);
    const d = bootstrapDifference([last], [new Float64Array(5)], { samples: 2000, seed: 3 });
    expect(d.ci[1]).toBeGreaterThanOrEqual(0.4);
    // The mean of n draws of a Bernoulli(1/5) case has variance (1/5)(4/5)/5 = 0.032.
    expect(bootstrapVarianceOfMean(last, { samples: 4000, seed: 3 })).toBeCloseTo(0.032, 2);
    // Every resample of the first four alone is 0: the last case is what moves the interval.
    expect(bootstrapMean([last.subarray(0, 4)], { samples: 500 }).ci).toEqual([0, 0]);
    const s = bootstrapSpearman([1, 2, 3, 4, 5], [0, 0, 0, 0, 1], { samples: 500, seed: 2 });
    expect(s.ci[1]).toBeGreaterThan(0);
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

describe('Student t', () => {
  it('matches table values', () => {
    // Two-sided 95 % critical values: df 1, 3, 7, 30; and the normal limit.
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.7062, 3);
    expect(studentTQuantile(0.975, 3)).toBeCloseTo(3.18245, 4);
    expect(studentTQuantile(0.975, 7)).toBeCloseTo(2.36462, 4);
    expect(studentTQuantile(0.975, 30)).toBeCloseTo(2.04227, 4);
    expect(studentTQuantile(0.975, 1e6)).toBeCloseTo(1.95996, 4);
    expect(studentTQuantile(0.025, 7)).toBeCloseTo(-2.36462, 4);
    // df 1 is Cauchy: F(t) = 1/2 + atan(t)/π.
    expect(studentTCdf(2, 1)).toBeCloseTo(0.5 + Math.atan(2) / Math.PI, 10);
    expect(studentTCdf(0, 5)).toBeCloseTo(0.5, 12);
    // I_x(1, 1) = x; I_x(a, 1) = x^a.
    expect(incompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(incompleteBeta(0.3, 2.5, 1)).toBeCloseTo(0.3 ** 2.5, 12);
    expect(() => studentTQuantile(1, 3)).toThrow(/p must be in/);
  });
});

describe('intervals inside the range of the metric', () => {
  it('clamps to the range and never inverts', () => {
    expect(clampInterval([-4.8, 6.3], [0, 1])).toEqual([0, 1]);
    expect(clampInterval([0.2, 0.4], [0, 1])).toEqual([0.2, 0.4]);
    expect(clampInterval([-0.5, -0.1], [0, 1])).toEqual([0, 0]);
    expect(clampInterval([1.2, 1.5], [0, 1])).toEqual([1, 1]);
  });

  it('keeps the null interval of a [0, 1] metric inside [0, 1] even with few, spread panels', () => {
    const panel = (v: number) => new Float64Array(20).fill(v);
    const wide = compareWithNull(panel(0.5), [panel(0.02), panel(0.9), panel(0.4)], { samples: 100, range: [0, 1] });
    expect(wide.nullInterval[0]).toBeGreaterThanOrEqual(0);
    expect(wide.nullInterval[1]).toBeLessThanOrEqual(1);
    expect(wide.excessCi[0]).toBeGreaterThanOrEqual(-1);
    expect(wide.excessCi[1]).toBeLessThanOrEqual(1);
    // Without a range the same panels give an interval far outside it.
    const raw = compareWithNull(panel(0.5), [panel(0.02), panel(0.9), panel(0.4)], { samples: 100 });
    expect(raw.nullInterval[0]).toBeLessThan(-0.5);
  });
});

describe('correlations and differences with intervals', () => {
  it('bootstraps Spearman over pairs', () => {
    const x = Array.from({ length: 60 }, (_, i) => i % 5);
    const y = x.map((v, i) => -v + 0.3 * Math.sin(i * 3.7));
    const s = bootstrapSpearman(x, y, { samples: 500, seed: 4 });
    expect(s.rho).toBeCloseTo(spearman(x, y), 12);
    expect(s.rho).toBeLessThan(-0.8);
    expect(s.ci[0]).toBeLessThanOrEqual(s.rho);
    expect(s.ci[1]).toBeGreaterThanOrEqual(s.rho);
    expect(s.ci[1]).toBeLessThan(0);
    // Pairs with a missing value are left out.
    expect(bootstrapSpearman([1, Number.NaN, 3, 4], [1, 2, 3, 4], { samples: 50 }).n).toBe(3);
  });

  it('subtracts two t estimates with Welch–Satterthwaite degrees of freedom', () => {
    const d = differenceOfEstimates({ value: 0.3, sd: 0.03, df: 7 }, { value: 0.1, sd: 0.04, df: 3 });
    expect(d.value).toBeCloseTo(0.2, 12);
    expect(d.sd).toBeCloseTo(0.05, 12);
    // (0.0009 + 0.0016)² / (0.0009²/7 + 0.0016²/3)
    expect(d.df).toBeCloseTo(0.0025 ** 2 / (0.0009 ** 2 / 7 + 0.0016 ** 2 / 3), 10);
    expect(d.ci[0]).toBeCloseTo(0.2 - studentTQuantile(0.975, d.df) * 0.05, 10);
    expect(d.p).toBeCloseTo(2 * (1 - studentTCdf(4, d.df)), 10);
  });

  it('gives a t interval over seeds', () => {
    const t = tInterval([0.1, 0.2, 0.3]);
    expect(t.value).toBeCloseTo(0.2, 12);
    expect(t.df).toBe(2);
    expect(t.ci[1] - t.value).toBeCloseTo(studentTQuantile(0.975, 2) * Math.sqrt(0.01 / 3), 10);
    expect(tInterval([0.5]).ci.every(Number.isNaN)).toBe(true);
  });
});

describe('compareWithNull', () => {
  it('widens the baseline by the between-split variance, (1 + 1/R) and t with R − 1 df', () => {
    // Constant per-case scores: no case-resampling variance, so only the split variance is left.
    const panel = (v: number) => new Float64Array(50).fill(v);
    const panels = [0.1, 0.12, 0.11, 0.13].map(panel);
    const c = compareWithNull(panel(0.2), panels, { samples: 200 });
    const s2 = sampleVariance([0.1, 0.12, 0.11, 0.13]);
    expect(s2).toBeCloseTo(0.0005 / 3, 12);
    const half = studentTQuantile(0.975, 3) * Math.sqrt(s2 * 1.25);
    expect(c.baseline).toBeCloseTo(0.115, 12);
    expect(c.df).toBe(3);
    expect(c.caseSd).toBeCloseTo(0, 12);
    expect(c.nullInterval[0]).toBeCloseTo(0.115 - half, 10);
    expect(c.nullInterval[1]).toBeCloseTo(0.115 + half, 10);
    expect(c.excess).toBeCloseTo(0.085, 12);
    expect(c.excessCi[0]).toBeCloseTo(0.085 - half, 10);
    // t = 0.085 / sd on 3 df.
    expect(c.p).toBeCloseTo(2 * (1 - studentTCdf(0.085 / Math.sqrt(s2 * 1.25), 3)), 10);
    expect(c.p).toBeLessThan(0.01);
    // A group panel inside the spread is not significant.
    expect(compareWithNull(panel(0.118), panels).p).toBeGreaterThan(0.5);
    expect(() => compareWithNull(panel(0.1), [panel(0.1)])).toThrow(/at least 2 random-split panels/);
  });

  it('adds case resampling to the split variance', () => {
    const noisy = (shift: number) => Float64Array.from({ length: 100 }, (_, i) => shift + 0.05 * Math.sin(i * 7.1));
    const panels = [noisy(0), noisy(0.01), noisy(0.02)];
    const c = compareWithNull(noisy(0.01), panels, { samples: 2000 });
    expect(c.caseSd).toBeGreaterThan(0.002);
    // Paired: the group and the baseline share the case noise exactly, so the difference has none.
    expect(c.pairedCaseSd).toBeCloseTo(0, 12);
    const q = studentTQuantile(0.975, 2);
    expect(c.nullInterval[1] - c.baseline).toBeCloseTo(q * Math.sqrt(c.splitSd ** 2 * (4 / 3) + c.caseSd ** 2), 10);
    expect(c.splitSd).toBeCloseTo(0.01, 10);
  });
});
