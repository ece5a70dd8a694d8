/**
 * `kiln pointcloud [all|pretrain|finetune|eval|predict]`: CSP pre-training, SPD fine-tuning,
 * whole-scene evaluation and per-point prediction from @kiln/pointcloud-ssl, on its synthetic
 * indoor scenes or on a data folder (`--data DIR --dataset pointcept|s3dis|scannet|ply`).
 *
 * Phases checkpoint their complete training state every `checkpointEvery` steps and on
 * Ctrl-C, and `--resume` continues mid-phase bit for bit (see pointcloud-phases.ts); a
 * finished phase's weights are reused when its config matches. Under `mpirun -np N` the
 * training commands run data parallel (see the library's data-parallel.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { Writable } from 'node:stream';
import { finalizeProcessCommunicator, processCommunicator } from '@kiln/moe-core';
import { type Dataset, type ParamStore, type PointCloudSslConfig, type TrainingPhase, type TrainingState, configDifference } from '@kiln/pointcloud-ssl';
import type { Config, FieldTable, tf } from '@kiln/tensor';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import type { MetricRecord } from '../harness/metrics-log.js';
import { RunRecorder } from '../harness/recorder.js';
import { HARNESS_FIELDS, nothingToResume, prepareRunDirectory, runDirectory } from '../harness/run.js';
import { DATA_KEYS, FINETUNE_KEYS, PRETRAIN_KEYS, SAMPLING_KEYS, SYNTHETIC_KEYS, checkpointConfig, libraryConfig, presetsFor } from './pointcloud-config.js';
import { modelFromCheckpoint, predictToPly, runEvaluation } from './pointcloud-eval.js';
import { type Phase, STATE_FILE, WEIGHTS_FILE, clearStates, isInterrupted, loadState, loadWeights, runFinetune, runPretrain, withStopRequest } from './pointcloud-phases.js';
import { startBackend } from './shared.js';

const { checkpointEvery: _perPhase, ...HARNESS_RUN_FIELDS } = HARNESS_FIELDS;
const RUN_FIELDS = {
  ...HARNESS_RUN_FIELDS,
  uploadCheckpoint: { type: 'boolean', default: true, doc: 'with --server: upload finetune.safetensors as a run artifact (for server-side evaluation jobs)' },
} satisfies FieldTable;
/** The training commands' keys: a mid-phase checkpoint costs a few ms at these model sizes. */
const TRAIN_RUN_FIELDS = {
  ...RUN_FIELDS,
  checkpointEvery: { type: 'int', default: 10, min: 1, doc: 'steps between mid-phase checkpoints (<phase>-state.safetensors; also written on Ctrl-C)' },
} satisfies FieldTable;

const MODEL_KEYS = { ...SYNTHETIC_KEYS, ...DATA_KEYS, ...SAMPLING_KEYS } satisfies FieldTable;

const EXAMPLES =
  'Examples:\n' +
  '  kiln pointcloud                         # pre-train, fine-tune, evaluate (pnpm start)\n' +
  '  kiln pointcloud --preset tiny --out runs/pc\n' +
  '  kiln pointcloud --preset tiny --out runs/pc --resume   # after Ctrl-C or a kill\n' +
  '  kiln pointcloud pretrain --no-cross-scene --out runs/no-csp\n' +
  '  kiln pointcloud --data data/s3dis --dataset s3dis --grid-size 0.05 --max-points 8192 --out runs/s3dis   # Area 5 held out\n' +
  '  kiln pointcloud finetune --data data/scannet --dataset scannet --pretrained runs/s3dis/pretrain.safetensors\n' +
  '  mpirun -np 4 kiln pointcloud pretrain --data data/s3dis --dataset s3dis     # data parallel\n' +
  '  kiln pointcloud eval --checkpoint runs/pc/finetune.safetensors\n' +
  '  kiln pointcloud predict --checkpoint runs/pc/finetune.safetensors --input scene.ply --out labelled.ply';

