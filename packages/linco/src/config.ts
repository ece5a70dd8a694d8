/**
 * The LInCo configuration, declared once as a field table (type, default, range, doc). The
 * library validates configs with it, presets are values over it, and the `kiln linco run`
 * and `kiln linco analyze` commands derive their flags, config-file keys and `--help` from
 * the same tables: a knob cannot exist in one place and not the other, and `runLinco({
 * preset: 'tiny' })` is exactly `kiln linco run --preset tiny`.
 */
import { type Config, ConfigError, type FieldTable, resolveConfig } from '@kiln/tensor';
import { checkBaselineRepeats, type LincoOptions, MIN_NULL_PANELS } from './linco.js';
import { modelTypes, type ModelSpec } from './models/registry.js';
import { type ReadResult, readCases } from './readers.js';
import { generateCases, REGIONS } from './synthetic.js';
import { DEBIAS_METHODS, type DebiasMethod, type DebiasOptions } from './train.js';

export const LINCO_FIELDS = {
  // The cases.
  data: { type: 'string', default: '', doc: 'cases file: CAIL2018 or FairLex JSON lines (.jsonl/.json) or .csv; empty: synthetic cases' },
  multiDefendant: { type: 'enum', values: ['exclude', 'keep'], default: 'exclude', doc: 'cases with several defendants: excluded and counted (as CAIL2018 tasks assume one), or kept' },
  cases: { type: 'int', default: 3000, min: 10, doc: 'synthetic: cases to generate' },
  dataSeed: { type: 'int', default: 1, min: 0, doc: 'synthetic: seed of the generated cases' },
  language: { type: 'enum', values: ['zh', 'en'], default: 'zh', doc: 'synthetic: language of the fact texts' },
  regions: { type: 'string', list: true, nullable: true, default: null, doc: `synthetic: region names (null: ${REGIONS.join(', ')})` },
  maleShare: { type: 'number', default: 0.8, min: 0, max: 1, doc: 'synthetic: share of male defendants' },
  injectRegion: { type: 'number', default: 0.4, min: 0, max: 10, doc: 'synthetic: strength of the regional sentencing tendencies' },
  injectGender: { type: 'number', default: 0.1, min: 0, max: 10, doc: 'synthetic: strength of the gender sentencing tendencies' },
  chargeFlip: { type: 'number', default: 0.5, min: 0, max: 10, doc: 'synthetic: how strongly the tendencies also pick a confusable sibling charge' },
  severitySlope: { type: 'number', default: 0, min: -2, max: 2, doc: 'synthetic: > 0 makes light charges more inconsistent, < 0 heavy ones' },
  multiChargeRate: { type: 'number', default: 0, min: 0, max: 1, doc: 'synthetic: share of cases with a second charge' },
  groupCuesInText: { type: 'boolean', default: false, doc: 'synthetic: name the region (procuratorate) and gender in the fact text' },
  // The judges.
  groupBy: { type: 'string', default: 'region', maxLength: 200, doc: 'attribute that defines the virtual judges: a metadata field, region/gender/year/period/severity (derived from the text and the law), or a record field path' },
  periodYears: { type: 'int', default: 2, min: 1, max: 100, doc: "years per 'period' (group-by or breakdown)" },
  perJudge: { type: 'int', nullable: true, default: null, min: 1, doc: 'training cases per judge (null: the smallest eligible group)' },
  minPerJudge: { type: 'int', default: 3, min: 1, doc: 'groups with fewer training cases are left out (and reported); the null interval is trained on the same sizes, so small judges stay honest, only noisy' },
  testSize: { type: 'int', nullable: true, default: null, min: 1, doc: 'held-out cases every judge predicts (null: min(300, 20 %))' },
  crossGroupShare: { type: 'number', default: 0, min: 0, max: 1, exclusiveMax: true, doc: "share of each judge's cases drawn from other groups" },
  encoder: { type: 'enum', values: ['separate', 'shared'], default: 'separate', doc: "'separate': a model per judge; 'shared': one encoder for the panel, a head per judge" },
  model: { type: 'enum', values: modelTypes(), default: 'hashed-ngram', doc: 'legal-judgment-prediction model of every judge' },
  buckets: { type: 'int', default: 4096, min: 2, doc: 'hashed n-gram buckets (text-cnn: hashed vocabulary)' },
  dim: { type: 'int', default: 32, min: 1, doc: 'embedding width' },
  epochs: { type: 'int', default: 12, min: 1, doc: 'training passes per judge' },
  batchSize: { type: 'int', default: 32, min: 1, doc: 'cases per judge per step' },
  learningRate: { type: 'number', default: 0.02, min: 0, exclusiveMin: true, max: 10, doc: 'Adam learning rate' },
  termWeight: { type: 'number', default: 1, min: 0, max: 1000, doc: 'weight of the log-term error against the two cross-entropies' },
  replicates: { type: 'int', default: 1, min: 1, doc: 'trainings (resample + seed) per panel, for the group panel and every random split' },
  combineReplicates: { type: 'enum', values: ['ensemble', 'average'], default: 'ensemble', doc: "replicates decide as an ensemble, or each panel is scored and the scores averaged" },
  // The baseline and the intervals.
  baselineRepeats: { type: 'int', default: 4, min: 0, doc: 'random-split panels: 0 none, 1 a case bootstrap only, ≥ 3 the null interval with split variance (2 is refused)' },
  baselineSplit: { type: 'enum', values: ['permute', 'uniform'], default: 'permute', doc: "random splits: placebo groups of the real sizes ('permute'), or uniform draws" },
  bootstrapSamples: { type: 'int', default: 1000, min: 10, doc: 'bootstrap resamples for the intervals' },
  confidence: { type: 'number', default: 0.95, min: 0, exclusiveMin: true, max: 0.999, doc: 'two-sided confidence level' },
  // The metric.
  lifeDeath: { type: 'enum', values: ['map', 'category'], default: 'map', doc: 'life and death sentences: month equivalents, or categories' },
  lifeMonths: { type: 'number', default: 300, min: 0, max: 1e6, doc: 'month equivalent of life imprisonment' },
  deathMonths: { type: 'number', default: 480, min: 0, max: 1e6, doc: 'month equivalent of death' },
  categoryDistance: { type: 'number', default: 1, min: 0, max: 1e6, doc: "distance between different sentence kinds under lifeDeath 'category'" },
  termPerCase: { type: 'enum', values: ['pairwise', 'std'], default: 'pairwise', doc: 'per-case term disagreement' },
  chargePerCase: { type: 'enum', values: ['pairwise', 'majority', 'entropy'], default: 'pairwise', doc: 'per-case charge disagreement' },
  breakdowns: { type: 'string', list: true, default: ['charge', 'severity', 'year'], doc: 'breakdowns of the held-out cases: any attribute (charge, severity, year, period, region, gender, a field)' },
  // De-biasing.
  debias: { type: 'enum', values: ['none', ...DEBIAS_METHODS], default: 'none', doc: 'de-biasing while training every panel (with it, LInCo is also reported before)' },
  adversaryWeight: { type: 'number', default: 1, min: 0, max: 100, doc: "adversarial: λ, the weight of the encoder's objective against the group classifier (raised from 0 over training)" },
  adversaryObjective: { type: 'enum', values: ['reverse', 'confusion'], default: 'reverse', doc: "adversarial: 'reverse' maximizes the group classifier's error (gradient reversal); 'confusion' makes its prediction uniform" },
  droStep: { type: 'number', default: 0.05, min: 0, exclusiveMin: true, max: 10, doc: 'group-dro: step size of the group weights' },
  seed: { type: 'int', default: 1, min: 0, doc: 'seed of the judges (initialization, data order, splits, bootstrap)' },
} satisfies FieldTable;

