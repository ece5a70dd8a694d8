/**
 * Grid sampling (voxel downsampling) with Pointcept's GridSample semantics, per scene:
 *   grid_coord = floor(coord / gridSize) − min(floor(coord / gridSize))  (≥ 0 in each scene)
 * and one point kept per occupied cell; cells are numbered per scene in the order of their
 * key x + sx·(y + sy·z) (Pointcept orders them by a hash of the same key). 'train' picks a random member of each cell the way
 * Pointcept does (randint(0, max count) mod count); 'test' is deterministic and picks member
 * `part mod count` (part 0 = the first point of the cell in input order), so parts
 * 0 .. maxCount − 1 together cover every point, as Pointcept's test-time voting does.
 * `inverse` maps every input point to the kept point of its cell, restoring full resolution:
 * full[p] = sampled[inverse[p]].
 */
import type { Rng } from '@kiln/tensor';
import { argsortCodes } from '../serialization/sort.js';
import { type PointCloudBatch, gatherPoints } from './point-cloud.js';

export interface GridSampleOptions {
  /** Cell edge length (same unit as coord). */
  gridSize: number;
  mode?: 'train' | 'test';
  /** Needed in 'train' mode. */
  rng?: Rng;
  /** 'test' mode: which member of each cell to keep (taken mod the cell's count). */
  part?: number;
}

export interface GridSampleResult {
  /** Kept input points (M), scene by scene; cells in key order (z, then y, then x). */
  index: Int32Array;
  /** For every input point (N), the position in `index` of its cell's kept point. */
  inverse: Int32Array;
  /** Grid coordinates of the kept points (M*3), per scene from that scene's minimum. */
  gridCoord: Int32Array;
  /** Cumulative kept counts per scene. */
  offset: Int32Array;
  /** Input points in each cell (M). */
  cellCount: Int32Array;
  /** Largest cell count (the number of test-mode parts that cover every point). */
  maxCount: number;
}

/** Points grouped by cell, per scene: the shared first half of train and test sampling. */
interface Cells {
  /** Input points, cell by cell (members of a cell in input order). */
  members: Int32Array;
  /** members[cellStart[c] .. cellStart[c + 1]) belong to cell c (length cells + 1). */
  cellStart: Int32Array;
  cellCount: Int32Array;
  maxCount: number;
  /** Cell of every input point. */
  cellOf: Int32Array;
  gridCoord: Int32Array;
  offset: Int32Array;
}

function checkGridSize(gridSize: number): void {
  if (!(gridSize > 0) || !Number.isFinite(gridSize)) throw new RangeError(`gridSample: gridSize must be a positive number, got ${gridSize}`);
}

function groupCells(batch: PointCloudBatch, gridSize: number): Cells {
  checkGridSize(gridSize);
  const { coord, offset } = batch;
  const n = coord.length / 3;
  const cellOf = new Int32Array(n); // global cell id per point
  const g = new Int32Array(3 * n);
  const keys = new Float64Array(n);
  const sceneCells = new Int32Array(offset.length);
  // At most one cell per point: size the per-cell arrays by n and trim at the end.
  const cellGrid = new Int32Array(3 * n);
  const cellStart = new Int32Array(n + 1);
  const members = new Int32Array(n);
  let cells = 0;
  let start = 0;
  for (let s = 0; s < offset.length; s++) {
    const end = offset[s]!;
    let mx = Number.POSITIVE_INFINITY;
    let my = Number.POSITIVE_INFINITY;
    let mz = Number.POSITIVE_INFINITY;
    for (let p = start; p < end; p++) {
      const x = Math.floor(coord[3 * p]! / gridSize);
      const y = Math.floor(coord[3 * p + 1]! / gridSize);
      const z = Math.floor(coord[3 * p + 2]! / gridSize);
      g[3 * p] = x;
      g[3 * p + 1] = y;
      g[3 * p + 2] = z;
      if (x < mx) mx = x;
      if (y < my) my = y;
      if (z < mz) mz = z;
    }
    let sx = 1;
    let sy = 1;
    let sz = 1;
    for (let p = start; p < end; p++) {
      g[3 * p]! -= mx;
      g[3 * p + 1]! -= my;
      g[3 * p + 2]! -= mz;
      if (g[3 * p]! + 1 > sx) sx = g[3 * p]! + 1;
      if (g[3 * p + 1]! + 1 > sy) sy = g[3 * p + 1]! + 1;
      if (g[3 * p + 2]! + 1 > sz) sz = g[3 * p + 2]! + 1;
    }
    if (sx * sy * sz > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`gridSample: scene ${s} spans ${sx}×${sy}×${sz} cells, too many for exact keys; use a larger gridSize`);
    }
    // x + sx·(y + sy·z) is unique per cell; a stable radix argsort groups each cell's points
    // (in input order) and orders the cells by key, as Pointcept orders them by hash.
    for (let p = start; p < end; p++) keys[p] = g[3 * p]! + sx * (g[3 * p + 1]! + sy * g[3 * p + 2]!);
    const order = argsortCodes(keys.subarray(start, end));
    let prev = -1;
    const first = cells;
    for (let i = 0; i < order.length; i++) {
      const p = start + order[i]!;
      const k = keys[p]!;
      if (k !== prev) {
        cellGrid[3 * cells] = g[3 * p]!;
        cellGrid[3 * cells + 1] = g[3 * p + 1]!;
        cellGrid[3 * cells + 2] = g[3 * p + 2]!;
        cellStart[cells] = start + i;
        cells++;
        prev = k;
      }
      // The stable sort already lists each cell's members together, in input order.
      members[start + i] = p;
      cellOf[p] = cells - 1;
    }
    sceneCells[s] = cells - first;
    start = end;
  }
  cellStart[cells] = n;
  const cellCount = new Int32Array(cells);
  let maxCount = 0;
  for (let c = 0; c < cells; c++) {
    const count = cellStart[c + 1]! - cellStart[c]!;
    cellCount[c] = count;
    if (count > maxCount) maxCount = count;
  }
  const offsetOut = new Int32Array(offset.length);
  let acc = 0;
  for (let s = 0; s < offset.length; s++) {
    acc += sceneCells[s]!;
    offsetOut[s] = acc;
  }
  return { members, cellStart: cellStart.slice(0, cells + 1), cellCount, maxCount, cellOf, gridCoord: cellGrid.slice(0, 3 * cells), offset: offsetOut };
}

