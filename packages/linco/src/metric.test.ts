import { describe, expect, it } from 'vitest';
import { buildFrame, caseChargeDisagreement, caseScores, caseTermDisagreement, jaccardDistance, METRIC_RANGE, termDistance } from './metric.js';
import { compareWithNull } from './stats.js';
import type { Term } from './types.js';

const fixed = (months: number): Term => ({ months, life: false, death: false });
const LIFE: Term = { months: 0, life: true, death: false };
const DEATH: Term = { months: 0, life: false, death: true };
const L13 = Math.log(13);

describe('term disagreement (hand-computed)', () => {
  it('is the mean pairwise |ln(1+a) − ln(1+b)| by default', () => {
    // y = [ln 13, ln 13, 0]: pair distances 0, ln 13, ln 13.
    expect(caseTermDisagreement([fixed(12), fixed(12), fixed(0)])).toBeCloseTo((2 * L13) / 3, 12);
    expect(caseTermDisagreement([fixed(5), fixed(5)])).toBe(0);
    expect(termDistance(fixed(3), fixed(15))).toBeCloseTo(Math.log(16 / 4), 12);
  });

  it("'std' equals the population standard deviation of ln(1+months)", () => {
    const ys = [12, 12, 0].map((m) => Math.log1p(m));
    const mu = ys.reduce((a, b) => a + b) / 3;
    const sd = Math.sqrt(ys.reduce((a, y) => a + (y - mu) ** 2, 0) / 3);
    expect(caseTermDisagreement([fixed(12), fixed(12), fixed(0)], { perCase: 'std' })).toBeCloseTo(sd, 12);
    expect(sd).toBeCloseTo((L13 * Math.SQRT2) / 3, 12);
  });

  it('maps life and death to month equivalents, or treats them as categories', () => {
    expect(caseTermDisagreement([LIFE, fixed(299)])).toBeCloseTo(Math.log(301 / 300), 12);
    expect(caseTermDisagreement([LIFE, DEATH], { lifeMonths: 100, deathMonths: 200 })).toBeCloseTo(Math.log(201 / 101), 12);
    // Category mode: pairs (life, life) = 0, (life, 12) = (life, 12) = 1.
    expect(caseTermDisagreement([LIFE, LIFE, fixed(12)], { lifeDeath: 'category' })).toBeCloseTo(2 / 3, 12);
    expect(caseTermDisagreement([DEATH, LIFE], { lifeDeath: 'category', categoryDistance: 2.5 })).toBe(2.5);
    expect(() => caseTermDisagreement([fixed(1)])).toThrow(/at least 2 judges/);
    expect(() => caseTermDisagreement([fixed(1), fixed(2)], { lifeDeath: 'x' as 'map' })).toThrow(/metric.term.lifeDeath/);
  });
});

describe('charge disagreement (hand-computed)', () => {
  it('pairwise, majority and entropy forms', () => {
    // a a b b: agreeing ordered pairs 2 + 2 of 12.
    expect(caseChargeDisagreement(['a', 'a', 'b', 'b'])).toBeCloseTo(1 - 4 / 12, 12);
    expect(caseChargeDisagreement(['a', 'a', 'b', 'b'], { perCase: 'majority' })).toBe(0.5);
    expect(caseChargeDisagreement(['a', 'a', 'b', 'b'], { perCase: 'entropy' })).toBeCloseTo(0.5, 12);
    expect(caseChargeDisagreement([1, 1, 1])).toBe(0);
    expect(caseChargeDisagreement(['a', 'b', 'c'])).toBe(1);
    expect(caseChargeDisagreement(['a', 'b', 'c'], { perCase: 'entropy' })).toBeCloseTo(1, 12);
    expect(() => caseChargeDisagreement(['a', 'b'], { perCase: 'nope' as 'pairwise' })).toThrow(/metric.charge.perCase/);
  });
});

describe('charge-set disagreement (hand-computed)', () => {
  it('is the mean pairwise Jaccard distance between the judges’ charge sets', () => {
    expect(jaccardDistance(['a', 'b'], ['a'])).toBe(0.5);
    expect(jaccardDistance(['a', 'b'], ['b', 'c'])).toBeCloseTo(2 / 3, 12);
    expect(jaccardDistance(['a'], ['b'])).toBe(1);
    expect(jaccardDistance(['b', 'a', 'a'], ['a', 'b'])).toBe(0);
    expect(jaccardDistance([], [])).toBe(0);
    // {a,b}–{a} = 1/2, {a,b}–{b,c} = 2/3, {a}–{b,c} = 1: mean 13/18.
    expect(caseChargeDisagreement([['a', 'b'], ['a'], ['b', 'c']])).toBeCloseTo(13 / 18, 12);
    // Same sets in any order: no disagreement.
    expect(caseChargeDisagreement([['a', 'b'], ['b', 'a'], ['a', 'b']])).toBe(0);
    // Exact-set categories for majority and entropy: {a,b} ×2, {a} ×1, {b} ×1.
    const sets = [['a', 'b'], ['b', 'a'], ['a'], ['b']];
    expect(caseChargeDisagreement(sets, { perCase: 'majority' })).toBe(0.5);
    expect(caseChargeDisagreement(sets, { perCase: 'entropy' })).toBeCloseTo(-(0.5 * Math.log(0.5) + 2 * 0.25 * Math.log(0.25)) / Math.log(4), 12);
    // Pairwise: 1 pair at 0, 4 pairs {a,b}–{a|b} at 1/2, 1 pair {a}–{b} at 1: (0 + 2 + 1) / 6.
    expect(caseChargeDisagreement(sets)).toBeCloseTo(0.5, 12);
  });

  it('reduces to the single-charge measure on singleton sets', () => {
    const single = ['a', 'a', 'b', 'c', 'c'];
    const singletons = single.map((c) => [c]);
    expect(caseChargeDisagreement(singletons)).toBeCloseTo(caseChargeDisagreement(single), 12);
    expect(caseChargeDisagreement(singletons)).toBeCloseTo(1 - 4 / 20, 12);
    for (const perCase of ['majority', 'entropy'] as const) {
      expect(caseChargeDisagreement(singletons, { perCase })).toBeCloseTo(caseChargeDisagreement(single, { perCase }), 12);
    }
    // Mixed singles and sets: a bare charge is the set {c}.
    expect(caseChargeDisagreement(['a', ['a', 'b']])).toBe(0.5);
  });

  it('scores multi-label panels case by case', () => {
    const scores = caseScores({
      charges: [
        [[0, 1], [2]],
        [[0], [2]],
      ],
      terms: [
        [fixed(1), fixed(1)],
        [fixed(1), fixed(1)],
      ],
    });
    expect([...scores.charge]).toEqual([0.5, 0]);
  });
});