const ALL_SCHEMA: FieldTable = { ...MODEL_KEYS, ...PRETRAIN_KEYS, ...FINETUNE_KEYS, ...TRAIN_RUN_FIELDS };
const PRETRAIN_SCHEMA: FieldTable = { ...MODEL_KEYS, ...PRETRAIN_KEYS, ...TRAIN_RUN_FIELDS };
const FINETUNE_SCHEMA: FieldTable = {
  pretrained: { type: 'string', default: '', doc: 'pretrain.safetensors to start from (empty: from scratch)' },
  ...MODEL_KEYS,
  ...FINETUNE_KEYS,
  ...TRAIN_RUN_FIELDS,
};

/** The metric lines a resumed run keeps: finished phases whole, the resumed phase up to its state's step. */
function keepLines(finished: TrainingPhase[], resumed?: { phase: TrainingPhase; step: number }): (r: MetricRecord) => boolean {
  return (r) => finished.includes(r.phase as TrainingPhase) || (resumed !== undefined && r.phase === resumed.phase && r.step <= resumed.step);
}

function resumingLine(ctx: CommandContext, dir: string, kind: TrainingPhase, state: TrainingState | undefined): void {
  if (state) ctx.stdout.write(`resuming: ${kind} from step ${state.step}/${kind === 'pretrain' ? state.config.pretrain.steps : state.config.finetune.steps} (${join(dir, STATE_FILE[kind])})\n`);
}

/**
 * Runs a training command on every MPI rank (one process without mpirun): rank 0 reports,
 * checkpoints and evaluates; the other ranks keep a quiet record in <out>/rank-N and read
 * rank 0's checkpoints on --resume (their state is the same).
 */
async function onEveryRank(rootCtx: CommandContext, command: string, body: (ctx: CommandContext, group: Phase['group'], stateDir: string) => Promise<number>): Promise<number> {
  const world = await processCommunicator();
  try {
    const stateDir = runDirectory(command, rootCtx.config);
    prepareRunDirectory(stateDir);
    const ctx = world.rank === 0 ? rootCtx : quietRank(rootCtx, stateDir, world.rank);
    if (world.size > 1) ctx.stdout.write(`data parallel over ${world.size} MPI ranks\n`);
    return await body(ctx, world.size > 1 ? world : undefined, stateDir);
  } finally {
    await finalizeProcessCommunicator();
  }
}

/** The context of a non-zero MPI rank: no printing, no server, its own run directory. */
function quietRank(ctx: CommandContext, stateDir: string, rank: number): CommandContext {
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  const { server: _server, ...config } = ctx.config;
  return { ...ctx, quiet: true, stdout: sink, config: { ...config, out: join(stateDir, `rank-${rank}`) } };
}

