/**
 * The sequences a serialized backbone scans: for each U-Net level and each serialization
 * order, where every point sits in the scanned sequence(s), in both directions.
 *
 * Cross-sample propagation (CSP) is a layout choice: with `crossScene` every scene of the
 * batch goes into ONE sequence (scenes in `sceneOrder`, each scene in curve order), so the
 * scan's state flows from one scene into the next; without it each scene is its own row of
 * a padded [scenes, maxLength] batch and the state starts from zero in every scene.
 */
import type { Rng } from '@kiln/tensor';
import { offsetToBatchIndex, type PointCloudBatch } from '../data/point-cloud.js';
import type { Grouping } from './gather.js';
import type { SerializationOrder } from '../serialization/encode.js';
import { computeGridCoord, pooledBatch, type Serialization, serializeBatch, serializedPool } from '../serialization/serialize.js';

/** Where points go in a scanned batch of `rows` sequences of `length` steps. */
export interface SequenceLayout {
  rows: number;
  length: number;
  /** Point at each slot of the forward sequences (rows·length); `n` marks padding. */
  forward: Int32Array;
  /** Same for the backward direction (each row reversed, padding still at the end). */
  backward: Int32Array;
  /** Slot of each point in `forward` / `backward` (the inverse maps, for gatherRows). */
  forwardSlot: Int32Array;
  backwardSlot: Int32Array;
}

export interface PointLevel {
  /** Points at this level. */
  n: number;
  /** Position of each point's scene in the sequence order (the batch bits of its codes). */
  sceneRank: Int32Array;
  gridCoord: Int32Array;
  serialization: Serialization;
  /** One layout per serialization order (block i uses layouts[i mod orders]). */
  layouts: SequenceLayout[];
  /** How this level pools into the next: cluster[p] = the next level's point, counts per cluster. */
  cluster?: Int32Array;
  counts?: Int32Array;
  /** The same clusters as children grouped per cluster (for segment sums). */
  grouping?: Grouping;
}

export interface PointStructure {
  crossScene: boolean;
  /** sceneOrder[i] = the batch scene placed i-th in the sequence. */
  sceneOrder: Int32Array;
  levels: PointLevel[];
}

export interface StructureOptions {
  /** Voxel size used for the grid coordinates (metres). */
  gridSize: number;
  orders: readonly SerializationOrder[];
  /** Number of U-Net levels (stages). */
  levels: number;
  /** Pooling stride per level (a power of two; codes drop 3·log2(stride) bits). */
  poolStride: number;
  /** CSP: one sequence over all scenes (state crosses scene boundaries). */
  crossScene: boolean;
  /** Order of the scenes in the sequence; default: batch order, or a shuffle when `rng` is given and `shuffleScenes`. */
  sceneOrder?: Int32Array;
  shuffleScenes?: boolean;
  /** Shuffle which order each block gets (PTv3's shuffle_orders). */
  shuffleOrders?: boolean;
  rng?: Rng;
}

/**
 * Sequences are padded at their end to a multiple of this, so the scan's chunks tile them
 * exactly (padding after the last point cannot reach any point through a causal scan).
 */
export const SEQUENCE_ALIGN = 32;

function align(len: number): number {
  return Math.ceil(len / SEQUENCE_ALIGN) * SEQUENCE_ALIGN;
}

