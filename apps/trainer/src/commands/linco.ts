/**
 * `kiln linco run` and `kiln linco analyze`: the Legal Inconsistency Coefficient of a set of
 * judgments (CAIL2018 or FairLex JSON lines, CSV, or @kiln/linco's synthetic cases), split
 * into virtual judges by a group attribute. Both commands take their keys, defaults,
 * presets and help from @kiln/linco's LINCO_FIELDS / ANALYZE_FIELDS tables, so the CLI and
 * `runLinco` / `analyzeLinco` are one configuration.
 */
import {
  ANALYZE_FIELDS,
  analyzeCases,
  CaseFormatError,
  type DebiasMethod,
  describeCoverage,
  describeExclusions,
  isLincoInputError,
  type AttributeCoverage,
  LINCO_FIELDS,
  LINCO_PRESETS,
  type LincoFrame,
  type LincoOptions,
  type LincoReport,
  type ReadReport,
  checkAnalyzeConfig,
  checkLincoConfig,
  debiasSettings,
  linco,
  lincoOptions,
  lincoRun,
  loadLincoCases,
} from '@kiln/linco';
import { type Config, type FieldTable, isConfigError } from '@kiln/tensor';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import { RunRecorder } from '../harness/recorder.js';
import { HARNESS_FIELDS } from '../harness/run.js';
import { startBackend } from './shared.js';

const OUTPUT_FIELDS = {
  out: HARNESS_FIELDS.out,
  server: HARNESS_FIELDS.server,
  json: { type: 'boolean', default: false, doc: 'print the full result as JSON' },
} satisfies FieldTable;

const RUN_SCHEMA = { ...LINCO_FIELDS, ...OUTPUT_FIELDS } satisfies FieldTable;
const ANALYZE_SCHEMA = { ...ANALYZE_FIELDS, ...OUTPUT_FIELDS } satisfies FieldTable;

/** Turns the library's complaints about the input into usage errors (exit 2) naming the key. */
function asUsage(err: unknown): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (err instanceof CaseFormatError || code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES' || /unknown extension/.test((err as Error).message)) {
    throw new UsageError(`config key 'data': ${(err as Error).message}`);
  }
  if (isLincoInputError(err) || isConfigError(err)) throw new UsageError((err as Error).message);
  throw err;
}

function loadCases(c: Config, ctx: CommandContext) {
  try {
    checkLincoConfig(c);
    const read = loadLincoCases(c);
    if (read.cases.length === 0) {
      const why = describeExclusions(read.report);
      throw new UsageError(`config key 'data': ${read.report.source} has no usable case (${read.report.records} records${why.length ? `; left out: ${why.join('; ')}` : ''})`);
    }
    if (!ctx.quiet) ctx.stdout.write(`${describeRead(read.report)}\n`);
    return read;
  } catch (err) {
    return asUsage(err);
  }
}

function describeRead(r: ReadReport): string {
  if (r.source === 'synthetic') return `${r.kept} synthetic cases`;
  const left = describeExclusions(r);
  return `read ${r.source}: ${r.records} records (${r.formats.join(', ')}), ${r.kept} cases${left.length ? `; left out: ${left.join('; ')}` : ''}${r.chargesRecorded ? '' : '; no charges recorded (charge LInCo is 0 by construction)'}`;
}

const f4 = (v: number) => (Number.isFinite(v) ? v.toFixed(4) : 'n/a');
const ci4 = (c: readonly [number, number]) => `[${f4(c[0])}, ${f4(c[1])}]`;

/** The eval server's LInCo result shape for one metric. */
export function lincoPayload(frame: LincoFrame, metric: 'term' | 'charge', confidence: number): Record<string, unknown> {
  const [lo, hi] = frame.ci[metric];
  const groups = Object.entries(frame.byGroup).flatMap(([by, table]) =>
    Object.entries(table).map(([group, values]) => ({ group: `${by}=${group}`, value: values[metric], n: values.n })),
  );
  const payload: Record<string, unknown> = { metric, confidence, overall: { value: frame.overall[metric], lo, hi }, groups };
  if (frame.baseline) {
    const [blo, bhi] = frame.baseline.ci[metric];
    payload.baseline = { value: frame.baseline.overall[metric], lo: blo, hi: bhi };
  }
  return payload;
}

