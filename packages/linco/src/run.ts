/**
 * `runLinco(config, { onProgress })`: the one-call entry point the `kiln linco run` CLI
 * uses. A config is a preset (`tiny`, `default`) plus overrides; it is validated field by
 * field, and errors name the field (`config.train.epochs: ...`).
 */
import { describeBackendChoice, initBackend } from '@kiln/tensor';
import type { BreakdownName } from './breakdowns.js';
import { linco, type LincoProgress } from './linco.js';
import type { LincoFrame, MetricOptions } from './metric.js';
import { modelTypes, type ModelSpec } from './models/registry.js';
import { readCases } from './readers.js';
import { generateCases, type InjectionOptions } from './synthetic.js';
import type { DebiasMethod } from './train.js';
import type { JudgmentCase } from './types.js';

export class LincoConfigError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`config.${field}: ${detail}`);
    this.name = 'LincoConfigError';
  }
}

export type LincoData =
  | { source: 'synthetic'; count: number; seed: number; language: 'zh' | 'en'; regions?: string[]; maleShare?: number; inject: InjectionOptions }
  | { source: 'file'; path: string; groupFields?: Record<string, string> };

export interface LincoConfig {
  data: LincoData;
  /** Group attribute that defines the virtual judges. */
  groupBy: string;
  model: ModelSpec;
  train: { epochs: number; batchSize: number; learningRate: number; termWeight: number };
  sampling: { perJudge?: number; minPerJudge: number; testSize?: number; crossGroupShare: number };
  /** Random-split baseline panels (0: none). */
  baselineRepeats: number;
  /** Training replicates (resample + seed) per panel, for the group panel and every random split (≥ 1). */
  replicates: number;
  /** How the baseline's random groups are drawn. */
  baselineSplit: 'permute' | 'uniform';
  bootstrap: { samples: number; confidence: number };
  metric: MetricOptions;
  breakdowns: BreakdownName[];
  /** De-biasing; when set, LInCo is computed before and after (`info.before`). */
  debias?: { method: Exclude<DebiasMethod, 'none'>; adversaryWeight?: number; droStep?: number; probeSize?: number };
  seed: number;
  /** Backend preference passed to initBackend (KILN_BACKEND still wins). */
  backend?: string;
}

export type LincoConfigInput = Partial<Omit<LincoConfig, 'data' | 'train' | 'sampling' | 'bootstrap'>> & {
  /** @deprecated The former name of `replicates`. */
  groupRepeats?: number;
  preset?: 'tiny' | 'default';
  data?: Partial<LincoData> & { source?: 'synthetic' | 'file' };
  train?: Partial<LincoConfig['train']>;
  sampling?: Partial<LincoConfig['sampling']>;
  bootstrap?: Partial<LincoConfig['bootstrap']>;
};

export const PRESETS: Record<'tiny' | 'default', LincoConfig> = {
  tiny: {
    data: { source: 'synthetic', count: 600, seed: 1, language: 'zh', regions: ['Beijing', 'Hunan', 'Sichuan'], inject: { region: 0.6 } },
    groupBy: 'region',
    model: { type: 'hashed-ngram', buckets: 1024, dim: 16 },
    train: { epochs: 8, batchSize: 32, learningRate: 0.05, termWeight: 1 },
    sampling: { minPerJudge: 20, testSize: 60, crossGroupShare: 0 },
    baselineRepeats: 1,
    replicates: 1,
    baselineSplit: 'permute',
    bootstrap: { samples: 200, confidence: 0.95 },
    metric: {},
    breakdowns: ['charge', 'severity', 'year'],
    seed: 1,
  },
  default: {
    data: { source: 'synthetic', count: 3000, seed: 1, language: 'zh', inject: { region: 0.4, gender: 0.1 } },
    groupBy: 'region',
    model: { type: 'hashed-ngram' },
    train: { epochs: 12, batchSize: 32, learningRate: 0.02, termWeight: 1 },
    sampling: { minPerJudge: 20, testSize: 300, crossGroupShare: 0 },
    baselineRepeats: 4,
    replicates: 1,
    baselineSplit: 'permute',
    bootstrap: { samples: 1000, confidence: 0.95 },
    metric: {},
    breakdowns: ['charge', 'severity', 'year'],
    seed: 1,
  },
};

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkKeys(obj: Record<string, unknown>, allowed: string[], path: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new LincoConfigError(path ? `${path}.${k}` : k, `unknown field (allowed: ${allowed.join(', ')})`);
  }
}

