/**
 * What a training step needs from the data: the synthetic train/val splits, random batches
 * of scenes, augmented views, mask patches, and the model inputs (features + the serialized
 * structure, CSP or per-scene).
 */
import type { Rng, Tensor } from '@kiln/tensor';
import { augment } from '../data/augment.js';
import { concatScenes, type PointCloudBatch } from '../data/point-cloud.js';
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

/** `count` distinct scenes drawn at random, concatenated. */
export function sampleBatch(scenes: readonly PointCloudBatch[], count: number, rng: Rng): PointCloudBatch {
  const pick = rng.permutation(scenes.length).slice(0, count);
  return concatScenes(Array.from(pick, (i) => scenes[i]!));
}

/** An augmented view that keeps every point (so views match point for point). */
export function augmentedView(batch: PointCloudBatch, rng: Rng): PointCloudBatch {
  return augment(batch, rng, { dropout: false, crop: false, rotate: { tilt: 0 } }).batch;
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