/** `kiln linco analyze`: the run fields plus what the paper's analyses compare. */
export const ANALYZE_FIELDS = {
  ...LINCO_FIELDS,
  attributes: { type: 'string', list: true, default: ['region', 'gender'], doc: 'attributes compared in the first analysis; the first also drives the period and severity analyses' },
  debiasMethods: { type: 'enum', values: DEBIAS_METHODS, list: true, default: [], doc: 'de-biasing methods to judge against the null interval (empty: none)' },
  debiasSeeds: { type: 'int', default: 3, min: 3, max: 100, doc: 'seeds of the de-biasing comparison (each trains every panel again)' },
} satisfies FieldTable;

export interface Preset {
  doc: string;
  values: Partial<Config>;
}

/** The presets of `runLinco`, `analyzeLinco` and both `kiln linco` commands. */
export const LINCO_PRESETS: Readonly<Record<'default' | 'tiny', Preset>> = {
  default: {
    doc: '3,000 synthetic cases, 7 regions (region 0.4, gender 0.1 injected), 12 epochs, 4 placebo random splits',
    values: {},
  },
  tiny: {
    doc: '600 synthetic cases, 3 regions (region 0.6), a small model, 8 epochs, 3 placebo random splits (seconds)',
    values: { cases: 600, regions: ['Beijing', 'Hunan', 'Sichuan'], injectRegion: 0.6, injectGender: 0, buckets: 1024, dim: 16, epochs: 8, learningRate: 0.05, testSize: 60, baselineRepeats: 3, bootstrapSamples: 200 },
  },
};

