import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import {
  augment,
  colorJitter,
  randomCrop,
  randomDropout,
  randomFlip,
  randomJitter,
  randomRotate,
  randomScale,
} from './augment.js';
import { type PointCloudBatch, concatScenes, validatePointCloud } from './point-cloud.js';
import { generateSyntheticScene } from './synthetic.js';

function batch(): PointCloudBatch {
  const scenes = [generateSyntheticScene(1, { points: 1500 }), generateSyntheticScene(2, { points: 1000 })];
  return concatScenes(scenes.map(({ coord, color, normal, label, offset }) => ({ coord, color, normal, label, offset })));
}

function pairwise(coord: Float32Array, i: number, j: number): number {
  return Math.hypot(coord[3 * i]! - coord[3 * j]!, coord[3 * i + 1]! - coord[3 * j + 1]!, coord[3 * i + 2]! - coord[3 * j + 2]!);
}

describe('augmentations', () => {
  it('rotation preserves distances and z (without tilt) and rotates normals; is seeded; leaves the input alone', () => {
    const b = batch();
    const before = b.coord.slice();
    const r = randomRotate(b, createRng(1), { tilt: 0 });
    expect(Array.from(b.coord)).toEqual(Array.from(before));
    expect(Array.from(randomRotate(b, createRng(1), { tilt: 0 }).coord)).toEqual(Array.from(r.coord));
    for (const [i, j] of [
      [0, 10],
      [5, 1400],
      [1600, 2400],
    ]) {
      expect(pairwise(r.coord, i!, j!)).toBeCloseTo(pairwise(b.coord, i!, j!), 4);
    }
    for (let p = 0; p < 2500; p += 97) {
      expect(r.coord[3 * p + 2]).toBeCloseTo(b.coord[3 * p + 2]!, 4);
      expect(r.normal![3 * p + 2]).toBeCloseTo(b.normal![3 * p + 2]!, 5);
      expect(Math.hypot(r.normal![3 * p]!, r.normal![3 * p + 1]!)).toBeCloseTo(Math.hypot(b.normal![3 * p]!, b.normal![3 * p + 1]!), 5);
    }
    expect(r.coord[0]).not.toBeCloseTo(b.coord[0]!, 2);
    const tilted = randomRotate(b, createRng(1));
    expect(pairwise(tilted.coord, 3, 1200)).toBeCloseTo(pairwise(b.coord, 3, 1200), 4);
  });

  it('scale, flip and jitter do what they say', () => {
    const b = batch();
    const s = randomScale(b, createRng(2), { range: [2, 2] });
    expect(s.coord[5]).toBeCloseTo(2 * b.coord[5]!, 5);
    const f = randomFlip(b, createRng(3), { p: 1 });
    // flipping both x and y about the centre: distances kept, z untouched
    expect(pairwise(f.coord, 0, 100)).toBeCloseTo(pairwise(b.coord, 0, 100), 4);
    expect(f.coord[2]).toBe(b.coord[2]);
    expect(f.normal![0]).toBeCloseTo(-b.normal![0]!, 6);
    const j = randomJitter(b, createRng(4), { sigma: 0.01, clip: 0.015 });
    let maxd = 0;
    for (let i = 0; i < b.coord.length; i++) maxd = Math.max(maxd, Math.abs(j.coord[i]! - b.coord[i]!));
    expect(maxd).toBeGreaterThan(0.01);
    expect(maxd).toBeLessThanOrEqual(0.015 + 1e-6);
  });

  it('colour jitter stays in 0..1 and changes colours', () => {
    const b = batch();
    const c = colorJitter(b, createRng(5), { brightness: 0.3, noise: 0.05 });
    validatePointCloud(c);
    let diff = 0;
    for (let i = 0; i < b.color!.length; i++) diff += Math.abs(c.color![i]! - b.color![i]!);
    expect(diff / b.color!.length).toBeGreaterThan(0.01);
  });

  it('crop keeps the nearest maxPoints per scene; dropout removes a ratio; indices follow', () => {
    const b = batch();
    const r = randomCrop(b, createRng(6), { maxPoints: 800 });
    expect(Array.from(r.batch.offset)).toEqual([800, 1600]);
    validatePointCloud(r.batch);
    for (let i = 0; i < r.index.length; i++) expect(r.batch.label![i]).toBe(b.label![r.index[i]!]);
    const d = randomDropout(b, createRng(7), { ratio: 0.5, p: 1 });
    expect(Array.from(d.batch.offset)).toEqual([750, 1250]);
    for (let i = 1; i < 750; i++) expect(d.index[i]!).toBeGreaterThan(d.index[i - 1]!);
    const none = randomDropout(b, createRng(7), { ratio: 0.5, p: 0 });
    expect(none.index.length).toBe(2500);
  });

  it('the default chain is seeded and keeps labels attached to their points', () => {
    const b = batch();
    const a1 = augment(b, createRng(9), { crop: { maxPoints: 1200 }, dropout: { p: 1, ratio: 0.1 } });
    const a2 = augment(b, createRng(9), { crop: { maxPoints: 1200 }, dropout: { p: 1, ratio: 0.1 } });
    expect(Array.from(a1.batch.coord)).toEqual(Array.from(a2.batch.coord));
    validatePointCloud(a1.batch);
    for (let i = 0; i < a1.index.length; i++) expect(a1.batch.label![i]).toBe(b.label![a1.index[i]!]);
    expect(Array.from(a1.batch.offset)).toEqual([1200, 2100]);
  });
});