/** Progress bar and metric lines for the panels a pipeline trains. */
function trainingProgress(recorder: RunRecorder, c: Config, panels: number) {
  const epochs = Number(c.epochs) * Number(c.replicates);
  const progress = recorder.progress('linco', Math.max(1, epochs * panels));
  let done = 0;
  const onProgress: LincoOptions['onProgress'] = (e) => {
    if (e.stage !== 'train') return;
    done += 1;
    // Each panel (the group panel, every random split) trains from scratch: its loss is a
    // series of its own over its epochs, not a stretch of one zig-zagging line.
    recorder.log(e.epoch + 1, { loss: e.loss }, '', `panel=${e.panel}`);
    progress.update(Math.min(done, epochs * panels), `${e.panel} loss ${e.loss.toFixed(4)}`);
  };
  return { progress, onProgress, done: () => done };
}

function onInterrupt(ctx: CommandContext): () => void {
  const handler = () => {
    ctx.stderr.write('\ninterrupted: LInCo keeps no intermediate state; nothing was written beyond metrics.jsonl\n');
    process.exit(EXIT.interrupted);
  };
  process.once('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

function frameLines(frame: LincoFrame, confidence: number): string[] {
  const pct = `${Math.round(confidence * 100)}% CI`;
  const lines: string[] = [];
  for (const metric of ['term', 'charge'] as const) {
    lines.push(`LInCo ${metric.padEnd(6)} ${f4(frame.overall[metric])}  ${ci4(frame.ci[metric])} ${pct}`);
    if (frame.baseline && frame.excess) {
      const kind = frame.baseline.interval === 'split+cases' ? 'null interval' : 'case bootstrap';
      const p = frame.excess.p ? `, p = ${frame.excess.p[metric].toFixed(3)}` : '';
      lines.push(
        `  random-split baseline ${f4(frame.baseline.overall[metric])} ${ci4(frame.baseline.ci[metric])} (${kind}); excess ${f4(frame.excess.overall[metric])} ${ci4(frame.excess.ci[metric])}${p}`,
      );
    }
  }
  for (const [by, table] of Object.entries(frame.byGroup)) {
    lines.push(`by ${by}:`);
    for (const [group, v] of Object.entries(table)) lines.push(`  ${group.padEnd(14)} term ${f4(v.term)}  charge ${f4(v.charge)}  (n=${v.n})`);
  }
  return lines;
}

export const lincoRunCommand: CommandSpec = {
  path: ['linco', 'run'],
  summary: 'LInCo (Legal Inconsistency Coefficient) by group, against the null interval of random splits',
  details:
    'Trains one legal-judgment-prediction model per group ("virtual judge"), lets every judge\n' +
    'predict the same held-out cases, and measures how much they disagree; placebo splits of\n' +
    'the same cases give the disagreement the procedure produces when groups do not matter.\n' +
    'Region, gender and year are read from the fact text when the data has no such field.\n\n' +
    'Examples:\n' +
    '  kiln linco run --preset tiny                          # synthetic cases, seconds\n' +
    '  kiln linco run --data cail.jsonl --group-by region    # CAIL2018 as published\n' +
    '  kiln linco run --data cail.jsonl --group-by gender --breakdowns severity,period',
  schema: RUN_SCHEMA,
  presets: LINCO_PRESETS,
  defaultPreset: 'default',
  async handler(ctx) {
    const c = ctx.config;
    const { cases, report } = loadCases(c, ctx);
    const options = lincoOptions(c);
    const choice = await startBackend(ctx);
    const recorder = await RunRecorder.open({ command: 'linco run', kind: 'linco', ...ctx });
    const panels = (1 + Number(c.baselineRepeats)) * (options.debias ? 2 : 1);
    const { progress, onProgress, done } = trainingProgress(recorder, c, panels);
    const stopInterrupt = onInterrupt(ctx);
    try {
      let before: LincoFrame | undefined;
      let run: Awaited<ReturnType<typeof lincoRun>>;
      try {
        if (options.debias) {
          const { debias: _method, ...plain } = options;
          before = await linco(cases, { ...plain, onProgress });
        }
        run = await lincoRun(cases, { ...options, onProgress });
      } catch (err) {
        return asUsage(err);
      }
      progress.finish();
      const { frame, plan } = run;
      Object.assign(frame.info, { config: c, read: report, backend: choice.name, ...(before ? { before: { overall: before.overall, ci: before.ci, excess: before.excess } } : {}) });
      const confidence = Number(c.confidence);
      const json = { ...frame.toJSON(), judges: plan.judges.map((j) => ({ group: j.group, cases: j.rows.length })) };
      const file = await recorder.writeJson('linco.json', json);
      await recorder.artifact('linco.json', new TextEncoder().encode(JSON.stringify(json)));
      for (const metric of ['term', 'charge'] as const) {
        recorder.log(done(), { phase: 'final', [`linco_${metric}`]: frame.overall[metric] });
        await recorder.result('linco', lincoPayload(frame, metric, confidence));
      }
      await recorder.close();
      if (c.json) {
        ctx.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        return EXIT.ok;
      }
      const lines = [describeCoverage(frame.info['coverage'] as AttributeCoverage)];
      lines.push(`${plan.judges.length} judges by '${plan.groupBy}' (${plan.judges.map((j) => j.group).join(', ')}), ${plan.perJudge} training cases each, ${plan.testRows.length} held-out cases`);
      if (plan.dropped.length) lines.push(`  too few training cases, not judges: ${plan.dropped.map((d) => `${d.group} (${d.available})`).join(', ')}`);
      if (before) lines.push(`before ${options.debias!.method}: LInCo term ${f4(before.overall.term)}, charge ${f4(before.overall.charge)}${before.excess ? `; excess term ${f4(before.excess.overall.term)} ${ci4(before.excess.ci.term)}` : ''}`);
      lines.push(...frameLines(frame, confidence), `written ${file}`);
      ctx.stdout.write(`${lines.join('\n')}\n`);
      return EXIT.ok;
    } finally {
      stopInterrupt();
    }
  },
};

function reportLines(r: LincoReport): string[] {
  const lines: string[] = ['1. Inconsistency by group (excess over the null interval):'];
  for (const a of r.groups.attributes) {
    if (a.error || !a.excess || !a.overall) {
      lines.push(`  ${a.attribute.padEnd(10)} not analysed: ${a.error}`);
      continue;
    }
    const p = a.excess.p ? `, p = ${a.excess.p.term.toFixed(3)}` : '';
    lines.push(`  ${a.attribute.padEnd(10)} ${a.judges!.length} judges × ${a.perJudge} cases; LInCo term ${f4(a.overall.term)}, excess ${f4(a.excess.overall.term)} ${ci4(a.excess.ci.term)}${p}; charge excess ${f4(a.excess.overall.charge)} ${ci4(a.excess.ci.charge)}`);
  }
  const cmp = r.groups.comparison;
  if (cmp) lines.push(`  ${cmp.first} − ${cmp.second}: term ${f4(cmp.difference.term.value)} ${ci4(cmp.difference.term.ci)} → larger: ${cmp.larger.term}`);
  lines.push(`2. By period (${r.periods.periodYears}-year periods, ${r.periods.attribute} judges):`);
  for (const row of r.periods.rows) lines.push(`  ${row.group.padEnd(10)} n=${String(row.n).padEnd(4)} excess term ${f4(row.excess.term.value)} ${ci4(row.excess.term.ci)}`);
  lines.push(`  trend: Spearman ρ(year, excess term) ${f4(r.periods.trend.term.rho)} ${ci4(r.periods.trend.term.ci)} over ${r.periods.trend.term.n} cases`);
  lines.push(`3. By severity of the charge (statutory maximum; ${r.severity.attribute} judges):`);
  for (const row of r.severity.rows) lines.push(`  ${row.group.padEnd(10)} n=${String(row.n).padEnd(4)} excess term ${f4(row.excess.term.value)} ${ci4(row.excess.term.ci)}`);
  lines.push(`  Spearman ρ(severity, excess term) ${f4(r.severity.correlation.term.rho)} ${ci4(r.severity.correlation.term.ci)} over ${r.severity.correlation.term.n} cases`);
  if (r.debias) {
    lines.push(`4. De-biasing (${r.debias.seeds} seeds; excess term over the null, mean [t interval over seeds]):`);
    for (const row of r.debias.rows) {
      lines.push(
        `  ${row.method.padEnd(12)} before ${f4(row.before.excess.term.value)} ${ci4(row.before.excess.term.ci)} → after ${f4(row.after.excess.term.value)} ${ci4(row.after.excess.term.ci)}; change ${f4(row.change.excess.term.value)} ${ci4(row.change.excess.term.ci)}; inside the null on ${row.insideNull.after} of ${r.debias.seeds} seeds`,
      );
    }
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return lines;
}

export const lincoAnalyzeCommand: CommandSpec = {
  path: ['linco', 'analyze'],
  summary: "the paper's analyses: region vs gender, by period, against charge severity (JSON report)",
  details:
    'Runs the three analyses of Wang et al. (2021) on one data set, each against the null\n' +
    'interval of placebo random splits: (1) inconsistency of judges split by each attribute\n' +
    '(region, gender) and their difference; (2) inconsistency by time period; (3) its\n' +
    'correlation with the severity of the charge (the statutory maximum of the Criminal Law)\n' +
    'with a bootstrap interval. With --debias-methods, (4) each de-biasing method over\n' +
    'several seeds. Writes linco-report.json (uploaded to --server, shown on its dashboard).\n\n' +
    'Examples:\n' +
    '  kiln linco analyze --preset tiny\n' +
    '  kiln linco analyze --data cail.jsonl --attributes region,gender --period-years 2\n' +
    '  kiln linco analyze --data cail.jsonl --debias-methods adversarial,reweight,group-dro --cross-group-share 0.25',
  schema: ANALYZE_SCHEMA,
  presets: LINCO_PRESETS,
  defaultPreset: 'default',
  async handler(ctx) {
    const c = ctx.config;
    checkAnalyzeConfig(c);
    const { cases, report } = loadCases(c, ctx);
    const choice = await startBackend(ctx);
    const recorder = await RunRecorder.open({ command: 'linco analyze', kind: 'linco', ...ctx });
    const attributes = (c.attributes as string[]).map(String);
    const methods = (c.debiasMethods as string[]).map(String) as Exclude<DebiasMethod, 'none'>[];
    const panels = (1 + Number(c.baselineRepeats)) * (attributes.length + Number(c.debiasSeeds) * (methods.length + Math.min(methods.length, 2)));
    const { progress, onProgress } = trainingProgress(recorder, c, panels);
    const stopInterrupt = onInterrupt(ctx);
    try {
      const options = lincoOptions(c);
      let result: LincoReport;
      try {
        result = await analyzeCases(cases, { ...options, onProgress }, {
          attributes,
          debiasMethods: methods,
          debiasSeeds: Number(c.debiasSeeds),
          debiasSettings: debiasSettings(c),
          readReport: report,
          config: { ...c, backend: choice.name },
        });
      } catch (err) {
        return asUsage(err);
      }
      progress.finish();
      const text = JSON.stringify(result, null, 2);
      const file = await recorder.writeJson('linco-report.json', result);
      await recorder.artifact('linco-report.json', new TextEncoder().encode(text));
      await recorder.close();
      if (c.json) {
        ctx.stdout.write(`${text}\n`);
        return EXIT.ok;
      }
      ctx.stdout.write(`${[...reportLines(result), `written ${file}`].join('\n')}\n`);
      return EXIT.ok;
    } finally {
      stopInterrupt();
    }
  },
};

export const lincoCommands: CommandSpec[] = [lincoRunCommand, lincoAnalyzeCommand];