export type LincoPreset = keyof typeof LINCO_PRESETS;

/**
 * A preset (`preset`, default 'default') plus overrides, checked field by field against
 * `table`. Errors are ConfigErrors naming the key ("config key 'epochs' in config must be an
 * integer ≥ 1, got 0").
 */
export function resolveLincoConfig(input: unknown = {}, table: FieldTable = LINCO_FIELDS): Config {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ConfigError(`config must be an object of config keys, got ${JSON.stringify(input)}`);
  const { preset = 'default', ...values } = input as Record<string, unknown>;
  if (typeof preset !== 'string' || !Object.hasOwn(LINCO_PRESETS, preset)) {
    throw new ConfigError(`config key 'preset' must be one of ${Object.keys(LINCO_PRESETS).map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(preset)}`, 'preset');
  }
  const config = resolveConfig(table, [
    [`preset '${preset}'`, LINCO_PRESETS[preset as LincoPreset].values],
    ['config', values],
  ]);
  checkLincoConfig(config);
  return config;
}

/** The rules between fields a table cannot state. */
export function checkLincoConfig(c: Config): void {
  try {
    checkBaselineRepeats(Number(c.baselineRepeats));
  } catch (err) {
    throw new ConfigError(`config key 'baselineRepeats': ${(err as Error).message.replace(/^baselineRepeats /, '')}`, 'baselineRepeats');
  }
  if (c.debias !== 'none' && c.baselineSplit === 'uniform' && Number(c.baselineRepeats) > 0) {
    throw new ConfigError("config key 'baselineSplit': de-biasing needs 'permute' (the random-split panels are trained with the method on their placebo groups)", 'baselineSplit');
  }
  if (typeof c.groupBy !== 'string' || c.groupBy.trim() === '') throw new ConfigError(`config key 'groupBy' must name an attribute, got ${JSON.stringify(c.groupBy)}`, 'groupBy');
  if (Array.isArray(c.regions) && c.regions.length < 2) throw new ConfigError(`config key 'regions' must list at least 2 regions, got ${JSON.stringify(c.regions)}`, 'regions');
}

/** The rules of an analysis config: a null interval to compare with, and plain judges. */
export function checkAnalyzeConfig(c: Config): void {
  checkLincoConfig(c);
  if (Number(c.baselineRepeats) < MIN_NULL_PANELS) {
    throw new ConfigError(`config key 'baselineRepeats' must be at least ${MIN_NULL_PANELS} for analyze: every analysis compares with the null interval of the random splits, got ${c.baselineRepeats}`, 'baselineRepeats');
  }
  if (c.debias !== 'none') {
    throw new ConfigError(`config key 'debias': the analyses judge plain judges; compare de-biasing methods with debiasMethods (--debias-methods ${c.debias}), got ${JSON.stringify(c.debias)}`, 'debias');
  }
}

