/**
 * The config keys of `kiln pointcloud`: flat keys (flags `--kebab-case`, config-file keys as
 * written) for the nested config of @kiln/pointcloud-ssl. The data keys are the library's own
 * field table (DATA_FIELDS) under the CLI's names, so a data knob is declared once.
 */
import {
  DATA_FIELDS,
  type Dataset,
  type DeepPartial,
  PRESETS,
  type PointCloudSslConfig,
  PointCloudFormatError,
  datasetSpec,
  openDataset,
  resolveConfig,
} from '@kiln/pointcloud-ssl';
import type { Config, FieldTable } from '@kiln/tensor';
import { UsageError } from '../cli/errors.js';

export type Size = keyof typeof PRESETS;

/** Flat config key → path in the library's nested config. */
export const PATHS = {
  dataset: ['data', 'type'],
  data: ['data', 'root'],
  trainSplit: ['data', 'trainSplit'],
  valSplit: ['data', 'valSplit'],
  segmentKey: ['data', 'segmentKey'],
  numClasses: ['numClasses'],
  gridSize: ['serialization', 'gridSize'],
  maxPoints: ['data', 'maxPoints'],
  loaderWorkers: ['data', 'workers'],
  dataSeed: ['data', 'seed'],
  trainScenes: ['data', 'trainScenes'],
  valScenes: ['data', 'valScenes'],
  pointsPerScene: ['data', 'pointsPerScene'],
  pretrainSteps: ['pretrain', 'steps'],
  pretrainBatchScenes: ['pretrain', 'batchScenes'],
  pretrainAccumulation: ['pretrain', 'accumulation'],
  pretrainLr: ['pretrain', 'lr'],
  crossScene: ['pretrain', 'crossScene'],
  objective: ['pretrain', 'objective'],
  maskRatio: ['pretrain', 'maskRatio'],
  finetuneSteps: ['finetune', 'steps'],
  finetuneBatchScenes: ['finetune', 'batchScenes'],
  finetuneAccumulation: ['finetune', 'accumulation'],
  finetuneLr: ['finetune', 'lr'],
  finetuneMode: ['finetune', 'mode'],
  spdLambda: ['finetune', 'spdLambda'],
  teacher: ['finetune', 'teacher'],
  labelFraction: ['finetune', 'labelFraction'],
  evalBatchScenes: ['eval', 'batchScenes'],
} as const satisfies Record<string, readonly string[]>;

type FlatKey = keyof typeof PATHS;
type FlatValue = number | string | boolean | string[];

function read(c: PointCloudSslConfig, key: FlatKey): FlatValue {
  return PATHS[key].reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], c) as FlatValue;
}

export function flatten(c: PointCloudSslConfig): Record<FlatKey, FlatValue> {
  return Object.fromEntries(Object.keys(PATHS).map((k) => [k, read(c, k as FlatKey)])) as Record<FlatKey, FlatValue>;
}

const D = flatten(PRESETS.default);

/** Where the scenes come from; shared by every command that reads data. */
export const DATA_KEYS = {
  dataset: { ...DATA_FIELDS.type, doc: 'data layout: synthetic (built in), pointcept (preprocessed scene folders), s3dis, scannet (raw or preprocessed), ply (a folder of .ply files)' },
  data: { ...DATA_FIELDS.root, doc: 'the data folder (with --dataset pointcept|s3dis|scannet|ply)' },
  trainSplit: { ...DATA_FIELDS.trainSplit, doc: "training scenes, comma-separated: split folders, S3DIS areas (Area_1), scene names (default: 'train'; S3DIS: every area but Area_5)" },
  valSplit: { ...DATA_FIELDS.valSplit, doc: "validation scenes, comma-separated (default: 'val'; S3DIS: Area_5)" },
  segmentKey: DATA_FIELDS.segmentKey,
  numClasses: { type: 'int', default: 0, min: 0, max: 65536, doc: "classes of the segmentation head (0 = the data set's: S3DIS and synthetic 13, ScanNet 20)" },
} satisfies FieldTable;

/** How scenes are sampled for the model (also what eval and predict reuse from a checkpoint). */
export const SAMPLING_KEYS = {
  gridSize: { type: 'number', default: Number(D.gridSize), min: 0, exclusiveMin: true, doc: 'GridSample cell and serialization grid in metres (training voxelization and the test fragments)' },
  maxPoints: { ...DATA_FIELDS.maxPoints, doc: 'SphereCrop point_max of a training scene (0 = no crop); evaluation and predict see whole scenes' },
  loaderWorkers: { ...DATA_FIELDS.workers, flag: 'loader-workers', doc: 'threads that read and transform training scenes ahead of each step (0 = none)' },
} satisfies FieldTable;

