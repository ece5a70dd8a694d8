import { describe, expect, it } from 'vitest';
import { planJudges, randomSplitJudges } from './judges.js';
import type { JudgmentCase } from './types.js';

function makeCases(sizes: Record<string, number>): JudgmentCase[] {
  const out: JudgmentCase[] = [];
  for (const [g, n] of Object.entries(sizes)) {
    for (let i = 0; i < n; i++) out.push({ id: `${g}${i}`, fact: 'f', charges: ['c'], articles: [], term: { months: 1, life: false, death: false }, groups: { region: g } });
  }
  return out;
}

describe('planJudges', () => {
  const cases = makeCases({ big: 400, mid: 150, small: 60, tiny: 2 });

  it('gives every judge the same number of its own group’s cases, disjoint from the test set', () => {
    const plan = planJudges(cases, { groupBy: 'region', testSize: 50, seed: 1 });
    expect(plan.judges.map((j) => j.group)).toEqual(['big', 'mid', 'small']);
    expect(plan.dropped).toEqual([{ group: 'tiny', available: expect.any(Number) }]);
    // Default size: the smallest kept group's training cases.
    const smallTrain = plan.trainPool.filter((r) => cases[r]!.groups['region'] === 'small').length;
    expect(plan.perJudge).toBe(smallTrain);
    const test = new Set(plan.testRows);
    expect(test.size).toBe(50);
    for (const j of plan.judges) {
      expect(j.rows).toHaveLength(plan.perJudge);
      expect(new Set(j.rows).size).toBe(plan.perJudge); // without replacement
      expect(j.rows.every((r) => cases[r]!.groups['region'] === j.group && !test.has(r))).toBe(true);
    }
  });

  it('honours perJudge and rejects sizes the smallest group cannot fill', () => {
    expect(planJudges(cases, { groupBy: 'region', perJudge: 30, testSize: 10 }).judges.every((j) => j.rows.length === 30)).toBe(true);
    expect(() => planJudges(cases, { groupBy: 'region', perJudge: 10_000, testSize: 10 })).toThrow(/exceeds the smallest group/);
    expect(() => planJudges(cases, { groupBy: 'gender' })).toThrow(/no case has the group attribute "gender"/);
    expect(() => planJudges(makeCases({ a: 100 }), { groupBy: 'region', testSize: 10 })).toThrow(/at least 2 groups/);
  });

  it('mixes in other groups’ cases at crossGroupShare', () => {
    const plan = planJudges(cases, { groupBy: 'region', perJudge: 40, testSize: 10, crossGroupShare: 0.25 });
    for (const j of plan.judges) {
      const own = j.caseGroups.filter((g) => g === j.group).length;
      expect(own).toBe(30);
      expect(j.caseGroups).toHaveLength(40);
    }
  });

  it('random-split judges have the same sizes, no overlap, and ignore groups', () => {
    const plan = planJudges(cases, { groupBy: 'region', testSize: 50 });
    const random = randomSplitJudges(plan, 9);
    expect(random.map((j) => j.rows.length)).toEqual(plan.judges.map(() => plan.perJudge));
    const all = random.flatMap((j) => j.rows);
    expect(new Set(all).size).toBe(all.length);
    const test = new Set(plan.testRows);
    expect(all.some((r) => test.has(r))).toBe(false);
    // Drawn from the whole pool: the big group dominates a random judge.
    const bigShare = random[0]!.rows.filter((r) => cases[r]!.groups['region'] === 'big').length / plan.perJudge;
    expect(bigShare).toBeGreaterThan(0.4);
  });

  it('placebo splits permute the group labels: same sizes and procedure, groups ignored', () => {
    const real = planJudges(cases, { groupBy: 'region', testSize: 50, seed: 1 });
    const a = planJudges(cases, { groupBy: 'region', testSize: 50, seed: 1, permuteLabels: 1 });
    const b = planJudges(cases, { groupBy: 'region', testSize: 50, seed: 1, permuteLabels: 2 });
    expect(real.placebo).toBe(false);
    expect(a.placebo).toBe(true);
    expect(a.testRows).toEqual(real.testRows);
    expect(a.perJudge).toBe(real.perJudge);
    expect(new Set(a.trainPool)).toEqual(new Set(real.trainPool));
    expect(a.judges.map((j) => j.group)).toEqual(real.judges.map((j) => j.group));
    const test = new Set(a.testRows);
    const all = a.judges.flatMap((j) => j.rows);
    expect(new Set(all).size).toBe(all.length);
    expect(all.some((r) => test.has(r))).toBe(false);
    // Placebo 'small' is a random draw: the big group dominates it as it dominates the pool.
    const smallJudge = a.judges.find((j) => j.group === 'small')!;
    expect(smallJudge.rows.filter((r) => cases[r]!.groups['region'] === 'big').length / a.perJudge).toBeGreaterThan(0.4);
    expect(smallJudge.caseGroups.every((g) => g === 'small')).toBe(true);
    expect(b.judges[0]!.rows).not.toEqual(a.judges[0]!.rows);
    expect(planJudges(cases, { groupBy: 'region', testSize: 50, seed: 1, permuteLabels: 1 })).toEqual(a);
  });

  it('resamples judges’ cases while keeping the held-out set', () => {
    const a = planJudges(cases, { groupBy: 'region', testSize: 50, perJudge: 40, seed: 5 });
    const b = planJudges(cases, { groupBy: 'region', testSize: 50, perJudge: 40, seed: 5, resample: 1 });
    expect(b.testRows).toEqual(a.testRows);
    expect(b.judges[0]!.rows).not.toEqual(a.judges[0]!.rows);
    expect(b.judges.every((j) => j.rows.length === 40 && j.rows.every((r) => cases[r]!.groups['region'] === j.group))).toBe(true);
  });
});
