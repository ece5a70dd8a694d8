/**
 * The generic training harness: drives any `TrainableJob` step by step with a progress
 * bar, metrics as JSON lines (and to an eval server), periodic atomic checkpoints,
 * exact resume, and a checkpoint-then-exit on Ctrl-C.
 */
import { accessSync, constants, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Config, type FieldTable, type Rng, type SafetensorsEntry, type SafetensorsInput, createRng, writeFileAtomic } from '@kiln/tensor';
import { UsageError } from '../cli/errors.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { MetricsLog } from './metrics-log.js';
import { Progress } from './progress.js';
import { ServerSink, SinkAuthError } from './server-sink.js';

/** Keys every training command has; they steer the harness, not the model. */
export const HARNESS_FIELDS = {
  out: { type: 'string', default: '', doc: 'run directory for checkpoint, metrics.jsonl and run.json (default: runs/<command>-<seed>)' },
  seed: { type: 'int', default: 0, min: 0, doc: 'seed of every random choice (initialization, data order, augmentation)' },
  checkpointEvery: { type: 'int', default: 25, min: 1, doc: 'steps between checkpoints (also written at the end and on Ctrl-C)' },
  server: { type: 'string', default: '', doc: 'eval server URL to send the run and its metrics to (token: --token or KILN_EVAL_TOKEN)' },
  serverWait: {
    type: 'number',
    default: 60,
    min: 0,
    doc: 'with --server: seconds a finished run waits for the server to take what is still queued (metrics are retried in the background while the run trains)',
  },
} satisfies FieldTable;

/** Keys that may differ between a run and its resumption. */
const RESUME_FREE_KEYS = new Set(['out', 'server', 'serverWait', 'checkpointEvery']);

export interface TrainableJob {
  /** Stable name stored in the checkpoint ('regress', 'pointcloud-pretrain', ...). */
  name: string;
  totalSteps: number;
  /**
   * Runs step `step` (0-based). All randomness must come from the harness's `rng` so
   * that restoring its state restores the data order.
   */
  step(step: number): Promise<Record<string, number>>;
  /** Every tensor of the training state: weights and optimizer slots. */
  stateTensors(): Promise<Record<string, SafetensorsInput>>;
  restoreState(tensors: Record<string, SafetensorsEntry>, extra: unknown): Promise<void>;
  /** JSON state beyond tensors (optional). */
  extraState?(): unknown;
  /** Runs after the last step (evaluation); its metrics are logged at step = totalSteps. */
  finish?(): Promise<Record<string, number>>;
}

export interface RunOptions {
  /** The command, for names: 'regress', 'pointcloud pretrain'. */
  command: string;
  config: Config;
  resume: boolean;
  quiet: boolean;
  token: string | undefined;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Builds the job; it draws its initialization from `rng`. */
  createJob(rng: Rng): Promise<TrainableJob> | TrainableJob;
  /** Label for the progress bar. */
  label?: string;
}

export interface RunResult {
  status: 'done' | 'interrupted';
  step: number;
  dir: string;
  final: Record<string, number>;
  serverRunId: string | undefined;
}

export function runDirectory(command: string, config: Config): string {
  const out = String(config.out ?? '');
  return out || join('runs', `${command.replace(/\s+/g, '-')}-seed${config.seed ?? 0}`);
}

/**
 * Creates the run directory, or says clearly why it cannot be used: a file in the way, no
 * permission, a read-only file system (instead of a stack trace naming a temporary file).
 */
export function prepareRunDirectory(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new UsageError(`--out ${dir}: a file is in the way (the run directory must be a folder)`);
    if (code === 'EACCES' || code === 'EPERM') throw new UsageError(`--out ${dir} is not writable (${code}: permission denied); choose another --out`);
    if (code === 'EROFS') throw new UsageError(`--out ${dir} is on a read-only file system; choose another --out`);
    throw new UsageError(`--out ${dir} cannot be used: ${(err as Error).message}`);
  }
}

/** `--resume` found nothing to continue from: a usage error, never a silent fresh start. */
export function nothingToResume(dir: string, lookedFor: string): UsageError {
  return new UsageError(`--resume: nothing to resume in ${dir} (no ${lookedFor}); run without --resume to start`);
}

/**
 * The eval-server sink of a run given --server, with its run created (or `existingId`
 * adopted on resume). A token the server refuses is a usage error: better to stop now than
 * to train for hours reporting nothing.
 */
