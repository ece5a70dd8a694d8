import { describe, expect, it } from 'vitest';
import { ConfusionMatrix } from './segmentation.js';

/** IoU per class straight from the definition, |pred ∩ label| / |pred ∪ label|. */
function referenceIou(labels: number[], preds: number[], k: number): (number | null)[] {
  return Array.from({ length: k }, (_, c) => {
    let inter = 0;
    let union = 0;
    labels.forEach((t, i) => {
      if (t < 0) return;
      const inT = t === c;
      const inP = preds[i] === c;
      if (inT && inP) inter++;
      if (inT || inP) union++;
    });
    return union ? inter / union : null;
  });
}

describe('ConfusionMatrix', () => {
  it('matches the IoU definition on random labels, in chunks, ignoring label −1', () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const k = 5;
    const labels = Array.from({ length: 997 }, () => Math.floor(rand() * (k + 1)) - 1);
    const preds = Array.from({ length: 997 }, () => Math.floor(rand() * (k - 1))); // class 4 never predicted
    const m = new ConfusionMatrix(k);
    for (let s = 0; s < labels.length; s += 100) m.add(labels, preds, s, Math.min(labels.length, s + 100));
    const score = m.score(['a', 'b', 'c', 'd', 'e']);
    const ref = referenceIou(labels, preds, k);
    for (const [i, c] of score.classes.entries()) {
      if (ref[i] === null) expect(c.iou).toBeNull();
      else expect(c.iou).toBeCloseTo(ref[i]!, 12);
    }
    const present = ref.filter((x): x is number => x !== null);
    expect(score.miou).toBeCloseTo(present.reduce((a, b) => a + b, 0) / present.length, 12);
    const valid = labels.map((t, i) => [t, preds[i]!] as const).filter(([t]) => t >= 0);
    expect(score.accuracy).toBeCloseTo(valid.filter(([t, p]) => t === p).length / valid.length, 12);
  });

  it('refuses predictions outside the classes', () => {
    expect(() => new ConfusionMatrix(3).add([0], [3])).toThrow('prediction 3 at point 0');
  });
});
