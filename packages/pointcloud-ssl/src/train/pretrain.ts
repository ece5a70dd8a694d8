/**
 * Self-supervised pre-training with cross-sample semantic propagation (CSP): every step
 * draws B scenes, serializes them into ONE sequence in a freshly shuffled scene order and
 * trains the backbone with a teacher–student objective; `crossScene: false` scans each scene
 * alone (the "pre-training without CSP" baseline).
 */
import { createRng, type Tensor, tf } from '@kiln/tensor';
import type { PointCloudBatch } from '../data/point-cloud.js';
import type { PointBackbone } from '../model/backbone.js';
import { gatherRows, inverseIndex } from '../model/gather.js';
import { cloneParams, disposeParams, emaUpdate, type ParamStore } from '../model/params.js';
import { buildModel } from '../model/registry.js';
import '../model/backbone.js';
import { type DeepPartial, type PointCloudSslConfig, type PresetName, resolveConfig } from './config.js';
import { mixSeed } from '../data/stream.js';
import { type DataParallelGroup, GradientSum, SINGLE_PROCESS } from './data-parallel.js';
import { maskPatches, modelInput, type Splits, sceneSources, trainingStream } from './dataset.js';
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

/** Salts that keep the phases' draws apart (data in the loader, model-side in the loop). */
const DATA_SALT = 0x9e37;
const MODEL_SALT = 0x7f4a;

export async function pretrain(config: PointCloudSslConfig | PresetName = 'default', options: TrainOptions & { overrides?: DeepPartial<PointCloudSslConfig> } = {}): Promise<PretrainResult> {
  const cfg = resolve(config, options.overrides);
  const p = cfg.pretrain;
  const rng = createRng(cfg.seed);
  const group = options.dataParallel ?? SINGLE_PROCESS;
  const microBatches = group.size * p.accumulation;
  const sources = await sceneSources(cfg, options.data);
  const backbone = buildModel(cfg.model, rng.fork());
  const head = initSslHead(rng.fork(), backbone.outChannels, p.projectionDim, p.prototypes);
  const usesTeacher = p.objective !== 'msc';
  const teacherBackbone = usesTeacher ? cloneParams(backbone.params) : null;
  const teacherHead = usesTeacher ? cloneParams(head) : null;
  const vars = [...backbone.params.values(), ...head.values()];
  const optimizer = tf.train.adam(p.lr);
  const history: StepInfo[] = [];
  const stores = { backbone: backbone.params, head, teacher: teacherBackbone, 'teacher-head': teacherHead };
  const parts: LoopParts = { phase: 'pretrain', config: cfg, steps: p.steps, stores, optimizer, rng, history };
  const start = options.resumeFrom ? await resumeLoop(parts, options.resumeFrom) : 0;
  const stream = trainingStream(cfg, sources.train, { views: 2, batchScenes: p.batchScenes, accumulation: p.accumulation, steps: p.steps, salt: DATA_SALT }, group);
  let completed = true;
  try {
    for (let step = start; step < p.steps; step++) {
      if (options.signal?.aborted) throw new Error('pretrain: aborted');
      const t0 = performance.now();
      const sum = new GradientSum(vars);
      let lossSum = 0;
      let points = 0;
      for (let a = 0; a < p.accumulation; a++) {
        const micro = group.rank * p.accumulation + a;
        const [v1, v2] = (await stream.get(step, micro)) as [PointCloudBatch, PointCloudBatch];
        // Masks, scene order and order shuffles: from the micro-batch's own seed, so a micro-batch
        // is the same whichever rank runs it.
        const mrng = createRng(mixSeed(cfg.seed, MODEL_SALT, step, micro));
        const scenes = v1.offset.length;
        const sceneOrder = p.crossScene && p.shuffleScenes ? mrng.permutation(scenes) : Int32Array.from({ length: scenes }, (_, i) => i);
        const in1 = modelInput(v1, cfg, { crossScene: p.crossScene, sceneOrder, rng: mrng, shuffleOrders: true });
        const in2 = modelInput(v2, cfg, { crossScene: p.crossScene, sceneOrder, rng: mrng, shuffleOrders: true });
        const n = in1.feat.shape[0]!;
        let loss: tf.Scalar;
        if (usesTeacher) {
          const mask = tf.tensor1d(maskPatches(v2, p.maskPatch, p.maskRatio, mrng));
          const target = tf.tidy(() => {
            const z = project(teacherHead!, backbone.forward(in1.feat, in1.structure, { params: teacherBackbone! }));
            return p.objective === 'distill' ? sinkhornKnopp(prototypeScores(teacherHead!, z), p.teacherTemperature, p.sinkhornIterations) : z;
          });
          const r = tf.variableGrads(() => {
            const z = project(head, backbone.forward(in2.feat, in2.structure, { mask }));
            if (p.objective === 'distill') return distillationLoss(prototypeScores(head, z), target, p.studentTemperature) as tf.Scalar;
            return cosineAlignment(predict(head, z), target) as tf.Scalar;
          }, vars);
          loss = r.value;
          sum.add(r.grads);
          tf.dispose([target, mask]);
        } else {
          const m = Math.min(p.mscPoints, n);
          const pick = mrng.permutation(n).slice(0, m);
          const inv = inverseIndex(pick, n);
          const r = tf.variableGrads(() => {
            const z1 = gatherRows(project(head, backbone.forward(in1.feat, in1.structure)), pick, inv);
            const z2 = gatherRows(project(head, backbone.forward(in2.feat, in2.structure)), pick, inv);
            return infoNce(z1, z2, p.mscTemperature) as tf.Scalar;
          }, vars);
          loss = r.value;
          sum.add(r.grads);
        }
        lossSum += (await loss.data())[0]!;
        points += n;
        tf.dispose([loss, in1.feat, in2.feat] as Tensor[]);
      }
      const [lossTotal, pointTotal] = (await sum.step(optimizer, group, microBatches, [lossSum, points])) as [number, number];
      if (usesTeacher) {
        emaUpdate(teacherBackbone!, backbone.params, momentumAt(step, p.steps, p.momentum));
        emaUpdate(teacherHead!, head, momentumAt(step, p.steps, p.momentum));
      }
      const info: StepInfo = { step, steps: p.steps, loss: lossTotal / microBatches, points: pointTotal, ms: performance.now() - t0 };
      if (usesTeacher) info.momentum = momentumAt(step, p.steps, p.momentum);
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
  return { config: cfg, backbone, teacher: teacherBackbone, head, history, completed };
}
