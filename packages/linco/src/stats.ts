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
