/**
 * gridSample against a direct reference: cells found with a Map keyed by the grid coordinate
 * string (so two distinct cells can never share a key), sorted by (z, y, x). The cases that
 * matter are neighbouring cells that a key with the wrong stride would merge, e.g. (1,0,0)
 * and (0,1,0) at grid size 1.
 */
import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { gridSample, type GridSampleResult } from './grid-sample.js';
import type { PointCloudBatch } from './point-cloud.js';

interface Reference {
  index: number[];
  inverse: number[];
  gridCoord: number[];
  offset: number[];
  cellCount: number[];
  maxCount: number;
}

function referenceGridSample(batch: PointCloudBatch, gridSize: number, pick: (count: number, maxCount: number) => number): Reference {
  const { coord, offset } = batch;
  const n = coord.length / 3;
  const perScene: { grid: number[]; members: number[] }[][] = [];
  let start = 0;
  for (const end of offset) {
    const floors: number[][] = [];
    for (let p = start; p < end; p++) floors.push([0, 1, 2].map((k) => Math.floor(coord[3 * p + k]! / gridSize)));
    const min = [0, 1, 2].map((k) => Math.min(...floors.map((f) => f[k]!)));
    const cells = new Map<string, { grid: number[]; members: number[] }>();
    floors.forEach((f, i) => {
      const grid = f.map((v, k) => v - min[k]!);
      const key = grid.join(',');
      if (!cells.has(key)) cells.set(key, { grid, members: [] });
      cells.get(key)!.members.push(start + i);
    });
    const sorted = [...cells.values()].sort((a, b) => a.grid[2]! - b.grid[2]! || a.grid[1]! - b.grid[1]! || a.grid[0]! - b.grid[0]!);
    perScene.push(sorted);
    start = end;
  }
  const all = perScene.flat();
  const maxCount = Math.max(0, ...all.map((c) => c.members.length));
  const inverse = new Array<number>(n).fill(-1);
  all.forEach((c, i) => {
    for (const p of c.members) inverse[p] = i;
  });
  let acc = 0;
  return {
    index: all.map((c) => c.members[pick(c.members.length, maxCount)]!),
    inverse,
    gridCoord: all.flatMap((c) => c.grid),
    offset: perScene.map((s) => (acc += s.length)),
    cellCount: all.map((c) => c.members.length),
    maxCount,
  };
}

function plain(r: GridSampleResult): Reference {
  return {
    index: Array.from(r.index),
    inverse: Array.from(r.inverse),
    gridCoord: Array.from(r.gridCoord),
    offset: Array.from(r.offset),
    cellCount: Array.from(r.cellCount),
    maxCount: r.maxCount,
  };
}

const testPart = (part: number) => (count: number) => part % count;

