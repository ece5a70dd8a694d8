/** Small statistics: means, percentile bootstrap, Spearman's rank correlation. */
import { createRng } from '@kiln/tensor';

export function mean(values: ArrayLike<number>): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

/** Linear-interpolated quantile (numpy's default) of an already sorted array. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface BootstrapOptions {
  /** Resamples. Default 1000. */
  samples?: number;
  /** Two-sided confidence level. Default 0.95. */
  confidence?: number;
  seed?: number;
}

export interface Estimate {
  value: number;
  ci: [number, number];
}

function checkBootstrap(o: BootstrapOptions): { samples: number; confidence: number } {
  const samples = o.samples ?? 1000;
  const confidence = o.confidence ?? 0.95;
  if (!Number.isInteger(samples) || samples < 1) throw new Error(`bootstrap.samples must be a positive integer, got ${samples}`);
  if (!(confidence > 0 && confidence < 1)) throw new Error(`bootstrap.confidence must be in (0, 1), got ${confidence}`);
  return { samples, confidence };
}

/**
 * Percentile bootstrap of the mean over cases. With several replicate arrays (e.g. random
 * splits repeated with different seeds) every resample also draws one replicate, so the
 * interval covers judge-training noise as well as case sampling.
 */
export function bootstrapMean(replicates: ArrayLike<number>[], options: BootstrapOptions = {}): Estimate {
  const { samples, confidence } = checkBootstrap(options);
  if (replicates.length === 0) throw new Error('bootstrapMean: no replicates');
  const n = replicates[0]!.length;
  if (replicates.some((r) => r.length !== n)) throw new Error('bootstrapMean: replicates differ in length');
  const value = mean(replicates.map((r) => mean(r)));
  if (n === 0) return { value, ci: [Number.NaN, Number.NaN] };
  const rng = createRng(options.seed ?? 11);
  const stats = new Float64Array(samples);
  for (let b = 0; b < samples; b++) {
    const r = replicates[replicates.length === 1 ? 0 : rng.int(0, replicates.length)]!;
    let s = 0;
    for (let i = 0; i < n; i++) s += r[rng.int(0, n)]!;
    stats[b] = s / n;
  }
  stats.sort();
  const alpha = (1 - confidence) / 2;
  return { value, ci: [quantileSorted(stats, alpha), quantileSorted(stats, 1 - alpha)] };
}

/** Paired bootstrap of mean(a) − mean(b) over the same cases (a, b: replicate arrays). */
export function bootstrapDifference(a: ArrayLike<number>[], b: ArrayLike<number>[], options: BootstrapOptions = {}): Estimate {
  const { samples, confidence } = checkBootstrap(options);
  const n = a[0]?.length ?? 0;
  if ([...a, ...b].some((r) => r.length !== n)) throw new Error('bootstrapDifference: arrays differ in length');
  const value = mean(a.map((r) => mean(r))) - mean(b.map((r) => mean(r)));
  if (n === 0) return { value, ci: [Number.NaN, Number.NaN] };
  const rng = createRng(options.seed ?? 13);
  const stats = new Float64Array(samples);
  for (let s = 0; s < samples; s++) {
    const ra = a[a.length === 1 ? 0 : rng.int(0, a.length)]!;
    const rb = b[b.length === 1 ? 0 : rng.int(0, b.length)]!;
    let acc = 0;
    for (let i = 0; i < n; i++) {
      const j = rng.int(0, n);
      acc += ra[j]! - rb[j]!;
    }
    stats[s] = acc / n;
  }
  stats.sort();
  const alpha = (1 - confidence) / 2;
  return { value, ci: [quantileSorted(stats, alpha), quantileSorted(stats, 1 - alpha)] };
}

/** Ranks from 1, ties given their average rank. */
export function ranks(values: ArrayLike<number>): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const out = new Array<number>(values.length);
  let i = 0;
  while (i < idx.length) {
    let j = i;
    while (j + 1 < idx.length && values[idx[j + 1]!] === values[idx[i]!]) j++;
    const r = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) out[idx[t]!] = r;
    i = j + 1;
  }
  return out;
}

/** Spearman's ρ: Pearson correlation of the (average-tie) ranks. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) throw new Error(`spearman: lengths differ (${x.length} vs ${y.length})`);
  if (x.length < 2) return Number.NaN;
  const rx = ranks(x);
  const ry = ranks(y);
  const mx = mean(rx);
  const my = mean(ry);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < rx.length; i++) {
    sxy += (rx[i]! - mx) * (ry[i]! - my);
    sxx += (rx[i]! - mx) ** 2;
    syy += (ry[i]! - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7; |error| < 1e-13 over the range used here). */
