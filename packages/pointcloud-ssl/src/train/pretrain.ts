/**
 * Self-supervised pre-training with cross-sample semantic propagation (CSP): every step
 * draws B scenes, serializes them into ONE sequence in a freshly shuffled scene order and
 * trains the backbone with a teacher–student objective; `crossScene: false` scans each scene
 * alone (the "pre-training without CSP" baseline).
 */
import { adam, createRng, type Rng, tf } from '@kiln/tensor';
import type { PointBackbone } from '../model/backbone.js';
import { gatherRows, inverseIndex } from '../model/gather.js';
import { cloneParams, disposeParams, emaUpdate, type ParamStore } from '../model/params.js';
import { buildModel } from '../model/registry.js';
import '../model/backbone.js';
import { type DeepPartial, type PointCloudSslConfig, type PresetName, resolveConfig } from './config.js';
import { augmentedView, maskPatches, type ModelInput, modelInput, sampleBatch, type Splits, syntheticSplits } from './dataset.js';
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
  /** Train/val scenes to use instead of the synthetic splits of the config. */
  data?: Splits;
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

/** What one pre-training step consumes: two views of a batch, ready for the model. */
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

/**
 * Draws and prepares one step's batch (host work: sampling, augmentation, serialization,
 * masks), consuming `rng` in the loop's fixed order.
 */
export function preparePretrainBatch(cfg: PointCloudSslConfig, scenes: Splits['train'], rng: Rng): PretrainBatch {
  const p = cfg.pretrain;
  const batch = sampleBatch(scenes, p.batchScenes, rng);
  const v1 = augmentedView(batch, rng);
  const v2 = augmentedView(batch, rng);
  const count = batch.offset.length;
  const sceneOrder = p.crossScene && p.shuffleScenes ? rng.permutation(count) : Int32Array.from({ length: count }, (_, i) => i);
  const view1 = modelInput(v1, cfg, { crossScene: p.crossScene, sceneOrder, rng, shuffleOrders: true });
  const view2 = modelInput(v2, cfg, { crossScene: p.crossScene, sceneOrder, rng, shuffleOrders: true });
  const points = view1.feat.shape[0]!;
  if (p.objective !== 'msc') return { points, view1, view2, mask: maskPatches(v2, p.maskPatch, p.maskRatio, rng) };
  return { points, view1, view2, pick: rng.permutation(points).slice(0, Math.min(p.mscPoints, points)) };
}

/** Frees the batch's tensors. */
export function disposePretrainBatch(batch: PretrainBatch): void {
  tf.dispose([batch.view1.feat, batch.view2.feat]);
}

/**
 * One optimizer step on a prepared batch (`step` sets the EMA momentum); returns the loss.
 * The batch stays usable (its tensors are not disposed).
 */
export async function pretrainStep(model: PretrainModel, batch: PretrainBatch, step: number): Promise<number> {
  const p = model.config.pretrain;
  const { backbone, head, optimizer, vars } = model;
  const { view1: in1, view2: in2 } = batch;
  if (model.teacher && model.teacherHead) {
    const teacher = model.teacher;
    const teacherHead = model.teacherHead;
    const mask = tf.tensor1d(batch.mask!);
    const target = tf.tidy(() => {
      const z = project(teacherHead, backbone.forward(in1.feat, in1.structure, { params: teacher }));
      return p.objective === 'distill' ? sinkhornKnopp(prototypeScores(teacherHead, z), p.teacherTemperature, p.sinkhornIterations) : z;
    });
    const loss = optimizer.minimize(
      () => {
        const z = project(head, backbone.forward(in2.feat, in2.structure, { mask }));
        if (p.objective === 'distill') return distillationLoss(prototypeScores(head, z), target, p.studentTemperature) as tf.Scalar;
        return cosineAlignment(predict(head, z), target) as tf.Scalar;
      },
      true,
      vars,
    )!;
    const value = (await loss.data())[0]!;
    tf.dispose([loss, target, mask]);
    emaUpdate(teacher, backbone.params, momentumAt(step, p.steps, p.momentum));
    emaUpdate(teacherHead, head, momentumAt(step, p.steps, p.momentum));
    return value;
  }
  const pick = batch.pick!;
  const inv = inverseIndex(pick, batch.points);
  const loss = optimizer.minimize(
    () => {
      const z1 = gatherRows(project(head, backbone.forward(in1.feat, in1.structure)), pick, inv);
      const z2 = gatherRows(project(head, backbone.forward(in2.feat, in2.structure)), pick, inv);
      return infoNce(z1, z2, p.mscTemperature) as tf.Scalar;
    },
    true,
    vars,
  )!;
  const value = (await loss.data())[0]!;
  loss.dispose();
  return value;
}

export async function pretrain(config: PointCloudSslConfig | PresetName = 'default', options: TrainOptions & { overrides?: DeepPartial<PointCloudSslConfig> } = {}): Promise<PretrainResult> {
  const cfg = resolve(config, options.overrides);
  const p = cfg.pretrain;
  const rng = createRng(cfg.seed);
  const data = options.data ?? syntheticSplits(cfg);
  const model = createPretrainModel(cfg, rng);
  const { backbone, head, teacher, teacherHead, optimizer } = model;
  const history: StepInfo[] = [];
  const stores = { backbone: backbone.params, head, teacher, 'teacher-head': teacherHead };
  const parts: LoopParts = { phase: 'pretrain', config: cfg, steps: p.steps, stores, optimizer, rng, history };
  const start = options.resumeFrom ? await resumeLoop(parts, options.resumeFrom) : 0;
  let completed = true;
  for (let step = start; step < p.steps; step++) {
    if (options.signal?.aborted) throw new Error('pretrain: aborted');
    const t0 = performance.now();
    const batch = preparePretrainBatch(cfg, data.train, rng);
    const loss = await pretrainStep(model, batch, step);
    disposePretrainBatch(batch);
    const info: StepInfo = { step, steps: p.steps, loss, points: batch.points, ms: performance.now() - t0 };
    if (teacher) info.momentum = momentumAt(step, p.steps, p.momentum);
    history.push(info);
    const verdict = await options.onStep?.(info, { state: () => captureLoop(parts, step + 1) });
    if (verdict === 'stop' && step + 1 < p.steps) {
      completed = false;
      break;
    }
  }
  optimizer.dispose();
  if (teacherHead) disposeParams(teacherHead);
  return { config: cfg, backbone, teacher, head, history, completed };
}