export async function openSink(
  options: { config: Config; token: string | undefined; stderr: NodeJS.WritableStream },
  name: string,
  kind: string,
  existingId?: string,
): Promise<ServerSink | undefined> {
  if (!options.config.server) return undefined;
  const sink = new ServerSink({
    url: String(options.config.server),
    token: options.token,
    warn: (m) => options.stderr.write(`warning: ${m}\n`),
    closeWaitMs: 1000 * Number(options.config.serverWait ?? 60),
  });
  try {
    await sink.start(name, kind, options.config, existingId);
  } catch (err) {
    if (err instanceof SinkAuthError) throw new UsageError(err.message);
    throw err;
  }
  return sink;
}

/** How long an interrupted run waits for the server to take what is queued. */
const INTERRUPTED_SERVER_WAIT_MS = 5000;

function configDifference(a: Config, b: Config): string | undefined {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const key of keys) {
    if (RESUME_FREE_KEYS.has(key)) continue;
    if (JSON.stringify(a[key]) !== JSON.stringify(b[key])) {
      return `config key '${key}' is ${JSON.stringify(b[key])} now but was ${JSON.stringify(a[key])} in the checkpoint`;
    }
  }
  return undefined;
}

function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k} ${Math.abs(v) >= 1000 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4)}`)
    .join(' ');
}

export async function runTraining(options: RunOptions): Promise<RunResult> {
  const { config } = options;
  const dir = runDirectory(options.command, config);
  prepareRunDirectory(dir);
  const seed = Number(config.seed ?? 0);
  const rng = createRng(seed);
  const job = await options.createJob(rng);

  let startStep = 0;
  let serverRunId: string | undefined;
  const metrics = new MetricsLog(join(dir, 'metrics.jsonl'));
  if (options.resume) {
    const ckpt = await loadCheckpoint(dir);
    if (!ckpt) throw nothingToResume(dir, 'checkpoint.safetensors');
    if (ckpt.job !== job.name) throw new UsageError(`--resume: the checkpoint in ${dir} is from job '${ckpt.job}', not '${job.name}'`);
    const diff = configDifference(ckpt.config, config);
    if (diff) throw new UsageError(`--resume: ${diff}; resume with the same config or start a new --out`);
    await job.restoreState(ckpt.tensors, ckpt.extra);
    rng.setState(ckpt.rng);
    startStep = ckpt.step;
    await metrics.keepThrough(startStep);
    serverRunId = (ckpt.extra as { serverRunId?: string } | null)?.serverRunId;
    options.stdout.write(`resuming ${job.name} from step ${startStep} (${dir})\n`);
  } else {
    await metrics.keepThrough(0);
  }
  await writeFileAtomic(
    join(dir, 'run.json'),
    `${JSON.stringify({ command: options.command, job: job.name, config, startedAt: new Date().toISOString(), resumedFrom: startStep || undefined }, null, 2)}\n`,
  );

  const sink = await openSink(options, `${options.command} seed ${seed}`, job.name, serverRunId);

  let step = startStep;
  const checkpoint = async (): Promise<void> => {
    const extra = { job: job.extraState?.() ?? null, serverRunId: sink?.id };
    await saveCheckpoint(dir, { job: job.name, step, config, rng: rng.getState(), extra, tensors: await job.stateTensors() });
  };

  let stopSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopSignal) process.exit(130); // a second Ctrl-C: leave now, the last checkpoint stays
    stopSignal = signal;
    options.stderr.write(`\n${signal}: finishing step ${step + 1}, writing a checkpoint, then exiting\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const progress = new Progress(options.label ?? job.name, job.totalSteps, startStep, { stream: options.stdout, quiet: options.quiet });
  const every = Number(config.checkpointEvery ?? 25);
  try {
    while (step < job.totalSteps) {
      const values = await job.step(step);
      step += 1;
      metrics.append({ step, time: new Date().toISOString(), ...values });
      sink?.push(Object.entries(values).map(([name, value]) => ({ step, name, value })));
      progress.update(step, formatMetrics(values));
      if (stopSignal) break;
      if (step % every === 0 && step < job.totalSteps) await checkpoint();
    }
    await checkpoint();
    progress.finish();
    if (stopSignal) {
      await sink?.close(Math.min(INTERRUPTED_SERVER_WAIT_MS, 1000 * Number(config.serverWait ?? 60)));
      options.stdout.write(`interrupted at step ${step}/${job.totalSteps}; checkpoint in ${dir}; continue with --resume\n`);
      return { status: 'interrupted', step, dir, final: {}, serverRunId: sink?.id };
    }
    const final = (await job.finish?.()) ?? {};
    if (Object.keys(final).length > 0) {
      metrics.append({ step, time: new Date().toISOString(), phase: 'final', ...final });
      sink?.push(Object.entries(final).map(([name, value]) => ({ step, name: `final/${name}`, value })));
    }
    await sink?.close();
    return { status: 'done', step, dir, final, serverRunId: sink?.id };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
