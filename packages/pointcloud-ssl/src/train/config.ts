/**
 * One validated config object holds every knob of pre-training, fine-tuning and evaluation
 * (Megatron-style); presets name the sizes (`tiny` for tests, `default` for the main job).
 * `resolveConfig(preset, overrides)` deep-merges overrides and validates, throwing an Error
 * that names the offending field.
 */
import { type FieldTable, checkConfigObject, isConfigError } from '@kiln/tensor';
import { DATASET_TYPES, type DatasetType } from '../data/datasets.js';
import type { BackboneConfig } from '../model/backbone.js';
import type { FeatureOptions } from '../model/features.js';
import { SERIALIZATION_ORDERS, type SerializationOrder } from '../serialization/encode.js';

export interface DataConfig {
  /** Where the scenes come from: the built-in generator, or a data folder of this type (see data/datasets.ts). */
  type: DatasetType;
  /** The data folder ('' for synthetic). */
  root: string;
  /** Training scenes: split folders, S3DIS areas, scene names ([] = the data set's default; S3DIS: every area but 5). */
  trainSplit: string[];
  /** Validation scenes ([] = the data set's default: 'val', or S3DIS's Area_5). */
  valSplit: string[];
  /** Pointcept data: the segment file read as labels ('' = segment, else segment20, else segment200). */
  segmentKey: string;
  /** Class names in label order ([] = unnamed, or the data set's own when it has them). */
  classes: string[];
  /** SphereCrop's point_max for training scenes (0 = no crop); evaluation always sees whole scenes. */
  maxPoints: number;
  /** Threads that read and transform training scenes ahead of the step (0 = on the training thread). */
  workers: number;
  /** Micro-batches the loader threads prepare ahead. */
  prefetch: number;
  /** Synthetic data: seed of the data set (scene i of the set is fixed by it). */
  seed: number;
  /** Synthetic data: scene counts and points generated per scene. */
  trainScenes: number;
  valScenes: number;
  pointsPerScene: number;
}

/**
 * The data fields as a config field table (@kiln/tensor): the library validates `config.data`
 * with it, and `kiln pointcloud` derives its data flags and config-file keys from it.
 */
export const DATA_FIELDS = {
  type: { type: 'enum', values: DATASET_TYPES, default: 'synthetic', doc: 'where the scenes come from: the synthetic generator or a data folder of this layout' },
  root: { type: 'string', default: '', maxLength: 4096, doc: 'the data folder (not used by synthetic)' },
  trainSplit: { type: 'string', list: true, default: [], doc: "training scenes: split folders, S3DIS areas (Area_1), scene names ([] = the data set's default; S3DIS: every area but Area_5)" },
  valSplit: { type: 'string', list: true, default: [], doc: "validation scenes ([] = the data set's default: val, or S3DIS's Area_5)" },
  segmentKey: { type: 'string', default: '', maxLength: 256, doc: "Pointcept data: the segment file read as labels, e.g. segment200 ('' = segment, else segment20, else segment200)" },
  classes: { type: 'string', list: true, default: [], doc: 'class names in label order ([] = unnamed)' },
  maxPoints: { type: 'int', default: 8192, min: 0, doc: "SphereCrop's point_max for training scenes (0 = no crop); evaluation always sees whole scenes" },
  workers: { type: 'int', default: 1, min: 0, max: 64, doc: 'threads that read and transform training scenes ahead of the step (0 = on the training thread)' },
  prefetch: { type: 'int', default: 2, min: 0, max: 64, doc: 'micro-batches the loader threads prepare ahead' },
  seed: { type: 'int', default: 1, doc: 'synthetic data: the data set seed (scene i is fixed by it)' },
  trainScenes: { type: 'int', default: 16, min: 1, doc: 'synthetic data: training scenes' },
  valScenes: { type: 'int', default: 8, min: 1, doc: 'synthetic data: validation scenes' },
  pointsPerScene: { type: 'int', default: 160, min: 8, doc: 'synthetic data: points generated per scene' },
} satisfies FieldTable;

