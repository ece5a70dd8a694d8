/** Segmentation scores: confusion matrix → IoU per class, mIoU over classes present. */

export interface SegmentationScore {
  miou: number;
  accuracy: number;
  classes: { name: string; iou: number | null; support: number }[];
}

/**
 * Accumulates a confusion matrix in chunks (so a worker can report progress).
 * Labels outside [0, numClasses) are ignored, as Pointcept's `ignore_index` is.
 */
export class ConfusionMatrix {
  readonly counts: Float64Array;

  constructor(readonly numClasses: number) {
    this.counts = new Float64Array(numClasses * numClasses);
  }

  add(labels: ArrayLike<number>, predictions: ArrayLike<number>, start = 0, end = labels.length): void {
    const c = this.numClasses;
    for (let i = start; i < end; i++) {
      const t = labels[i]!;
      const p = predictions[i]!;
      if (t < 0 || t >= c || !Number.isInteger(t)) continue;
      if (p < 0 || p >= c || !Number.isInteger(p)) throw new Error(`prediction ${p} at point ${i} is not a class in 0..${c - 1}`);
      this.counts[t * c + p]! += 1;
    }
  }

  score(names: string[]): SegmentationScore {
    const c = this.numClasses;
    const classes: SegmentationScore['classes'] = [];
    let correct = 0;
    let total = 0;
    for (let k = 0; k < c; k++) {
      let row = 0;
      let col = 0;
      for (let j = 0; j < c; j++) {
        row += this.counts[k * c + j]!;
        col += this.counts[j * c + k]!;
      }
      const tp = this.counts[k * c + k]!;
      correct += tp;
      total += row;
      const union = row + col - tp;
      // A class absent from both labels and predictions has no IoU; it does not count.
      classes.push({ name: names[k] ?? `class ${k}`, iou: union > 0 ? tp / union : null, support: row });
    }
    const present = classes.filter((x) => x.iou !== null);
    const miou = present.length ? present.reduce((s, x) => s + x.iou!, 0) / present.length : 0;
    return { miou, accuracy: total > 0 ? correct / total : 0, classes };
  }
}
