/**
 * `kiln pointcloud [all|pretrain|finetune|eval]`: CSP pre-training, SPD fine-tuning and
 * segmentation evaluation from @kiln/pointcloud-ssl, on its synthetic indoor scenes.
 *
 * Phases checkpoint their complete training state every `checkpointEvery` steps and on
 * Ctrl-C, and `--resume` continues mid-phase bit for bit (see pointcloud-phases.ts); a
 * finished phase's weights are reused when its config matches.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DeepPartial,
  type ParamStore,
  PRESETS,
  type PointCloudSslConfig,
  S3DIS_CLASSES,
  type TrainingPhase,
  type TrainingState,
  buildModel,
  configDifference,
  copyParams,
  evaluate,
  extractFeatures,
  initSegHead,
  predictWith,
  resolveConfig,
  syntheticSplits,
} from '@kiln/pointcloud-ssl';
import { type Config, type FieldTable, createRng, type tf } from '@kiln/tensor';
import type { CommandContext, CommandSpec } from '../cli/command.js';
import { EXIT, UsageError } from '../cli/errors.js';
import type { MetricRecord } from '../harness/metrics-log.js';
import { RunRecorder } from '../harness/recorder.js';
import { HARNESS_FIELDS, nothingToResume, prepareRunDirectory, runDirectory } from '../harness/run.js';
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

type Size = keyof typeof PRESETS;

/** Flat config key → path in the library's nested config. */
const PATHS = {
  dataSeed: ['data', 'seed'],
  trainScenes: ['data', 'trainScenes'],
  valScenes: ['data', 'valScenes'],
  pointsPerScene: ['data', 'pointsPerScene'],
  pretrainSteps: ['pretrain', 'steps'],
  pretrainBatchScenes: ['pretrain', 'batchScenes'],
  pretrainLr: ['pretrain', 'lr'],
  crossScene: ['pretrain', 'crossScene'],
  objective: ['pretrain', 'objective'],
  maskRatio: ['pretrain', 'maskRatio'],
  finetuneSteps: ['finetune', 'steps'],
  finetuneBatchScenes: ['finetune', 'batchScenes'],
  finetuneLr: ['finetune', 'lr'],
  finetuneMode: ['finetune', 'mode'],
  spdLambda: ['finetune', 'spdLambda'],
  teacher: ['finetune', 'teacher'],
  labelFraction: ['finetune', 'labelFraction'],
  evalBatchScenes: ['eval', 'batchScenes'],
} as const;

type FlatKey = keyof typeof PATHS;

function read(c: PointCloudSslConfig, key: FlatKey): number | string | boolean {
  const [group, field] = PATHS[key];
  return (c as unknown as Record<string, Record<string, number | string | boolean>>)[group]![field]!;
}

function flatten(c: PointCloudSslConfig): Record<FlatKey, number | string | boolean> {
  return Object.fromEntries(Object.keys(PATHS).map((k) => [k, read(c, k as FlatKey)])) as Record<FlatKey, number | string | boolean>;
}

const D = flatten(PRESETS.default);

const MODEL_FIELDS = {
  size: { type: 'enum', values: Object.keys(PRESETS), default: 'default', doc: "model and data size preset of @kiln/pointcloud-ssl ('tiny' for tests)" },
  dataSeed: { type: 'int', default: Number(D.dataSeed), min: 0, doc: 'seed of the synthetic scenes' },
  trainScenes: { type: 'int', default: Number(D.trainScenes), min: 1, doc: 'synthetic training scenes' },
  valScenes: { type: 'int', default: Number(D.valScenes), min: 1, doc: 'synthetic validation scenes' },
  pointsPerScene: { type: 'int', default: Number(D.pointsPerScene), min: 8, doc: 'points generated per scene' },
  evalBatchScenes: { type: 'int', default: Number(D.evalBatchScenes), min: 1, doc: 'scenes per batch-serialized inference (the batch-vs-single gap)' },
} satisfies FieldTable;

