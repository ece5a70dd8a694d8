/**
 * The shared point-cloud layout, Pointcept style: the points of several scenes are
 * concatenated and `offset` holds cumulative point counts per scene (offset[i] is the end of
 * scene i, the last entry equals the total N). Every per-point array is flat and typed so a
 * batch of ~10^5 points costs a handful of allocations, not one per point.
 */

/** S3DIS's 13 semantic classes, in the order of its label ids (0..12). */
export const S3DIS_CLASSES = [
  'ceiling',
  'floor',
  'wall',
  'beam',
  'column',
  'window',
  'door',
  'table',
  'chair',
  'sofa',
  'bookcase',
  'board',
  'clutter',
] as const;

export type S3disClass = (typeof S3DIS_CLASSES)[number];

/** Label id of each S3DIS class name. */
export const S3DIS_CLASS_ID: Readonly<Record<S3disClass, number>> = Object.freeze(
  Object.fromEntries(S3DIS_CLASSES.map((name, i) => [name, i])) as Record<S3disClass, number>,
);

/** The label value that losses and metrics skip. */
export const IGNORE_LABEL = -1;

export interface PointCloudBatch {
  /** N*3 coordinates, x y z per point. */
  coord: Float32Array;
  /** N*3 colours in 0..1. */
  color?: Float32Array;
  /** N*3 normals. */
  normal?: Float32Array;
  /** N semantic labels; -1 = ignore. */
  label?: Int32Array;
  /** Cumulative point counts per scene; strictly non-decreasing, last = N. */
  offset: Int32Array;
}

/** Number of points in the batch (coord.length / 3, which equals offset's last entry in a valid batch). */
export function pointCount(batch: PointCloudBatch): number {
  return batch.coord.length / 3;
}

/** Number of scenes in the batch. */
export function sceneCount(batch: PointCloudBatch): number {
  return batch.offset.length;
}

/** [start, end) point range of scene i. */
export function sceneRange(batch: PointCloudBatch, i: number): [number, number] {
  const n = batch.offset.length;
  if (!Number.isInteger(i) || i < 0 || i >= n) {
    throw new RangeError(`sceneRange: scene index ${i} out of range (batch has ${n} scenes)`);
  }
  return [i === 0 ? 0 : batch.offset[i - 1]!, batch.offset[i]!];
}

/** Point counts per scene (the differences of offset). */
export function sceneSizes(batch: PointCloudBatch): Int32Array {
  return offsetToSizes(batch.offset);
}

export function offsetToSizes(offset: Int32Array): Int32Array {
  const sizes = new Int32Array(offset.length);
  let prev = 0;
  for (let i = 0; i < offset.length; i++) {
    sizes[i] = offset[i]! - prev;
    prev = offset[i]!;
  }
  return sizes;
}

export function sizesToOffset(sizes: ArrayLike<number>): Int32Array {
  const offset = new Int32Array(sizes.length);
  let acc = 0;
  for (let i = 0; i < sizes.length; i++) {
    acc += sizes[i]!;
    offset[i] = acc;
  }
  return offset;
}

/**
 * Per-point scene index (Pointcept's `offset2batch`): batch[p] = i for points of scene i.
 */
export function offsetToBatchIndex(offset: Int32Array): Int32Array {
  const n = offset.length === 0 ? 0 : offset[offset.length - 1]!;
  const out = new Int32Array(n);
  let start = 0;
  for (let i = 0; i < offset.length; i++) {
    const end = offset[i]!;
    out.fill(i, start, end);
    start = end;
  }
  return out;
}

/** Inverse of offsetToBatchIndex for a sorted per-point batch index (Pointcept's `batch2offset`). */
export function batchIndexToOffset(batch: Int32Array, sceneCountHint?: number): Int32Array {
  let scenes = sceneCountHint ?? 0;
  for (let p = 0; p < batch.length; p++) {
    const b = batch[p]!;
    if (b < 0) throw new Error(`batchIndexToOffset: batch[${p}] = ${b} is negative`);
    if (p > 0 && b < batch[p - 1]!) throw new Error(`batchIndexToOffset: batch index is not sorted at point ${p}`);
    if (b + 1 > scenes) scenes = b + 1;
  }
  const counts = new Int32Array(scenes);
  for (let p = 0; p < batch.length; p++) counts[batch[p]!]!++;
  return sizesToOffset(counts);
}