describe('LincoFrame', () => {
  const preds = {
    // judges × cases
    charges: [
      ['a', 'a', 'b'],
      ['a', 'b', 'b'],
    ],
    terms: [
      [fixed(12), fixed(0), fixed(3)],
      [fixed(12), fixed(12), fixed(15)],
    ],
  };

  it('aggregates per-case scores into overall, byGroup, difference and ratio', () => {
    const scores = caseScores(preds);
    expect([...scores.charge]).toEqual([0, 1, 0]);
    expect(scores.term[1]).toBeCloseTo(L13, 12);
    const frame = buildFrame({ scores, breakdowns: { severity: ['light', 'heavy', 'light'] }, bootstrap: { samples: 200 } });
    const termMean = (0 + L13 + Math.log(4)) / 3;
    expect(frame.overall.term).toBeCloseTo(termMean, 12);
    expect(frame.overall.charge).toBeCloseTo(1 / 3, 12);
    expect(frame.byGroup['severity']).toEqual({
      heavy: { term: expect.closeTo(L13, 12), charge: 1, n: 1 },
      light: { term: expect.closeTo(Math.log(4) / 2, 12), charge: 0, n: 2 },
    });
    expect(frame.difference('severity').term).toBeCloseTo(L13 - Math.log(4) / 2, 12);
    expect(frame.difference('severity').charge).toBe(1);
    expect(frame.ratio('severity').term).toBeCloseTo(Math.log(4) / 2 / L13, 12);
    expect(frame.ratio('severity').charge).toBe(0);
    expect(frame.ci.term[0]).toBeLessThanOrEqual(frame.overall.term);
    expect(frame.baseline).toBeUndefined();
    expect(() => frame.difference('year')).toThrow(/no breakdown "year"/);
    expect(JSON.parse(JSON.stringify(frame)).overall.charge).toBeCloseTo(1 / 3);
  });

  it('reports the random-split baseline and the paired excess over it', () => {
    const scores = caseScores(preds);
    const base = { term: scores.term.map((t) => t / 2), charge: new Float64Array(3) };
    const frame = buildFrame({ scores, baseline: [base], bootstrap: { samples: 200 } });
    expect(frame.baseline!.overall.term).toBeCloseTo(frame.overall.term / 2, 12);
    expect(frame.baseline!.repeats).toEqual([{ term: expect.closeTo(frame.overall.term / 2, 12), charge: 0 }]);
    expect(frame.excess!.overall.term).toBeCloseTo(frame.overall.term / 2, 12);
    expect(frame.excess!.overall.charge).toBeCloseTo(1 / 3, 12);
  });

  it('with ≥ 3 random splits, reports the null interval, split sd and p of compareWithNull', () => {
    const scores = caseScores(preds);
    const panels = [0.5, 0.7, 0.6].map((k) => ({ term: scores.term.map((t) => t * k), charge: scores.charge.map((c) => c * k) }));
    const frame = buildFrame({ scores, baseline: panels, bootstrap: { samples: 300, seed: 4 } });
    const c = compareWithNull(scores.term, panels.map((p) => p.term), { samples: 300, seed: 4, range: METRIC_RANGE.term });
    expect(frame.baseline!.interval).toBe('split+cases');
    expect(frame.baseline!.ci.term).toEqual(c.nullInterval);
    expect(frame.baseline!.splitSd!.term).toBeCloseTo(c.splitSd, 12);
    expect(frame.excess!.ci.term).toEqual(c.excessCi);
    expect(frame.excess!.p!.term).toBeCloseTo(c.p, 12);
    expect(frame.baseline!.overall.term).toBeCloseTo(frame.overall.term * 0.6, 12);
    // One split: case bootstrap only.
    expect(buildFrame({ scores, baseline: [panels[0]!] }).baseline!.interval).toBe('cases');
  });

  it('rejects mismatched predictions', () => {
    expect(() => caseScores({ charges: [['a']], terms: [[fixed(1)]] })).toThrow(/at least 2 judges/);
    expect(() => caseScores({ charges: [['a'], ['a', 'b']], terms: [[fixed(1)], [fixed(1)]] })).toThrow(/judge 1/);
  });
});
