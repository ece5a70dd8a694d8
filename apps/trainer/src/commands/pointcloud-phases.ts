/**
 * The two training phases of `kiln pointcloud` with mid-phase checkpoints and exact resume.
 *
 * @kiln/pointcloud-ssl's loops hand every step a `control.state()` that captures their
 * complete state (weights, EMA/frozen teacher, Adam slots and β products, RNG, history). A
 * phase writes it to `<out>/<phase>-state.safetensors` every `checkpointEvery` steps and at
 * the step boundary after Ctrl-C; when the phase ends, its weights go to
 * `<out>/<phase>.safetensors` and the state file is removed. `--resume` picks up a finished
 * phase's weights or a state file and continues bit for bit.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DataParallelGroup,
  type FinetuneResult,
  type ParamStore,
  type PointCloudSslConfig,
  type PretrainResult,
  type StepControl,
  type StepInfo,
  type TrainingPhase,
  type TrainingState,
  configDifference,
  finetune,
  loadCheckpoint,
  loadTrainingState,
  pretrain,
  saveCheckpoint,
  saveTrainingState,
} from '@kiln/pointcloud-ssl';
import type { tf } from '@kiln/tensor';
import type { CommandContext } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import type { RunRecorder } from '../harness/recorder.js';
import { asUsageError } from './pointcloud-config.js';

export const WEIGHTS_FILE: Record<TrainingPhase, string> = { pretrain: 'pretrain.safetensors', finetune: 'finetune.safetensors' };
export const STATE_FILE: Record<TrainingPhase, string> = { pretrain: 'pretrain-state.safetensors', finetune: 'finetune-state.safetensors' };

/** Set by the first SIGINT/SIGTERM; phases stop at the next step boundary. */
export interface StopRequest {
  signal: NodeJS.Signals | undefined;
}

/** Where a phase stopped early, for the message and the exit code. */
export interface Interrupted {
  interrupted: true;
  phase: TrainingPhase;
  step: number;
  steps: number;
  /** The file to continue from. */
  path: string;
}

export const isInterrupted = (x: unknown): x is Interrupted => typeof x === 'object' && x !== null && (x as Interrupted).interrupted === true;

export interface Phase {
  ctx: CommandContext;
  recorder: RunRecorder;
  config: PointCloudSslConfig;
  stop: StopRequest;
  /**
   * Data parallel under mpirun: every rank trains on its own micro-batches; rank 0 writes the
   * checkpoints (the others' state is the same) and the ranks agree on stopping.
   */
  group?: DataParallelGroup;
}

const isRoot = (phase: Phase) => (phase.group?.rank ?? 0) === 0;

/** Whether any rank was asked to stop (every rank asks the same question each step). */
async function stopAgreed(phase: Phase, stopping: boolean): Promise<boolean> {
  if (!phase.group || phase.group.size === 1) return stopping;
  return (await phase.group.allReduce(Float32Array.of(stopping ? 1 : 0), 'sum'))[0]! > 0;
}

/**
 * Runs `body` with SIGINT/SIGTERM turned into a stop request (a second signal exits 130 at
 * once, leaving the last checkpoint). An `Interrupted` outcome is reported and becomes exit
 * code 130, as `kiln moe train` and the harness do.
 */