export const SYNTHETIC_KEYS = {
  size: { type: 'enum', values: Object.keys(PRESETS), default: 'default', doc: "model and data size preset of @kiln/pointcloud-ssl ('tiny' for tests)" },
  dataSeed: { ...DATA_FIELDS.seed, min: 0, doc: 'seed of the synthetic scenes' },
  trainScenes: DATA_FIELDS.trainScenes,
  valScenes: DATA_FIELDS.valScenes,
  pointsPerScene: DATA_FIELDS.pointsPerScene,
  evalBatchScenes: { type: 'int', default: Number(D.evalBatchScenes), min: 1, doc: 'scenes per batch-serialized inference (the batch-vs-single gap, synthetic data)' },
} satisfies FieldTable;

export const PRETRAIN_KEYS = {
  pretrainSteps: { type: 'int', default: Number(D.pretrainSteps), min: 0, doc: 'CSP pre-training steps' },
  pretrainBatchScenes: { type: 'int', default: Number(D.pretrainBatchScenes), min: 1, doc: 'scenes serialized into one sequence per micro-batch' },
  pretrainAccumulation: { type: 'int', default: Number(D.pretrainAccumulation), min: 1, doc: 'micro-batches per step on each process (under mpirun: per rank); gradients averaged over all' },
  pretrainLr: { type: 'number', default: Number(D.pretrainLr), min: 0, exclusiveMin: true, doc: 'pre-training learning rate' },
  crossScene: { type: 'boolean', default: Boolean(D.crossScene), doc: 'CSP: carry the scan state across scene boundaries (off: each scene alone)' },
  objective: { type: 'enum', values: ['distill', 'cosine', 'msc'], default: String(D.objective), doc: 'self-supervised objective' },
  maskRatio: { type: 'number', default: Number(D.maskRatio), min: 0, max: 0.99, doc: 'fraction of masked patches in the student view' },
} satisfies FieldTable;

export const FINETUNE_KEYS = {
  finetuneSteps: { type: 'int', default: Number(D.finetuneSteps), min: 0, doc: 'fine-tuning steps' },
  finetuneBatchScenes: { type: 'int', default: Number(D.finetuneBatchScenes), min: 1, doc: 'scenes per micro-batch' },
  finetuneAccumulation: { type: 'int', default: Number(D.finetuneAccumulation), min: 1, doc: 'micro-batches per step on each process (under mpirun: per rank); gradients averaged over all' },
  finetuneLr: { type: 'number', default: Number(D.finetuneLr), min: 0, exclusiveMin: true, doc: 'fine-tuning learning rate' },
  finetuneMode: { type: 'enum', values: ['spd', 'single', 'batch'], default: String(D.finetuneMode), doc: "'spd': SPD distillation; 'single': plain; 'batch': batch-serialized without SPD" },
  spdLambda: { type: 'number', default: Number(D.spdLambda), min: 0, doc: 'weight of the SPD feature-alignment loss' },
  teacher: { type: 'enum', values: ['frozen', 'ema'], default: String(D.teacher), doc: 'SPD teacher: the frozen pre-trained backbone or an EMA of the student' },
  labelFraction: { type: 'number', default: Number(D.labelFraction), min: 0, exclusiveMin: true, max: 1, doc: 'fraction of training labels used' },
} satisfies FieldTable;

/** The library's size presets, limited to the keys a command has. */
export function presetsFor(schema: FieldTable): Record<Size, { doc: string; values: Partial<Config> }> {
  const pick = (size: Size, doc: string) => {
    const values: Partial<Config> = { size };
    const flat = flatten(PRESETS[size]);
    for (const [k, v] of Object.entries(flat)) if (k in schema && k !== 'numClasses' && !(k in DATA_KEYS)) values[k] = v;
    return { doc, values };
  };
  return {
    default: pick('default', `${D.trainScenes} synthetic training scenes, ${D.pretrainSteps} pre-training + ${D.finetuneSteps} fine-tuning steps (a few minutes on 2 cores)`),
    tiny: pick('tiny', 'a few scenes and steps of a tiny model (seconds; for tests)'),
  };
}

/** A data-set error (a missing folder, a malformed file) as the CLI reports it: exit 2. */
export function asUsageError(err: unknown): unknown {
  if (err instanceof PointCloudFormatError || (err instanceof Error && err.name === 'PointCloudFormatError')) return new UsageError(err.message);
  return err;
}

