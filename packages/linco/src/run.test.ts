import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, fieldDefaults } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { ANALYZE_FIELDS, checkAnalyzeConfig, LINCO_FIELDS, LINCO_PRESETS, lincoOptions, resolveLincoConfig } from './config.js';
import type { AttributeCoverage } from './groups.js';
import { FAIRLEX_REGIONS } from './readers.js';
import { runLinco, runLincoDetailed } from './run.js';
import { generateCases } from './synthetic.js';

const FIXTURE = new URL('../test-fixtures/cail2018-sample.jsonl', import.meta.url).pathname;

describe('resolveLincoConfig', () => {
  it('is the field table defaults, a preset over them, then the overrides', () => {
    expect(resolveLincoConfig({})).toEqual(fieldDefaults(LINCO_FIELDS));
    const tiny = resolveLincoConfig({ preset: 'tiny', epochs: 2 });
    expect(tiny).toEqual({ ...fieldDefaults(LINCO_FIELDS), ...LINCO_PRESETS.tiny.values, epochs: 2 });
    expect(tiny).toMatchObject({ cases: 600, regions: ['Beijing', 'Hunan', 'Sichuan'], injectRegion: 0.6, baselineRepeats: 3, epochs: 2 });
    // The pipeline options follow the config key by key.
    const o = lincoOptions(tiny);
    expect(o).toMatchObject({
      sampling: { groupBy: 'region', minPerJudge: 3, testSize: 60, crossGroupShare: 0 },
      model: { type: 'hashed-ngram', buckets: 1024, dim: 16 },
      train: { epochs: 2, batchSize: 32, learningRate: 0.05, termWeight: 1 },
      baselineRepeats: 3,
      bootstrap: { samples: 200, confidence: 0.95, seed: 1 },
      encoder: 'separate',
    });
    expect(o.sampling.perJudge).toBeUndefined();
    expect(lincoOptions(resolveLincoConfig({ debias: 'adversarial' }))).toMatchObject({ encoder: 'shared', debias: { method: 'adversarial', adversaryWeight: 1, adversaryObjective: 'reverse' } });
  });

  it('names the offending key', () => {
    const bad: [unknown, string, RegExp][] = [
      [{ preset: 'huge' }, 'preset', /'preset' must be one of 'default', 'tiny', got "huge"/],
      [{ epochs: 0 }, 'epochs', /config key 'epochs' in config must be an integer ≥ 1, got 0/],
      [{ learningRate: -1 }, 'learningRate', /must be a number > 0/],
      [{ epoch: 3 }, 'epoch', /config key 'epoch' in config is not known/],
      [{ model: 'bert' }, 'model', /must be one of 'hashed-ngram', 'text-cnn'/],
      [{ injectRegion: -0.1 }, 'injectRegion', /≥ 0/],
      [{ crossGroupShare: 1 }, 'crossGroupShare', /< 1/],
      [{ confidence: 1.5 }, 'confidence', /≤ 0.999/],
      [{ lifeDeath: 'drop' }, 'lifeDeath', /'map', 'category'/],
      [{ chargePerCase: 'kl' }, 'chargePerCase', /'pairwise', 'majority', 'entropy'/],
      [{ debias: 'magic' }, 'debias', /'none', 'adversarial', 'reweight', 'group-dro'/],
      [{ groupBy: ' ' }, 'groupBy', /must name an attribute/],
      [{ replicates: 0 }, 'replicates', /≥ 1/],
      [{ baselineRepeats: 2 }, 'baselineRepeats', /0 \(no baseline\), 1 .* or at least 3, got 2.*1 degree of freedom/],
      [{ baselineSplit: 'halves' }, 'baselineSplit', /'permute', 'uniform'/],
      [{ debias: 'reweight', baselineSplit: 'uniform' }, 'baselineSplit', /de-biasing needs 'permute'/],
      [{ regions: ['Beijing'] }, 'regions', /at least 2 regions/],
      [{ colour: 'red' }, 'colour', /is not known/],
    ];
    for (const [input, key, message] of bad) {
      let err: unknown;
      try {
        resolveLincoConfig(input);
      } catch (e) {
        err = e;
      }
      expect(err, key).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).key, key).toBe(key);
      expect((err as Error).message, key).toMatch(message);
    }
  });
});

describe('the analysis config', () => {
  it('adds the compared attributes and the de-biasing comparison, and needs a null interval and plain judges', () => {
    const c = resolveLincoConfig({ preset: 'tiny', debiasMethods: ['adversarial', 'group-dro'] }, ANALYZE_FIELDS);
    expect(c).toMatchObject({ attributes: ['region', 'gender'], debiasMethods: ['adversarial', 'group-dro'], debiasSeeds: 3, baselineRepeats: 3 });
    expect(() => checkAnalyzeConfig(c)).not.toThrow();
    expect(() => checkAnalyzeConfig({ ...c, baselineRepeats: 1 })).toThrow(/'baselineRepeats' must be at least 3 for analyze/);
    expect(() => checkAnalyzeConfig({ ...c, debias: 'reweight' })).toThrow(/compare de-biasing methods with debiasMethods/);
    expect(() => resolveLincoConfig({ debiasSeeds: 2 }, ANALYZE_FIELDS)).toThrow(/'debiasSeeds' in config must be an integer ≥ 3/);
    expect(() => resolveLincoConfig({ debiasMethods: ['magic'] }, ANALYZE_FIELDS)).toThrow(/'debiasMethods'/);
  });
});

