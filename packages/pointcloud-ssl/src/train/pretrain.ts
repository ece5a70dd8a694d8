/**
 * Self-supervised pre-training with cross-sample semantic propagation (CSP): every step
 * draws B scenes, serializes them into ONE sequence in a freshly shuffled scene order and
 * trains the backbone with a teacher–student objective; `crossScene: false` scans each scene
 * alone (the "pre-training without CSP" baseline).
 */
import { adam, createRng, type Rng, tf } from '@kiln/tensor';
import type { PointCloudBatch } from '../data/point-cloud.js';
import { mixSeed, type SceneStream } from '../data/stream.js';
import type { PointBackbone } from '../model/backbone.js';
import { gatherRows, inverseIndex } from '../model/gather.js';
import { cloneParams, disposeParams, emaUpdate, type ParamStore } from '../model/params.js';
import { buildModel } from '../model/registry.js';
import '../model/backbone.js';
import { type DeepPartial, type PointCloudSslConfig, type PresetName, resolveConfig } from './config.js';
import { type DataParallelGroup, GradientSum, SINGLE_PROCESS } from './data-parallel.js';
import { maskPatches, type ModelInput, modelInput, rankMicros, type SceneSource, type Splits, sceneSources, trainingStream } from './dataset.js';
import { initSslHead, predict, project, prototypeScores } from './heads.js';
import { cosineAlignment, distillationLoss, infoNce, sinkhornKnopp } from './losses.js';
import {
  type LoopParts,
  type StepControl,
  type StepInfo,
  type TrainingState,
  captureLoop,
  resumeLoop,
} from './state.js';

export interface TrainOptions {
  /**
   * Called after every step, and awaited: `control.state()` captures the complete training
   * state after this step (for a checkpoint); returning 'stop' (a `StepVerdict`, or a
   * promise of it) ends the loop here. Any other return value is ignored.
   */
  onStep?: (info: StepInfo, control: StepControl) => unknown;
  /** Train/val scenes in memory, instead of the data set the config names. */
  data?: Splits;
  /**
   * Train data parallel over this group (an MPI world from @kiln/mpi, for one): every rank
   * runs `accumulation` micro-batches of the step from its own shards of the scenes, and the
   * gradients are averaged over all of them before the step.
   */
  dataParallel?: DataParallelGroup;
  /** Checked before every step; once aborted the loop throws '<phase>: aborted'. */
  signal?: AbortSignal;
  /** Continue from a captured state (same config): the run then ends as an uninterrupted one would. */
  resumeFrom?: TrainingState;
}

export interface PretrainResult {
  config: PointCloudSslConfig;
  backbone: PointBackbone;
  /** The EMA teacher's backbone weights (distill/cosine) — what Sonata-style methods keep. */
  teacher: ParamStore | null;
  head: ParamStore;
  history: StepInfo[];
  /** False when `onStep` stopped the loop early. */
  completed: boolean;
}

/** EMA momentum at `step`: cosine from start to end. */
export function momentumAt(step: number, steps: number, [start, end]: [number, number]): number {
  if (steps <= 1) return end;
  return end - (end - start) * (Math.cos((Math.PI * step) / (steps - 1)) + 1) / 2;
}

function resolve(config: PointCloudSslConfig | PresetName | undefined, overrides?: DeepPartial<PointCloudSslConfig>): PointCloudSslConfig {
  return typeof config === 'object' ? resolveConfig(config, overrides) : resolveConfig(config ?? 'default', overrides);
}

/** The model side of pre-training: student, heads, EMA teacher, optimizer. */
export interface PretrainModel {
  config: PointCloudSslConfig;
  backbone: PointBackbone;
  head: ParamStore;
  /** EMA teacher backbone and head (null for `msc`). */
  teacher: ParamStore | null;
  teacherHead: ParamStore | null;
  optimizer: tf.Optimizer;
  /** The trained variables: the student's backbone and head. */
  vars: tf.Variable[];
}

/** Builds the student (weights from `rng`), its heads, the EMA teacher and the optimizer. */
export function createPretrainModel(cfg: PointCloudSslConfig, rng: Rng): PretrainModel {
  const p = cfg.pretrain;
  const backbone = buildModel(cfg.model, rng.fork());
  const head = initSslHead(rng.fork(), backbone.outChannels, p.projectionDim, p.prototypes);
  const usesTeacher = p.objective !== 'msc';
  return {
    config: cfg,
    backbone,
    head,
    teacher: usesTeacher ? cloneParams(backbone.params) : null,
    teacherHead: usesTeacher ? cloneParams(head) : null,
    optimizer: adam({ learningRate: p.lr }),
    vars: [...backbone.params.values(), ...head.values()],
  };
}

