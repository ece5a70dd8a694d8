/**
 * `kiln linco run`: the Legal Inconsistency Coefficient of a set of judgments (a CAIL
 * JSON-lines or CSV file, or @kiln/linco's synthetic cases), split into virtual judges by a
 * group attribute; prints LInCo overall with its bootstrap interval, the random-split
 * baseline, the excess over it, and the value per breakdown group.
 */
import { CaseFormatError, type DebiasMethod, type JudgmentCase, type LincoFrame, type BreakdownName, generateCases, lincoRun, modelTypes, readCases } from '@kiln/linco';
import type { CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import type { FieldTable } from '@kiln/tensor';
import { RunRecorder } from '../harness/recorder.js';
import { HARNESS_FIELDS } from '../harness/run.js';
import { startBackend } from './shared.js';

const { checkpointEvery: _unused, ...RUN_FIELDS } = HARNESS_FIELDS;

const LINCO_SCHEMA = {
  data: { type: 'string', default: '', doc: 'cases file (.jsonl CAIL format, .json or .csv); empty: synthetic cases' },
  cases: { type: 'int', default: 1500, min: 50, doc: 'synthetic cases to generate (when no data file)' },
  injectRegion: { type: 'number', default: 0.5, min: 0, doc: 'synthetic: strength of the regional sentencing tendencies' },
  groupBy: { type: 'string', default: 'region', doc: 'group attribute that defines the virtual judges' },
  perJudge: { type: 'int', default: 0, min: 0, doc: 'training cases per judge (0: the smallest eligible group)' },
  testSize: { type: 'int', default: 0, min: 0, doc: 'held-out cases every judge predicts (0: min(300, 20 %))' },
  crossGroupShare: { type: 'number', default: 0, min: 0, max: 1, doc: "share of each judge's cases drawn from other groups" },
  model: { type: 'enum', values: modelTypes(), default: 'hashed-ngram', doc: 'legal-judgment-prediction model of every judge' },
  epochs: { type: 'int', default: 6, min: 1, doc: 'training passes per judge' },
  batchSize: { type: 'int', default: 32, min: 1, doc: 'cases per judge per step' },
  learningRate: { type: 'number', default: 0.02, min: 0, exclusiveMin: true, doc: 'Adam learning rate' },
  baselineRepeats: { type: 'int', default: 4, min: 0, doc: 'random-split baseline panels (0 disables the baseline; ≥ 2 gives the null interval with split variance, 1 a case bootstrap only)' },
  bootstrapSamples: { type: 'int', default: 1000, min: 10, doc: 'bootstrap resamples for the intervals' },
  confidence: { type: 'number', default: 0.95, min: 0, exclusiveMin: true, max: 0.999, doc: 'two-sided confidence level' },
  debias: { type: 'enum', values: ['none', 'adversarial', 'reweight', 'group-dro'], default: 'none', doc: 'de-biasing method while training the judges' },
  breakdowns: { type: 'string', default: 'charge,severity,year', doc: "breakdowns of the held-out cases, comma-separated (charge, severity, year, group:<attribute>)" },
  json: { type: 'boolean', default: false, doc: 'print the full result as JSON' },
  ...RUN_FIELDS,
} satisfies FieldTable;

function loadCases(config: Record<string, unknown>): JudgmentCase[] {
  if (!config.data) {
    return generateCases({ count: Number(config.cases), seed: Number(config.seed) + 1, inject: { region: Number(config.injectRegion) } });
  }
  try {
    return readCases(String(config.data));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (err instanceof CaseFormatError || code === 'ENOENT' || code === 'EISDIR' || /unknown extension/.test((err as Error).message)) {
      throw new UsageError(`config key 'data': ${(err as Error).message}`);
    }
    throw err;
  }
}

function parseBreakdowns(text: string): BreakdownName[] {
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) {
    if (!['charge', 'severity', 'year'].includes(n) && !/^group:.+/.test(n)) {
      throw new UsageError(`config key 'breakdowns': '${n}' is not one of charge, severity, year, group:<attribute>`);
    }
  }
  return names as BreakdownName[];
}

function fmt(v: number): string {
  return v.toFixed(4);
}

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