export interface SerializationConfig {
  /** Voxel size of the grid coordinates (metres). */
  gridSize: number;
  orders: SerializationOrder[];
  /** Pooling stride between U-Net levels (power of two). */
  poolStride: number;
  /** Shuffle which order each block uses, every step (PTv3's shuffle_orders). */
  shuffleOrders: boolean;
}

export type PretrainObjective = 'distill' | 'cosine' | 'msc';

export interface PretrainConfig {
  steps: number;
  /** Scenes per micro-batch (the B that CSP serializes into one sequence). */
  batchScenes: number;
  /**
   * Micro-batches per step on each process; their gradients are averaged (over every rank
   * too, under data parallelism) before one optimizer step.
   */
  accumulation: number;
  lr: number;
  /** CSP: scan all scenes of a batch as one sequence (state crosses scene boundaries). */
  crossScene: boolean;
  /** Reshuffle the scene order of the sequence every step. */
  shuffleScenes: boolean;
  /**
   * `distill`: EMA teacher on the unmasked view, student on a masked view, prototype head with
   * Sinkhorn-normalised teacher targets (Sonata/DINO-like). `cosine`: the same views with a
   * BYOL-style predictor and 1 − cos between student prediction and teacher projection.
   * `msc`: MSC-style InfoNCE between two augmented views through the student.
   */
  objective: PretrainObjective;
  /** Fraction of mask patches whose points get the mask token in the student view. */
  maskRatio: number;
  /** Edge of a mask patch (metres). */
  maskPatch: number;
  /** Width of the projection head. */
  projectionDim: number;
  prototypes: number;
  studentTemperature: number;
  teacherTemperature: number;
  sinkhornIterations: number;
  /** EMA momentum, cosine schedule from [0] to [1] over the steps. */
  momentum: [number, number];
  /** InfoNCE temperature (MSC uses 0.4). */
  mscTemperature: number;
  /** Matched points sampled per step for InfoNCE. */
  mscPoints: number;
}

export type FinetuneMode = 'single' | 'batch' | 'spd';

export interface FinetuneConfig {
  steps: number;
  /** Scenes per micro-batch. */
  batchScenes: number;
  /** Micro-batches per step on each process (gradients averaged before the step). */
  accumulation: number;
  lr: number;
  /**
   * `single`: the student sees each scene alone (per-scene scans). `batch`: the student is
   * trained on batch-serialized input (CSP layout, as in pre-training) and tested single-scene —
   * fine-tuning without SPD. `spd`: student single-scene, teacher on batch-serialized input, loss
   * = CE + λ·(1 − cos).
   */
  mode: FinetuneMode;
  /** λ of the SPD feature-alignment term. */
  spdLambda: number;
  /** SPD teacher: the frozen pre-trained backbone, or an EMA of the student. */
  teacher: 'frozen' | 'ema';
  teacherMomentum: number;
  /** Fraction of training points whose labels are used (the rest are ignored). */
  labelFraction: number;
}

export interface EvalConfig {
  /** B of the batch-of-B inference used for the batch-vs-single gap. */
  batchScenes: number;
  probeSteps: number;
  probeLr: number;
}

