import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { concatScenes } from './point-cloud.js';
import { applyGridSample, gridSample, upsampleByInverse } from './grid-sample.js';
import { generateSyntheticScene } from './synthetic.js';

describe('gridSample', () => {
  const small = {
    // cells at size 1: (0,0,0) ×3, (1,0,0) ×1, (0,2,0) ×2
    coord: Float32Array.of(0.1, 0.1, 0.1, 0.9, 0.2, 0.3, 1.5, 0.5, 0.5, 0.5, 2.5, 0.5, 0.2, 0.8, 0.9, 0.4, 2.1, 0.1),
    label: Int32Array.of(0, 1, 2, 3, 4, 5),
    offset: Int32Array.of(6),
  };

  it('keeps one point per cell deterministically in test mode, with parts covering all points', () => {
    const r = gridSample(small, { gridSize: 1, mode: 'test' });
    expect(Array.from(r.index)).toEqual([0, 2, 3]);
    expect(Array.from(r.inverse)).toEqual([0, 0, 1, 2, 0, 2]);
    expect(Array.from(r.cellCount)).toEqual([3, 1, 2]);
    expect(Array.from(r.gridCoord)).toEqual([0, 0, 0, 1, 0, 0, 0, 2, 0]);
    expect(r.maxCount).toBe(3);
    const covered = new Set<number>();
    for (let part = 0; part < r.maxCount; part++) {
      for (const i of gridSample(small, { gridSize: 1, mode: 'test', part }).index) covered.add(i);
    }
    expect(covered.size).toBe(6);
  });

  it('picks random cell members in train mode, reproducibly by seed, and never leaves the cell', () => {
    const a = gridSample(small, { gridSize: 1, rng: createRng(1) });
    const b = gridSample(small, { gridSize: 1, rng: createRng(1) });
    expect(Array.from(a.index)).toEqual(Array.from(b.index));
    const seen = new Set<number>();
    for (let s = 0; s < 40; s++) {
      const r = gridSample(small, { gridSize: 1, rng: createRng(s) });
      for (let c = 0; c < r.index.length; c++) expect(r.inverse[r.index[c]!]).toBe(c);
      seen.add(r.index[0]!);
    }
    expect([...seen].sort()).toEqual([0, 1, 4]); // every member of the first cell gets picked
    expect(() => gridSample(small, { gridSize: 1 })).toThrow(/rng/);
    expect(() => gridSample(small, { gridSize: 0, mode: 'test' })).toThrow(/gridSize/);
  });

  it('round trip: sampled values upsampled by inverse equal each point’s cell representative', () => {
    const scene = generateSyntheticScene(3, { points: 5000 });
    const batch = concatScenes([scene, generateSyntheticScene(4, { points: 3000 })].map(({ coord, label, offset }) => ({ coord, label, offset })));
    const r = gridSample(batch, { gridSize: 0.1, rng: createRng(2) });
    const sampled = applyGridSample(batch, r);
    expect(sampled.coord.length / 3).toBe(r.index.length);
    expect(r.offset[1]).toBe(r.index.length);
    expect(r.index.length).toBeLessThan(8000);
    // cells are per scene: first-scene cells hold only first-scene points
    for (let c = 0; c < r.offset[0]!; c++) expect(r.index[c]!).toBeLessThan(5000);
    const full = upsampleByInverse(sampled.coord, r.inverse, 3);
    for (let p = 0; p < 8000; p++) {
      // the restored coordinate lies in the same 0.1 cell as the point itself
      for (let k = 0; k < 3; k++) expect(Math.floor(full[3 * p + k]! / 0.1)).toBe(Math.floor(batch.coord[3 * p + k]! / 0.1));
    }
    const labels = upsampleByInverse(sampled.label!, r.inverse);
    for (let p = 0; p < 8000; p++) expect(labels[p]).toBe(batch.label![r.index[r.inverse[p]!]!]);
    // grid coords are ≥ 0 per scene and start at 0 on every axis
    for (const [s0, s1] of [
      [0, r.offset[0]!],
      [r.offset[0]!, r.offset[1]!],
    ]) {
      for (let k = 0; k < 3; k++) {
        let min = Number.POSITIVE_INFINITY;
        for (let c = s0!; c < s1!; c++) min = Math.min(min, r.gridCoord[3 * c + k]!);
        expect(min).toBe(0);
      }
    }
  });
});
