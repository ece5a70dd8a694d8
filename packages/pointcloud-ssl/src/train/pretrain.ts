/**
 * Self-supervised pre-training with cross-sample semantic propagation (CSP): every step
 * draws B scenes, serializes them into ONE sequence in a freshly shuffled scene order and
 * trains the backbone with a teacher–student objective; `crossScene: false` scans each scene
 * alone (the "pre-training without CSP" baseline).
 */
import { adam, createRng, type Tensor, tf } from '@kiln/tensor';
import type { PointBackbone } from '../model/backbone.js';
import { gatherRows, inverseIndex } from '../model/gather.js';
import { cloneParams, disposeParams, emaUpdate, type ParamStore } from '../model/params.js';
import { buildModel } from '../model/registry.js';
import '../model/backbone.js';
import { type DeepPartial, type PointCloudSslConfig, type PresetName, resolveConfig } from './config.js';
import { augmentedView, maskPatches, modelInput, sampleBatch, type Splits, syntheticSplits } from './dataset.js';
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

export async function pretrain(config: PointCloudSslConfig | PresetName = 'default', options: TrainOptions & { overrides?: DeepPartial<PointCloudSslConfig> } = {}): Promise<PretrainResult> {
  const cfg = resolve(config, options.overrides);
  const p = cfg.pretrain;
  const rng = createRng(cfg.seed);
  const data = options.data ?? syntheticSplits(cfg);
  const backbone = buildModel(cfg.model, rng.fork());
  const head = initSslHead(rng.fork(), backbone.outChannels, p.projectionDim, p.prototypes);
  const usesTeacher = p.objective !== 'msc';
  const teacherBackbone = usesTeacher ? cloneParams(backbone.params) : null;
  const teacherHead = usesTeacher ? cloneParams(head) : null;
  const vars = [...backbone.params.values(), ...head.values()];
  const optimizer = adam({ learningRate: p.lr });
  const history: StepInfo[] = [];
  const stores = { backbone: backbone.params, head, teacher: teacherBackbone, 'teacher-head': teacherHead };
  const parts: LoopParts = { phase: 'pretrain', config: cfg, steps: p.steps, stores, optimizer, rng, history };
  const start = options.resumeFrom ? await resumeLoop(parts, options.resumeFrom) : 0;
  let completed = true;
  for (let step = start; step < p.steps; step++) {
    if (options.signal?.aborted) throw new Error('pretrain: aborted');
    const t0 = performance.now();
    const batch = sampleBatch(data.train, p.batchScenes, rng);
    const v1 = augmentedView(batch, rng);
    const v2 = augmentedView(batch, rng);
    const scenes = batch.offset.length;
    const sceneOrder = p.crossScene && p.shuffleScenes ? rng.permutation(scenes) : Int32Array.from({ length: scenes }, (_, i) => i);
    const in1 = modelInput(v1, cfg, { crossScene: p.crossScene, sceneOrder, rng, shuffleOrders: true });
    const in2 = modelInput(v2, cfg, { crossScene: p.crossScene, sceneOrder, rng, shuffleOrders: true });
    const n = in1.feat.shape[0]!;
    let lossValue: number;
    if (usesTeacher) {
      const mask = tf.tensor1d(maskPatches(v2, p.maskPatch, p.maskRatio, rng));
      const target = tf.tidy(() => {
        const z = project(teacherHead!, backbone.forward(in1.feat, in1.structure, { params: teacherBackbone! }));
        return p.objective === 'distill' ? sinkhornKnopp(prototypeScores(teacherHead!, z), p.teacherTemperature, p.sinkhornIterations) : z;
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
      lossValue = (await loss.data())[0]!;
      tf.dispose([loss, target, mask]);
      emaUpdate(teacherBackbone!, backbone.params, momentumAt(step, p.steps, p.momentum));
      emaUpdate(teacherHead!, head, momentumAt(step, p.steps, p.momentum));
    } else {
      const m = Math.min(p.mscPoints, n);
      const pick = rng.permutation(n).slice(0, m);
      const inv = inverseIndex(pick, n);
      const loss = optimizer.minimize(
        () => {
          const z1 = gatherRows(project(head, backbone.forward(in1.feat, in1.structure)), pick, inv);
          const z2 = gatherRows(project(head, backbone.forward(in2.feat, in2.structure)), pick, inv);
          return infoNce(z1, z2, p.mscTemperature) as tf.Scalar;
        },
        true,
        vars,
      )!;
      lossValue = (await loss.data())[0]!;
      loss.dispose();
    }
    tf.dispose([in1.feat, in2.feat] as Tensor[]);
    const info: StepInfo = { step, steps: p.steps, loss: lossValue, points: n, ms: performance.now() - t0 };
    if (usesTeacher) info.momentum = momentumAt(step, p.steps, p.momentum);
    history.push(info);
    const verdict = await options.onStep?.(info, { state: () => captureLoop(parts, step + 1) });
    if (verdict === 'stop' && step + 1 < p.steps) {
      completed = false;
      break;
    }
  }
  optimizer.dispose();
  if (teacherHead) disposeParams(teacherHead);
  return { config: cfg, backbone, teacher: teacherBackbone, head, history, completed };
}
