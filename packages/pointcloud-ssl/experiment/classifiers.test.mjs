import { describe, expect, it } from 'vitest';
import { fitKnn, fitLogistic, labelledRows } from './classifiers.mjs';
import { interval, pairedDifference, tQuantile975 } from './stats.mjs';

// Three well-separated blobs in 2-D, class = blob.
function blobs(n, shift = 0) {
  const x = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 3;
    x[2 * i] = [0, 5, 0][y[i]] + Math.sin(i * 1.7 + shift) * 0.5;
    x[2 * i + 1] = [0, 0, 5][y[i]] + Math.cos(i * 2.3 + shift) * 0.5;
  }
  return { x, y };
}

describe('per-point classifiers', () => {
  it('separate separable classes (logistic regression, kNN)', () => {
    const tr = blobs(60);
    const te = blobs(30, 0.4);
    for (const train of [fitLogistic, fitKnn]) expect(Array.from(train(tr.x, tr.y, 2, 3)(te.x))).toEqual(Array.from(te.y));
  });
  it('kNN with k = 1 returns the nearest training label; ties go to the nearer neighbour', () => {
    const x = new Float32Array([0, 0, 1, 0, 10, 0]);
    const y = new Int32Array([0, 1, 2]);
    expect(Array.from(fitKnn(x, y, 2, 3, { k: 1 })(new Float32Array([0.9, 0, 9, 0])))).toEqual([1, 2]);
    expect(Array.from(fitKnn(x, y, 2, 3, { k: 2 })(new Float32Array([0.1, 0])))).toEqual([0]);
  });
  it('labelledRows drops −1 labels and caps evenly', () => {
    const x = new Float32Array([0, 1, 2, 3, 4, 5]);
    const r = labelledRows(x, new Int32Array([-1, 4, 5, -1, 6, 7]), 1, 2);
    expect(Array.from(r.y)).toEqual([4, 6]);
    expect(Array.from(r.x)).toEqual([1, 4]);
  });
});

describe('paired statistics', () => {
  it('t interval and paired differences', () => {
    expect(tQuantile975(4)).toBe(2.776);
    const i = interval([1, 2, 3, 4, 5]);
    expect(i.mean).toBe(3);
    expect(i.half).toBeCloseTo((2.776 * Math.sqrt(2.5)) / Math.sqrt(5), 10);
    expect(Number.isNaN(interval([1]).half)).toBe(true);
    // Only seeds both rows have count; a constant offset has a zero-width interval.
    const d = pairedDifference({ 0: 3, 1: 5, 2: 9 }, { 0: 1, 1: 3, 3: 0, 2: 7 });
    expect(d).toEqual({ mean: 2, half: 0, n: 3 });
  });
});