const allCommand: CommandSpec = {
  path: ['pointcloud', 'all'],
  summary: 'CSP pre-training, then SPD fine-tuning, then mIoU on whole validation scenes',
  details:
    'The main job. Each phase writes <out>/<phase>-state.safetensors (its complete training state)\n' +
    'every --checkpoint-every steps and on Ctrl-C, and <out>/<phase>.safetensors when it ends.\n' +
    'Ctrl-C stops at the next step boundary, checkpoints and exits 130; --resume continues\n' +
    'from there bit for bit (also after a kill), reusing finished phases with the same config.\n' +
    'Training scenes are voxelized (GridSample at --grid-size) and cropped (SphereCrop at\n' +
    '--max-points); validation scenes are labelled whole by test-time fragment voting.\n\n' +
    EXAMPLES,
  schema: ALL_SCHEMA,
  presets: presetsFor(ALL_SCHEMA),
  defaultPreset: 'default',
  resumable: true,
  async handler(rootCtx) {
    const { config, dataset } = await libraryConfig(rootCtx.config);
    return onEveryRank(rootCtx, 'pointcloud', async (ctx, group, dir) => {
      await startBackend(ctx);
      // Where to pick up: evaluation only, fine-tuning (from a state or its start), or pre-training.
      let finetuned = ctx.resume ? await loadWeights(join(dir, WEIGHTS_FILE.finetune), 'finetune', config) : undefined;
      const pretrained = ctx.resume && !finetuned ? await loadWeights(join(dir, WEIGHTS_FILE.pretrain), 'pretrain', config) : undefined;
      const ftState = pretrained ? await loadState(dir, 'finetune', config) : undefined;
      const preState = ctx.resume && !finetuned && !pretrained ? await loadState(dir, 'pretrain', config) : undefined;
      if (ctx.resume && !finetuned && !pretrained && !preState) throw nothingToResume(dir, 'finished phase or training state from this config');
      const keep = !ctx.resume
        ? undefined
        : finetuned
          ? keepLines(['pretrain', 'finetune'])
          : pretrained
            ? keepLines(['pretrain'], { phase: 'finetune', step: ftState?.state.step ?? 0 })
            : keepLines([], { phase: 'pretrain', step: preState?.state.step ?? 0 });
      const serverRunId = ftState?.serverRunId ?? preState?.serverRunId;
      if (!ctx.resume && !group?.rank) clearStates(dir);
      const recorder = await RunRecorder.open({ command: 'pointcloud', kind: 'pointcloud', ...ctx, serverRunId }, keep);
      return withStopRequest(ctx, recorder, async (stop) => {
        const phase: Phase = { ctx, recorder, config, stop, group };
        if (finetuned) {
          ctx.stdout.write(`resuming: fine-tuning already done (${join(dir, WEIGHTS_FILE.finetune)})\n`);
        } else {
          let weights: ParamStore | Map<string, tf.Tensor>;
          if (pretrained) {
            ctx.stdout.write(`resuming: pre-training already done (${join(dir, WEIGHTS_FILE.pretrain)})\n`);
            weights = pretrained.tensors;
          } else {
            resumingLine(ctx, dir, 'pretrain', preState?.state);
            const pre = await runPretrain(phase, preState?.state);
            if (isInterrupted(pre)) return pre;
            weights = pre.backbone.params;
          }
          resumingLine(ctx, dir, 'finetune', ftState?.state);
          const result = await runFinetune(phase, weights, ftState?.state);
          if (isInterrupted(result)) return result;
          finetuned = { tensors: new Map([...result.backbone.params, ...result.head]), config: result.config };
        }
        if (group && group.rank !== 0) return undefined;
        return runEvaluation(ctx, recorder, config, dataset, modelFromCheckpoint(finetuned.config, finetuned.tensors, 'the fine-tuned model'));
      });
    });
  },
};

const pretrainCommand: CommandSpec = {
  path: ['pointcloud', 'pretrain'],
  summary: 'CSP self-supervised pre-training (synthetic scenes or --data)',
  details:
    'Writes <out>/pretrain.safetensors (backbone weights, config in the metadata), and\n' +
    '<out>/pretrain-state.safetensors every --checkpoint-every steps and on Ctrl-C (exit 130);\n' +
    `--resume continues from it exactly. Under mpirun, data parallel over the ranks.\n\n${EXAMPLES}`,
  schema: PRETRAIN_SCHEMA,
  presets: presetsFor(PRETRAIN_SCHEMA),
  defaultPreset: 'default',
  resumable: true,
  async handler(rootCtx) {
    const { config } = await libraryConfig(rootCtx.config);
    return onEveryRank(rootCtx, 'pointcloud pretrain', async (ctx, group, dir) => {
      await startBackend(ctx);
      const done = ctx.resume ? await loadWeights(join(dir, WEIGHTS_FILE.pretrain), 'pretrain', config) : undefined;
      if (done) {
        ctx.stdout.write(`pre-training already done with this config (${join(dir, WEIGHTS_FILE.pretrain)})\n`);
        return EXIT.ok;
      }
      const resume = ctx.resume ? await loadState(dir, 'pretrain', config) : undefined;
      if (ctx.resume && !resume) throw nothingToResume(dir, `${WEIGHTS_FILE.pretrain} or ${STATE_FILE.pretrain} from this config`);
      const keep = ctx.resume ? keepLines([], { phase: 'pretrain', step: resume?.state.step ?? 0 }) : undefined;
      if (!ctx.resume && !group?.rank) clearStates(dir);
      const recorder = await RunRecorder.open({ command: 'pointcloud pretrain', kind: 'pointcloud', ...ctx, serverRunId: resume?.serverRunId }, keep);
      resumingLine(ctx, dir, 'pretrain', resume?.state);
      return withStopRequest(ctx, recorder, (stop) => runPretrain({ ctx, recorder, config, stop, group }, resume?.state));
    });
  },
};

