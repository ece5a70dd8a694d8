/**
 * Batch serialization as PTv3's `Point.serialization` and serialized pooling as its
 * `SerializedPooling`: codes for several orders, each with the sort order and its inverse;
 * pooling merges points whose codes agree above 3·log2(stride) bits.
 */
import type { Rng } from '@kiln/tensor';
import { offsetToBatchIndex } from '../data/point-cloud.js';
import { type SerializationOrder, bitLength, encodeSerialization, serializationDepth } from './encode.js';
import { argsortCodes, invertPermutation } from './sort.js';

export interface Serialization {
  /** Bits per axis used for the codes. */
  depth: number;
  /** The order of each row below. */
  orders: SerializationOrder[];
  /** One code array per order (batch index in the high bits). */
  code: Float64Array[];
  /** order[k][i] = the point at position i of the k-th serialized sequence. */
  order: Int32Array[];
  /** inverse[k][p] = the position of point p in the k-th sequence. */
  inverse: Int32Array[];
}

export interface SerializeOptions {
  /** Orders to compute (default ['z']). */
  orders?: readonly SerializationOrder[];
  /** Bits per axis; default PTv3's adaptive bit_length(max(gridCoord) + 1). */
  depth?: number;
  /** Cumulative point counts per scene (or give `batch`). Absent both: one scene. */
  offset?: Int32Array;
  /** Scene index per point. */
  batch?: Int32Array;
  /** Shuffle the rows (orders) as PTv3 does with shuffle_orders=True; needs `rng`. */
  shuffleOrders?: boolean;
  rng?: Rng;
}

/**
 * Grid coordinates per scene: floor((coord − min_scene(coord)) / gridSize), values ≥ 0 in
 * every scene. Not bit-identical to Pointcept's two sources of grid_coord: its GridSample
 * transform uses floor(coord / gridSize) − min per scene (`gridSample` here does the same), and
 * Point.serialization without grid_coord truncates (coord − min over the whole batch) / gridSize.
 */
export function computeGridCoord(coord: Float32Array, offset: Int32Array, gridSize: number): Int32Array {
  if (!(gridSize > 0)) throw new RangeError(`computeGridCoord: gridSize must be > 0, got ${gridSize}`);
  const n = coord.length / 3;
  const out = new Int32Array(3 * n);
  let start = 0;
  for (let s = 0; s < offset.length; s++) {
    const end = offset[s]!;
    let mx = Number.POSITIVE_INFINITY;
    let my = Number.POSITIVE_INFINITY;
    let mz = Number.POSITIVE_INFINITY;
    for (let p = start; p < end; p++) {
      if (coord[3 * p]! < mx) mx = coord[3 * p]!;
      if (coord[3 * p + 1]! < my) my = coord[3 * p + 1]!;
      if (coord[3 * p + 2]! < mz) mz = coord[3 * p + 2]!;
    }
    for (let p = start; p < end; p++) {
      out[3 * p] = Math.floor((coord[3 * p]! - mx) / gridSize);
      out[3 * p + 1] = Math.floor((coord[3 * p + 1]! - my) / gridSize);
      out[3 * p + 2] = Math.floor((coord[3 * p + 2]! - mz) / gridSize);
    }
    start = end;
  }
  return out;
}

/** Sorts one code array: the order (ties by input index) and its inverse. */
export function sortCodes(code: Float64Array): { order: Int32Array; inverse: Int32Array } {
  const order = argsortCodes(code);
  return { order, inverse: invertPermutation(order) };
}

/**
 * Serializes a batch: for each order, codes with the scene index in the high bits, the sort
 * order (which concatenates the scenes in batch order) and its inverse.
 */
export function serializeBatch(gridCoord: Int32Array, options: SerializeOptions = {}): Serialization {
  const n = gridCoord.length / 3;
  let batch = options.batch;
  if (batch === undefined && options.offset !== undefined) {
    const last = options.offset.length === 0 ? 0 : options.offset[options.offset.length - 1]!;
    if (last !== n) throw new Error(`serializeBatch: offset ends at ${last} but gridCoord holds ${n} points`);
    batch = offsetToBatchIndex(options.offset);
  }
  const depth = options.depth ?? serializationDepth(gridCoord);
  const orders = [...(options.orders ?? ['z'])];
  if (orders.length === 0) throw new Error('serializeBatch: orders must not be empty');
  const code: Float64Array[] = [];
  const order: Int32Array[] = [];
  const inverse: Int32Array[] = [];
  for (const o of orders) {
    const c = encodeSerialization(gridCoord, batch === undefined ? { depth, order: o } : { depth, order: o, batch });
    const s = sortCodes(c);
    code.push(c);
    order.push(s.order);
    inverse.push(s.inverse);
  }
  if (options.shuffleOrders) {
    if (!options.rng) throw new Error('serializeBatch: shuffleOrders needs an rng');
    const perm = options.rng.permutation(orders.length);
    const pick = <T>(a: T[]): T[] => Array.from(perm, (k) => a[k]!);
    return { depth, orders: pick(orders), code: pick(code), order: pick(order), inverse: pick(inverse) };
  }
  return { depth, orders, code, order, inverse };
}