function modelSpec(c: Config): ModelSpec {
  const type = String(c.model);
  if (type === 'text-cnn') return { type, vocab: Number(c.buckets), embed: Number(c.dim) };
  if (type === 'hashed-ngram') return { type, buckets: Number(c.buckets), dim: Number(c.dim) };
  return { type };
}

/** The pipeline options of a resolved config (`groupBy` overrides the config's). */
export function lincoOptions(c: Config, groupBy = String(c.groupBy)): LincoOptions {
  const debias = c.debias as DebiasMethod;
  return {
    sampling: {
      groupBy,
      ...(c.perJudge !== null ? { perJudge: Number(c.perJudge) } : {}),
      minPerJudge: Number(c.minPerJudge),
      ...(c.testSize !== null ? { testSize: Number(c.testSize) } : {}),
      crossGroupShare: Number(c.crossGroupShare),
    },
    periodYears: Number(c.periodYears),
    // Adversarial removal needs one encoder for the panel.
    encoder: debias === 'adversarial' ? 'shared' : (c.encoder as 'separate' | 'shared'),
    model: modelSpec(c),
    train: { epochs: Number(c.epochs), batchSize: Number(c.batchSize), learningRate: Number(c.learningRate), termWeight: Number(c.termWeight) },
    replicates: Number(c.replicates),
    combineReplicates: c.combineReplicates as 'ensemble' | 'average',
    baselineRepeats: Number(c.baselineRepeats),
    baselineSplit: c.baselineSplit as 'permute' | 'uniform',
    bootstrap: { samples: Number(c.bootstrapSamples), confidence: Number(c.confidence), seed: Number(c.seed) },
    metric: {
      term: {
        lifeDeath: c.lifeDeath as 'map' | 'category',
        lifeMonths: Number(c.lifeMonths),
        deathMonths: Number(c.deathMonths),
        categoryDistance: Number(c.categoryDistance),
        perCase: c.termPerCase as 'pairwise' | 'std',
      },
      charge: { perCase: c.chargePerCase as 'pairwise' | 'majority' | 'entropy' },
    },
    breakdowns: (c.breakdowns as string[]).map(String),
    ...(debias !== 'none' ? { debias: { method: debias, ...debiasSettings(c) } } : {}),
    seed: Number(c.seed),
  };
}

/** The de-biasing settings of a config (whichever method runs). */
export function debiasSettings(c: Config): Omit<DebiasOptions, 'method'> {
  return { adversaryWeight: Number(c.adversaryWeight), adversaryObjective: c.adversaryObjective as 'reverse' | 'confusion', droStep: Number(c.droStep) };
}

/**
 * The cases of a config: read from `data` (with the read report: formats, exclusions), or
 * generated. Errors reading the file propagate (CaseFormatError names file, line and field).
 */
export function loadLincoCases(c: Config): ReadResult {
  if (c.data !== '') return readCases(String(c.data), { multiDefendant: c.multiDefendant as 'exclude' | 'keep' });
  const cases = generateCases({
    count: Number(c.cases),
    seed: Number(c.dataSeed),
    language: c.language as 'zh' | 'en',
    ...(c.regions !== null ? { regions: (c.regions as string[]).map(String) } : {}),
    maleShare: Number(c.maleShare),
    inject: { region: Number(c.injectRegion), gender: Number(c.injectGender), chargeFlip: Number(c.chargeFlip), severitySlope: Number(c.severitySlope) },
    multiChargeRate: Number(c.multiChargeRate),
    groupCuesInText: Boolean(c.groupCuesInText),
  });
  return {
    cases,
    report: { source: 'synthetic', formats: [], records: cases.length, kept: cases.length, excluded: {}, chargesRecorded: true },
  };
}
