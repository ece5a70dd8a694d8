import { describe, expect, it } from 'vitest';
import { confusionMatrix, segMetrics, semanticConsistency } from './metrics.js';

describe('segmentation metrics', () => {
  it('match a hand-computed case', () => {
    // labels 0 0 1 1 2 (−1 ignored); predictions 0 1 1 1 0
    const label = Int32Array.of(0, 0, 1, 1, 2, -1);
    const pred = Int32Array.of(0, 1, 1, 1, 0, 2);
    const m = segMetrics(confusionMatrix(pred, label, 4), 4);
    // class 0: tp 1, fn 1, fp 1 → 1/3; class 1: tp 2, fp 1 → 2/3; class 2: tp 0 → 0; class 3 absent
    expect(m.iou[0]).toBeCloseTo(1 / 3);
    expect(m.iou[1]).toBeCloseTo(2 / 3);
    expect(m.iou[2]).toBe(0);
    expect(Number.isNaN(m.iou[3]!)).toBe(true);
    expect(m.mIoU).toBeCloseTo((1 / 3 + 2 / 3 + 0) / 3);
    expect(m.acc).toEqual([0.5, 1, 0, Number.NaN]);
    expect(m.mAcc).toBeCloseTo(0.5);
    expect(m.OA).toBeCloseTo(3 / 5);
    expect(() => confusionMatrix(Int32Array.of(5), Int32Array.of(0), 4)).toThrow(/outside 0..3/);
  });

  it('consistency is high when a class looks the same in every scene', () => {
    // two scenes, two classes; features: class 0 → (1, 0), class 1 → (0, 1) in both scenes
    const label = Int32Array.of(0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1);
    const scene = Int32Array.of(0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1);
    const f = new Float32Array(24);
    for (let i = 0; i < 12; i++) f[2 * i + label[i]!] = 1;
    const good = semanticConsistency(f, 2, label, scene);
    expect(good.same).toBeCloseTo(1);
    expect(good.different).toBeCloseTo(0);
    expect(good.score).toBeCloseTo(1);
    // scene 1 swaps the two directions: same class now points the other way
    const g = new Float32Array(24);
    for (let i = 0; i < 12; i++) g[2 * i + (scene[i] === 1 ? 1 - label[i]! : label[i]!)] = 1;
    const bad = semanticConsistency(g, 2, label, scene);
    expect(bad.score).toBeCloseTo(-1);
    expect(bad.prototypes).toBe(4);
  });
});
