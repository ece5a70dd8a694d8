/**
 * The statistics behind LInCo's intervals and p-values, against numbers from SciPy 1.17
 * (scipy.stats.t, scipy.special.betainc / gammaln, scipy.stats.spearmanr) and NumPy
 * (np.quantile, np.var(ddof=1)), and against closed forms where one exists. Bootstrap
 * results are checked on inputs whose resampling distribution is known exactly.
 */
import { describe, expect, it } from 'vitest';
import {
  bootstrapDifference,
  bootstrapMean,
  bootstrapVarianceOfMean,
  compareWithNull,
  incompleteBeta,
  logGamma,
  mean,
  quantileSorted,
  ranks,
  sampleVariance,
  spearman,
  studentTCdf,
  studentTQuantile,
} from './stats.js';

describe('elementary statistics', () => {
  it('mean, quantiles (numpy linear interpolation) and the unbiased variance', () => {
    expect(mean([1, 2, 4, 8])).toBe(3.75);
    expect(mean([])).toBeNaN();
    const sorted = [1, 2, 4, 8, 16];
    expect([0, 0.1, 0.25, 0.5, 0.9, 1].map((q) => quantileSorted(sorted, q))).toEqual([1, 1.4, 2, 4, 12.8, 16]);
    expect(quantileSorted([], 0.5)).toBeNaN();
    expect(quantileSorted([7], 0.3)).toBe(7);
    expect(sampleVariance([1, 2, 4, 8])).toBeCloseTo(9.583333333333334, 12);
    expect(sampleVariance([5])).toBeNaN();
    expect(sampleVariance([])).toBeNaN();
  });

  it('ranks from 1 with ties at their average rank, and Spearman’s rho', () => {
    expect(ranks([10, 20, 20, 5])).toEqual([2, 3.5, 3.5, 1]);
    expect(ranks([3, 3, 3])).toEqual([2, 2, 2]);
    expect(ranks([])).toEqual([]);
    expect(spearman([1, 5, 2, 8, 3, 3], [2, 4, 4, 9, 1, 6])).toBeCloseTo(0.5882352941176471, 12);
    expect(spearman([1, 2, 3], [10, 20, 30])).toBeCloseTo(1, 12);
    expect(spearman([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(spearman([1], [2])).toBeNaN();
    expect(() => spearman([1, 2], [1])).toThrow('spearman: lengths differ (2 vs 1)');
  });
});

describe('special functions', () => {
  it('logGamma matches scipy.special.gammaln, below 0.5 (reflection) and above', () => {
    const cases: [number, number][] = [
      [0.5, 0.572364943],
      [10, 12.8018275],
      [0.1, 2.25271265],
      [2.5, 0.28468287],
      [100, 359.134205],
      [0.3, 1.09579799],
      [1, 0],
      [2, 0],
      [1e-3, 6.90717889],
    ];
    for (const [x, want] of cases) expect(logGamma(x), `lnΓ(${x})`).toBeCloseTo(want, 6);
  });

  it('incompleteBeta matches scipy.special.betainc on both sides of the continued fraction’s switch', () => {
    expect(incompleteBeta(0.5, 2, 3)).toBeCloseTo(0.6875, 12);
    expect(incompleteBeta(0.2, 0.5, 7.5)).toBeCloseTo(0.9281204024988001, 10); // x ≥ (a+1)/(a+b+2)
    expect(incompleteBeta(0.9, 5, 1.5)).toBeCloseTo(0.7761721343162159, 10);
    expect(incompleteBeta(0.45, 30, 40)).toBeCloseTo(0.6447480085585666, 10);
    expect(incompleteBeta(0.3, 1, 1)).toBeCloseTo(0.3, 12);
    expect(incompleteBeta(0, 2, 3)).toBe(0);
    expect(incompleteBeta(-1, 2, 3)).toBe(0);
    expect(incompleteBeta(1, 2, 3)).toBe(1);
    expect(incompleteBeta(2, 2, 3)).toBe(1);
  });

  it("Student's t CDF matches scipy.stats.t.cdf and the closed forms for 1 and 2 degrees of freedom", () => {
    expect(studentTCdf(1.3, 4)).toBeCloseTo(0.868274201764388, 10);
    expect(studentTCdf(-2.1, 7)).toBeCloseTo(0.036935598106461326, 10);
    expect(studentTCdf(0.2, 30)).toBeCloseTo(0.5785849214703376, 10);
    expect(studentTCdf(0, 5)).toBe(0.5);
    expect(studentTCdf(1, 1)).toBeCloseTo(0.75, 12); // Cauchy: 1/2 + atan(t)/π
    for (const t of [-3, -0.5, 0.7, 4]) expect(studentTCdf(t, 2)).toBeCloseTo(0.5 + t / (2 * Math.sqrt(2 + t * t)), 12);
    expect(() => studentTCdf(1, 0)).toThrow('studentTCdf: df must be > 0, got 0');
    expect(() => studentTCdf(1, Number.NaN)).toThrow(/df must be > 0/);
  });

  it("Student's t quantile matches scipy.stats.t.ppf, symmetric below 0.5", () => {
    expect(studentTQuantile(0.975, 10)).toBeCloseTo(2.228138851986274, 8);
    expect(studentTQuantile(0.975, 2)).toBeCloseTo(4.302652729749462, 8);
    expect(studentTQuantile(0.9, 3.5)).toBeCloseTo(1.5765766051364052, 8);
    expect(studentTQuantile(0.6, 1)).toBeCloseTo(0.32491969623290634, 8);
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(12.706204736174696, 7); // needs the bracket to grow past 8
    expect(studentTQuantile(0.025, 10)).toBeCloseTo(-2.228138851986274, 8);
    expect(studentTQuantile(0.5, 3)).toBeCloseTo(0, 10);
    for (const p of [0, 1, -0.1, 1.5, Number.NaN]) expect(() => studentTQuantile(p, 3), String(p)).toThrow(/studentTQuantile: p must be in \(0, 1\)/);
  });
});

describe('bootstrap', () => {
  it('bootstrapMean: the mean of replicate means, and an interval that collapses on constant data', () => {
    expect(bootstrapMean([[2, 2, 2, 2]])).toEqual({ value: 2, ci: [2, 2] });
    expect(bootstrapMean([[1, 2, 3, 6]]).value).toBe(3);
    expect(bootstrapMean([[1, 2], [3, 4]]).value).toBe(2.5);
    const empty = bootstrapMean([[]]);
    expect(empty.value).toBeNaN();
    expect(empty.ci[0]).toBeNaN();
    expect(empty.ci[1]).toBeNaN();
  });

  it('bootstrapMean: two points resample to {0, 1/2, 1}; the 95% interval is [0, 1], the 40% one [1/2, 1/2]', () => {
    const wide = bootstrapMean([[0, 1]], { samples: 4000 });
    expect(wide.value).toBe(0.5);
    expect(wide.ci).toEqual([0, 1]);
    expect(bootstrapMean([[0, 1]], { samples: 4000, confidence: 0.4 }).ci).toEqual([0.5, 0.5]);
  });

  it('bootstrapMean: every case, the last one included, is drawn', () => {
    // Only the last case is 1: an interval above 0 needs resamples that contain it.
    const ci = bootstrapMean([[0, 0, 0, 0, 0, 0, 0, 1]], { samples: 2000 }).ci;
    expect(ci[0]).toBe(0);
    expect(ci[1]).toBeGreaterThanOrEqual(0.25);
    const first = bootstrapMean([[1, 0, 0, 0, 0, 0, 0, 0]], { samples: 2000 }).ci;
    expect(first[1]).toBeGreaterThanOrEqual(0.25);
  });

  it('bootstrapMean: with several replicates each resample draws one of them, so the interval spans their spread', () => {
    const est = bootstrapMean([new Array(20).fill(0), new Array(20).fill(1)], { samples: 2000 });
    expect(est.value).toBe(0.5);
    expect(est.ci).toEqual([0, 1]);
  });

  it('bootstrapMean: reproducible by seed, wider at higher confidence, and checks its options', () => {
    const data = [Array.from({ length: 50 }, (_, i) => (i * 37) % 11)];
    const a = bootstrapMean(data, { seed: 5, samples: 300 });
    expect(bootstrapMean(data, { seed: 5, samples: 300 })).toEqual(a);
    expect(bootstrapMean(data, { seed: 6, samples: 300 }).ci).not.toEqual(a.ci);
    expect(bootstrapMean(data).ci).toEqual(bootstrapMean(data, { seed: 11, samples: 1000, confidence: 0.95 }).ci);
    const narrow = bootstrapMean(data, { confidence: 0.5 }).ci;
    const wide = bootstrapMean(data, { confidence: 0.99 }).ci;
    expect(wide[1] - wide[0]).toBeGreaterThan(narrow[1] - narrow[0]);
    expect(() => bootstrapMean(data, { samples: 0 })).toThrow('bootstrap.samples must be a positive integer, got 0');
    expect(() => bootstrapMean(data, { samples: 2.5 })).toThrow(/bootstrap.samples must be a positive integer, got 2.5/);
    expect(() => bootstrapMean(data, { confidence: 1 })).toThrow('bootstrap.confidence must be in (0, 1), got 1');
    expect(() => bootstrapMean(data, { confidence: 0 })).toThrow(/bootstrap.confidence must be in \(0, 1\)/);
    expect(() => bootstrapMean([])).toThrow('bootstrapMean: no replicates');
    expect(() => bootstrapMean([[1, 2], [1]])).toThrow('bootstrapMean: replicates differ in length');
    expect(bootstrapMean([[4]], { samples: 1 })).toEqual({ value: 4, ci: [4, 4] });
  });

  it('bootstrapDifference is paired: a constant shift has a zero-width interval at the shift', () => {
    const b = [Array.from({ length: 30 }, (_, i) => Math.sin(i) * 3)];
    const a = [b[0]!.map((v) => v + 1.5)];
    const d = bootstrapDifference(a, b, { samples: 500 });
    expect(d.value).toBeCloseTo(1.5, 12);
    expect(d.ci[0]).toBeCloseTo(1.5, 12);
    expect(d.ci[1]).toBeCloseTo(1.5, 12);
    expect(bootstrapDifference(b, b)).toEqual({ value: 0, ci: [0, 0] });
  });

  it('bootstrapDifference: the mean difference of replicate means, its interval, and its checks', () => {
    const d = bootstrapDifference([[0, 1]], [[0, 0]], { samples: 4000 });
    expect(d.value).toBe(0.5);
    expect(d.ci).toEqual([0, 1]);
    const reps = bootstrapDifference([new Array(10).fill(2), new Array(10).fill(4)], [new Array(10).fill(1)], { samples: 2000 });
    expect(reps.value).toBe(2);
    expect(reps.ci).toEqual([1, 3]);
    const swapped = bootstrapDifference([new Array(10).fill(1)], [new Array(10).fill(2), new Array(10).fill(4)], { samples: 2000 });
    expect(swapped.ci).toEqual([-3, -1]);
    const empty = bootstrapDifference([[]], [[]]);
    expect(empty.value).toBeNaN();
    expect(empty.ci.every(Number.isNaN)).toBe(true);
    expect(() => bootstrapDifference([[1, 2]], [[1]])).toThrow('bootstrapDifference: arrays differ in length');
    expect(() => bootstrapDifference([[1, 2]], [[1, 2]], { samples: -1 })).toThrow(/bootstrap.samples/);
    const x = [Array.from({ length: 25 }, (_, i) => (i * 7) % 13)];
    const y = [Array.from({ length: 25 }, (_, i) => (i * 5) % 9)];
    const seeded = bootstrapDifference(x, y, { seed: 3, samples: 200 });
    expect(bootstrapDifference(x, y, { seed: 3, samples: 200 })).toEqual(seeded);
    expect(bootstrapDifference(x, y, { seed: 4, samples: 200 }).ci).not.toEqual(seeded.ci);
    expect(bootstrapDifference(x, y).ci).toEqual(bootstrapDifference(x, y, { seed: 13, samples: 1000 }).ci);
  });

  it('bootstrapVarianceOfMean: about var(x) / n, zero for constants, none for no data or one sample', () => {
    // Bernoulli(1/2) over 2 cases: the variance of a resampled mean is 0.25 / 2.
    expect(bootstrapVarianceOfMean([0, 1], { samples: 20_000 })).toBeCloseTo(0.125, 2);
    const x = Array.from({ length: 40 }, (_, i) => (i % 5) * 2);
    const pop = sampleVariance(x) * (39 / 40);
    expect(bootstrapVarianceOfMean(x, { samples: 20_000 })).toBeCloseTo(pop / 40, 2);
    expect(bootstrapVarianceOfMean([3, 3, 3])).toBe(0);
    expect(bootstrapVarianceOfMean([])).toBe(0);
    expect(bootstrapVarianceOfMean([1, 2], { samples: 1 })).toBe(0);
    expect(bootstrapVarianceOfMean([1, 2, 9], { seed: 2 })).toBe(bootstrapVarianceOfMean([1, 2, 9], { seed: 2 }));
    expect(bootstrapVarianceOfMean([1, 2, 9])).toBe(bootstrapVarianceOfMean([1, 2, 9], { seed: 17 }));
    expect(() => bootstrapVarianceOfMean([1], { samples: 0 })).toThrow(/bootstrap.samples/);
  });
});

describe('compareWithNull', () => {
  it('with constant panels gives the t interval of the between-split variance (df = R − 1)', () => {
    // Panels 0.1, 0.2, 0.3 on every case; the group 0.5: no case noise, σ² = 0.01.
    const n = 6;
    const panels = [0.1, 0.2, 0.3].map((v) => new Array(n).fill(v));
    const c = compareWithNull(new Array(n).fill(0.5), panels, { samples: 200 });
    const sd = Math.sqrt(0.01 * (1 + 1 / 3));
    const q = 4.302652729749462; // scipy.stats.t.ppf(0.975, 2)
    expect(c.baseline).toBeCloseTo(0.2, 12);
    expect(c.df).toBe(2);
    expect(c.splitSd).toBeCloseTo(0.1, 12);
    expect(c.caseSd).toBeCloseTo(0, 12);
    expect(c.pairedCaseSd).toBeCloseTo(0, 12);
    expect(c.excess).toBeCloseTo(0.3, 12);
    expect(c.nullInterval[0]).toBeCloseTo(0.2 - q * sd, 7);
    expect(c.nullInterval[1]).toBeCloseTo(0.2 + q * sd, 7);
    expect(c.excessCi[0]).toBeCloseTo(0.3 - q * sd, 7);
    expect(c.excessCi[1]).toBeCloseTo(0.3 + q * sd, 7);
    // two-sided p of t = 0.3 / sd with 2 df: 2·(1 − (1/2 + t / (2·sqrt(2 + t²))))
    const t = 0.3 / sd;
    expect(c.p).toBeCloseTo(2 * (0.5 - t / (2 * Math.sqrt(2 + t * t))), 9);
    expect(c.p).toBeCloseTo(0.12168993434632025, 9);
  });

  it('at 90% confidence uses the 0.95 quantile, and adds case noise to both intervals', () => {
    const panels = [
      [0.1, 0.3, 0.2, 0.4],
      [0.2, 0.2, 0.3, 0.3],
      [0.15, 0.25, 0.35, 0.25],
      [0.3, 0.1, 0.2, 0.2],
    ];
    const group = [0.5, 0.2, 0.6, 0.3];
    const c = compareWithNull(group, panels, { confidence: 0.9, samples: 400 });
    const q = 2.3533634348018264; // scipy.stats.t.ppf(0.95, 3)
    const values = panels.map((p) => mean(p));
    const splitVar = sampleVariance(values);
    expect(c.df).toBe(3);
    expect(c.splitSd).toBeCloseTo(Math.sqrt(splitVar), 12);
    expect(c.caseSd).toBeGreaterThan(0);
    expect(c.pairedCaseSd).toBeGreaterThan(0);
    const nullSd = Math.sqrt(splitVar * 1.25 + c.caseSd ** 2);
    const excessSd = Math.sqrt(splitVar * 1.25 + c.pairedCaseSd ** 2);
    expect(c.nullInterval[1] - c.baseline).toBeCloseTo(q * nullSd, 7);
    expect(c.baseline - c.nullInterval[0]).toBeCloseTo(q * nullSd, 7);
    expect(c.excessCi[1] - c.excess).toBeCloseTo(q * excessSd, 7);
    expect(c.excess).toBeCloseTo(mean(group) - mean(values), 12);
    expect(c.p).toBeCloseTo(2 * (1 - studentTCdf(c.excess / excessSd, 3)), 9);
    // the case variances come from the per-case average of the panels and the paired difference
    const avg = group.map((_, i) => mean(panels.map((p) => p[i]!)));
    expect(c.caseSd ** 2).toBeCloseTo(bootstrapVarianceOfMean(avg, { confidence: 0.9, samples: 400, seed: 18 }), 15);
    const diff = group.map((g, i) => g - avg[i]!);
    expect(c.pairedCaseSd ** 2).toBeCloseTo(bootstrapVarianceOfMean(diff, { confidence: 0.9, samples: 400, seed: 19 }), 15);
    expect(c.caseSd ** 2).not.toBeCloseTo(bootstrapVarianceOfMean(avg, { confidence: 0.9, samples: 400, seed: 19 }), 15);
  });

  it('gives p = 1 with no difference and no noise, p = 0 with a difference and no noise', () => {
    const same = [new Array(5).fill(0.2), new Array(5).fill(0.2)];
    expect(compareWithNull(new Array(5).fill(0.2), same).p).toBe(1);
    expect(compareWithNull(new Array(5).fill(0.7), same).p).toBe(0);
    const below = compareWithNull(new Array(5).fill(0.1), [new Array(5).fill(0.3), new Array(5).fill(0.5)], { samples: 100 });
    expect(below.excess).toBeCloseTo(-0.3, 12);
    expect(below.p).toBeCloseTo(2 * (1 - studentTCdf(0.3 / Math.sqrt(0.02 * 1.5), 1)), 9);
  });

  it('needs two or more panels of the group’s length', () => {
    expect(() => compareWithNull([1, 2], [[1, 2]])).toThrow('compareWithNull: needs at least 2 random-split panels for the between-split variance, got 1');
    expect(() => compareWithNull([1, 2], [[1, 2], [1]])).toThrow('compareWithNull: panels and group differ in length');
    expect(() => compareWithNull([1, 2], [[1, 2], [2, 1]], { confidence: 2 })).toThrow(/bootstrap.confidence/);
  });
});