/**
 * Checks lengths, offsets and value ranges; throws an Error naming the field and the first bad
 * value. `where` prefixes the message (for example a file name).
 */
export function validatePointCloud(batch: PointCloudBatch, where = 'PointCloudBatch'): void {
  const { coord, color, normal, label, offset } = batch;
  if (!(coord instanceof Float32Array)) throw new TypeError(`${where}: coord must be a Float32Array`);
  if (coord.length % 3 !== 0) throw new Error(`${where}: coord length ${coord.length} is not a multiple of 3`);
  const n = coord.length / 3;
  if (!(offset instanceof Int32Array)) throw new TypeError(`${where}: offset must be an Int32Array`);
  let prev = 0;
  for (let i = 0; i < offset.length; i++) {
    const o = offset[i]!;
    if (o < prev) throw new Error(`${where}: offset[${i}] = ${o} is smaller than the previous entry ${prev}`);
    prev = o;
  }
  const last = offset.length === 0 ? 0 : offset[offset.length - 1]!;
  if (last !== n) throw new Error(`${where}: offset ends at ${last} but coord holds ${n} points`);
  for (let i = 0; i < coord.length; i++) {
    if (!Number.isFinite(coord[i]!)) {
      throw new Error(`${where}: coord of point ${Math.floor(i / 3)} is not finite (${coord[i]})`);
    }
  }
  if (color !== undefined) {
    if (!(color instanceof Float32Array)) throw new TypeError(`${where}: color must be a Float32Array`);
    if (color.length !== 3 * n) throw new Error(`${where}: color length ${color.length} != 3 * ${n} points`);
    for (let i = 0; i < color.length; i++) {
      const c = color[i]!;
      if (!(c >= 0 && c <= 1)) throw new Error(`${where}: color of point ${Math.floor(i / 3)} is ${c}, outside 0..1`);
    }
  }
  if (normal !== undefined) {
    if (!(normal instanceof Float32Array)) throw new TypeError(`${where}: normal must be a Float32Array`);
    if (normal.length !== 3 * n) throw new Error(`${where}: normal length ${normal.length} != 3 * ${n} points`);
  }
  if (label !== undefined) {
    if (!(label instanceof Int32Array)) throw new TypeError(`${where}: label must be an Int32Array`);
    if (label.length !== n) throw new Error(`${where}: label length ${label.length} != ${n} points`);
    for (let i = 0; i < n; i++) {
      if (label[i]! < IGNORE_LABEL) throw new Error(`${where}: label of point ${i} is ${label[i]} (use -1 to ignore)`);
    }
  }
}

/** A single-scene batch from its arrays (offset = [N]). */
export function singleScene(scene: Omit<PointCloudBatch, 'offset'>): PointCloudBatch {
  const out: PointCloudBatch = { ...scene, offset: Int32Array.of(scene.coord.length / 3) };
  return out;
}

/** Copies scene i out of the batch as a single-scene batch. */
export function sliceScene(batch: PointCloudBatch, i: number): PointCloudBatch {
  const [start, end] = sceneRange(batch, i);
  return slicePoints(batch, start, end);
}

/** Copies points [start, end) into a single-scene batch. */
export function slicePoints(batch: PointCloudBatch, start: number, end: number): PointCloudBatch {
  const out: PointCloudBatch = {
    coord: batch.coord.slice(3 * start, 3 * end),
    offset: Int32Array.of(end - start),
  };
  if (batch.color) out.color = batch.color.slice(3 * start, 3 * end);
  if (batch.normal) out.normal = batch.normal.slice(3 * start, 3 * end);
  if (batch.label) out.label = batch.label.slice(start, end);
  return out;
}

/** Splits a batch into its scenes. */
export function splitScenes(batch: PointCloudBatch): PointCloudBatch[] {
  const out: PointCloudBatch[] = [];
  for (let i = 0; i < batch.offset.length; i++) out.push(sliceScene(batch, i));
  return out;
}

/**
 * Concatenates batches (each may hold several scenes) into one batch, in the given order.
 * An optional field is kept only when every part has it: a batch where some scenes have
 * colour and others do not would be ambiguous, so that is an error rather than a silent drop.
 */