const finetuneCommand: CommandSpec = {
  path: ['pointcloud', 'finetune'],
  summary: 'SPD fine-tuning for segmentation (from a pre-trained checkpoint, or from scratch), then evaluation',
  details:
    'Writes <out>/finetune.safetensors and evaluates it on whole validation scenes;\n' +
    '<out>/finetune-state.safetensors every --checkpoint-every steps and on Ctrl-C (exit 130);\n' +
    `--resume continues from it exactly. Under mpirun, data parallel over the ranks.\n\n${EXAMPLES}`,
  schema: FINETUNE_SCHEMA,
  presets: presetsFor(FINETUNE_SCHEMA),
  defaultPreset: 'default',
  resumable: true,
  async handler(rootCtx) {
    const { config, dataset } = await libraryConfig(rootCtx.config);
    let pretrained: Map<string, tf.Tensor> | undefined;
    if (rootCtx.config.pretrained) {
      const path = String(rootCtx.config.pretrained);
      if (!existsSync(path)) throw new UsageError(`config key 'pretrained': ${path} does not exist`);
      const loaded = await loadWeights(path, 'pretrain');
      if (configDifference(loaded!.config.model, config.model) !== undefined) {
        throw new UsageError(`config key 'pretrained': ${path} was pre-trained with a different model (size '${rootCtx.config.size}' does not match)`);
      }
      pretrained = loaded!.tensors;
    }
    return onEveryRank(rootCtx, 'pointcloud finetune', async (ctx, group, dir) => {
      await startBackend(ctx);
      const done = ctx.resume ? await loadWeights(join(dir, WEIGHTS_FILE.finetune), 'finetune', config) : undefined;
      const resume = ctx.resume && !done ? await loadState(dir, 'finetune', config) : undefined;
      if (ctx.resume && !done && !resume) throw nothingToResume(dir, `${WEIGHTS_FILE.finetune} or ${STATE_FILE.finetune} from this config`);
      const keep = !ctx.resume ? undefined : keepLines(done ? ['finetune'] : [], { phase: 'finetune', step: resume?.state.step ?? 0 });
      if (!ctx.resume && !group?.rank) clearStates(dir);
      const recorder = await RunRecorder.open({ command: 'pointcloud finetune', kind: 'pointcloud', ...ctx, serverRunId: resume?.serverRunId }, keep);
      return withStopRequest(ctx, recorder, async (stop) => {
        if (done) ctx.stdout.write(`resuming: fine-tuning already done (${join(dir, WEIGHTS_FILE.finetune)})\n`);
        resumingLine(ctx, dir, 'finetune', resume?.state);
        const result = done ? undefined : await runFinetune({ ctx, recorder, config, stop, group }, pretrained, resume?.state);
        if (isInterrupted(result)) return result;
        if (group && group.rank !== 0) return undefined;
        const model = result ? { backbone: result.backbone, head: result.head } : modelFromCheckpoint(done!.config, done!.tensors, join(dir, WEIGHTS_FILE.finetune));
        return runEvaluation(ctx, recorder, config, dataset, model);
      });
    });
  },
};