export interface SerializedPooling {
  /** Serialization of the pooled points (codes shifted right by 3·poolingDepth bits). */
  serialization: Serialization;
  /** Bits per axis removed (log2 of the stride; 0 if the stride exceeds the depth). */
  poolingDepth: number;
  /** cluster[p] = the pooled point that fine point p merges into (Pointcept's pooling_inverse). */
  cluster: Int32Array;
  /** Number of fine points in each pooled point. */
  counts: Int32Array;
  /** Fine points grouped by cluster (stable); cluster c owns indices[ptr[c] .. ptr[c+1]). */
  indices: Int32Array;
  ptr: Int32Array;
  /** The first fine point of each cluster (its code, batch and grid coordinate represent it). */
  head: Int32Array;
  /** Grid coordinates of the pooled points: head's grid coordinate >> poolingDepth. */
  gridCoord: Int32Array;
}

/**
 * PTv3's SerializedPooling on indices: clusters are the distinct values of
 * code[0] >> 3·log2(stride) in ascending order (torch.unique(sorted=True)), so each cluster is
 * a 2^k-voxel cube of one scene. Features are reduced by the caller over `indices`/`ptr`.
 */
export function serializedPool(
  gridCoord: Int32Array,
  serialization: Serialization,
  stride: number,
): SerializedPooling {
  if (!Number.isInteger(stride) || stride < 1 || (stride & (stride - 1)) !== 0) {
    throw new RangeError(`serializedPool: stride must be a power of two (2, 4, 8, ...), got ${stride}`);
  }
  let poolingDepth = bitLength(stride - 1);
  if (poolingDepth > serialization.depth) poolingDepth = 0; // as Pointcept: too coarse → no pooling
  const div = 2 ** (3 * poolingDepth);
  const first = serialization.code[0]!;
  const firstOrder = serialization.order[0]!;
  const n = first.length;
  // Walk the first order's sorted sequence: shifted codes are non-decreasing along it, so a
  // cluster starts wherever the shifted code changes; cluster ids are then ascending in code.
  const cluster = new Int32Array(n);
  let clusters = 0;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const p = firstOrder[i]!;
    const c = Math.floor(first[p]! / div);
    if (c !== prev) {
      clusters++;
      prev = c;
    }
    cluster[p] = clusters - 1;
  }
  const counts = new Int32Array(clusters);
  for (let p = 0; p < n; p++) counts[cluster[p]!]!++;
  const ptr = new Int32Array(clusters + 1);
  for (let c = 0; c < clusters; c++) ptr[c + 1] = ptr[c]! + counts[c]!;
  // Group by cluster keeping input order within a cluster (a stable sort of `cluster`).
  const fill = ptr.slice(0, clusters);
  const indices = new Int32Array(n);
  for (let p = 0; p < n; p++) indices[fill[cluster[p]!]!++] = p;
  const head = new Int32Array(clusters);
  for (let c = 0; c < clusters; c++) head[c] = indices[ptr[c]!]!;
  const pooledGrid = new Int32Array(3 * clusters);
  for (let c = 0; c < clusters; c++) {
    const h = head[c]!;
    pooledGrid[3 * c] = gridCoord[3 * h]! >> poolingDepth;
    pooledGrid[3 * c + 1] = gridCoord[3 * h + 1]! >> poolingDepth;
    pooledGrid[3 * c + 2] = gridCoord[3 * h + 2]! >> poolingDepth;
  }
  const code: Float64Array[] = [];
  const order: Int32Array[] = [];
  const inverse: Int32Array[] = [];
  for (const full of serialization.code) {
    const c = new Float64Array(clusters);
    for (let k = 0; k < clusters; k++) c[k] = Math.floor(full[head[k]!]! / div);
    const s = sortCodes(c);
    code.push(c);
    order.push(s.order);
    inverse.push(s.inverse);
  }
  return {
    serialization: { depth: serialization.depth - poolingDepth, orders: [...serialization.orders], code, order, inverse },
    poolingDepth,
    cluster,
    counts,
    indices,
    ptr,
    head,
    gridCoord: pooledGrid,
  };
}

/** Batch index of the pooled points (the scene of each cluster's head). */
export function pooledBatch(batch: Int32Array, pooling: SerializedPooling): Int32Array {
  const out = new Int32Array(pooling.head.length);
  for (let c = 0; c < out.length; c++) out[c] = batch[pooling.head[c]!]!;
  return out;
}
