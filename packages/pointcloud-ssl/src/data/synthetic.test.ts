import { describe, expect, it } from 'vitest';
import { S3DIS_CLASSES, S3DIS_CLASS_ID, validatePointCloud } from './point-cloud.js';
import { generateSyntheticBatch, generateSyntheticScene, generateSyntheticScenes, syntheticSceneSeed } from './synthetic.js';

describe('synthetic indoor scenes', () => {
  it('is deterministic by seed and differs across seeds', () => {
    const a = generateSyntheticScene(42, { points: 2000 });
    const b = generateSyntheticScene(42, { points: 2000 });
    const c = generateSyntheticScene(43, { points: 2000 });
    expect(Array.from(a.coord)).toEqual(Array.from(b.coord));
    expect(Array.from(a.color)).toEqual(Array.from(b.color));
    expect(Array.from(a.label)).toEqual(Array.from(b.label));
    expect(Array.from(a.coord.subarray(0, 30))).not.toEqual(Array.from(c.coord.subarray(0, 30)));
    expect(syntheticSceneSeed(1, 0)).not.toBe(syntheticSceneSeed(1, 1));
    expect(syntheticSceneSeed(1, 0)).not.toBe(syntheticSceneSeed(2, 0));
  });

  it('produces exactly the requested points with valid fields', () => {
    for (const points of [1, 500, 4096]) {
      const s = generateSyntheticScene(7, { points });
      validatePointCloud(s, 'synthetic');
      expect(s.coord.length).toBe(3 * points);
      expect(Array.from(s.offset)).toEqual([points]);
      for (let i = 0; i < points; i++) {
        expect(s.label[i]).toBeGreaterThanOrEqual(0);
        expect(s.label[i]).toBeLessThan(13);
        expect(Math.hypot(s.normal[3 * i]!, s.normal[3 * i + 1]!, s.normal[3 * i + 2]!)).toBeCloseTo(1, 5);
      }
    }
    expect(() => generateSyntheticScene(1, { points: 0 })).toThrow(/points/);
  });

  it('covers all 13 S3DIS classes over a handful of scenes, with floor below ceiling', () => {
    const scenes = generateSyntheticScenes({ scenes: 12, seed: 3, points: 4096 });
    const seen = new Set<number>();
    for (const s of scenes) {
      for (const l of s.label) seen.add(l);
      // floor points sit at the bottom of the room and ceiling points at the top (noise aside)
      let floorZ = 0;
      let floorN = 0;
      let ceilZ = 0;
      let ceilN = 0;
      for (let i = 0; i < s.label.length; i++) {
        if (s.label[i] === S3DIS_CLASS_ID.floor) {
          floorZ += s.coord[3 * i + 2]!;
          floorN++;
        } else if (s.label[i] === S3DIS_CLASS_ID.ceiling) {
          ceilZ += s.coord[3 * i + 2]!;
          ceilN++;
        }
      }
      expect(floorN).toBeGreaterThan(0);
      expect(Math.abs(floorZ / floorN)).toBeLessThan(0.02);
      if (ceilN > 0) expect(Math.abs(ceilZ / ceilN - s.room[2])).toBeLessThan(0.02);
    }
    expect([...seen].sort((x, y) => x - y)).toEqual(S3DIS_CLASSES.map((_, i) => i));
  });

  it('varies a class across scenes: colour, size and pose of chairs differ', () => {
    const scenes = generateSyntheticScenes({ scenes: 16, seed: 11, points: 4096, randomPose: false });
    const meanColors: number[][] = [];
    const heights: number[] = [];
    for (const s of scenes) {
      const c = [0, 0, 0];
      let n = 0;
      let zmax = 0;
      for (let i = 0; i < s.label.length; i++) {
        if (s.label[i] !== S3DIS_CLASS_ID.chair) continue;
        for (let k = 0; k < 3; k++) c[k]! += s.color[3 * i + k]!;
        zmax = Math.max(zmax, s.coord[3 * i + 2]!);
        n++;
      }
      if (n > 20) {
        meanColors.push(c.map((v) => v / n));
        heights.push(zmax);
      }
    }
    expect(meanColors.length).toBeGreaterThan(4);
    const spread = (vals: number[]) => Math.max(...vals) - Math.min(...vals);
    expect(spread(meanColors.map((c) => c[0]!))).toBeGreaterThan(0.15); // colour differs
    expect(spread(heights)).toBeGreaterThan(0.1); // size differs
    // pose: rooms are rotated and moved when randomPose is on
    const posed = generateSyntheticScenes({ scenes: 4, seed: 11, points: 1000 });
    const centroidsX = posed.map((s) => s.coord.reduce((a, v, i) => (i % 3 === 0 ? a + v : a), 0) / 1000);
    expect(spread(centroidsX)).toBeGreaterThan(1);
  });

  it('sensor noise is set by the option', () => {
    const clean = generateSyntheticScene(5, { points: 3000, noise: 0, randomPose: false });
    const noisy = generateSyntheticScene(5, { points: 3000, noise: 0.05, randomPose: false });
    // with noise 0, floor points lie exactly on z = 0
    let maxClean = 0;
    let sumNoisy = 0;
    let n = 0;
    for (let i = 0; i < 3000; i++) {
      if (clean.label[i] === S3DIS_CLASS_ID.floor) maxClean = Math.max(maxClean, Math.abs(clean.coord[3 * i + 2]!));
      if (noisy.label[i] === S3DIS_CLASS_ID.floor) {
        sumNoisy += noisy.coord[3 * i + 2]! ** 2;
        n++;
      }
    }
    expect(maxClean).toBe(0);
    // the noise is added to the same surface samples: labels and x/y agree up to the noise
    expect(Array.from(noisy.label)).toEqual(Array.from(clean.label));
    let dmax = 0;
    for (let i = 0; i < 9000; i++) dmax = Math.max(dmax, Math.abs(noisy.coord[i]! - clean.coord[i]!));
    expect(dmax).toBeLessThan(0.05 * 6);
    expect(Math.sqrt(sumNoisy / n)).toBeGreaterThan(0.03);
    expect(Math.sqrt(sumNoisy / n)).toBeLessThan(0.07);
  });

  it('batches scenes with offsets', () => {
    const b = generateSyntheticBatch({ scenes: 3, seed: 1, points: 300 });
    expect(Array.from(b.offset)).toEqual([300, 600, 900]);
    validatePointCloud(b);
  });
});
