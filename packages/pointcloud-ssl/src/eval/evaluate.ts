/**
 * Evaluation: single-scene inference (the test protocol), batch-of-B inference with CSP
 * serialization (for the batch-vs-single gap SPD is meant to close), linear probing on
 * frozen features, and cross-scene semantic consistency.
 */
import { createRng, type Tensor, tf } from '@kiln/tensor';
import { concatScenes, offsetToBatchIndex, type PointCloudBatch } from '../data/point-cloud.js';
import type { PointBackbone } from '../model/backbone.js';
import { initLinear, linear, type ParamStore } from '../model/params.js';
import type { PointCloudSslConfig } from '../train/config.js';
import { modelInput, type Splits, syntheticSplits } from '../train/dataset.js';
import { segLogits } from '../train/heads.js';
import { segmentationCrossEntropy } from '../train/losses.js';
import { type ConsistencyResult, confusionMatrix, type SegMetrics, segMetrics, semanticConsistency } from './metrics.js';

export interface FeatureSet {
  features: Float32Array;
  channels: number;
  label: Int32Array;
  /** Scene index (into the given scene list) per point. */
  scene: Int32Array;
}

/**
 * Backbone features of every scene, B scenes per forward pass: `crossScene` false scans each
 * scene alone (identical to one scene per pass), true serializes the B scenes into one
 * sequence (in the given order). Each pass's features are read back asynchronously (a GPU
 * backend cannot read synchronously in Node).
 */
export async function extractFeatures(
  config: PointCloudSslConfig,
  backbone: PointBackbone,
  scenes: readonly PointCloudBatch[],
  crossScene: boolean,
  batchScenes: number,
): Promise<FeatureSet> {
  const channels = backbone.outChannels;
  const parts: Float32Array[] = [];
  const labels: Int32Array[] = [];
  const sceneIdx: Int32Array[] = [];
  for (let start = 0; start < scenes.length; start += batchScenes) {
    const group = scenes.slice(start, start + batchScenes);
    const batch = concatScenes(group);
    const input = modelInput(batch, config, { crossScene });
    const feat = tf.tidy(() => backbone.forward(input.feat, input.structure));
    parts.push((await feat.data()) as Float32Array);
    feat.dispose();
    input.feat.dispose();
    labels.push(batch.label ?? new Int32Array(batch.coord.length / 3).fill(-1));
    sceneIdx.push(offsetToBatchIndex(batch.offset).map((s) => s + start));
  }
  const cat = <T extends Float32Array | Int32Array>(xs: T[], make: (n: number) => T): T => {
    const out = make(xs.reduce((a, x) => a + x.length, 0));
    let at = 0;
    for (const x of xs) {
      out.set(x, at);
      at += x.length;
    }
    return out;
  };
  return {
    features: cat(parts, (n) => new Float32Array(n)),
    channels,
    label: cat(labels, (n) => new Int32Array(n)),
    scene: cat(sceneIdx, (n) => new Int32Array(n)),
  };
}

/** Arg-max predictions of a linear head on a feature set. */
export async function predictWith(head: ParamStore, set: FeatureSet, logits: (h: ParamStore, x: Tensor) => Tensor = segLogits): Promise<Int32Array> {
  const pred = tf.tidy(() => tf.argMax(logits(head, tf.tensor2d(set.features, [set.label.length, set.channels])), 1));
  const values = (await pred.data()) as Int32Array;
  pred.dispose();
  return values;
}

export function metricsOf(pred: Int32Array, label: Int32Array, classes: number): SegMetrics {
  return segMetrics(confusionMatrix(pred, label, classes), classes);
}

export interface EvaluationResult {
  /** Single-scene inference (the test protocol). */
  single: SegMetrics;
  /** Batch-of-B inference with the scenes serialized into one sequence. */
  batch: SegMetrics;
  /** batch.mIoU − single.mIoU. */
  gap: number;
  /** Mean |Δ| between single and batch features per point, relative to the feature norm. */
  featureShift: number;
  consistency: ConsistencyResult;
}

export interface EvaluateOptions {
  backbone: PointBackbone;
  head: ParamStore;
  data?: Splits;
}

export async function evaluate(config: PointCloudSslConfig, options: EvaluateOptions): Promise<EvaluationResult> {
  const data = options.data ?? syntheticSplits(config);
  const B = config.eval.batchScenes;
  const single = await extractFeatures(config, options.backbone, data.val, false, B);
  const batched = await extractFeatures(config, options.backbone, data.val, true, B);
  const k = config.numClasses;
  const s = metricsOf(await predictWith(options.head, single), single.label, k);
  const b = metricsOf(await predictWith(options.head, batched), batched.label, k);
  let num = 0;
  let den = 0;
  for (let i = 0; i < single.features.length; i++) {
    num += Math.abs(single.features[i]! - batched.features[i]!);
    den += Math.abs(single.features[i]!);
  }
  return {
    single: s,
    batch: b,
    gap: b.mIoU - s.mIoU,
    featureShift: den > 0 ? num / den : 0,
    consistency: semanticConsistency(single.features, single.channels, single.label, single.scene),
  };
}

export interface LinearProbeResult {
  metrics: SegMetrics;
  consistency: ConsistencyResult;
}

/**
 * Linear probing: a linear classifier trained (full-batch Adam) on frozen single-scene
 * features of the training scenes, scored on the validation scenes.
 */
export async function linearProbe(config: PointCloudSslConfig, backbone: PointBackbone, data: Splits = syntheticSplits(config)): Promise<LinearProbeResult> {
  const B = config.eval.batchScenes;
  const train = await extractFeatures(config, backbone, data.train, false, B);
  const val = await extractFeatures(config, backbone, data.val, false, B);
  const head: ParamStore = new Map();
  initLinear(head, createRng(config.seed + 17), 'probe', train.channels, config.numClasses);
  const x = tf.tensor2d(train.features, [train.label.length, train.channels]);
  // Standardise with the training statistics so one learning rate suits every backbone.
  const { mean, variance } = tf.moments(x, 0);
  const std = tf.sqrt(tf.add(variance, 1e-6));
  const xs = tf.div(tf.sub(x, mean), std);
  const opt = tf.train.adam(config.eval.probeLr);
  for (let i = 0; i < config.eval.probeSteps; i++) {
    opt.minimize(() => segmentationCrossEntropy(linear(head, 'probe', xs), train.label) as tf.Scalar, false, [...head.values()]);
  }
  const norm = (h: ParamStore, v: Tensor) => linear(h, 'probe', tf.div(tf.sub(v, mean), std));
  const metrics = metricsOf(await predictWith(head, val, norm), val.label, config.numClasses);
  tf.dispose([x, mean, variance, std, xs]);
  opt.dispose();
  for (const v of head.values()) v.dispose();
  return { metrics, consistency: semanticConsistency(val.features, val.channels, val.label, val.scene) };
}