function int(v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new LincoConfigError(field, `expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return v;
}

function num(v: unknown, field: string, lo: number, hi: number, openLo = false, openHi = false): number {
  const ok = typeof v === 'number' && Number.isFinite(v) && (openLo ? v > lo : v >= lo) && (openHi ? v < hi : v <= hi);
  if (!ok) throw new LincoConfigError(field, `expected a number in ${openLo ? '(' : '['}${lo}, ${hi}${openHi ? ')' : ']'}, got ${JSON.stringify(v)}`);
  return v as number;
}

function merge<T>(base: T, over: unknown): T {
  if (!isObj(base) || !isObj(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge((base as Record<string, unknown>)[k], v);
  return out as T;
}

/** Resolves a preset plus overrides into a full, checked config. */
export function resolveLincoConfig(raw: unknown = {}): LincoConfig {
  if (!isObj(raw)) throw new LincoConfigError('(root)', `expected an object, got ${JSON.stringify(raw)}`);
  let input: Record<string, unknown> = raw;
  checkKeys(input, ['preset', 'data', 'groupBy', 'model', 'train', 'sampling', 'baselineRepeats', 'baselineSplit', 'replicates', 'groupRepeats', 'bootstrap', 'metric', 'breakdowns', 'debias', 'seed', 'backend'], '');
  if (input['groupRepeats'] !== undefined) {
    if (input['replicates'] !== undefined) throw new LincoConfigError('groupRepeats', 'is the former name of replicates; give only one');
    const { groupRepeats, ...others } = input;
    input = { ...others, replicates: groupRepeats };
  }
  const preset = input['preset'] ?? 'default';
  if (preset !== 'tiny' && preset !== 'default') throw new LincoConfigError('preset', `expected "tiny" or "default", got ${JSON.stringify(preset)}`);
  const { preset: _p, ...rest } = input;
  let base = PRESETS[preset];
  // Switching the data source replaces the data section instead of merging into it.
  if (isObj(rest['data']) && rest['data']['source'] !== undefined && rest['data']['source'] !== base.data.source) {
    base = { ...base, data: {} as LincoData };
  }
  const c = merge(base, rest) as LincoConfig;

  const d = c.data as Record<string, unknown>;
  if (d['source'] === 'synthetic') {
    checkKeys(d, ['source', 'count', 'seed', 'language', 'regions', 'maleShare', 'inject'], 'data');
    int(d['count'], 'data.count', 10);
    int(d['seed'], 'data.seed', 0);
    if (d['language'] !== 'zh' && d['language'] !== 'en') throw new LincoConfigError('data.language', `expected "zh" or "en", got ${JSON.stringify(d['language'])}`);
    if (d['regions'] !== undefined && (!Array.isArray(d['regions']) || d['regions'].length < 2 || d['regions'].some((r) => typeof r !== 'string'))) {
      throw new LincoConfigError('data.regions', `expected at least 2 region names, got ${JSON.stringify(d['regions'])}`);
    }
    if (d['maleShare'] !== undefined) num(d['maleShare'], 'data.maleShare', 0, 1);
    const inj = d['inject'] ?? {};
    if (!isObj(inj)) throw new LincoConfigError('data.inject', `expected an object, got ${JSON.stringify(inj)}`);
    checkKeys(inj, ['region', 'gender', 'chargeFlip', 'severitySlope'], 'data.inject');
    for (const k of ['region', 'gender', 'chargeFlip'] as const) if (inj[k] !== undefined) num(inj[k], `data.inject.${k}`, 0, 10);
    if (inj['severitySlope'] !== undefined) num(inj['severitySlope'], 'data.inject.severitySlope', -2, 2);
  } else if (d['source'] === 'file') {
    checkKeys(d, ['source', 'path', 'groupFields'], 'data');
    if (typeof d['path'] !== 'string' || d['path'] === '') throw new LincoConfigError('data.path', `expected a file path, got ${JSON.stringify(d['path'])}`);
  } else {
    throw new LincoConfigError('data.source', `expected "synthetic" or "file", got ${JSON.stringify(d['source'])}`);
  }
  if (typeof c.groupBy !== 'string' || c.groupBy === '') throw new LincoConfigError('groupBy', `expected a group attribute name, got ${JSON.stringify(c.groupBy)}`);
  if (!isObj(c.model) || typeof c.model.type !== 'string' || !modelTypes().includes(c.model.type)) {
    throw new LincoConfigError('model.type', `expected one of ${modelTypes().join(', ')}, got ${JSON.stringify(isObj(c.model) ? c.model.type : c.model)}`);
  }
  checkKeys(c.train as unknown as Record<string, unknown>, ['epochs', 'batchSize', 'learningRate', 'termWeight'], 'train');
  int(c.train.epochs, 'train.epochs', 1);
  int(c.train.batchSize, 'train.batchSize', 1);
  num(c.train.learningRate, 'train.learningRate', 0, 10, true);
  num(c.train.termWeight, 'train.termWeight', 0, 1000);
  checkKeys(c.sampling as unknown as Record<string, unknown>, ['perJudge', 'minPerJudge', 'testSize', 'crossGroupShare'], 'sampling');
  if (c.sampling.perJudge !== undefined) int(c.sampling.perJudge, 'sampling.perJudge', 1);
  int(c.sampling.minPerJudge, 'sampling.minPerJudge', 1);
  if (c.sampling.testSize !== undefined) int(c.sampling.testSize, 'sampling.testSize', 1);
  num(c.sampling.crossGroupShare, 'sampling.crossGroupShare', 0, 1, false, true);
  int(c.baselineRepeats, 'baselineRepeats', 0);
  int(c.replicates, 'replicates', 1);
  if (c.baselineSplit !== 'permute' && c.baselineSplit !== 'uniform') throw new LincoConfigError('baselineSplit', `expected "permute" or "uniform", got ${JSON.stringify(c.baselineSplit)}`);
  checkKeys(c.bootstrap as unknown as Record<string, unknown>, ['samples', 'confidence'], 'bootstrap');
  int(c.bootstrap.samples, 'bootstrap.samples', 1);
  num(c.bootstrap.confidence, 'bootstrap.confidence', 0, 1, true, true);
  if (!isObj(c.metric)) throw new LincoConfigError('metric', `expected an object, got ${JSON.stringify(c.metric)}`);
  checkKeys(c.metric, ['term', 'charge'], 'metric');
  const mt = (c.metric.term ?? {}) as Record<string, unknown>;
  checkKeys(mt, ['lifeDeath', 'lifeMonths', 'deathMonths', 'categoryDistance', 'perCase'], 'metric.term');
  if (mt['lifeDeath'] !== undefined && mt['lifeDeath'] !== 'map' && mt['lifeDeath'] !== 'category') throw new LincoConfigError('metric.term.lifeDeath', `expected "map" or "category", got ${JSON.stringify(mt['lifeDeath'])}`);
  if (mt['perCase'] !== undefined && mt['perCase'] !== 'pairwise' && mt['perCase'] !== 'std') throw new LincoConfigError('metric.term.perCase', `expected "pairwise" or "std", got ${JSON.stringify(mt['perCase'])}`);
  for (const k of ['lifeMonths', 'deathMonths', 'categoryDistance']) if (mt[k] !== undefined) num(mt[k], `metric.term.${k}`, 0, 1e6);
  const mc = (c.metric.charge ?? {}) as Record<string, unknown>;
  checkKeys(mc, ['perCase'], 'metric.charge');
  if (mc['perCase'] !== undefined && !['pairwise', 'majority', 'entropy'].includes(mc['perCase'] as string)) {
    throw new LincoConfigError('metric.charge.perCase', `expected "pairwise", "majority" or "entropy", got ${JSON.stringify(mc['perCase'])}`);
  }
  if (!Array.isArray(c.breakdowns)) throw new LincoConfigError('breakdowns', `expected an array, got ${JSON.stringify(c.breakdowns)}`);
  c.breakdowns.forEach((b, i) => {
    if (typeof b !== 'string' || !(b === 'charge' || b === 'severity' || b === 'year' || b.startsWith('group:'))) {
      throw new LincoConfigError(`breakdowns[${i}]`, `expected charge, severity, year or group:<attribute>, got ${JSON.stringify(b)}`);
    }
  });
  if (c.debias !== undefined) {
    if (!isObj(c.debias)) throw new LincoConfigError('debias', `expected an object, got ${JSON.stringify(c.debias)}`);
    checkKeys(c.debias, ['method', 'adversaryWeight', 'droStep', 'probeSize'], 'debias');
    if (!['adversarial', 'reweight', 'group-dro'].includes(c.debias.method)) {
      throw new LincoConfigError('debias.method', `expected "adversarial", "reweight" or "group-dro", got ${JSON.stringify(c.debias.method)}`);
    }
    if (c.debias.adversaryWeight !== undefined) num(c.debias.adversaryWeight, 'debias.adversaryWeight', 0, 100);
    if (c.debias.droStep !== undefined) num(c.debias.droStep, 'debias.droStep', 0, 10, true);
    if (c.debias.probeSize !== undefined) int(c.debias.probeSize, 'debias.probeSize', 2);
  }
  int(c.seed, 'seed', 0);
  if (c.backend !== undefined && typeof c.backend !== 'string') throw new LincoConfigError('backend', `expected a backend name, got ${JSON.stringify(c.backend)}`);
  return c;
}

export function loadLincoCases(config: LincoConfig): JudgmentCase[] {
  const d = config.data;
  if (d.source === 'file') return readCases(d.path, d.groupFields ? { groupFields: d.groupFields } : {});
  return generateCases({
    count: d.count,
    seed: d.seed,
    language: d.language,
    inject: d.inject,
    ...(d.regions ? { regions: d.regions } : {}),
    ...(d.maleShare !== undefined ? { maleShare: d.maleShare } : {}),
  });
}

export interface RunLincoOptions {
  onProgress?: (event: LincoProgress | { stage: 'backend'; name: string; detail: string } | { stage: 'data'; cases: number }) => void;
}

/**
 * Validates `config`, loads or generates the cases, picks a backend, and computes LInCo
 * (and, with `debias`, LInCo before de-biasing in `info.before`).
 */
export async function runLinco(config: unknown, options: RunLincoOptions = {}): Promise<LincoFrame> {
  const c = resolveLincoConfig(config);
  const t0 = performance.now();
  const choice = await initBackend(c.backend ? { prefer: [c.backend] } : {});
  options.onProgress?.({ stage: 'backend', name: choice.name, detail: describeBackendChoice(choice) });
  const cases = loadLincoCases(c);
  options.onProgress?.({ stage: 'data', cases: cases.length });
  const common = {
    sampling: { ...c.sampling, groupBy: c.groupBy },
    model: c.model,
    train: c.train,
    baselineRepeats: c.baselineRepeats,
    replicates: c.replicates,
    baselineSplit: c.baselineSplit,
    bootstrap: { ...c.bootstrap, seed: c.seed },
    metric: c.metric,
    breakdowns: c.breakdowns,
    seed: c.seed,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  let before: LincoFrame | undefined;
  if (c.debias) before = await linco(cases, { ...common, baselineRepeats: 0 });
  const frame = await linco(cases, { ...common, ...(c.debias ? { debias: c.debias } : {}) });
  Object.assign(frame.info, {
    config: c,
    backend: choice.name,
    seconds: (performance.now() - t0) / 1000,
    ...(before ? { before: { overall: before.overall, ci: before.ci } } : {}),
  });
  return frame;
}