/** What one micro-batch of a pre-training step consumes: its two views, ready for the model. */
export interface PretrainBatch {
  /** Points per view. */
  points: number;
  /** The teacher's view (msc: the first view). */
  view1: ModelInput;
  /** The student's view (msc: the second view). */
  view2: ModelInput;
  /** distill / cosine: 1 for the student's masked points, [points]. */
  mask?: Float32Array;
  /** msc: the points whose projections are matched. */
  pick?: Int32Array;
}

/** Salts that keep the phases' draws apart (data in the loader, model-side in the loop). */
const DATA_SALT = 0x9e37;
const MODEL_SALT = 0x7f4a;

/**
 * The stream of pre-training views for this process: every step's micro-batches (`accumulation`
 * per rank), each drawn from its own shard of `source` and augmented twice in loader threads.
 * Close it when done.
 */
export function pretrainStream(cfg: PointCloudSslConfig, source: SceneSource, group: Pick<DataParallelGroup, 'rank' | 'size'> = SINGLE_PROCESS): SceneStream {
  const p = cfg.pretrain;
  return trainingStream(cfg, source, { views: 2, batchScenes: p.batchScenes, accumulation: p.accumulation, steps: p.steps, salt: DATA_SALT }, group);
}

/**
 * Prepares one micro-batch from its two augmented views (host work: scene order,
 * serialization, masks), drawing from `rng` in a fixed order.
 */
export function preparePretrainBatch(cfg: PointCloudSslConfig, [v1, v2]: readonly PointCloudBatch[], rng: Rng): PretrainBatch {
  if (!v1 || !v2) throw new Error('preparePretrainBatch: two views are needed');
  const p = cfg.pretrain;
  const count = v1.offset.length;
  const sceneOrder = p.crossScene && p.shuffleScenes ? rng.permutation(count) : Int32Array.from({ length: count }, (_, i) => i);
  const view1 = modelInput(v1, cfg, { crossScene: p.crossScene, sceneOrder, rng, shuffleOrders: true });
  const view2 = modelInput(v2, cfg, { crossScene: p.crossScene, sceneOrder, rng, shuffleOrders: true });
  const points = view1.feat.shape[0]!;
  if (p.objective !== 'msc') return { points, view1, view2, mask: maskPatches(v2, p.maskPatch, p.maskRatio, rng) };
  return { points, view1, view2, pick: rng.permutation(points).slice(0, Math.min(p.mscPoints, points)) };
}

/**
 * This process's prepared micro-batches of `step`, read from `stream`. Masks, scene order and
 * order shuffles come from the micro-batch's own seed, so a micro-batch is the same whichever
 * rank runs it.
 */
export async function nextPretrainBatches(cfg: PointCloudSslConfig, stream: SceneStream, step: number, group: Pick<DataParallelGroup, 'rank'> = SINGLE_PROCESS): Promise<PretrainBatch[]> {
  const batches: PretrainBatch[] = [];
  for (const micro of rankMicros(group.rank, cfg.pretrain.accumulation)) {
    const views = await stream.get(step, micro);
    batches.push(preparePretrainBatch(cfg, views, createRng(mixSeed(cfg.seed, MODEL_SALT, step, micro))));
  }
  return batches;
}

/** Frees the batch's tensors. */
export function disposePretrainBatch(batch: PretrainBatch): void {
  tf.dispose([batch.view1.feat, batch.view2.feat]);
}

/** One micro-batch's loss and gradients (the weights are not changed). */
function microBatchGradients(model: PretrainModel, batch: PretrainBatch): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const p = model.config.pretrain;
  const { backbone, head, vars } = model;
  const { view1: in1, view2: in2 } = batch;
  if (model.teacher && model.teacherHead) {
    const teacher = model.teacher;
    const teacherHead = model.teacherHead;
    const mask = tf.tensor1d(batch.mask!);
    const target = tf.tidy(() => {
      const z = project(teacherHead, backbone.forward(in1.feat, in1.structure, { params: teacher }));
      return p.objective === 'distill' ? sinkhornKnopp(prototypeScores(teacherHead, z), p.teacherTemperature, p.sinkhornIterations) : z;
    });
    const result = tf.variableGrads(() => {
      const z = project(head, backbone.forward(in2.feat, in2.structure, { mask }));
      if (p.objective === 'distill') return distillationLoss(prototypeScores(head, z), target, p.studentTemperature) as tf.Scalar;
      return cosineAlignment(predict(head, z), target) as tf.Scalar;
    }, vars);
    tf.dispose([target, mask]);
    return result;
  }
  const pick = batch.pick!;
  const inv = inverseIndex(pick, batch.points);
  return tf.variableGrads(() => {
    const z1 = gatherRows(project(head, backbone.forward(in1.feat, in1.structure)), pick, inv);
    const z2 = gatherRows(project(head, backbone.forward(in2.feat, in2.structure)), pick, inv);
    return infoNce(z1, z2, p.mscTemperature) as tf.Scalar;
  }, vars);
}