/** Lists the data set a config names; errors name the folder or file and what was expected (exit 2). */
export async function openConfigDataset(config: PointCloudSslConfig): Promise<Dataset> {
  try {
    return await openDataset(datasetSpec(config));
  } catch (err) {
    throw asUsageError(err);
  }
}

function overridesOf(c: Config): DeepPartial<PointCloudSslConfig> {
  const overrides: Record<string, unknown> = {};
  for (const [key, path] of Object.entries(PATHS)) {
    const value = c[key];
    if (value === undefined || value === null || key === 'numClasses') continue;
    let node = overrides;
    for (const k of path.slice(0, -1)) {
      node[k] ??= {};
      node = node[k] as Record<string, unknown>;
    }
    node[path.at(-1)!] = value;
  }
  return overrides as DeepPartial<PointCloudSslConfig>;
}

function resolveOrUsage(size: Size, overrides: DeepPartial<PointCloudSslConfig>): PointCloudSslConfig {
  try {
    return resolveConfig(size, overrides);
  } catch (err) {
    // The library names the nested field ("config.pretrain.batchScenes = 9: ..."); say the flag too.
    const m = /config\.([\w.]+) = /.exec((err as Error).message);
    const flat = m && Object.entries(PATHS).find(([, p]) => p.join('.') === m[1])?.[0];
    throw new UsageError(flat ? `config key '${flat}': ${(err as Error).message}` : (err as Error).message);
  }
}

/** Checks that --data and --dataset go together. */
function checkDataPair(c: Config): void {
  const type = String(c.dataset ?? 'synthetic');
  const root = String(c.data ?? '');
  if (type === 'synthetic' && root) throw new UsageError(`--data ${root} needs --dataset pointcept|s3dis|scannet|ply (the layout of the folder)`);
  if (type !== 'synthetic' && !root) throw new UsageError(`--dataset ${type} needs --data DIR (the data folder)`);
}

/**
 * The library config for a command's flat config. For a data folder the data set is listed
 * (not read) here, so a missing folder or a split naming nothing fails before any work, and
 * the class count and names come from it (S3DIS 13, ScanNet 20, else --num-classes).
 */
export async function libraryConfig(c: Config): Promise<{ config: PointCloudSslConfig; dataset: Dataset }> {
  checkDataPair(c);
  const size = String(c.size ?? 'default') as Size;
  const overrides = { ...overridesOf(c), seed: Number(c.seed ?? 0) };
  const draft = resolveOrUsage(size, overrides);
  const dataset = await openConfigDataset(draft);
  const requested = Number(c.numClasses ?? 0);
  const known = dataset.classes;
  if (requested > 0 && known && requested !== known.length) {
    throw new UsageError(`config key 'numClasses' is ${requested}, but --dataset ${dataset.type} has ${known.length} classes (${known.slice(0, 4).join(', ')}, …)`);
  }
  const numClasses = requested || known?.length;
  if (!numClasses) throw new UsageError(`cannot tell how many classes the scenes in ${dataset.root} have: give --num-classes`);
  const classes = known && known.length === numClasses ? [...known] : [];
  return { config: resolveOrUsage(size, { ...overrides, numClasses, data: { ...overrides.data, classes } }), dataset };
}

/**
 * A checkpoint's config with the data keys given on the command line put over its own (eval
 * on another folder or split); the model and sampling stay the checkpoint's.
 */
export async function checkpointConfig(saved: PointCloudSslConfig, c: Config): Promise<{ config: PointCloudSslConfig; dataset: Dataset }> {
  const data = { ...saved.data };
  if (c.dataset !== null && c.dataset !== undefined) data.type = c.dataset as PointCloudSslConfig['data']['type'];
  if (c.data !== null && c.data !== undefined) {
    data.root = String(c.data);
    // Another folder: its own default splits unless given.
    data.trainSplit = [];
    data.valSplit = [];
  }
  if (Array.isArray(c.valSplit)) data.valSplit = c.valSplit.map(String);
  if (c.segmentKey !== null && c.segmentKey !== undefined) data.segmentKey = String(c.segmentKey);
  checkDataPair({ dataset: data.type, data: data.root });
  const config: PointCloudSslConfig = { ...saved, data };
  const dataset = await openConfigDataset(config);
  if (dataset.classes && dataset.classes.length !== saved.numClasses) {
    throw new UsageError(`the checkpoint's model has ${saved.numClasses} classes, --dataset ${dataset.type} has ${dataset.classes.length}`);
  }
  return { config, dataset };
}