export const lincoRunCommand: CommandSpec = {
  path: ['linco', 'run'],
  summary: 'LInCo (Legal Inconsistency Coefficient) by group, with bootstrap intervals',
  details:
    'Trains one legal-judgment-prediction model per group ("virtual judge"), lets every judge\n' +
    'predict the same held-out cases, and measures how much they disagree; a random split of\n' +
    'the same cases gives the baseline disagreement of the model itself.\n\n' +
    'Examples:\n  kiln linco run                       # synthetic cases with regional bias\n  kiln linco run --data cases.jsonl --group-by region --epochs 12',
  schema: LINCO_SCHEMA,
  presets: {
    default: { doc: '1,500 synthetic cases, 7 regional judges, 6 epochs, 4 random-split panels', values: {} },
    tiny: {
      doc: '400 synthetic cases, 2 epochs, 2 random-split panels, 100 bootstrap resamples (seconds)',
      values: { cases: 400, epochs: 2, baselineRepeats: 2, bootstrapSamples: 100 },
    },
  },
  defaultPreset: 'default',
  async handler(ctx) {
    const c = ctx.config;
    const breakdowns = parseBreakdowns(String(c.breakdowns));
    const cases = loadCases(c);
    await startBackend(ctx);
    const recorder = await RunRecorder.open({ command: 'linco run', kind: 'linco', ...ctx });
    const repeats = Number(c.baselineRepeats);
    const progress = recorder.progress('linco', Number(c.epochs) * (1 + repeats));
    let epochsDone = 0;
    const onSigint = () => {
      ctx.stderr.write('\ninterrupted: LInCo has no intermediate state to checkpoint; nothing was written beyond metrics.jsonl\n');
      process.exit(EXIT.interrupted);
    };
    process.once('SIGINT', onSigint);
    try {
      const { frame, plan } = await lincoRun(cases, {
        sampling: {
          groupBy: String(c.groupBy),
          ...(Number(c.perJudge) > 0 ? { perJudge: Number(c.perJudge) } : {}),
          ...(Number(c.testSize) > 0 ? { testSize: Number(c.testSize) } : {}),
          crossGroupShare: Number(c.crossGroupShare),
        },
        model: { type: String(c.model) },
        train: { epochs: Number(c.epochs), batchSize: Number(c.batchSize), learningRate: Number(c.learningRate) },
        baselineRepeats: repeats,
        bootstrap: { samples: Number(c.bootstrapSamples), confidence: Number(c.confidence) },
        breakdowns,
        ...(c.debias !== 'none' ? { debias: { method: c.debias as DebiasMethod } } : {}),
        seed: Number(c.seed) + 1,
        onProgress: (e) => {
          if (e.stage === 'plan') {
            if (!ctx.quiet) ctx.stdout.write(`${e.judges} judges by '${c.groupBy}', ${e.perJudge} training cases each, ${e.testSize} held-out cases\n`);
          } else if (e.stage === 'train') {
            epochsDone += 1;
            // Each panel (the group panel, every random split) trains from scratch: its loss
            // is a series of its own over its epochs, not a stretch of one zig-zagging line.
            recorder.log(e.epoch + 1, { loss: e.loss }, '', `panel=${e.panel}`);
            progress.update(epochsDone, `${e.panel} loss ${e.loss.toFixed(4)}`);
          }
        },
      }).catch((err: Error) => {
        // The library validates sampling against the data (unknown group attribute, too few cases).
        if (/groupBy|group attribute|perJudge|testSize|no group|eligible/i.test(err.message)) throw new UsageError(err.message);
        throw err;
      });
      progress.finish();
      const confidence = Number(c.confidence);
      const file = await recorder.writeJson('linco.json', { ...frame.toJSON(), judges: plan.judges.map((j) => ({ group: j.group, cases: j.rows.length })) });
      for (const metric of ['term', 'charge'] as const) {
        recorder.log(epochsDone, { phase: 'final', [`linco_${metric}`]: frame.overall[metric] });
        await recorder.result('linco', lincoPayload(frame, metric, confidence));
      }
      await recorder.close();
      if (c.json) {
        ctx.stdout.write(`${JSON.stringify(frame.toJSON(), null, 2)}\n`);
        return EXIT.ok;
      }
      const pct = `${Math.round(confidence * 100)}% CI`;
      const lines: string[] = [];
      for (const metric of ['term', 'charge'] as const) {
        const [lo, hi] = frame.ci[metric];
        lines.push(`LInCo ${metric.padEnd(6)} ${fmt(frame.overall[metric])}  [${fmt(lo)}, ${fmt(hi)}] ${pct}`);
        if (frame.baseline && frame.excess) {
          const [blo, bhi] = frame.baseline.ci[metric];
          const [elo, ehi] = frame.excess.ci[metric];
          const kind = frame.baseline.interval === 'split+cases' ? 'null interval' : 'case bootstrap';
          const p = frame.excess.p ? `, p = ${frame.excess.p[metric].toFixed(3)}` : '';
          lines.push(
            `  random-split baseline ${fmt(frame.baseline.overall[metric])} [${fmt(blo)}, ${fmt(bhi)}] (${kind}); ` +
              `excess ${fmt(frame.excess.overall[metric])} [${fmt(elo)}, ${fmt(ehi)}]${p}`,
          );
        }
      }
      for (const [by, table] of Object.entries(frame.byGroup)) {
        lines.push(`by ${by}:`);
        for (const [group, v] of Object.entries(table)) lines.push(`  ${group.padEnd(14)} term ${fmt(v.term)}  charge ${fmt(v.charge)}  (n=${v.n})`);
      }
      lines.push(`written ${file}`);
      ctx.stdout.write(`${lines.join('\n')}\n`);
      return EXIT.ok;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

export const lincoCommands: CommandSpec[] = [lincoRunCommand];