describe('gridSample cells', () => {
  it('keeps neighbouring cells along different axes apart: (1,0,0), (0,1,0), (0,0,1)', () => {
    const batch = { coord: Float32Array.of(1.5, 0.5, 0.5, 0.5, 1.5, 0.5), offset: Int32Array.of(2) };
    const r = gridSample(batch, { gridSize: 1, mode: 'test' });
    expect(r.index.length).toBe(2);
    expect(Array.from(r.inverse)).toEqual([0, 1]); // (1,0,0) sorts before (0,1,0): y counts before x
    expect(Array.from(r.gridCoord)).toEqual([1, 0, 0, 0, 1, 0]);
    const three = { coord: Float32Array.of(0.5, 0.5, 1.5, 0.5, 1.5, 0.5, 1.5, 0.5, 0.5), offset: Int32Array.of(3) };
    const s = gridSample(three, { gridSize: 1, mode: 'test' });
    expect(Array.from(s.index)).toEqual([2, 1, 0]);
    expect(Array.from(s.cellCount)).toEqual([1, 1, 1]);
  });

  it('separates all 27 cells of a 3×3×3 block, ordered z, then y, then x', () => {
    const coord: number[] = [];
    const want: number[] = [];
    // inserted in x-major order, expected back in z-major order
    for (let x = 0; x < 3; x++) for (let y = 0; y < 3; y++) for (let z = 0; z < 3; z++) coord.push(x + 0.25, y + 0.5, z + 0.75);
    for (let z = 0; z < 3; z++) for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) want.push(x, y, z);
    const r = gridSample({ coord: Float32Array.from(coord), offset: Int32Array.of(27) }, { gridSize: 1, mode: 'test' });
    expect(r.maxCount).toBe(1);
    expect(Array.from(r.gridCoord)).toEqual(want);
    expect(new Set(r.inverse).size).toBe(27);
  });

  it('measures coordinates from each scene’s own minimum, negative coordinates included', () => {
    const batch = {
      coord: Float32Array.of(-3.2, -7.9, 4.1, -2.2, -7.5, 4.9, 10, 10, 10, 12.5, 10, 10, 10.2, 10.9, 10.4),
      offset: Int32Array.of(2, 2, 5), // the middle scene is empty
    };
    const r = gridSample(batch, { gridSize: 1, mode: 'test' });
    expect(plain(r)).toEqual(referenceGridSample(batch, 1, testPart(0)));
    expect(Array.from(r.offset)).toEqual([2, 2, 4]);
    expect(Array.from(r.gridCoord)).toEqual([0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0]);
  });

  it('matches the reference on random multi-scene clouds, in test mode (every part) and train mode', () => {
    const rng = createRng(20240611);
    for (let trial = 0; trial < 40; trial++) {
      const scenes = rng.int(1, 4);
      const sizes = Array.from({ length: scenes }, () => rng.int(0, 60));
      const total = sizes.reduce((a, b) => a + b, 0);
      const extent = [1, 2, 5, 9][trial % 4]!;
      const coord = rng.uniformArray(3 * total, -extent, extent);
      let acc = 0;
      const batch = { coord, offset: Int32Array.from(sizes.map((s) => (acc += s))) };
      const gridSize = [0.5, 1, 1.7, 3][rng.int(0, 4)]!;
      const first = gridSample(batch, { gridSize, mode: 'test' });
      for (let part = 0; part < Math.min(first.maxCount, 4); part++) {
        expect(plain(gridSample(batch, { gridSize, mode: 'test', part })), `trial ${trial} part ${part}`).toEqual(
          referenceGridSample(batch, gridSize, testPart(part)),
        );
      }
      // Train mode draws floor(next() · maxCount) mod count per cell, in cell order, and no
      // more: a seeded pipeline's later draws must not shift.
      const draws = createRng(trial);
      const want = referenceGridSample(batch, gridSize, (count, max) => Math.floor(draws.next() * max) % count);
      const trainRng = createRng(trial);
      expect(plain(gridSample(batch, { gridSize, rng: trainRng })), `trial ${trial} train`).toEqual(want);
      expect(trainRng.getState(), `trial ${trial}: draws consumed`).toEqual(draws.getState());
    }
  });

  it('takes part modulo each cell’s count, so part = count wraps to the first member', () => {
    const batch = { coord: Float32Array.of(0.1, 0, 0, 0.2, 0, 0, 0.3, 0, 0, 5, 0, 0), offset: Int32Array.of(4) };
    expect(Array.from(gridSample(batch, { gridSize: 1, mode: 'test', part: 1 }).index)).toEqual([1, 3]);
    expect(Array.from(gridSample(batch, { gridSize: 1, mode: 'test', part: 3 }).index)).toEqual([0, 3]);
    expect(Array.from(gridSample(batch, { gridSize: 1, mode: 'test', part: 5 }).index)).toEqual([2, 3]);
  });

  it('refuses a scene exactly when its cells outnumber 2^53 − 1, counting all three axes', () => {
    // 6361 · 69431 · 20394401 = 2^53 − 1: the largest extent whose keys are all exact.
    const scene = (z: number) => ({ coord: Float32Array.of(0, 0, 0, 6360, 69430, z), offset: Int32Array.of(2) });
    const largest = gridSample(scene(20394400), { gridSize: 1, mode: 'test' });
    expect(Array.from(largest.gridCoord)).toEqual([0, 0, 0, 6360, 69430, 20394400]);
    expect(Array.from(largest.inverse)).toEqual([0, 1]);
    // Two more cells along z only (float32 holds even integers exactly at this size).
    expect(() => gridSample(scene(20394402), { gridSize: 1, mode: 'test' })).toThrow(
      'gridSample: scene 0 spans 6361×69431×20394403 cells, too many for exact keys; use a larger gridSize',
    );
    const twoScenes = { coord: Float32Array.of(5, 5, 5, 0, 0, 0, 6360, 69430, 20394402), offset: Int32Array.of(1, 3) };
    expect(() => gridSample(twoScenes, { gridSize: 1, mode: 'test' })).toThrow(/scene 1 spans 6361×69431×20394403 cells/);
    // The extent is each scene's own, not stretched by the next scene's points (here the
    // first scene's minimum x is far below zero, the second scene's point at zero).
    const shifted = { coord: Float32Array.of(-10000, 0, 0, -3640, 69430, 20394400, 0, 0, 0), offset: Int32Array.of(2, 3) };
    expect(Array.from(gridSample(shifted, { gridSize: 1, mode: 'test' }).gridCoord)).toEqual([0, 0, 0, 6360, 69430, 20394400, 0, 0, 0]);
  });

  it('rejects bad options with a message naming the option', () => {
    const batch = { coord: Float32Array.of(0, 0, 0), offset: Int32Array.of(1) };
    expect(() => gridSample(batch, { gridSize: -1, mode: 'test' })).toThrow(/gridSize must be a positive number, got -1/);
    expect(() => gridSample(batch, { gridSize: Number.POSITIVE_INFINITY, mode: 'test' })).toThrow(/gridSize/);
    expect(() => gridSample(batch, { gridSize: Number.NaN, mode: 'test' })).toThrow(/gridSize/);
    expect(() => gridSample(batch, { gridSize: 1, mode: 'eval' as 'test' })).toThrow(/mode must be 'train' or 'test', got 'eval'/);
    expect(() => gridSample(batch, { gridSize: 1, mode: 'test', part: -1 })).toThrow(/part must be a non-negative integer, got -1/);
    expect(() => gridSample(batch, { gridSize: 1, mode: 'test', part: 0.5 })).toThrow(/part/);
    expect(() => gridSample(batch, { gridSize: 1, mode: 'train' })).toThrow(/'train' mode needs an rng/);
    const far = { coord: Float32Array.of(0, 0, 0, 1e6, 1e6, 1e6), offset: Int32Array.of(2) };
    expect(() => gridSample(far, { gridSize: 1e-4, mode: 'test' })).toThrow(/scene 0 spans .* cells, too many for exact keys/);
  });
});
