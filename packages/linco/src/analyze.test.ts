import { initBackend } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeCases, caseExcess, largerAttribute, subsetRows } from './analyze.js';
import { compareDebiasing } from './debias.js';
import type { LincoOptions } from './linco.js';
import { readCases } from './readers.js';
import { mean } from './stats.js';
import { generateCases } from './synthetic.js';

beforeAll(async () => {
  await initBackend();
});

const FIXTURE = new URL('../test-fixtures/cail2018-sample.jsonl', import.meta.url).pathname;

const small: LincoOptions = {
  sampling: { groupBy: 'region', testSize: 10, minPerJudge: 3 },
  model: { type: 'hashed-ngram', buckets: 256, dim: 8 },
  train: { epochs: 3, learningRate: 0.05 },
  baselineRepeats: 3,
  bootstrap: { samples: 200 },
  seed: 3,
};

describe('analyzeCases on the hand-written CAIL fixture', () => {
  it("runs the paper's three analyses end to end, every number against its null interval", async () => {
    const { cases, report: read } = readCases(FIXTURE);
    const report = await analyzeCases(cases, small, { attributes: ['region', 'gender'], readReport: read });
    expect(report).toMatchObject({ kind: 'linco-analysis', version: 1, data: { records: 48, kept: 45, cases: 45 } });

    // 1. Region and gender judges, and their difference.
    const [region, gender] = report.groups.attributes;
    expect(region).toMatchObject({ attribute: 'region', coverage: { found: 44, missing: 1 }, testSize: 10 });
    expect(region!.judges!.map((j) => j.group)).toEqual(['Guangdong', 'Hunan', 'Zhejiang']);
    // Jiangsu and Sichuan have one case each: too few to be judges, and said so.
    expect(region!.dropped!.map((d) => d.group)).toEqual(['Jiangsu', 'Sichuan']);
    expect(gender!.judges!.map((j) => j.group)).toEqual(['female', 'male']);
    const cmp = report.groups.comparison!;
    expect(cmp.first).toBe('region');
    expect(cmp.difference.term.value).toBeCloseTo(region!.excess!.overall.term - gender!.excess!.overall.term, 12);
    expect(cmp.difference.term.ci[0]).toBeLessThanOrEqual(cmp.difference.term.value);
    expect(['region', 'gender', 'neither (the interval of the difference contains 0)']).toContain(cmp.larger.term);

    // 2. Periods of the region judges' held-out cases: the rows partition the cases with a year.
    expect(report.periods.attribute).toBe('region');
    expect(report.periods.rows.reduce((s, r) => s + r.n, 0)).toBe(report.periods.coverage.found);
    for (const row of report.periods.rows) {
      expect(row.group).toMatch(/^\d{4}–\d{4}$/);
      expect(row.excess.term.value).toBeCloseTo(row.value.term - row.baseline.term, 12);
      expect(row.nullInterval!.term[0]).toBeGreaterThanOrEqual(0);
      expect(row.nullInterval!.charge[1]).toBeLessThanOrEqual(1);
    }
    expect(report.periods.trend.term.n).toBe(report.periods.coverage.found);

    // 3. Severity bands from the law, in order, and the correlation with its interval.
    expect(report.severity.rows.map((r) => r.group)).toEqual(['light', 'medium', 'heavy'].filter((b) => report.severity.rows.some((r) => r.group === b)));
    expect(report.severity.rows.reduce((s, r) => s + r.n, 0)).toBe(10);
    const c = report.severity.correlation.term;
    expect(c.n).toBe(10);
    if (Number.isFinite(c.rho)) {
      expect(c.ci[0]).toBeLessThanOrEqual(c.rho + 1e-12);
      expect(c.ci[1]).toBeGreaterThanOrEqual(c.rho - 1e-12);
    }
    expect(report.notes.some((n) => n.startsWith('region: found for 44 of 45 cases'))).toBe(true);
    // The report is plain JSON (what the dashboard reads).
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('reports an attribute it cannot analyse instead of failing the whole report', async () => {
    const { cases } = readCases(FIXTURE);
    const report = await analyzeCases(cases, { ...small, train: { epochs: 1 } }, { attributes: ['region', 'meta.nothing'] });
    expect(report.groups.attributes[1]).toMatchObject({ attribute: 'meta.nothing', coverage: { found: 0, missing: 45 } });
    expect(report.groups.attributes[1]!.error).toMatch(/no case has the group attribute "meta.nothing"/);
    expect(report.groups.comparison).toBeUndefined();
    await expect(analyzeCases(cases, { ...small, baselineRepeats: 1 }, { attributes: ['region'] })).rejects.toThrow(/at least 3/);
  });
});

describe('region vs gender', () => {
  it('names the larger attribute only when the interval of the difference excludes 0', () => {
    expect(largerAttribute('region', 'gender', { ci: [0.01, 0.2] })).toBe('region');
    expect(largerAttribute('region', 'gender', { ci: [-0.2, -0.01] })).toBe('gender');
    expect(largerAttribute('region', 'gender', { ci: [-0.01, 0.2] })).toMatch(/^neither/);
    expect(largerAttribute('region', 'gender', { ci: [0, 0.2] })).toMatch(/^neither/);
  });

  it('finds the injected attribute on synthetic cases, whichever is listed first', async () => {
    // Regional sentencing tendencies exp(±0.8), none by gender.
    const cases = generateCases({ count: 480, seed: 5, regions: ['Beijing', 'Hunan', 'Sichuan'], maleShare: 0.5, inject: { region: 0.8, gender: 0 } });
    const options: LincoOptions = { ...small, sampling: { groupBy: 'region', testSize: 60 }, model: { type: 'hashed-ngram', buckets: 1024, dim: 16 }, train: { epochs: 6, learningRate: 0.05 } };
    const report = await analyzeCases(cases, options, { attributes: ['gender', 'region'] });
    const cmp = report.groups.comparison!;
    expect(cmp).toMatchObject({ first: 'gender', second: 'region' });
    expect(cmp.difference.term.ci[1]).toBeLessThan(0);
    expect(cmp.larger.term).toBe('region');
  });
});

describe('subsetRows and caseExcess', () => {
  it('compare each group of cases with the same cases in the random splits', () => {
    const scores = { term: Float64Array.from([0.5, 0.7, 0.2, 0.4]), charge: Float64Array.from([1, 0, 0, 0]) };
    const panel = (t: number[]) => ({ term: Float64Array.from(t), charge: new Float64Array(4) });
    const run = { scores, baseline: [panel([0.1, 0.1, 0.2, 0.2]), panel([0.3, 0.1, 0.2, 0.4]), panel([0.2, 0.1, 0.2, 0.3])] };
    expect(Array.from(caseExcess(run, 'term'))).toEqual([0.3, 0.6, 0, 0.1].map((x) => expect.closeTo(x, 12)));
    const rows = subsetRows(run, ['a', 'a', 'b', undefined], { sampling: { groupBy: 'x' }, bootstrap: { samples: 50 } });
    expect(rows.map((r) => [r.group, r.n])).toEqual([['a', 2], ['b', 1]]);
    expect(rows[0]!.value.term).toBeCloseTo(0.6, 12);
    expect(rows[0]!.baseline.term).toBeCloseTo(mean([0.1, 0.1, 0.3, 0.1, 0.2, 0.1]), 12);
    expect(rows[0]!.excess.term.value).toBeCloseTo(0.45, 12);
    expect(rows[1]!.excess.term.value).toBeCloseTo(0, 12);
  });
});

describe('compareDebiasing', () => {
  it('judges each method over seeds against its null interval, the change as a t interval over seeds', async () => {
    const cases = generateCases({ count: 360, seed: 8, regions: ['Beijing', 'Hunan', 'Sichuan'], inject: { region: 0.6 } });
    const base: LincoOptions = { ...small, sampling: { groupBy: 'region', testSize: 40, crossGroupShare: 0.25 }, train: { epochs: 2, learningRate: 0.05 } };
    const r = await compareDebiasing(cases, base, { methods: ['reweight'], seeds: 3 });
    expect(r).toMatchObject({ attribute: 'region', seeds: 3, randomSplits: 3, notes: [] });
    const row = r.rows[0]!;
    expect(row).toMatchObject({ method: 'reweight', encoder: 'separate', crossGroupShare: 0.25 });
    expect(row.seeds.map((s) => s.seed)).toEqual([3, 104, 205]);
    const changes = row.seeds.map((s) => s.after.excess.overall.term - s.before.excess.overall.term);
    expect(row.change.excess.term.value).toBeCloseTo(mean(changes), 12);
    expect(row.change.excess.term.ci[0]).toBeLessThan(row.change.excess.term.value);
    expect(row.after.linco.term.value).toBeCloseTo(mean(row.seeds.map((s) => s.after.overall.term)), 12);
    for (const s of row.seeds) {
      expect(s.after.inside.term).toBe(s.after.overall.term >= s.after.baseline.ci.term[0] && s.after.overall.term <= s.after.baseline.ci.term[1]);
    }
    expect(row.insideNull.after).toBe(row.seeds.filter((s) => s.after.inside.term).length);
    await expect(compareDebiasing(cases, base, { methods: ['reweight'], seeds: 2 })).rejects.toThrow(/seeds must be an integer ≥ 3/);
    const none = await compareDebiasing(cases, { ...base, sampling: { groupBy: 'region', testSize: 40 }, train: { epochs: 1 } }, { methods: ['group-dro'], seeds: 3 });
    expect(none.notes[0]).toMatch(/crossGroupShare 0/);
  });
});
