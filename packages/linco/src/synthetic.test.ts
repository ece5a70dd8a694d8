import { describe, expect, it } from 'vitest';
import { severityBand } from './severity.js';
import { CHARGES, combineTerms, generateCases, severityModulation } from './synthetic.js';

const meanLogTerm = (cases: ReturnType<typeof generateCases>) => {
  const fixed = cases.filter((c) => !c.term.life && !c.term.death);
  return fixed.reduce((a, c) => a + Math.log1p(c.term.months), 0) / fixed.length;
};

describe('generateCases', () => {
  it('is deterministic and writes the charge and circumstances into the text', () => {
    const a = generateCases({ count: 50, seed: 4 });
    expect(generateCases({ count: 50, seed: 4 })).toEqual(a);
    for (const c of a) {
      expect(c.fact).toMatch(/被告人/);
      const spec = CHARGES.find((s) => s.zh === c.charges[0])!;
      expect(spec).toBeDefined();
      expect(c.articles).toEqual([spec.article]);
      expect(c.groups['region']).toBeDefined();
    }
    const en = generateCases({ count: 5, seed: 4, language: 'en' });
    expect(en[0]!.fact).toMatch(/^The prosecution alleges/);
  });

  it('injects regional tendencies that grow with strength; zero injection leaves regions alike', () => {
    const regions = ['low', 'high'];
    const gap = (region: number) => {
      const cases = generateCases({ count: 4000, seed: 2, regions, regionWeights: [1, 1], inject: { region, chargeFlip: 0 } });
      return meanLogTerm(cases.filter((c) => c.groups['region'] === 'high')) - meanLogTerm(cases.filter((c) => c.groups['region'] === 'low'));
    };
    const g0 = gap(0);
    const g1 = gap(0.2);
    const g2 = gap(0.5);
    expect(Math.abs(g0)).toBeLessThan(0.1);
    expect(g1).toBeGreaterThan(0.25);
    expect(g2).toBeGreaterThan(g1 + 0.3);
  });

  it('injects gender tendencies and charge flips', () => {
    const cases = generateCases({ count: 4000, seed: 3, maleShare: 0.5, inject: { gender: 0.4, chargeFlip: 1 } });
    const male = cases.filter((c) => c.groups['gender'] === 'male');
    const female = cases.filter((c) => c.groups['gender'] === 'female');
    expect(meanLogTerm(male) - meanLogTerm(female)).toBeGreaterThan(0.4);
    // Dangerous driving's text, judged as a traffic accident: only the τ = +1 group flips.
    const flipped = (list: typeof cases) => list.filter((c) => c.fact.includes('醉酒驾驶') && c.charges[0] === '交通肇事').length;
    expect(flipped(male)).toBeGreaterThan(10);
    expect(flipped(female)).toBe(0);
  });

  it('modulates by severity and bands severities', () => {
    expect(severityModulation(1, 0.8)).toBeCloseTo(1.8);
    expect(severityModulation(5, 0.8)).toBeCloseTo(0.2);
    expect(severityModulation(3, 0.8)).toBe(1);
    expect([1, 2, 3, 4, 5].map(severityBand)).toEqual(['light', 'light', 'medium', 'heavy', 'heavy']);
    expect(() => generateCases({ count: 0 })).toThrow(/count/);
    expect(() => generateCases({ count: 5, inject: { region: -1 } })).toThrow(/inject.region/);
  });

  it('writes multi-charge cases: both acts in the text, the graver charge first, combined terms', () => {
    const single = generateCases({ count: 200, seed: 4 });
    // multiChargeRate 0 keeps the single-charge random stream.
    expect(generateCases({ count: 200, seed: 4, multiChargeRate: 0 })).toEqual(single);
    const cases = generateCases({ count: 2000, seed: 4, multiChargeRate: 0.4 });
    const multi = cases.filter((c) => c.charges.length === 2);
    expect(multi.length / cases.length).toBeGreaterThan(0.3);
    expect(multi.length / cases.length).toBeLessThan(0.45);
    for (const c of multi) {
      const [a, b] = c.charges.map((n) => CHARGES.find((s) => s.zh === n)!);
      expect(a!.severity).toBeGreaterThanOrEqual(b!.severity);
      expect(c.severity).toBe(a!.severity);
      expect(c.fact).toMatch(/另查明，被告人还/);
      expect(c.articles).toEqual([...new Set([a!.article, b!.article])]);
      expect(c.term.months).toBeLessThanOrEqual(240);
    }
    expect(generateCases({ count: 5, seed: 1, language: 'en', multiChargeRate: 1 })[0]!.fact).toMatch(/it was further found that the defendant also/);
    expect(() => generateCases({ count: 5, multiChargeRate: 2 })).toThrow(/multiChargeRate/);
  });

  it('combines two sentences: life or death wins, else the longer plus half the shorter, capped', () => {
    const f = (months: number) => ({ months, life: false, death: false });
    expect(combineTerms(f(24), f(10))).toEqual(f(29));
    expect(combineTerms(f(200), f(120))).toEqual(f(240));
    expect(combineTerms(f(200), f(120), 300)).toEqual(f(260));
    expect(combineTerms(f(6), { months: 0, life: true, death: false })).toEqual({ months: 0, life: true, death: false });
    expect(combineTerms({ months: 0, life: true, death: false }, { months: 0, life: false, death: true })).toEqual({ months: 0, life: false, death: true });
  });

  it('codes life imprisonment and death apart from month counts', () => {
    const cases = generateCases({ count: 3000, seed: 8 });
    const life = cases.filter((c) => c.term.life);
    const death = cases.filter((c) => c.term.death);
    expect(life.length).toBeGreaterThan(0);
    expect(death.length).toBeGreaterThan(0);
    expect([...life, ...death].every((c) => c.term.months === 0)).toBe(true);
    expect(cases.every((c) => c.term.months <= 180)).toBe(true);
  });
});