export interface PointCloudSslConfig {
  seed: number;
  numClasses: number;
  data: DataConfig;
  features: FeatureOptions;
  serialization: SerializationConfig;
  model: BackboneConfig;
  pretrain: PretrainConfig;
  finetune: FinetuneConfig;
  eval: EvalConfig;
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends (infer U)[] ? U[] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

const base: PointCloudSslConfig = {
  seed: 0,
  numClasses: 13,
  data: {
    type: 'synthetic',
    root: '',
    trainSplit: [],
    valSplit: [],
    segmentKey: '',
    classes: [],
    maxPoints: DATA_FIELDS.maxPoints.default,
    workers: DATA_FIELDS.workers.default,
    prefetch: DATA_FIELDS.prefetch.default,
    seed: DATA_FIELDS.seed.default,
    trainScenes: DATA_FIELDS.trainScenes.default,
    valScenes: DATA_FIELDS.valScenes.default,
    pointsPerScene: DATA_FIELDS.pointsPerScene.default,
  },
  features: { color: true, normal: false, coordScale: 3 },
  serialization: { gridSize: 0.08, orders: ['z', 'z-trans', 'hilbert', 'hilbert-trans'], poolStride: 4, shuffleOrders: true },
  model: {
    name: 'SerializedMambaUNet',
    inChannels: 6,
    channels: [16, 32],
    depths: [1, 1],
    decoderDepths: [1],
    mlpRatio: 2,
    mamba: { dState: 4, expand: 1, dConv: 4, dtRank: 0 },
  },
  pretrain: {
    steps: 60,
    batchScenes: 4,
    accumulation: 1,
    lr: 2e-3,
    crossScene: true,
    shuffleScenes: true,
    objective: 'distill',
    maskRatio: 0.4,
    maskPatch: 0.8,
    projectionDim: 16,
    prototypes: 32,
    studentTemperature: 0.1,
    teacherTemperature: 0.05,
    sinkhornIterations: 3,
    momentum: [0.99, 1],
    mscTemperature: 0.4,
    mscPoints: 256,
  },
  finetune: { steps: 60, batchScenes: 4, accumulation: 1, lr: 3e-3, mode: 'spd', spdLambda: 0.5, teacher: 'frozen', teacherMomentum: 0.99, labelFraction: 1 },
  eval: { batchScenes: 4, probeSteps: 100, probeLr: 0.05 },
};

function merge<T>(target: T, over: DeepPartial<T> | undefined): T {
  if (!over) return structuredClone(target);
  const out = structuredClone(target) as Record<string, unknown>;
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const cur = out[k];
    out[k] = cur && typeof cur === 'object' && !Array.isArray(cur) && typeof v === 'object' && !Array.isArray(v) ? merge(cur, v as DeepPartial<typeof cur>) : structuredClone(v);
  }
  return out as T;
}

export const PRESETS: Record<'tiny' | 'default', PointCloudSslConfig> = {
  default: base,
  tiny: merge(base, {
    // Tests: scenes are made on the training thread (no loader thread to start).
    data: { trainScenes: 4, valScenes: 2, pointsPerScene: 96, workers: 0 },
    model: { channels: [8, 16], depths: [1, 1], decoderDepths: [0], mamba: { dState: 2, expand: 1, dConv: 2, dtRank: 0 } },
    pretrain: { steps: 3, batchScenes: 2, projectionDim: 8, prototypes: 8, mscPoints: 32 },
    finetune: { steps: 3, batchScenes: 2 },
    eval: { batchScenes: 2, probeSteps: 5 },
  }),
};

export type PresetName = keyof typeof PRESETS;

function check(cond: boolean, field: string, value: unknown, want: string): void {
  if (!cond) throw new Error(`config.${field} = ${JSON.stringify(value)}: ${want}`);
}

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const pos = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const frac = (v: unknown) => typeof v === 'number' && v >= 0 && v <= 1;