describe('runLinco', () => {
  it('runs the tiny preset end to end: regional inconsistency injected at 0.6 stands well outside the null interval', async () => {
    const stages = new Set<string>();
    const frame = await runLinco({ preset: 'tiny' }, { onProgress: (e) => stages.add(e.stage) });
    expect([...stages]).toEqual(expect.arrayContaining(['backend', 'data', 'plan', 'train', 'predict', 'done']));
    // The plan depends on the seeds only, never on the backend.
    expect(frame.info['judges']).toEqual([
      { group: 'Beijing', cases: 163 },
      { group: 'Hunan', cases: 163 },
      { group: 'Sichuan', cases: 163 },
    ]);
    expect(frame.info).toMatchObject({ testSize: 60, perJudge: 163, baselineRepeats: 3, baselineSplit: 'permute', encoder: 'separate', debias: 'none', chargesRecorded: true });
    expect((frame.info['coverage'] as AttributeCoverage)).toMatchObject({ total: 600, found: 600, missing: 0, bySource: { metadata: 600 } });
    const b = frame.baseline!;
    expect(b.interval).toBe('split+cases');
    expect(b.repeats).toHaveLength(3);
    for (const m of ['term', 'charge'] as const) {
      // The frame's numbers hang together: baseline = mean of the panels, excess = LInCo − baseline.
      expect(b.overall[m]).toBeCloseTo(b.repeats.reduce((s, r) => s + r[m], 0) / 3, 12);
      expect(frame.excess!.overall[m]).toBeCloseTo(frame.overall[m] - b.overall[m], 12);
      expect(frame.ci[m][0]).toBeLessThanOrEqual(frame.overall[m]);
      expect(frame.ci[m][1]).toBeGreaterThanOrEqual(frame.overall[m]);
      expect(b.ci[m][0]).toBeGreaterThanOrEqual(0);
      expect(frame.difference('severity')[m]).toBeCloseTo(frame.groupMax('severity')[m] - frame.groupMin('severity')[m], 12);
    }
    expect(b.ci.charge[1]).toBeLessThanOrEqual(1);
    // exp(±0.6) regional term tendencies: judges disagree by far more than the random splits.
    expect(frame.overall.term).toBeGreaterThan(0.3);
    expect(frame.overall.term).toBeLessThan(1.5);
    expect(frame.excess!.ci.term[0]).toBeGreaterThan(0);
    expect(frame.excess!.p!.term).toBeLessThan(0.05);
    expect(frame.overall.term).toBeGreaterThan(b.ci.term[1]);
    expect(Object.keys(frame.byGroup)).toEqual(['charge', 'severity', 'year']);
    expect(Object.values(frame.byGroup['year']!).reduce((s, g) => s + g.n, 0)).toBe(60);
  });

  it('runs on a CAIL2018 file with only the published fields, by gender read from the text', async () => {
    const run = await runLincoDetailed({ preset: 'tiny', data: FIXTURE, groupBy: 'gender', testSize: 8, breakdowns: ['severity', 'period'] });
    expect(run.read).toMatchObject({ records: 48, kept: 45, excluded: { 'several defendants': { count: 2 }, 'no term of imprisonment': { count: 1 } } });
    expect(run.frame.info['coverage']).toMatchObject({ attribute: 'gender', total: 45, found: 43, missing: 2, missingIds: ['41', '43'], values: { male: 31, female: 12 } });
    // 43 cases with a gender, 8 held out: each judge gets the smaller group's training cases.
    expect(run.plan.judges.map((j) => j.group)).toEqual(['female', 'male']);
    expect(run.plan.testRows).toHaveLength(8);
    expect(run.plan.trainPool).toHaveLength(35);
    // Equal-size judges: the women's training cases (12 minus those held out) set the size.
    const heldOutWomen = run.test.filter((c) => c.groups['gender'] === 'female').length;
    expect(run.plan.perJudge).toBe(12 - heldOutWomen);
    expect(run.plan.judges.every((j) => j.rows.length === run.plan.perJudge)).toBe(true);
    expect(run.test.every((c) => c.groups['gender'] === 'male' || c.groups['gender'] === 'female')).toBe(true);
    expect(Object.keys(run.frame.byGroup['period']!).every((p) => /^\d{4}–\d{4}$|^unknown$/.test(p))).toBe(true);
  });

  it("runs on FairLex's CAIL subset, which records no charge (one charge class: charge LInCo is 0)", async () => {
    const cases = generateCases({ count: 240, seed: 5, regions: FAIRLEX_REGIONS.slice(0, 3), inject: { region: 0.6 } });
    const bin = (m: number) => (m === 0 ? 0 : m <= 12 ? 1 : m <= 36 ? 2 : m <= 60 ? 3 : m <= 120 ? 4 : 5);
    const lines = cases.map((c) =>
      JSON.stringify({ text: [c.fact], label: bin(c.term.months), attributes: { defendant_gender: c.groups['gender'] === 'male' ? 0 : 1, court_region: FAIRLEX_REGIONS.indexOf(c.groups['region']! as 'Beijing') } }),
    );
    const path = join(mkdtempSync(join(tmpdir(), 'linco-fairlex-')), 'train.jsonl');
    writeFileSync(path, `${lines.join('\n')}\n`);
    const run = await runLincoDetailed({ preset: 'tiny', data: path, testSize: 40, epochs: 3 });
    expect(run.read).toMatchObject({ formats: ['fairlex'], kept: 240, chargesRecorded: false });
    expect(run.frame.info).toMatchObject({ chargesRecorded: false, charges: 'single' });
    expect(run.plan.judges.map((j) => j.group)).toEqual(['Beijing', 'Hunan', 'Liaoning']);
    expect(run.frame.overall.charge).toBe(0);
    expect(run.frame.baseline!.ci.charge).toEqual([0, 0]);
    expect(run.frame.overall.term).toBeGreaterThan(0);
  });
});