function buildLayout(order: Int32Array, sceneRank: Int32Array, scenes: number, crossScene: boolean): SequenceLayout {
  const n = order.length;
  if (crossScene) {
    const length = align(n);
    const forward = new Int32Array(length).fill(n);
    const backward = new Int32Array(length).fill(n);
    const forwardSlot = new Int32Array(n);
    const backwardSlot = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      forward[i] = order[i]!;
      backward[i] = order[n - 1 - i]!;
      forwardSlot[forward[i]!] = i;
      backwardSlot[backward[i]!] = i;
    }
    return { rows: 1, length, forward, backward, forwardSlot, backwardSlot };
  }
  // Scenes are contiguous along the order (their rank sits in the codes' high bits).
  const counts = new Int32Array(scenes);
  for (let p = 0; p < n; p++) counts[sceneRank[p]!]!++;
  let length = 1;
  for (const c of counts) length = Math.max(length, c);
  length = align(length);
  const forward = new Int32Array(scenes * length).fill(n);
  const backward = new Int32Array(scenes * length).fill(n);
  const forwardSlot = new Int32Array(n);
  const backwardSlot = new Int32Array(n);
  let start = 0;
  for (let r = 0; r < scenes; r++) {
    const c = counts[r]!;
    for (let j = 0; j < c; j++) {
      const pf = order[start + j]!;
      const pb = order[start + c - 1 - j]!;
      if (sceneRank[pf] !== r) throw new Error(`buildLayout: serialized order is not grouped by scene at position ${start + j}`);
      forward[r * length + j] = pf;
      backward[r * length + j] = pb;
      forwardSlot[pf] = r * length + j;
      backwardSlot[pb] = r * length + j;
    }
    start += c;
  }
  return { rows: scenes, length, forward, backward, forwardSlot, backwardSlot };
}

/** Serializes a batch at every level and lays out the scanned sequences. */
export function buildStructure(batch: PointCloudBatch, options: StructureOptions): PointStructure {
  const scenes = batch.offset.length;
  if (scenes === 0) throw new Error('buildStructure: the batch has no scenes');
  if (!(options.levels >= 1)) throw new Error(`buildStructure: levels must be ≥ 1, got ${options.levels}`);
  let sceneOrder = options.sceneOrder;
  if (!sceneOrder) {
    if (options.shuffleScenes) {
      if (!options.rng) throw new Error('buildStructure: shuffleScenes needs an rng');
      sceneOrder = options.rng.permutation(scenes);
    } else sceneOrder = Int32Array.from({ length: scenes }, (_, i) => i);
  }
  if (sceneOrder.length !== scenes) throw new Error(`buildStructure: sceneOrder has ${sceneOrder.length} entries for ${scenes} scenes`);
  const rankOfScene = new Int32Array(scenes).fill(-1);
  sceneOrder.forEach((s, i) => {
    if (s < 0 || s >= scenes || rankOfScene[s] !== -1) throw new Error(`buildStructure: sceneOrder is not a permutation of 0..${scenes - 1}`);
    rankOfScene[s] = i;
  });
  const sceneIndex = offsetToBatchIndex(batch.offset);
  let sceneRank: Int32Array = sceneIndex.map((s) => rankOfScene[s]!);
  let gridCoord = computeGridCoord(batch.coord, batch.offset, options.gridSize);
  const serializeOptions: Parameters<typeof serializeBatch>[1] = { orders: options.orders, batch: sceneRank };
  if (options.shuffleOrders) {
    if (!options.rng) throw new Error('buildStructure: shuffleOrders needs an rng');
    serializeOptions.shuffleOrders = true;
    serializeOptions.rng = options.rng;
  }
  let serialization = serializeBatch(gridCoord, serializeOptions);
  const levels: PointLevel[] = [];
  for (let l = 0; l < options.levels; l++) {
    const n = sceneRank.length;
    const layouts = serialization.order.map((o) => buildLayout(o, sceneRank, scenes, options.crossScene));
    const level: PointLevel = { n, sceneRank, gridCoord, serialization, layouts };
    levels.push(level);
    if (l + 1 < options.levels) {
      const pooling = serializedPool(gridCoord, serialization, options.poolStride);
      level.cluster = pooling.cluster;
      level.counts = pooling.counts;
      level.grouping = { segment: pooling.cluster, sorted: pooling.indices, ptr: pooling.ptr };
      sceneRank = pooledBatch(sceneRank, pooling);
      gridCoord = pooling.gridCoord;
      serialization = pooling.serialization;
    }
  }
  return { crossScene: options.crossScene, sceneOrder, levels };
}
