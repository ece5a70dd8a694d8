import { describe, expect, it } from 'vitest';
import {
  S3DIS_CLASSES,
  S3DIS_CLASS_ID,
  batchIndexToOffset,
  concatScenes,
  gatherPoints,
  offsetToBatchIndex,
  sceneCount,
  sceneRange,
  sliceScene,
  splitScenes,
  validatePointCloud,
  type PointCloudBatch,
} from './point-cloud.js';

function scene(n: number, base: number, withLabel = true): PointCloudBatch {
  const coord = new Float32Array(3 * n).map((_, i) => base + i);
  const out: PointCloudBatch = { coord, offset: Int32Array.of(n) };
  if (withLabel) out.label = new Int32Array(n).fill(base);
  return out;
}

describe('point-cloud batch', () => {
  it('has the 13 S3DIS classes in order', () => {
    expect(S3DIS_CLASSES.length).toBe(13);
    expect(S3DIS_CLASSES[0]).toBe('ceiling');
    expect(S3DIS_CLASSES[12]).toBe('clutter');
    expect(S3DIS_CLASS_ID.chair).toBe(8);
  });

  it('concatenates, counts and slices scenes', () => {
    const b = concatScenes([scene(2, 0), scene(3, 100), scene(1, 200)]);
    validatePointCloud(b);
    expect(Array.from(b.offset)).toEqual([2, 5, 6]);
    expect(sceneCount(b)).toBe(3);
    expect(sceneRange(b, 1)).toEqual([2, 5]);
    const s1 = sliceScene(b, 1);
    expect(Array.from(s1.coord)).toEqual(Array.from(scene(3, 100).coord));
    expect(Array.from(s1.label!)).toEqual([100, 100, 100]);
    expect(splitScenes(b).map((s) => s.offset[0])).toEqual([2, 3, 1]);
    expect(Array.from(offsetToBatchIndex(b.offset))).toEqual([0, 0, 1, 1, 1, 2]);
    expect(Array.from(batchIndexToOffset(offsetToBatchIndex(b.offset)))).toEqual([2, 5, 6]);
    expect(() => sceneRange(b, 3)).toThrow(/out of range/);
  });

  it('refuses mixed optional fields and bad offsets', () => {
    expect(() => concatScenes([scene(2, 0), scene(2, 1, false)])).toThrow(/label/);
    const bad = scene(3, 0);
    bad.offset = Int32Array.of(2);
    expect(() => validatePointCloud(bad, 'x.ply')).toThrow(/x.ply: offset ends at 2 but coord holds 3/);
    const badColor = { ...scene(1, 0), color: Float32Array.of(0, 2, 0) };
    expect(() => validatePointCloud(badColor)).toThrow(/color of point 0 is 2/);
  });

  it('gathers points with new scene sizes', () => {
    const b = concatScenes([scene(2, 0), scene(3, 100)]);
    const g = gatherPoints(b, Int32Array.of(1, 4, 2), [1, 2]);
    expect(Array.from(g.offset)).toEqual([1, 3]);
    expect(Array.from(g.label!)).toEqual([0, 100, 100]);
    expect(Array.from(g.coord.subarray(0, 3))).toEqual([3, 4, 5]);
  });
});