export async function withStopRequest(ctx: CommandContext, recorder: RunRecorder, body: (stop: StopRequest) => Promise<unknown>): Promise<number> {
  const stop: StopRequest = { signal: undefined };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stop.signal) process.exit(EXIT.interrupted);
    stop.signal = signal;
    ctx.stderr.write(`\n${signal}: stopping at the next step boundary and writing a checkpoint (again to quit at once)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const outcome = await body(stop);
    await recorder.close();
    if (isInterrupted(outcome)) {
      const where = outcome.step < outcome.steps ? `${outcome.phase} step ${outcome.step}/${outcome.steps}` : `after ${outcome.phase}`;
      ctx.stdout.write(`interrupted ${where}; checkpoint ${outcome.path}; continue with --resume\n`);
      return EXIT.interrupted;
    }
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Metadata of the trainer's own beside the library's state. */
function stateMetadata(phase: Phase): Record<string, string> {
  const meta: Record<string, string> = { 'kiln.command': phase.recorder.command, 'kiln.config': JSON.stringify(phase.ctx.config) };
  if (phase.recorder.serverRunId) meta['kiln.serverRunId'] = phase.recorder.serverRunId;
  return meta;
}

/** The per-step callback: a metrics line, the progress bar, and the state checkpoints. */
function onStep(phase: Phase, kind: TrainingPhase, steps: number, start: number) {
  const statePath = join(phase.recorder.dir, STATE_FILE[kind]);
  const every = Number(phase.ctx.config.checkpointEvery ?? 10);
  const progress = phase.recorder.progress(kind === 'pretrain' ? 'pretrain (CSP)' : `finetune (${phase.config.finetune.mode})`, steps, start);
  const handler = async (s: StepInfo, control: StepControl): Promise<'stop' | undefined> => {
    const { step: _s, steps: _n, ...values } = s;
    const done = s.step + 1;
    phase.recorder.log(done, { phase: kind, ...values }, kind);
    progress.update(done, `loss ${s.loss.toFixed(4)}`);
    // The loop yields to the event loop only through promise jobs on the cpu backends, so a
    // pending SIGINT/SIGTERM would wait for the next file write: give it its turn here.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // After the last step the phase's weights file is the checkpoint.
    if (done >= steps) return undefined;
    const stopping = await stopAgreed(phase, phase.stop.signal !== undefined);
    if (isRoot(phase) && (stopping || done % every === 0)) await saveTrainingState(statePath, await control.state(), stateMetadata(phase));
    return stopping ? 'stop' : undefined;
  };
  return { handler, progress, statePath };
}

/** Ends a phase: its weights file, no state file, a summary line. */
async function finishPhase(phase: Phase, kind: TrainingPhase, stores: ParamStore[], history: StepInfo[]): Promise<string> {
  const path = join(phase.recorder.dir, WEIGHTS_FILE[kind]);
  if (!isRoot(phase)) return path;
  await saveCheckpoint(path, stores, phase.config, kind);
  rmSync(join(phase.recorder.dir, STATE_FILE[kind]), { force: true });
  if (!phase.ctx.quiet) {
    const what = kind === 'pretrain' ? 'pre-training' : 'fine-tuning';
    phase.ctx.stdout.write(`${what} done: loss ${history[0]?.loss.toFixed(4)} → ${history.at(-1)?.loss.toFixed(4)}; checkpoint ${path}\n`);
  }
  return path;
}

export async function runPretrain(phase: Phase, resumeFrom?: TrainingState): Promise<PretrainResult | Interrupted> {
  const steps = phase.config.pretrain.steps;
  const { handler, progress, statePath } = onStep(phase, 'pretrain', steps, resumeFrom?.step ?? 0);
  const result = await pretrain(phase.config, { onStep: handler, ...(resumeFrom ? { resumeFrom } : {}), ...(phase.group ? { dataParallel: phase.group } : {}) }).catch(rethrowDataError);
  progress.finish();
  if (!result.completed) return { interrupted: true, phase: 'pretrain', step: result.history.length, steps, path: statePath };
  const path = await finishPhase(phase, 'pretrain', [result.backbone.params], result.history);
  if (phase.stop.signal) return { interrupted: true, phase: 'pretrain', step: steps, steps, path };
  return result;
}

export async function runFinetune(
  phase: Phase,
  pretrained: ParamStore | Map<string, tf.Tensor> | undefined,
  resumeFrom?: TrainingState,
): Promise<FinetuneResult | Interrupted> {
  const steps = phase.config.finetune.steps;
  const { handler, progress, statePath } = onStep(phase, 'finetune', steps, resumeFrom?.step ?? 0);
  const result = await finetune(phase.config, {
    onStep: handler,
    ...(pretrained ? { pretrained } : {}),
    ...(resumeFrom ? { resumeFrom } : {}),
    ...(phase.group ? { dataParallel: phase.group } : {}),
  }).catch(rethrowDataError);
  progress.finish();
  if (!result.completed) return { interrupted: true, phase: 'finetune', step: result.history.length, steps, path: statePath };
  const path = await finishPhase(phase, 'finetune', [result.backbone.params, result.head], result.history);
  if (isRoot(phase) && phase.ctx.config.uploadCheckpoint) await phase.recorder.artifact(WEIGHTS_FILE.finetune, readFileSync(path));
  if (phase.stop.signal) return { interrupted: true, phase: 'finetune', step: steps, steps, path };
  return result;
}

/**
 * A scene file found malformed mid-training names the file (exit 2), as it would before; so
 * does a shard too small for the micro-batches (a usage error).
 */
function rethrowDataError(err: unknown): never {
  const e = asUsageError(err);
  if (e === err && err instanceof Error && /micro-batch\(es\) of a step a shard|numClasses is/.test(err.message)) throw new UsageError(err.message);
  throw e;
}

/** A fresh (not --resume) run drops states a former run left in its directory. */
export function clearStates(dir: string): void {
  for (const file of Object.values(STATE_FILE)) rmSync(join(dir, file), { force: true });
}

/** A finished phase's weights written by this command; undefined when `expect` (the config) differs. */
export async function loadWeights(path: string, kind: TrainingPhase, expect?: PointCloudSslConfig): Promise<{ tensors: Map<string, tf.Tensor>; config: PointCloudSslConfig } | undefined> {
  if (!existsSync(path)) return undefined;
  const ckpt = await loadCheckpoint(path);
  if (ckpt.kind !== kind) throw new UsageError(`${path} is a '${ckpt.kind}' checkpoint, not '${kind}'`);
  if (!ckpt.config) throw new UsageError(`${path} has no config in its metadata`);
  if (expect && configDifference(ckpt.config, expect) !== undefined) return undefined;
  return { tensors: ckpt.tensors, config: ckpt.config };
}

/**
 * The mid-phase state in `dir`, if any. A state saved with another config is refused (exit
 * 2) rather than silently restarted: it is progress the user may want to keep.
 */
export async function loadState(dir: string, kind: TrainingPhase, config: PointCloudSslConfig): Promise<{ state: TrainingState; serverRunId: string | undefined } | undefined> {
  const path = join(dir, STATE_FILE[kind]);
  if (!existsSync(path)) return undefined;
  const { state, metadata } = await loadTrainingState(path).catch((err: Error) => {
    throw new UsageError(`--resume: ${err.message}`);
  });
  if (state.phase !== kind) throw new UsageError(`--resume: ${path} holds a '${state.phase}' state, not '${kind}'`);
  const diff = configDifference(state.config, config);
  if (diff !== undefined) {
    throw new UsageError(`--resume: ${path} was saved with a different config (config.${diff}); resume with the same settings, or delete it to restart ${kind} from its first step`);
  }
  return { state, serverRunId: metadata['kiln.serverRunId'] || undefined };
}