export function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0]!;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularized incomplete beta (Lentz's method). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** CDF of Student's t with `df` degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new Error(`studentTCdf: df must be > 0, got ${df}`);
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** Quantile of Student's t (bisection on the CDF; |error| < 1e-10). */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new Error(`studentTQuantile: p must be in (0, 1), got ${p}`);
  if (p < 0.5) return -studentTQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (studentTCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (studentTCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Unbiased sample variance. */
export function sampleVariance(values: ArrayLike<number>): number {
  const n = values.length;
  if (n < 2) return Number.NaN;
  const m = mean(values);
  let s = 0;
  for (let i = 0; i < n; i++) s += (values[i]! - m) ** 2;
  return s / (n - 1);
}

/** Bootstrap variance over cases of the mean of `values` (case resampling only). */
export function bootstrapVarianceOfMean(values: ArrayLike<number>, options: BootstrapOptions = {}): number {
  const { samples } = checkBootstrap(options);
  const n = values.length;
  if (n === 0 || samples < 2) return 0;
  const rng = createRng(options.seed ?? 17);
  const stats = new Float64Array(samples);
  for (let b = 0; b < samples; b++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += values[rng.int(0, n)]!;
    stats[b] = s / n;
  }
  return sampleVariance(stats);
}

/**
 * The part of an interval inside the range the quantity can take (a disagreement share in
 * [0, 1], a term distance ≥ 0). Cutting at the range never loses coverage: the true value
 * cannot lie outside it. A degenerate interval collapses onto the nearer bound.
 */
export function clampInterval(ci: [number, number], range: readonly [number, number]): [number, number] {
  const lo = Math.min(Math.max(ci[0], range[0]), range[1]);
  const hi = Math.max(Math.min(ci[1], range[1]), range[0]);
  return [lo, Math.max(lo, hi)];
}

export interface NullComparison {
  /** Mean LInCo of the R random-split panels. */
  baseline: number;
  /** Where one group-split LInCo falls with the given confidence when groups do not matter. */
  nullInterval: [number, number];
  /** group − baseline, with its interval and two-sided p-value. */
  excess: number;
  excessCi: [number, number];
  p: number;
  /** Standard error of the excess: √(σ²(1 + 1/R) + v_pair). */
  excessSd: number;
  /** Between-split standard deviation of a panel's LInCo (splits × seeds), R − 1 df. */
  splitSd: number;
  /** Case-resampling standard deviations: of the baseline mean, and of the paired difference. */
  caseSd: number;
  pairedCaseSd: number;
  /** Degrees of freedom of the t quantile (R − 1). */
  df: number;
}

/**
 * Compares a group-split panel with R ≥ 2 random-split panels on the same held-out cases.
 *
 * Under "groups do not matter" the group split is one more draw of the random-split
 * procedure, so G and the R random panels' values B_r are exchangeable. The variance of
 * G − mean(B) is then σ²(1 + 1/R), σ² the between-split variance estimated by the sample
 * variance of the B_r (each B_r already averages the same seeds as G, so σ² holds the
 * split and the training-seed noise). Case resampling (drawing another held-out set) adds
 * the bootstrap variance of the mean over cases: of mean(B) for the null interval, of the
 * paired per-case difference for the excess. Intervals use Student's t with R − 1 df,
 * because σ² is estimated from R panels. With `range`, both intervals are cut to what the
 * metric can take (see clampInterval).
 */
export function compareWithNull(
  group: ArrayLike<number>,
  panels: ArrayLike<number>[],
  options: BootstrapOptions & {
    /** Range of the metric: the null interval is cut to it, the excess interval to ±its width. */
    range?: readonly [number, number];
  } = {},
): NullComparison {
  const { confidence } = checkBootstrap(options);
  const r = panels.length;
  if (r < 2) throw new Error(`compareWithNull: needs at least 2 random-split panels for the between-split variance, got ${r}`);
  const n = group.length;
  if (panels.some((p) => p.length !== n)) throw new Error('compareWithNull: panels and group differ in length');
  const values = panels.map((p) => mean(p));
  const baseline = mean(values);
  const g = mean(group);
  const splitVar = sampleVariance(values);
  const avg = Float64Array.from({ length: n }, (_, i) => mean(panels.map((p) => p[i]!)));
  const diff = Float64Array.from({ length: n }, (_, i) => group[i]! - avg[i]!);
  const caseVar = bootstrapVarianceOfMean(avg, { ...options, seed: (options.seed ?? 17) + 1 });
  const pairedVar = bootstrapVarianceOfMean(diff, { ...options, seed: (options.seed ?? 17) + 2 });
  const df = r - 1;
  const q = studentTQuantile(1 - (1 - confidence) / 2, df);
  const nullSd = Math.sqrt(splitVar * (1 + 1 / r) + caseVar);
  const excessSd = Math.sqrt(splitVar * (1 + 1 / r) + pairedVar);
  const excess = g - baseline;
  const p = excessSd === 0 ? (excess === 0 ? 1 : 0) : 2 * (1 - studentTCdf(Math.abs(excess) / excessSd, df));
  const range = options.range ?? [-Infinity, Infinity];
  const width = range[1] - range[0];
  return {
    baseline,
    nullInterval: clampInterval([baseline - q * nullSd, baseline + q * nullSd], range),
    excess,
    excessCi: clampInterval([excess - q * excessSd, excess + q * excessSd], [-width, width]),
    p,
    excessSd,
    splitSd: Math.sqrt(splitVar),
    caseSd: Math.sqrt(caseVar),
    pairedCaseSd: Math.sqrt(pairedVar),
    df,
  };
}

/**
 * Spearman's ρ between paired values with a percentile bootstrap interval over the pairs
 * (resampling pairs keeps their dependence). Pairs with a non-finite value are left out.
 */
export function bootstrapSpearman(x: ArrayLike<number>, y: ArrayLike<number>, options: BootstrapOptions = {}): { rho: number; ci: [number, number]; n: number } {
  const { samples, confidence } = checkBootstrap(options);
  if (x.length !== y.length) throw new Error(`bootstrapSpearman: lengths differ (${x.length} vs ${y.length})`);
  const keep: number[] = [];
  for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!) && Number.isFinite(y[i]!)) keep.push(i);
  const n = keep.length;
  const xs = keep.map((i) => x[i]!);
  const ys = keep.map((i) => y[i]!);
  const rho = spearman(xs, ys);
  if (n < 3) return { rho, ci: [Number.NaN, Number.NaN], n };
  const rng = createRng(options.seed ?? 19);
  const stats: number[] = [];
  const bx = new Float64Array(n);
  const by = new Float64Array(n);
  for (let b = 0; b < samples; b++) {
    for (let i = 0; i < n; i++) {
      const j = rng.int(0, n);
      bx[i] = xs[j]!;
      by[i] = ys[j]!;
    }
    const r = spearman(bx, by);
    // A resample with one value on either side has no defined ρ; it carries no information.
    if (Number.isFinite(r)) stats.push(r);
  }
  stats.sort((a, b) => a - b);
  const alpha = (1 - confidence) / 2;
  return { rho, ci: stats.length ? [quantileSorted(stats, alpha), quantileSorted(stats, 1 - alpha)] : [Number.NaN, Number.NaN], n };
}

export interface TEstimate {
  value: number;
  /** Standard error. */
  sd: number;
  /** Degrees of freedom of the t distribution the interval uses. */
  df: number;
}

/**
 * a − b for two independent t estimates: standard error √(sa² + sb²), degrees of freedom by
 * Welch–Satterthwaite, the two-sided t interval and p-value of "no difference".
 */
export function differenceOfEstimates(a: TEstimate, b: TEstimate, confidence = 0.95): { value: number; sd: number; df: number; ci: [number, number]; p: number } {
  const value = a.value - b.value;
  const va = a.sd ** 2;
  const vb = b.sd ** 2;
  const sd = Math.sqrt(va + vb);
  const den = (va > 0 ? va ** 2 / a.df : 0) + (vb > 0 ? vb ** 2 / b.df : 0);
  const df = den > 0 ? (va + vb) ** 2 / den : Math.min(a.df, b.df);
  if (sd === 0) return { value, sd, df, ci: [value, value], p: value === 0 ? 1 : 0 };
  const q = studentTQuantile(1 - (1 - confidence) / 2, df);
  return { value, sd, df, ci: [value - q * sd, value + q * sd], p: 2 * (1 - studentTCdf(Math.abs(value) / sd, df)) };
}

/** Mean of values with its t interval over them (n − 1 df), and the p-value of "mean 0". */
export function tInterval(values: readonly number[], confidence = 0.95): { value: number; sd: number; df: number; ci: [number, number]; p: number } {
  const n = values.length;
  const value = mean(values);
  if (n < 2) return { value, sd: Number.NaN, df: 0, ci: [Number.NaN, Number.NaN], p: Number.NaN };
  const sd = Math.sqrt(sampleVariance(values) / n);
  const df = n - 1;
  if (sd === 0) return { value, sd, df, ci: [value, value], p: value === 0 ? 1 : 0 };
  const q = studentTQuantile(1 - (1 - confidence) / 2, df);
  return { value, sd, df, ci: [value - q * sd, value + q * sd], p: 2 * (1 - studentTCdf(Math.abs(value) / sd, df)) };
}
