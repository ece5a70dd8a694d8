/**
 * What a training step needs from the data: the train/val scenes a config names (the
 * synthetic set, a data folder, or scenes handed in memory), the stream of step
 * micro-batches through the Pointcept-style pipeline, mask patches, and the model inputs
 * (features + the serialized structure, CSP or per-scene).
 */
import type { Rng, Tensor } from '@kiln/tensor';
import { type DatasetSpec, type SceneRef, loadScene, openDataset } from '../data/datasets.js';
import { trainingPipeline } from '../data/pipeline.js';
import type { PointCloudBatch } from '../data/point-cloud.js';
import { SceneStream } from '../data/stream.js';
import { generateSyntheticScenes } from '../data/synthetic.js';
import { pointFeatures } from '../model/features.js';
import { buildStructure, type PointStructure } from '../model/structure.js';
import type { PointCloudSslConfig } from './config.js';

export interface Splits {
  train: PointCloudBatch[];
  val: PointCloudBatch[];
}

function strip(s: PointCloudBatch): PointCloudBatch {
  const out: PointCloudBatch = { coord: s.coord, offset: s.offset };
  if (s.color) out.color = s.color;
  if (s.normal) out.normal = s.normal;
  if (s.label) out.label = s.label;
  return out;
}

/** The synthetic benchmark: scenes 0..train−1 of the data seed for training, the next ones for validation. */
export function syntheticSplits(config: PointCloudSslConfig): Splits {
  const { seed, trainScenes, valScenes, pointsPerScene } = config.data;
  return {
    train: generateSyntheticScenes({ seed, scenes: trainScenes, points: pointsPerScene }).map(strip),
    val: generateSyntheticScenes({ seed, scenes: valScenes, start: trainScenes, points: pointsPerScene }).map(strip),
  };
}

/** The data set a config names, as `openDataset` takes it. */
export function datasetSpec(config: PointCloudSslConfig): DatasetSpec {
  const d = config.data;
  return {
    type: d.type,
    root: d.root,
    ...(d.trainSplit.length > 0 ? { trainSplit: d.trainSplit } : {}),
    ...(d.valSplit.length > 0 ? { valSplit: d.valSplit } : {}),
    ...(d.segmentKey ? { segmentKey: d.segmentKey } : {}),
    synthetic: { seed: d.seed, trainScenes: d.trainScenes, valScenes: d.valScenes, points: d.pointsPerScene },
  };
}

/** Scenes named where they are (read on demand, also by loader threads) or held in memory. */
export type SceneSource = { refs: SceneRef[] } | { scenes: PointCloudBatch[] };

export function sourceSize(source: SceneSource): number {
  return 'refs' in source ? source.refs.length : source.scenes.length;
}

export async function loadFromSource(source: SceneSource, i: number): Promise<PointCloudBatch> {
  return 'refs' in source ? loadScene(source.refs[i]!) : source.scenes[i]!;
}

/** Train and validation scenes: `data` when given, else the config's data set (listed, not read). */
export async function sceneSources(config: PointCloudSslConfig, data?: Splits): Promise<{ train: SceneSource; val: SceneSource }> {
  if (data) return { train: { scenes: data.train }, val: { scenes: data.val } };
  const ds = await openDataset(datasetSpec(config));
  return { train: { refs: ds.train }, val: { refs: ds.val } };
}

export interface StreamPhase {
  /** 2 views for pre-training, 1 for fine-tuning. */
  views: number;
  batchScenes: number;
  /** Micro-batches per step on this process. */
  accumulation: number;
  steps: number;
  /** Keeps the phases' data draws apart. */
  salt: number;
}

/** This process's micro-batch ids each step: rank r of R owns r·A … r·A + A − 1 of the R·A. */
export function rankMicros(rank: number, accumulation: number): number[] {
  return Array.from({ length: accumulation }, (_, a) => rank * accumulation + a);
}

/**
 * The training stream of a phase: every micro-batch of the step drawn from its own shard of
 * the training scenes and run through the training pipeline (GridSample at the serialization
 * grid, SphereCrop at data.maxPoints, Pointcept's augmentations), in loader threads.
 */
export function trainingStream(config: PointCloudSslConfig, source: SceneSource, phase: StreamPhase, group: { rank: number; size: number }): SceneStream {
  const plan = {
    scenes: 'refs' in source ? source.refs : [],
    pipeline: trainingPipeline({ gridSize: config.serialization.gridSize, maxPoints: config.data.maxPoints }),
    views: phase.views,
    batchScenes: phase.batchScenes,
    microBatches: group.size * phase.accumulation,
    seed: config.seed * 4099 + phase.salt,
  };
  return new SceneStream(plan, {
    workers: config.data.workers,
    prefetch: config.data.prefetch,
    micros: rankMicros(group.rank, phase.accumulation),
    endStep: phase.steps,
    ...('scenes' in source ? { memory: source.scenes } : {}),
  });
}

/**
 * 1 for points inside masked patches: space is cut into cubes of edge `patch` per scene and
 * each cube is masked with probability `ratio`.
 */
export function maskPatches(batch: PointCloudBatch, patch: number, ratio: number, rng: Rng): Float32Array {
  const n = batch.coord.length / 3;
  const mask = new Float32Array(n);
  let start = 0;
  for (const end of batch.offset) {
    const decided = new Map<string, number>();
    for (let p = start; p < end; p++) {
      const key = `${Math.floor(batch.coord[3 * p]! / patch)},${Math.floor(batch.coord[3 * p + 1]! / patch)},${Math.floor(batch.coord[3 * p + 2]! / patch)}`;
      let m = decided.get(key);
      if (m === undefined) {
        m = rng.next() < ratio ? 1 : 0;
        decided.set(key, m);
      }
      mask[p] = m;
    }
    start = end;
  }
  return mask;
}

export interface ModelInput {
  feat: Tensor;
  structure: PointStructure;
}

export interface InputOptions {
  crossScene: boolean;
  sceneOrder?: Int32Array;
  rng?: Rng;
  shuffleOrders?: boolean;
}

/** Features and serialized structure of a batch for the configured model. */
export function modelInput(batch: PointCloudBatch, config: PointCloudSslConfig, options: InputOptions): ModelInput {
  const s = config.serialization;
  const structureOptions: Parameters<typeof buildStructure>[1] = {
    gridSize: s.gridSize,
    orders: s.orders,
    levels: config.model.channels.length,
    poolStride: s.poolStride,
    crossScene: options.crossScene,
  };
  if (options.sceneOrder) structureOptions.sceneOrder = options.sceneOrder;
  if (options.shuffleOrders && s.shuffleOrders && options.rng) {
    structureOptions.shuffleOrders = true;
    structureOptions.rng = options.rng;
  }
  return { feat: pointFeatures(batch, config.features), structure: buildStructure(batch, structureOptions) };
}

/** Labels with a random fraction kept (the rest −1), for limited-annotation fine-tuning. */
export function keepLabels(label: Int32Array, fraction: number, rng: Rng): Int32Array {
  if (fraction >= 1) return label;
  return label.map((y) => (rng.next() < fraction ? y : -1));
}