/** Throws an Error naming the first invalid field. */
export function validateConfig(c: PointCloudSslConfig): void {
  check(Number.isInteger(c.seed), 'seed', c.seed, 'must be an integer');
  check(posInt(c.numClasses), 'numClasses', c.numClasses, 'must be a positive integer');
  const d = c.data;
  try {
    checkConfigObject(DATA_FIELDS, d, 'config.data');
  } catch (err) {
    // "config key 'maxPoints' in config.data must be …" → "config.data.maxPoints = -1: must be …"
    if (!isConfigError(err) || !err.key) throw err;
    const want = /must be (.*), got /.exec(err.message)?.[1] ?? 'is invalid';
    check(false, `data.${err.key}`, (d as unknown as Record<string, unknown>)[err.key], `must be ${want}`);
  }
  for (const key of Object.keys(DATA_FIELDS)) check((d as unknown as Record<string, unknown>)[key] !== undefined, `data.${key}`, undefined, 'is missing');
  check(d.type === 'synthetic' || d.root.length > 0, 'data.root', d.root, `must name the data folder of the '${d.type}' data set`);
  check(d.classes.length === 0 || d.classes.length === c.numClasses, 'data.classes', d.classes, `must be [] or ${c.numClasses} names (numClasses)`);
  check(pos(c.features.coordScale), 'features.coordScale', c.features.coordScale, 'must be > 0');
  check(pos(c.serialization.gridSize), 'serialization.gridSize', c.serialization.gridSize, 'must be > 0');
  check(
    Array.isArray(c.serialization.orders) && c.serialization.orders.length > 0 && c.serialization.orders.every((o) => SERIALIZATION_ORDERS.includes(o)),
    'serialization.orders',
    c.serialization.orders,
    `must be a non-empty list of ${SERIALIZATION_ORDERS.join(', ')}`,
  );
  const ps = c.serialization.poolStride;
  check(posInt(ps) && ps >= 2 && (ps & (ps - 1)) === 0, 'serialization.poolStride', ps, 'must be a power of two ≥ 2');
  const m = c.model;
  check(typeof m.name === 'string' && m.name.length > 0, 'model.name', m.name, 'must name a registered model');
  const inC = 3 + (c.features.color ? 3 : 0) + (c.features.normal ? 3 : 0);
  check(m.inChannels === inC, 'model.inChannels', m.inChannels, `must be ${inC} for the chosen features`);
  check(Array.isArray(m.channels) && m.channels.length >= 1 && m.channels.every(posInt), 'model.channels', m.channels, 'must be positive integers, one per stage');
  check(Array.isArray(m.depths) && m.depths.length === m.channels.length && m.depths.every((d) => Number.isInteger(d) && d >= 0), 'model.depths', m.depths, 'must have one non-negative integer per stage');
  check(
    Array.isArray(m.decoderDepths) && m.decoderDepths.length === m.channels.length - 1 && m.decoderDepths.every((d) => Number.isInteger(d) && d >= 0),
    'model.decoderDepths',
    m.decoderDepths,
    'must have one non-negative integer per unpooling (stages − 1)',
  );
  check(pos(m.mlpRatio), 'model.mlpRatio', m.mlpRatio, 'must be > 0');
  check(posInt(m.mamba.dState), 'model.mamba.dState', m.mamba.dState, 'must be a positive integer');
  check(pos(m.mamba.expand), 'model.mamba.expand', m.mamba.expand, 'must be > 0');
  check(posInt(m.mamba.dConv), 'model.mamba.dConv', m.mamba.dConv, 'must be a positive integer');
  check(Number.isInteger(m.mamba.dtRank) && m.mamba.dtRank >= 0, 'model.mamba.dtRank', m.mamba.dtRank, 'must be an integer ≥ 0 (0 = channels / 16)');
  const p = c.pretrain;
  check(Number.isInteger(p.steps) && p.steps >= 0, 'pretrain.steps', p.steps, 'must be an integer ≥ 0');
  const synthetic = d.type === 'synthetic';
  check(posInt(p.batchScenes), 'pretrain.batchScenes', p.batchScenes, 'must be a positive integer');
  check(!synthetic || p.batchScenes <= c.data.trainScenes, 'pretrain.batchScenes', p.batchScenes, `must not exceed data.trainScenes (${c.data.trainScenes})`);
  check(posInt(p.accumulation), 'pretrain.accumulation', p.accumulation, 'must be a positive integer');
  check(pos(p.lr), 'pretrain.lr', p.lr, 'must be > 0');
  check(['distill', 'cosine', 'msc'].includes(p.objective), 'pretrain.objective', p.objective, "must be 'distill', 'cosine' or 'msc'");
  check(frac(p.maskRatio) && p.maskRatio < 1, 'pretrain.maskRatio', p.maskRatio, 'must be in [0, 1)');
  check(pos(p.maskPatch), 'pretrain.maskPatch', p.maskPatch, 'must be > 0');
  check(posInt(p.projectionDim), 'pretrain.projectionDim', p.projectionDim, 'must be a positive integer');
  check(posInt(p.prototypes) && p.prototypes >= 2, 'pretrain.prototypes', p.prototypes, 'must be an integer ≥ 2');
  check(pos(p.studentTemperature), 'pretrain.studentTemperature', p.studentTemperature, 'must be > 0');
  check(pos(p.teacherTemperature), 'pretrain.teacherTemperature', p.teacherTemperature, 'must be > 0');
  check(Number.isInteger(p.sinkhornIterations) && p.sinkhornIterations >= 0, 'pretrain.sinkhornIterations', p.sinkhornIterations, 'must be an integer ≥ 0');
  check(
    Array.isArray(p.momentum) && p.momentum.length === 2 && p.momentum.every(frac) && p.momentum[0]! <= p.momentum[1]!,
    'pretrain.momentum',
    p.momentum,
    'must be [start, end] with 0 ≤ start ≤ end ≤ 1',
  );
  check(pos(p.mscTemperature), 'pretrain.mscTemperature', p.mscTemperature, 'must be > 0');
  check(posInt(p.mscPoints) && p.mscPoints >= 2, 'pretrain.mscPoints', p.mscPoints, 'must be an integer ≥ 2');
  const f = c.finetune;
  check(Number.isInteger(f.steps) && f.steps >= 0, 'finetune.steps', f.steps, 'must be an integer ≥ 0');
  check(posInt(f.batchScenes) && (!synthetic || f.batchScenes <= c.data.trainScenes), 'finetune.batchScenes', f.batchScenes, `must be a positive integer ≤ data.trainScenes (${c.data.trainScenes})`);
  check(posInt(f.accumulation), 'finetune.accumulation', f.accumulation, 'must be a positive integer');
  check(pos(f.lr), 'finetune.lr', f.lr, 'must be > 0');
  check(['single', 'batch', 'spd'].includes(f.mode), 'finetune.mode', f.mode, "must be 'single', 'batch' or 'spd'");
  check(typeof f.spdLambda === 'number' && f.spdLambda >= 0, 'finetune.spdLambda', f.spdLambda, 'must be ≥ 0');
  check(['frozen', 'ema'].includes(f.teacher), 'finetune.teacher', f.teacher, "must be 'frozen' or 'ema'");
  check(frac(f.teacherMomentum), 'finetune.teacherMomentum', f.teacherMomentum, 'must be in [0, 1]');
  check(frac(f.labelFraction) && f.labelFraction > 0, 'finetune.labelFraction', f.labelFraction, 'must be in (0, 1]');
  const e = c.eval;
  check(posInt(e.batchScenes) && (!synthetic || e.batchScenes <= c.data.valScenes), 'eval.batchScenes', e.batchScenes, `must be a positive integer ≤ data.valScenes (${c.data.valScenes})`);
  check(Number.isInteger(e.probeSteps) && e.probeSteps >= 0, 'eval.probeSteps', e.probeSteps, 'must be an integer ≥ 0');
  check(pos(e.probeLr), 'eval.probeLr', e.probeLr, 'must be > 0');
}

/** A preset with overrides merged in, validated. */
export function resolveConfig(preset: PresetName | PointCloudSslConfig = 'default', overrides?: DeepPartial<PointCloudSslConfig>): PointCloudSslConfig {
  const start = typeof preset === 'string' ? PRESETS[preset] : preset;
  if (!start) throw new Error(`resolveConfig: unknown preset '${String(preset)}'; presets are ${Object.keys(PRESETS).join(', ')}`);
  const c = merge(start, overrides);
  validateConfig(c);
  return c;
}