/** The step over this rank's micro-batches: mean loss and total points over every rank. */
async function stepOnMicroBatches(model: PretrainModel, batches: readonly PretrainBatch[], step: number, group: DataParallelGroup): Promise<{ loss: number; points: number }> {
  const p = model.config.pretrain;
  const sum = new GradientSum(model.vars);
  let lossSum = 0;
  let points = 0;
  for (const batch of batches) {
    const { value, grads } = microBatchGradients(model, batch);
    sum.add(grads);
    lossSum += (await value.data())[0]!;
    value.dispose();
    points += batch.points;
  }
  const [lossTotal, pointTotal] = (await sum.step(model.optimizer, group, group.size * batches.length, [lossSum, points])) as [number, number];
  if (model.teacher && model.teacherHead) {
    emaUpdate(model.teacher, model.backbone.params, momentumAt(step, p.steps, p.momentum));
    emaUpdate(model.teacherHead, model.head, momentumAt(step, p.steps, p.momentum));
  }
  return { loss: lossTotal / (group.size * batches.length), points: pointTotal };
}

/**
 * One optimizer step on prepared micro-batches (one, or this rank's `accumulation` of them
 * under data parallelism over `group`); `step` sets the EMA momentum. Returns the mean loss
 * over every micro-batch of the step. The batches stay usable (their tensors are not disposed).
 */
export async function pretrainStep(model: PretrainModel, batches: PretrainBatch | readonly PretrainBatch[], step: number, group: DataParallelGroup = SINGLE_PROCESS): Promise<number> {
  const list = Array.isArray(batches) ? batches : [batches as PretrainBatch];
  return (await stepOnMicroBatches(model, list, step, group)).loss;
}

export async function pretrain(config: PointCloudSslConfig | PresetName = 'default', options: TrainOptions & { overrides?: DeepPartial<PointCloudSslConfig> } = {}): Promise<PretrainResult> {
  const cfg = resolve(config, options.overrides);
  const p = cfg.pretrain;
  const rng = createRng(cfg.seed);
  const group = options.dataParallel ?? SINGLE_PROCESS;
  const sources = await sceneSources(cfg, options.data);
  const model = createPretrainModel(cfg, rng);
  const { backbone, head, teacher, teacherHead, optimizer } = model;
  const history: StepInfo[] = [];
  const stores = { backbone: backbone.params, head, teacher, 'teacher-head': teacherHead };
  const parts: LoopParts = { phase: 'pretrain', config: cfg, steps: p.steps, stores, optimizer, rng, history };
  const start = options.resumeFrom ? await resumeLoop(parts, options.resumeFrom) : 0;
  const stream = pretrainStream(cfg, sources.train, group);
  let completed = true;
  try {
    for (let step = start; step < p.steps; step++) {
      if (options.signal?.aborted) throw new Error('pretrain: aborted');
      const t0 = performance.now();
      const batches = await nextPretrainBatches(cfg, stream, step, group);
      let result: { loss: number; points: number };
      try {
        result = await stepOnMicroBatches(model, batches, step, group);
      } finally {
        batches.forEach(disposePretrainBatch);
      }
      const info: StepInfo = { step, steps: p.steps, loss: result.loss, points: result.points, ms: performance.now() - t0 };
      if (teacher) info.momentum = momentumAt(step, p.steps, p.momentum);
      history.push(info);
      const verdict = await options.onStep?.(info, { state: () => captureLoop(parts, step + 1) });
      if (verdict === 'stop' && step + 1 < p.steps) {
        completed = false;
        break;
      }
    }
  } finally {
    await stream.close();
  }
  optimizer.dispose();
  if (teacherHead) disposeParams(teacherHead);
  return { config: cfg, backbone, teacher, head, history, completed };
}