const PRETRAIN_FIELDS = {
  pretrainSteps: { type: 'int', default: Number(D.pretrainSteps), min: 0, doc: 'CSP pre-training steps' },
  pretrainBatchScenes: { type: 'int', default: Number(D.pretrainBatchScenes), min: 1, doc: 'scenes serialized into one sequence per step' },
  pretrainLr: { type: 'number', default: Number(D.pretrainLr), min: 0, exclusiveMin: true, doc: 'pre-training learning rate' },
  crossScene: { type: 'boolean', default: Boolean(D.crossScene), doc: 'CSP: carry the scan state across scene boundaries (off: each scene alone)' },
  objective: { type: 'enum', values: ['distill', 'cosine', 'msc'], default: String(D.objective), doc: 'self-supervised objective' },
  maskRatio: { type: 'number', default: Number(D.maskRatio), min: 0, max: 0.99, doc: 'fraction of masked patches in the student view' },
} satisfies FieldTable;

const FINETUNE_FIELDS = {
  finetuneSteps: { type: 'int', default: Number(D.finetuneSteps), min: 0, doc: 'fine-tuning steps' },
  finetuneBatchScenes: { type: 'int', default: Number(D.finetuneBatchScenes), min: 1, doc: 'scenes per fine-tuning step' },
  finetuneLr: { type: 'number', default: Number(D.finetuneLr), min: 0, exclusiveMin: true, doc: 'fine-tuning learning rate' },
  finetuneMode: { type: 'enum', values: ['spd', 'single', 'batch'], default: String(D.finetuneMode), doc: "'spd': SPD distillation; 'single': plain; 'batch': batch-serialized without SPD" },
  spdLambda: { type: 'number', default: Number(D.spdLambda), min: 0, doc: 'weight of the SPD feature-alignment loss' },
  teacher: { type: 'enum', values: ['frozen', 'ema'], default: String(D.teacher), doc: 'SPD teacher: the frozen pre-trained backbone or an EMA of the student' },
  labelFraction: { type: 'number', default: Number(D.labelFraction), min: 0, exclusiveMin: true, max: 1, doc: 'fraction of training labels used' },
} satisfies FieldTable;

/** The library's size presets, limited to the keys a command has. */
function presetsFor(schema: FieldTable): Record<Size, { doc: string; values: Partial<Config> }> {
  const pick = (size: Size, doc: string) => {
    const values: Partial<Config> = { size };
    for (const [k, v] of Object.entries(flatten(PRESETS[size]))) if (k in schema) values[k] = v;
    return { doc, values };
  };
  return {
    default: pick('default', `${D.trainScenes} training scenes, ${D.pretrainSteps} pre-training + ${D.finetuneSteps} fine-tuning steps (a few minutes on 2 cores)`),
    tiny: pick('tiny', 'a few scenes and steps of a tiny model (seconds; for tests)'),
  };
}

/** The library config for a flat command config (only the keys this command has). */
export function libraryConfig(c: Config): PointCloudSslConfig {
  const overrides: Record<string, Record<string, unknown>> = {};
  for (const [key, [group, field]] of Object.entries(PATHS)) {
    if (c[key] === undefined) continue;
    overrides[group] ??= {};
    overrides[group]![field] = c[key];
  }
  const o = overrides as DeepPartial<PointCloudSslConfig>;
  try {
    return resolveConfig(String(c.size ?? 'default') as Size, { ...o, seed: Number(c.seed ?? 0) });
  } catch (err) {
    // The library names the nested field ("config.pretrain.batchScenes = 9: ..."); say the flag too.
    const m = /config\.(\w+)\.(\w+)/.exec((err as Error).message);
    const flat = m && Object.entries(PATHS).find(([, [g, f]]) => g === m[1] && f === m[2])?.[0];
    throw new UsageError(flat ? `config key '${flat}': ${(err as Error).message}` : (err as Error).message);
  }
}

function modelFromCheckpoint(config: PointCloudSslConfig, tensors: Map<string, tf.Tensor>, path: string): { backbone: ReturnType<typeof buildModel>; head: ParamStore } {
  const rng = createRng(config.seed);
  const backbone = buildModel(config.model, rng.fork());
  const head = initSegHead(rng.fork(), backbone.outChannels, config.numClasses);
  const copied = copyParams(backbone.params, tensors).length + copyParams(head, tensors).length;
  if (copied !== backbone.params.size + head.size) {
    throw new UsageError(`${path} holds ${copied} of the ${backbone.params.size + head.size} tensors of the fine-tuned model`);
  }
  return { backbone, head };
}

