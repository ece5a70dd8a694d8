/**
 * One-call entry points, the same code paths as the `kiln linco run` and `kiln linco
 * analyze` commands: a config (a preset plus overrides of the LINCO_FIELDS /
 * ANALYZE_FIELDS tables) in, a LincoFrame or an analysis report out.
 */
import { type Config, describeBackendChoice, initBackend } from '@kiln/tensor';
import { analyzeCases, type LincoReport } from './analyze.js';
import { ANALYZE_FIELDS, checkAnalyzeConfig, debiasSettings, lincoOptions, loadLincoCases, resolveLincoConfig } from './config.js';
import { linco, type LincoProgress, lincoRun, type LincoRun } from './linco.js';
import type { LincoFrame } from './metric.js';
import type { ReadReport } from './readers.js';
import type { DebiasMethod } from './train.js';

export type RunProgress =
  | LincoProgress
  | { stage: 'backend'; name: string; detail: string }
  | { stage: 'data'; cases: number; report: ReadReport }
  | { stage: 'analysis'; name: string; detail: string };

export interface RunLincoOptions {
  onProgress?: (event: RunProgress) => void;
}

/**
 * Runs LInCo as `kiln linco run` does: validates `config` (a preset plus overrides), reads or
 * generates the cases, picks a backend (KILN_BACKEND wins), and computes LInCo of the judges
 * split by `groupBy`. The frame's `info` holds the config, the read report (formats,
 * excluded records), the attribute coverage and, with `debias`, LInCo before de-biasing.
 */
export async function runLinco(config: unknown = {}, options: RunLincoOptions = {}): Promise<LincoFrame> {
  return (await runLincoDetailed(config, options)).frame;
}

/** As runLinco, also returning the judge plan, the per-case scores and the read report. */
export async function runLincoDetailed(config: unknown = {}, options: RunLincoOptions = {}): Promise<LincoRun & { config: Config; read: ReadReport }> {
  const c = resolveLincoConfig(config);
  const t0 = performance.now();
  const choice = await initBackend();
  options.onProgress?.({ stage: 'backend', name: choice.name, detail: describeBackendChoice(choice) });
  const { cases, report } = loadLincoCases(c);
  options.onProgress?.({ stage: 'data', cases: cases.length, report });
  const base = { ...lincoOptions(c), ...(options.onProgress ? { onProgress: options.onProgress } : {}) };
  let before: LincoFrame | undefined;
  if (base.debias) {
    const { debias: _method, ...plain } = base;
    before = await linco(cases, plain);
  }
  const run = await lincoRun(cases, base);
  Object.assign(run.frame.info, {
    config: c,
    read: report,
    backend: choice.name,
    seconds: (performance.now() - t0) / 1000,
    ...(before ? { before: { overall: before.overall, ci: before.ci, baseline: before.baseline && { overall: before.baseline.overall, ci: before.baseline.ci }, excess: before.excess } } : {}),
  });
  return { ...run, config: c, read: report };
}

/** Runs the paper's analyses as `kiln linco analyze` does and returns the report. */
export async function analyzeLinco(config: unknown = {}, options: RunLincoOptions = {}): Promise<LincoReport> {
  const c = resolveLincoConfig(config, ANALYZE_FIELDS);
  checkAnalyzeConfig(c);
  const choice = await initBackend();
  options.onProgress?.({ stage: 'backend', name: choice.name, detail: describeBackendChoice(choice) });
  const { cases, report } = loadLincoCases(c);
  options.onProgress?.({ stage: 'data', cases: cases.length, report });
  const base = { ...lincoOptions(c), ...(options.onProgress ? { onProgress: options.onProgress } : {}) };
  const result = await analyzeCases(cases, base, {
    attributes: (c.attributes as string[]).map(String),
    debiasMethods: (c.debiasMethods as string[]).map(String) as Exclude<DebiasMethod, 'none'>[],
    debiasSeeds: Number(c.debiasSeeds),
    debiasSettings: debiasSettings(c),
    readReport: report,
    config: { ...c, backend: choice.name },
    onAnalysis: (name, detail) => options.onProgress?.({ stage: 'analysis', name, detail }),
  });
  return result;
}
