/**
 * Virtual-judge sampling. Cases are split by a group attribute; every judge gets the same
 * number of training cases (sampled without replacement), so that a large group's better
 * model cannot masquerade as inconsistency; the held-out cases that every judge predicts
 * are drawn first and never trained on. The random-split baseline draws judges of the same
 * sizes from the same training pool with the group ignored.
 */
import { LincoInputError } from './errors.js';
import { createRng, type Rng } from '@kiln/tensor';
import type { JudgmentCase } from './types.js';

export interface SamplingOptions {
  /** Group attribute that defines the judges (e.g. 'region', 'gender'). */
  groupBy: string;
  /** Training cases per judge. Default: the smallest eligible group's training size. */
  perJudge?: number;
  /** Groups with fewer training cases are dropped (and reported). Default 3. */
  minPerJudge?: number;
  /** Only these groups become judges. Default: every group present. */
  groups?: string[];
  /** Held-out cases every judge predicts. Default min(300, 20 % of the cases). */
  testSize?: number;
  /**
   * Share of each judge's cases drawn evenly from the other groups (de-biasing needs to see
   * other groups' decisions). Default 0: a judge learns from its own group only.
   */
  crossGroupShare?: number;
  seed?: number;
  /**
   * Which equal-size resample of the judges' cases to draw (0, 1, ...). The held-out set
   * depends on `seed` only, so resamples of one plan predict the same cases.
   */
  resample?: number;
  /**
   * Placebo split for the random-split baseline: when set, the group labels of the training
   * pool (the kept groups' training cases) are permuted with this seed before the judges are
   * drawn, so every placebo group has exactly the real group's size and goes through the same
   * equal-size sampling, while its cases are a random draw. Undefined: the real labels.
   */
  permuteLabels?: number;
}

export interface JudgePlan {
  groupBy: string;
  testRows: number[];
  judges: { group: string; rows: number[]; caseGroups: string[] }[];
  dropped: { group: string; available: number }[];
  perJudge: number;
  /** Training rows of the judged groups (the random-split pool). */
  trainPool: number[];
  /** Whether the judges were drawn from permuted (placebo) group labels. */
  placebo: boolean;
}

/** A seed for stream `k` derived from `seed`, distinct from the resample streams. */
function hashSeed(seed: number, k: number): number {
  return ((seed * 104_729) ^ (k * 2_654_435_761)) >>> 0;
}

function sample(rng: Rng, from: number[], n: number): number[] {
  const copy = from.slice();
  rng.shuffle(copy);
  return copy.slice(0, n);
}

export function planJudges(cases: JudgmentCase[], options: SamplingOptions): JudgePlan {
  const { groupBy } = options;
  const rng = createRng(options.seed ?? 3);
  const minPer = options.minPerJudge ?? 3;
  const share = options.crossGroupShare ?? 0;
  if (!(share >= 0 && share < 1)) throw new LincoInputError(`sampling.crossGroupShare must be in [0, 1), got ${share}`);
  const eligible = cases.map((_, i) => i).filter((i) => {
    const g = cases[i]!.groups[groupBy];
    return g !== undefined && (!options.groups || options.groups.includes(g));
  });
  if (eligible.length === 0) throw new LincoInputError(`sampling.groupBy: no case has the group attribute "${groupBy}"`);
  const testSize = options.testSize ?? Math.min(300, Math.floor(eligible.length * 0.2));
  if (!Number.isInteger(testSize) || testSize < 1 || testSize >= eligible.length) {
    throw new LincoInputError(`sampling.testSize must be an integer in [1, ${eligible.length - 1}], got ${testSize}`);
  }
  const shuffled = sample(rng, eligible, eligible.length);
  const testRows = shuffled.slice(0, testSize).sort((a, b) => a - b);
  const pick = options.resample ? createRng((options.seed ?? 3) * 7919 + options.resample) : rng;
  const train = shuffled.slice(testSize);
  const byGroup = new Map<string, number[]>();
  for (const i of train) {
    const g = cases[i]!.groups[groupBy]!;
    const list = byGroup.get(g) ?? [];
    list.push(i);
    byGroup.set(g, list);
  }
  const names = [...byGroup.keys()].sort();
  const dropped = names.filter((g) => byGroup.get(g)!.length < minPer).map((g) => ({ group: g, available: byGroup.get(g)!.length }));
  const kept = names.filter((g) => byGroup.get(g)!.length >= minPer);
  if (kept.length < 2) {
    throw new LincoInputError(`sampling.groupBy "${groupBy}": need at least 2 groups with ≥ ${minPer} training cases, got ${kept.length} (${names.map((g) => `${g}: ${byGroup.get(g)!.length}`).join(', ')})`);
  }
  if (options.permuteLabels !== undefined) {
    // Placebo groups: the kept groups' training rows, shuffled and dealt back in the real
    // groups' sizes. Only the association between group and cases is broken.
    const pool = sample(createRng(hashSeed(options.seed ?? 3, options.permuteLabels)), kept.flatMap((g) => byGroup.get(g)!), Infinity);
    let at = 0;
    for (const g of kept) {
      const n = byGroup.get(g)!.length;
      byGroup.set(g, pool.slice(at, at + n));
      at += n;
    }
  }
  const smallest = Math.min(...kept.map((g) => byGroup.get(g)!.length));
  const perJudge = options.perJudge ?? smallest;
  if (!Number.isInteger(perJudge) || perJudge < 1) throw new LincoInputError(`sampling.perJudge must be a positive integer, got ${perJudge}`);
  if (perJudge > smallest) throw new LincoInputError(`sampling.perJudge ${perJudge} exceeds the smallest group's ${smallest} training cases`);
  // A case's (possibly placebo) group, for de-biasing methods that weight by group.
  const label = new Map<number, string>();
  for (const g of kept) for (const r of byGroup.get(g)!) label.set(r, g);
  const own = Math.round(perJudge * (1 - share));
  const judges = kept.map((g) => {
    const rows = sample(pick, byGroup.get(g)!, own);
    const others = kept.filter((x) => x !== g);
    const extra = perJudge - own;
    for (let e = 0; e < extra; e++) {
      const list = byGroup.get(others[e % others.length]!)!;
      rows.push(list[pick.int(0, list.length)]!);
    }
    return { group: g, rows, caseGroups: rows.map((r) => label.get(r)!) };
  });
  const trainPool = kept.flatMap((g) => byGroup.get(g)!);
  return { groupBy, testRows, judges, dropped, perJudge, trainPool, placebo: options.permuteLabels !== undefined };
}

/**
 * Uniform random-split judges: the same number of judges and sizes, drawn from the whole
 * pool. The default baseline is the placebo split (`permuteLabels`), which follows the
 * group procedure exactly; this one is kept for `baselineSplit: 'uniform'`.
 */
export function randomSplitJudges(plan: JudgePlan, seed: number): { group: string; rows: number[] }[] {
  const rng = createRng(seed);
  const pool = sample(rng, plan.trainPool, plan.trainPool.length);
  const k = plan.judges.length;
  if (pool.length < k * plan.perJudge) throw new Error(`random split: pool of ${pool.length} cases cannot fill ${k} judges of ${plan.perJudge}`);
  return plan.judges.map((_, j) => ({ group: `random-${j}`, rows: pool.slice(j * plan.perJudge, (j + 1) * plan.perJudge) }));
}