/** Scores the validation scenes, prints mIoU and per-class IoU, stores eval.json, tells the server. */
async function runEvaluation({ ctx, recorder, config }: Omit<Phase, 'stop'>, model: { backbone: ReturnType<typeof buildModel>; head: ParamStore }): Promise<number> {
  const data = syntheticSplits(config);
  const result = evaluate(config, { backbone: model.backbone, head: model.head, data });
  const names = S3DIS_CLASSES.slice(0, config.numClasses) as readonly string[];
  const classes = result.single.iou.map((iou, k) => ({ name: names[k] ?? `class ${k}`, iou: Number.isFinite(iou) ? iou : null }));
  const summary = {
    mIoU: result.single.mIoU,
    mAcc: result.single.mAcc,
    OA: result.single.OA,
    batchMIoU: result.batch.mIoU,
    batchGap: result.gap,
    featureShift: result.featureShift,
    classes,
  };
  await recorder.writeJson('eval.json', { ...summary, consistency: result.consistency, valScenes: data.val.length });
  recorder.log(0, { phase: 'final', mIoU: summary.mIoU, mAcc: summary.mAcc, OA: summary.OA, batchMIoU: summary.batchMIoU, batchGap: summary.batchGap }, 'eval');

  // The validation scenes, segmented, for the dashboard's 3-D view: scene by scene in a row
  // along x (each shifted past the previous one's extent), for display only.
  const view = { classes: [...names], positions: [] as number[], labels: [] as number[], predictions: [] as number[] };
  const shown = data.val.slice(0, 4);
  const features = extractFeatures(config, model.backbone, shown, false, config.eval.batchScenes);
  const predictions = predictWith(model.head, features);
  let shift = 0;
  let at = 0;
  for (const scene of shown) {
    let minX = Number.POSITIVE_INFINITY;
    let maxX = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < scene.coord.length; i += 3) {
      minX = Math.min(minX, scene.coord[i]!);
      maxX = Math.max(maxX, scene.coord[i]!);
    }
    for (let i = 0; i < scene.coord.length / 3; i++) {
      view.positions.push(scene.coord[3 * i]! - minX + shift, scene.coord[3 * i + 1]!, scene.coord[3 * i + 2]!);
      view.labels.push(scene.label?.[i] ?? -1);
      view.predictions.push(predictions[at + i]!);
    }
    at += scene.coord.length / 3;
    shift += maxX - minX + 1;
  }
  await recorder.artifact('val-scenes.points.json', new TextEncoder().encode(JSON.stringify(view)));
  await recorder.result('pointcloud', { split: `synthetic val (${data.val.length} scenes)`, miou: summary.mIoU, accuracy: summary.OA, classes, pointsArtifact: 'val-scenes.points.json' });

  const pct = (v: number) => (100 * v).toFixed(2);
  const lines = [
    `mIoU ${pct(summary.mIoU)}  mAcc ${pct(summary.mAcc)}  OA ${pct(summary.OA)}  (single-scene inference, ${data.val.length} validation scenes)`,
    `batch-of-${config.eval.batchScenes} inference: mIoU ${pct(summary.batchMIoU)} (gap ${summary.batchGap >= 0 ? '+' : ''}${pct(summary.batchGap)})`,
    'IoU per class:',
    ...classes.map((c) => `  ${c.name.padEnd(10)} ${c.iou === null ? '   n/a' : pct(c.iou).padStart(6)}`),
  ];
  ctx.stdout.write(`${lines.join('\n')}\n`);
  return summary.mIoU;
}

const EXAMPLES = 'Examples:\n  kiln pointcloud                         # pre-train, fine-tune, evaluate (pnpm start)\n  kiln pointcloud --preset tiny --out runs/pc\n  kiln pointcloud --preset tiny --out runs/pc --resume   # after Ctrl-C or a kill\n  kiln pointcloud pretrain --no-cross-scene --out runs/no-csp\n  kiln pointcloud eval --checkpoint runs/pc/finetune.safetensors';

const ALL_SCHEMA: FieldTable = { ...MODEL_FIELDS, ...PRETRAIN_FIELDS, ...FINETUNE_FIELDS, ...TRAIN_RUN_FIELDS };
const PRETRAIN_SCHEMA: FieldTable = { ...MODEL_FIELDS, ...PRETRAIN_FIELDS, ...TRAIN_RUN_FIELDS };
const FINETUNE_SCHEMA: FieldTable = {
  pretrained: { type: 'string', default: '', doc: 'pretrain.safetensors to start from (empty: from scratch)' },
  ...MODEL_FIELDS,
  ...FINETUNE_FIELDS,
  ...TRAIN_RUN_FIELDS,
};