export function gridSample(batch: PointCloudBatch, options: GridSampleOptions): GridSampleResult {
  const mode = options.mode ?? 'train';
  checkGridSize(options.gridSize);
  if (mode !== 'train' && mode !== 'test') throw new Error(`gridSample: mode must be 'train' or 'test', got '${mode}'`);
  if (mode === 'train' && !options.rng) throw new Error("gridSample: 'train' mode needs an rng (or use mode 'test')");
  const part = options.part ?? 0;
  if (!Number.isInteger(part) || part < 0) throw new RangeError(`gridSample: part must be a non-negative integer, got ${part}`);
  const cells = groupCells(batch, options.gridSize);
  const { members, cellStart, cellCount, maxCount } = cells;
  const index = new Int32Array(cellCount.length);
  const rng = options.rng;
  for (let c = 0; c < index.length; c++) {
    const count = cellCount[c]!;
    // Pointcept: randint(0, max count) mod count. next() has 24 random bits, plenty here.
    const pick = mode === 'train' ? Math.floor(rng!.next() * maxCount) % count : part % count;
    index[c] = members[cellStart[c]! + pick]!;
  }
  return { index, inverse: cells.cellOf, gridCoord: cells.gridCoord, offset: cells.offset, cellCount, maxCount };
}

/**
 * Every test-mode part at once (Pointcept's GridSample `mode='test'`): part i keeps member
 * `i mod count` of each cell, for i = 0 … maxCount − 1, so the parts together cover every
 * point; one grouping serves all parts. `parts[i]` is the kept index of part i.
 */
export function gridSampleParts(batch: PointCloudBatch, gridSize: number): Omit<GridSampleResult, 'index'> & { parts: Int32Array[] } {
  const cells = groupCells(batch, gridSize);
  const { members, cellStart, cellCount, maxCount } = cells;
  const parts: Int32Array[] = [];
  for (let part = 0; part < maxCount; part++) {
    const index = new Int32Array(cellCount.length);
    for (let c = 0; c < index.length; c++) index[c] = members[cellStart[c]! + (part % cellCount[c]!)]!;
    parts.push(index);
  }
  return { parts, inverse: cells.cellOf, gridCoord: cells.gridCoord, offset: cells.offset, cellCount, maxCount };
}

/** The sampled batch (points gathered by `result.index`) with its grid coordinates. */
export function applyGridSample(batch: PointCloudBatch, result: GridSampleResult): PointCloudBatch & { gridCoord: Int32Array } {
  const sizes = new Int32Array(result.offset.length);
  let prev = 0;
  for (let s = 0; s < sizes.length; s++) {
    sizes[s] = result.offset[s]! - prev;
    prev = result.offset[s]!;
  }
  return { ...gatherPoints(batch, result.index, sizes), gridCoord: result.gridCoord };
}

/**
 * Restores per-point values computed on the sampled points to full resolution:
 * out[p·width + k] = values[inverse[p]·width + k].
 */
export function upsampleByInverse<T extends Float32Array | Int32Array>(values: T, inverse: Int32Array, width = 1): T {
  const out = new (values.constructor as { new (n: number): T })(inverse.length * width);
  for (let p = 0; p < inverse.length; p++) {
    const src = inverse[p]! * width;
    for (let k = 0; k < width; k++) out[p * width + k] = values[src + k]!;
  }
  return out;
}
