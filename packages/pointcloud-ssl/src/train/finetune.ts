/**
 * Supervised fine-tuning for semantic segmentation, with SPD (semantic preservation
 * distillation): the student scans each scene alone, the teacher (frozen pre-trained
 * backbone, or an EMA of the student) scans the batch-serialized multi-scene sequence, and
 * loss = CE + λ·(1 − cos(student, teacher)) on the same points. `mode: 'single'` is plain
 * fine-tuning; `mode: 'batch'` fine-tunes on batch-serialized input without SPD.
 */
import { adam, createRng, tf } from '@kiln/tensor';
import type { PointBackbone } from '../model/backbone.js';
import { cloneParams, copyParams, emaUpdate, type ParamStore } from '../model/params.js';
import { buildModel } from '../model/registry.js';
import '../model/backbone.js';
import { type DeepPartial, type PointCloudSslConfig, type PresetName, resolveConfig } from './config.js';
import type { PointCloudBatch } from '../data/point-cloud.js';
import { mixSeed } from '../data/stream.js';
import { GradientSum, SINGLE_PROCESS } from './data-parallel.js';
import { keepLabels, modelInput, sceneSources, trainingStream } from './dataset.js';
import { initSegHead, segLogits } from './heads.js';
import { segmentationCrossEntropy, spdLoss } from './losses.js';
import type { TrainOptions } from './pretrain.js';
import { type LoopParts, type StepInfo, captureLoop, resumeLoop } from './state.js';

export interface FinetuneOptions extends TrainOptions {
  /** Pre-trained backbone weights (absent: from scratch). */
  pretrained?: ParamStore | Map<string, tf.Tensor>;
  overrides?: DeepPartial<PointCloudSslConfig>;
}

export interface FinetuneResult {
  config: PointCloudSslConfig;
  backbone: PointBackbone;
  head: ParamStore;
  history: StepInfo[];
  /** False when `onStep` stopped the loop early. */
  completed: boolean;
}

const DATA_SALT = 0x51c3;
const MODEL_SALT = 0x2b8d;

export async function finetune(config: PointCloudSslConfig | PresetName = 'default', options: FinetuneOptions = {}): Promise<FinetuneResult> {
  const cfg = typeof config === 'object' ? resolveConfig(config, options.overrides) : resolveConfig(config, options.overrides);
  const f = cfg.finetune;
  const rng = createRng(cfg.seed + 7919);
  const group = options.dataParallel ?? SINGLE_PROCESS;
  const microBatches = group.size * f.accumulation;
  const sources = await sceneSources(cfg, options.data);
  const backbone = buildModel(cfg.model, rng.fork());
  if (options.pretrained) {
    const copied = copyParams(backbone.params, options.pretrained);
    if (copied.length !== backbone.params.size) throw new Error(`finetune: pretrained weights cover ${copied.length} of ${backbone.params.size} backbone parameters`);
  }
  const head = initSegHead(rng.fork(), backbone.outChannels, cfg.numClasses);
  const teacher = f.mode === 'spd' ? cloneParams(backbone.params) : null;
  const vars = [...backbone.params.values(), ...head.values()];
  const optimizer = adam({ learningRate: f.lr });
  const history: StepInfo[] = [];
  const parts: LoopParts = { phase: 'finetune', config: cfg, steps: f.steps, stores: { backbone: backbone.params, head, teacher }, optimizer, rng, history };
  const start = options.resumeFrom ? await resumeLoop(parts, options.resumeFrom) : 0;
  const stream = trainingStream(cfg, sources.train, { views: 1, batchScenes: f.batchScenes, accumulation: f.accumulation, steps: f.steps, salt: DATA_SALT }, group);
  let completed = true;
  try {
    for (let step = start; step < f.steps; step++) {
      if (options.signal?.aborted) throw new Error('finetune: aborted');
      const t0 = performance.now();
      const sum = new GradientSum(vars);
      const totals = [0, 0, 0, 0]; // loss, task, align, labelled points
      for (let a = 0; a < f.accumulation; a++) {
        const micro = group.rank * f.accumulation + a;
        const [batch] = (await stream.get(step, micro)) as [PointCloudBatch];
        checkLabels(batch.label!, cfg.numClasses);
        const mrng = createRng(mixSeed(cfg.seed, MODEL_SALT, step, micro));
        const labels = keepLabels(batch.label!, f.labelFraction, mrng);
        const scenes = batch.offset.length;
        const student = modelInput(batch, cfg, { crossScene: f.mode === 'batch', sceneOrder: f.mode === 'batch' ? mrng.permutation(scenes) : undefined, rng: mrng, shuffleOrders: true });
        if (f.mode === 'spd') {
          // The teacher sees the same points serialized as one multi-scene sequence.
          const tIn = modelInput(batch, cfg, { crossScene: true, sceneOrder: mrng.permutation(scenes), rng: mrng, shuffleOrders: true });
          const tFeat = tf.tidy(() => backbone.forward(tIn.feat, tIn.structure, { params: teacher! }));
          let terms: { task: tf.Tensor; align: tf.Tensor } | null = null;
          const r = tf.variableGrads(() => {
            const fs = backbone.forward(student.feat, student.structure);
            const l = spdLoss(segLogits(head, fs), labels, fs, tFeat, f.spdLambda);
            terms = { task: tf.keep(l.task), align: tf.keep(l.align) };
            return l.total as tf.Scalar;
          }, vars);
          sum.add(r.grads);
          totals[0]! += (await r.value.data())[0]!;
          totals[1]! += (await terms!.task.data())[0]!;
          totals[2]! += (await terms!.align.data())[0]!;
          tf.dispose([r.value, tFeat, tIn.feat, terms!.task, terms!.align]);
        } else {
          const r = tf.variableGrads(() => segmentationCrossEntropy(segLogits(head, backbone.forward(student.feat, student.structure)), labels) as tf.Scalar, vars);
          sum.add(r.grads);
          const v = (await r.value.data())[0]!;
          totals[0]! += v;
          totals[1]! += v;
          r.value.dispose();
        }
        totals[3]! += labels.length;
        student.feat.dispose();
      }
      const [loss, task, align, points] = (await sum.step(optimizer, group, microBatches, totals)) as [number, number, number, number];
      if (f.mode === 'spd' && f.teacher === 'ema') emaUpdate(teacher!, backbone.params, f.teacherMomentum);
      const info: StepInfo = { step, steps: f.steps, loss: loss / microBatches, task: task / microBatches, align: align / microBatches, points, ms: performance.now() - t0 };
      history.push(info);
      const verdict = await options.onStep?.(info, { state: () => captureLoop(parts, step + 1) });
      if (verdict === 'stop' && step + 1 < f.steps) {
        completed = false;
        break;
      }
    }
  } finally {
    await stream.close();
  }
  optimizer.dispose();
  if (teacher) for (const v of teacher.values()) v.dispose();
  return { config: cfg, backbone, head, history, completed };
}

/** Labels must be class ids below numClasses (or -1): anything else is a data/config mismatch. */
function checkLabels(label: Int32Array, numClasses: number): void {
  for (let i = 0; i < label.length; i++) {
    if (label[i]! >= numClasses) {
      throw new Error(`finetune: a training scene has label ${label[i]} but numClasses is ${numClasses}: set numClasses to the data set's class count`);
    }
  }
}