/** The metric lines a resumed run keeps: finished phases whole, the resumed phase up to its state's step. */
function keepLines(finished: TrainingPhase[], resumed?: { phase: TrainingPhase; step: number }): (r: MetricRecord) => boolean {
  return (r) => finished.includes(r.phase as TrainingPhase) || (resumed !== undefined && r.phase === resumed.phase && r.step <= resumed.step);
}

function resumingLine(ctx: CommandContext, dir: string, kind: TrainingPhase, state: TrainingState | undefined): void {
  if (state) ctx.stdout.write(`resuming: ${kind} from step ${state.step}/${kind === 'pretrain' ? state.config.pretrain.steps : state.config.finetune.steps} (${join(dir, STATE_FILE[kind])})\n`);
}

const allCommand: CommandSpec = {
  path: ['pointcloud', 'all'],
  summary: 'CSP pre-training, then SPD fine-tuning, then mIoU on the synthetic scenes',
  details:
    'The main job. Each phase writes <out>/<phase>-state.safetensors (its complete training state)\n' +
    'every --checkpoint-every steps and on Ctrl-C, and <out>/<phase>.safetensors when it ends.\n' +
    'Ctrl-C stops at the next step boundary, checkpoints and exits 130; --resume continues\n' +
    'from there bit for bit (also after a kill), reusing finished phases with the same config.\n\n' +
    EXAMPLES,
  schema: ALL_SCHEMA,
  presets: presetsFor(ALL_SCHEMA),
  defaultPreset: 'default',
  resumable: true,
  async handler(ctx) {
    const config = libraryConfig(ctx.config);
    await startBackend(ctx);
    const dir = runDirectory('pointcloud', ctx.config);
    prepareRunDirectory(dir);
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
    if (!ctx.resume) clearStates(dir);
    const recorder = await RunRecorder.open({ command: 'pointcloud', kind: 'pointcloud', ...ctx, serverRunId }, keep);
    return withStopRequest(ctx, recorder, async (stop) => {
      const phase: Phase = { ctx, recorder, config, stop };
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
      return runEvaluation(phase, modelFromCheckpoint(finetuned.config, finetuned.tensors, 'the fine-tuned model'));
    });
  },
};

const pretrainCommand: CommandSpec = {
  path: ['pointcloud', 'pretrain'],
  summary: 'CSP self-supervised pre-training on the synthetic scenes',
  details:
    'Writes <out>/pretrain.safetensors (backbone weights, config in the metadata), and\n' +
    '<out>/pretrain-state.safetensors every --checkpoint-every steps and on Ctrl-C (exit 130);\n' +
    `--resume continues from it exactly.\n\n${EXAMPLES}`,
  schema: PRETRAIN_SCHEMA,
  presets: presetsFor(PRETRAIN_SCHEMA),
  defaultPreset: 'default',
  resumable: true,
  async handler(ctx) {
    const config = libraryConfig(ctx.config);
    await startBackend(ctx);
    const dir = runDirectory('pointcloud pretrain', ctx.config);
    prepareRunDirectory(dir);
    const done = ctx.resume ? await loadWeights(join(dir, WEIGHTS_FILE.pretrain), 'pretrain', config) : undefined;
    if (done) {
      ctx.stdout.write(`pre-training already done with this config (${join(dir, WEIGHTS_FILE.pretrain)})\n`);
      return EXIT.ok;
    }
    const resume = ctx.resume ? await loadState(dir, 'pretrain', config) : undefined;
    if (ctx.resume && !resume) throw nothingToResume(dir, `${WEIGHTS_FILE.pretrain} or ${STATE_FILE.pretrain} from this config`);
    const keep = ctx.resume ? keepLines([], { phase: 'pretrain', step: resume?.state.step ?? 0 }) : undefined;
    if (!ctx.resume) clearStates(dir);
    const recorder = await RunRecorder.open({ command: 'pointcloud pretrain', kind: 'pointcloud', ...ctx, serverRunId: resume?.serverRunId }, keep);
    resumingLine(ctx, dir, 'pretrain', resume?.state);
    return withStopRequest(ctx, recorder, (stop) => runPretrain({ ctx, recorder, config, stop }, resume?.state));
  },
};

