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
import { augmentedView, keepLabels, modelInput, sampleBatch, syntheticSplits } from './dataset.js';
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

export async function finetune(config: PointCloudSslConfig | PresetName = 'default', options: FinetuneOptions = {}): Promise<FinetuneResult> {
  const cfg = typeof config === 'object' ? resolveConfig(config, options.overrides) : resolveConfig(config, options.overrides);
  const f = cfg.finetune;
  const rng = createRng(cfg.seed + 7919);
  const data = options.data ?? syntheticSplits(cfg);
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
  let completed = true;
  for (let step = start; step < f.steps; step++) {
    if (options.signal?.aborted) throw new Error('finetune: aborted');
    const t0 = performance.now();
    const batch = augmentedView(sampleBatch(data.train, f.batchScenes, rng), rng);
    const labels = keepLabels(batch.label!, f.labelFraction, rng);
    const scenes = batch.offset.length;
    const student = modelInput(batch, cfg, { crossScene: f.mode === 'batch', sceneOrder: f.mode === 'batch' ? rng.permutation(scenes) : undefined, rng, shuffleOrders: true });
    let task = 0;
    let align = 0;
    let lossValue: number;
    if (f.mode === 'spd') {
      // The teacher sees the same points serialized as one multi-scene sequence.
      const tIn = modelInput(batch, cfg, { crossScene: true, sceneOrder: rng.permutation(scenes), rng, shuffleOrders: true });
      const tFeat = tf.tidy(() => backbone.forward(tIn.feat, tIn.structure, { params: teacher! }));
      let parts: { task: tf.Tensor; align: tf.Tensor } | null = null;
      const loss = optimizer.minimize(
        () => {
          const fs = backbone.forward(student.feat, student.structure);
          const r = spdLoss(segLogits(head, fs), labels, fs, tFeat, f.spdLambda);
          parts = { task: tf.keep(r.task), align: tf.keep(r.align) };
          return r.total as tf.Scalar;
        },
        true,
        vars,
      )!;
      lossValue = (await loss.data())[0]!;
      task = (await parts!.task.data())[0]!;
      align = (await parts!.align.data())[0]!;
      tf.dispose([loss, tFeat, tIn.feat, parts!.task, parts!.align]);
      if (f.teacher === 'ema') emaUpdate(teacher!, backbone.params, f.teacherMomentum);
    } else {
      const loss = optimizer.minimize(() => segmentationCrossEntropy(segLogits(head, backbone.forward(student.feat, student.structure)), labels) as tf.Scalar, true, vars)!;
      lossValue = (await loss.data())[0]!;
      task = lossValue;
      loss.dispose();
    }
    student.feat.dispose();
    const info: StepInfo = { step, steps: f.steps, loss: lossValue, task, align, points: labels.length, ms: performance.now() - t0 };
    history.push(info);
    const verdict = await options.onStep?.(info, { state: () => captureLoop(parts, step + 1) });
    if (verdict === 'stop' && step + 1 < f.steps) {
      completed = false;
      break;
    }
  }
  optimizer.dispose();
  if (teacher) for (const v of teacher.values()) v.dispose();
  return { config: cfg, backbone, head, history, completed };
}
