// Paired statistics over seeds: mean, and the mean of paired differences with a 95 %
// Student-t interval (the rows of one seed share data and initialisation, so differences
// between rows cancel the seed-to-seed variation).

// Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
const T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export function tQuantile975(df) {
  if (df < 1) return Number.NaN;
  return df <= 30 ? T975[df - 1] : 1.96 + 2.4 / df;
}

export function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Mean and 95 % t-interval half-width of a sample (NaN half-width for one value). */
export function interval(xs) {
  const n = xs.length;
  const m = mean(xs);
  if (n < 2) return { mean: m, half: Number.NaN, n };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1));
  return { mean: m, half: (tQuantile975(n - 1) * sd) / Math.sqrt(n), n };
}

/** Paired difference a − b over the seeds both have. */
export function pairedDifference(a, b) {
  const seeds = Object.keys(a).filter((s) => s in b && Number.isFinite(a[s]) && Number.isFinite(b[s]));
  return interval(seeds.map((s) => a[s] - b[s]));
}