const finetuneCommand: CommandSpec = {
  path: ['pointcloud', 'finetune'],
  summary: 'SPD fine-tuning for segmentation (from a pre-trained checkpoint, or from scratch)',
  details:
    'Writes <out>/finetune.safetensors and evaluates it; <out>/finetune-state.safetensors every\n' +
    `--checkpoint-every steps and on Ctrl-C (exit 130); --resume continues from it exactly.\n\n${EXAMPLES}`,
  schema: FINETUNE_SCHEMA,
  presets: presetsFor(FINETUNE_SCHEMA),
  defaultPreset: 'default',
  resumable: true,
  async handler(ctx) {
    const config = libraryConfig(ctx.config);
    let pretrained: Map<string, tf.Tensor> | undefined;
    if (ctx.config.pretrained) {
      const path = String(ctx.config.pretrained);
      if (!existsSync(path)) throw new UsageError(`config key 'pretrained': ${path} does not exist`);
      const loaded = await loadWeights(path, 'pretrain');
      if (configDifference(loaded!.config.model, config.model) !== undefined) {
        throw new UsageError(`config key 'pretrained': ${path} was pre-trained with a different model (size '${ctx.config.size}' does not match)`);
      }
      pretrained = loaded!.tensors;
    }
    await startBackend(ctx);
    const dir = runDirectory('pointcloud finetune', ctx.config);
    prepareRunDirectory(dir);
    const done = ctx.resume ? await loadWeights(join(dir, WEIGHTS_FILE.finetune), 'finetune', config) : undefined;
    const resume = ctx.resume && !done ? await loadState(dir, 'finetune', config) : undefined;
    if (ctx.resume && !done && !resume) throw nothingToResume(dir, `${WEIGHTS_FILE.finetune} or ${STATE_FILE.finetune} from this config`);
    const keep = !ctx.resume ? undefined : keepLines(done ? ['finetune'] : [], { phase: 'finetune', step: resume?.state.step ?? 0 });
    if (!ctx.resume) clearStates(dir);
    const recorder = await RunRecorder.open({ command: 'pointcloud finetune', kind: 'pointcloud', ...ctx, serverRunId: resume?.serverRunId }, keep);
    return withStopRequest(ctx, recorder, async (stop) => {
      if (done) ctx.stdout.write(`resuming: fine-tuning already done (${join(dir, WEIGHTS_FILE.finetune)})\n`);
      resumingLine(ctx, dir, 'finetune', resume?.state);
      const result = done ? undefined : await runFinetune({ ctx, recorder, config, stop }, pretrained, resume?.state);
      if (isInterrupted(result)) return result;
      const model = result ? { backbone: result.backbone, head: result.head } : modelFromCheckpoint(done!.config, done!.tensors, join(dir, WEIGHTS_FILE.finetune));
      return runEvaluation({ ctx, recorder, config }, model);
    });
  },
};

const evalCommand: CommandSpec = {
  path: ['pointcloud', 'eval'],
  summary: 'mIoU and IoU per class of a fine-tuned checkpoint on the validation scenes',
  details: `The data set is the synthetic validation split named by the checkpoint's config.\n\n${EXAMPLES}`,
  schema: {
    checkpoint: { type: 'string', default: '', doc: 'finetune.safetensors written by kiln pointcloud [finetune]' },
    ...RUN_FIELDS,
  },
  async handler(ctx) {
    const path = String(ctx.config.checkpoint);
    if (!path) throw new UsageError("config key 'checkpoint' is required: --checkpoint runs/…/finetune.safetensors");
    if (!existsSync(path)) throw new UsageError(`config key 'checkpoint': ${path} does not exist`);
    const loaded = await loadWeights(path, 'finetune');
    await startBackend(ctx);
    const recorder = await RunRecorder.open({ command: 'pointcloud eval', kind: 'pointcloud', ...ctx });
    await runEvaluation({ ctx, recorder, config: loaded!.config }, modelFromCheckpoint(loaded!.config, loaded!.tensors, path));
    await recorder.close();
    return EXIT.ok;
  },
};

export const pointcloudCommands: CommandSpec[] = [allCommand, pretrainCommand, finetuneCommand, evalCommand];