/** A fine-tuned checkpoint given by --checkpoint: its weights and config (exit 2 when unusable). */
async function fineTunedCheckpoint(c: Config): Promise<{ tensors: Map<string, tf.Tensor>; config: PointCloudSslConfig; path: string }> {
  const path = String(c.checkpoint ?? '');
  if (!path) throw new UsageError("config key 'checkpoint' is required: --checkpoint runs/…/finetune.safetensors");
  if (!existsSync(path)) throw new UsageError(`config key 'checkpoint': ${path} does not exist`);
  const loaded = await loadWeights(path, 'finetune');
  return { ...loaded!, path };
}

/** The data keys of eval: unset (null) means the checkpoint's own. */
const EVAL_DATA_KEYS: FieldTable = Object.fromEntries(
  (['dataset', 'data', 'valSplit', 'segmentKey'] as const).map((k) => [k, { ...DATA_KEYS[k], default: null, nullable: true, doc: `${DATA_KEYS[k].doc}; default: the checkpoint's` }]),
);

const evalCommand: CommandSpec = {
  path: ['pointcloud', 'eval'],
  summary: 'mIoU and IoU per class of a fine-tuned checkpoint on whole validation scenes (fragment voting)',
  details:
    "The data set is the checkpoint's (its validation split), or --data/--dataset/--val-split.\n" +
    "Each scene is labelled whole: GridSample's test fragments at the checkpoint's grid, each\n" +
    'through the model, probabilities summed per point (as Pointcept tests).\n\n' +
    EXAMPLES,
  schema: {
    checkpoint: { type: 'string', default: '', doc: 'finetune.safetensors written by kiln pointcloud [finetune]' },
    ...EVAL_DATA_KEYS,
    ...RUN_FIELDS,
  },
  async handler(ctx) {
    const ckpt = await fineTunedCheckpoint(ctx.config);
    const { config, dataset } = await checkpointConfig(ckpt.config, ctx.config);
    await startBackend(ctx);
    const recorder = await RunRecorder.open({ command: 'pointcloud eval', kind: 'pointcloud', ...ctx });
    await runEvaluation(ctx, recorder, config, dataset satisfies Dataset, modelFromCheckpoint(ckpt.config, ckpt.tensors, ckpt.path));
    await recorder.close();
    return EXIT.ok;
  },
};

const predictCommand: CommandSpec = {
  path: ['pointcloud', 'predict'],
  summary: 'label every point of a scene with a fine-tuned checkpoint; writes a PLY with an int label property',
  details:
    'The input is anything kiln reads as a point cloud: .ply, .pcd, a Pointcept scene folder\n' +
    '(coord.npy …), a ScanNet scan, an S3DIS room, HDF5 blocks. Each scene is labelled whole by\n' +
    'fragment voting; the output holds its points, colours and normals as read, an int `label`\n' +
    'per vertex, and the class names (a JSON list, index = label) in a header comment.\n\n' +
    EXAMPLES,
  schema: {
    checkpoint: { type: 'string', default: '', doc: 'finetune.safetensors written by kiln pointcloud [finetune]' },
    input: { type: 'string', required: true, maxLength: 4096, doc: 'the scene to label (file or folder)' },
    out: { type: 'string', required: true, maxLength: 4096, doc: 'the labelled scene to write (.ply)' },
  },
  async handler(ctx) {
    const ckpt = await fineTunedCheckpoint(ctx.config);
    const out = String(ctx.config.out);
    if (extname(out).toLowerCase() !== '.ply') throw new UsageError(`config key 'out': ${out} must end in .ply`);
    const parent = dirname(out);
    if (!existsSync(parent) || !statSync(parent).isDirectory()) throw new UsageError(`config key 'out': the folder ${parent} does not exist`);
    const input = String(ctx.config.input);
    if (!existsSync(input)) throw new UsageError(`config key 'input': ${input} does not exist`);
    await startBackend(ctx);
    await predictToPly(ctx, ckpt.config, modelFromCheckpoint(ckpt.config, ckpt.tensors, ckpt.path), input, out);
    return EXIT.ok;
  },
};

export const pointcloudCommands: CommandSpec[] = [allCommand, pretrainCommand, finetuneCommand, evalCommand, predictCommand];