export function concatScenes(parts: readonly PointCloudBatch[]): PointCloudBatch {
  if (parts.length === 0) return { coord: new Float32Array(0), offset: new Int32Array(0) };
  let n = 0;
  let scenes = 0;
  for (const p of parts) {
    n += p.coord.length / 3;
    scenes += p.offset.length;
  }
  const has = (key: 'color' | 'normal' | 'label'): boolean => {
    const count = parts.filter((p) => p[key] !== undefined).length;
    if (count !== 0 && count !== parts.length) {
      throw new Error(`concatScenes: field '${key}' is present in ${count} of ${parts.length} parts; all or none must have it`);
    }
    return count === parts.length;
  };
  const coord = new Float32Array(3 * n);
  const color = has('color') ? new Float32Array(3 * n) : undefined;
  const normal = has('normal') ? new Float32Array(3 * n) : undefined;
  const label = has('label') ? new Int32Array(n) : undefined;
  const offset = new Int32Array(scenes);
  let p0 = 0;
  let s0 = 0;
  for (const p of parts) {
    const m = p.coord.length / 3;
    coord.set(p.coord, 3 * p0);
    if (color) color.set(p.color!, 3 * p0);
    if (normal) normal.set(p.normal!, 3 * p0);
    if (label) label.set(p.label!, p0);
    for (let i = 0; i < p.offset.length; i++) offset[s0 + i] = p0 + p.offset[i]!;
    p0 += m;
    s0 += p.offset.length;
  }
  const out: PointCloudBatch = { coord, offset };
  if (color) out.color = color;
  if (normal) out.normal = normal;
  if (label) out.label = label;
  return out;
}

/**
 * Gathers points by index (for sampling, cropping, reordering); offsets are recomputed from
 * `offset` of the result's scenes, so `indices` must keep each scene's points together and
 * scenes in order. `sizes` gives the number of kept points per scene.
 */
export function gatherPoints(batch: PointCloudBatch, indices: Int32Array, sizes: ArrayLike<number>): PointCloudBatch {
  const m = indices.length;
  const coord = new Float32Array(3 * m);
  const color = batch.color ? new Float32Array(3 * m) : undefined;
  const normal = batch.normal ? new Float32Array(3 * m) : undefined;
  const label = batch.label ? new Int32Array(m) : undefined;
  const n = batch.coord.length / 3;
  for (let j = 0; j < m; j++) {
    const i = indices[j]!;
    if (i < 0 || i >= n) throw new RangeError(`gatherPoints: index ${i} at position ${j} is outside 0..${n - 1}`);
    coord[3 * j] = batch.coord[3 * i]!;
    coord[3 * j + 1] = batch.coord[3 * i + 1]!;
    coord[3 * j + 2] = batch.coord[3 * i + 2]!;
    if (color) {
      color[3 * j] = batch.color![3 * i]!;
      color[3 * j + 1] = batch.color![3 * i + 1]!;
      color[3 * j + 2] = batch.color![3 * i + 2]!;
    }
    if (normal) {
      normal[3 * j] = batch.normal![3 * i]!;
      normal[3 * j + 1] = batch.normal![3 * i + 1]!;
      normal[3 * j + 2] = batch.normal![3 * i + 2]!;
    }
    if (label) label[j] = batch.label![i]!;
  }
  const offset = sizesToOffset(sizes);
  const total = offset.length === 0 ? 0 : offset[offset.length - 1]!;
  if (total !== m) throw new Error(`gatherPoints: sizes sum to ${total} but ${m} indices were given`);
  const out: PointCloudBatch = { coord, offset };
  if (color) out.color = color;
  if (normal) out.normal = normal;
  if (label) out.label = label;
  return out;
}

/** Axis-aligned bounds of points [start, end): [minX, minY, minZ, maxX, maxY, maxZ]. */
export function bounds(coord: Float32Array, start = 0, end = coord.length / 3): Float64Array {
  const b = Float64Array.of(
    Number.POSITIVE_INFINITY,
    Number.POSITIVE_INFINITY,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  );
  for (let p = start; p < end; p++) {
    for (let k = 0; k < 3; k++) {
      const v = coord[3 * p + k]!;
      if (v < b[k]!) b[k] = v;
      if (v > b[k + 3]!) b[k + 3] = v;
    }
  }
  return b;
}
