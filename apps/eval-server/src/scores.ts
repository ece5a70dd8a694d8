/**
 * Segmentation scores as the eval server stores them, computed with @kiln/pointcloud-ssl's
 * confusion matrix and IoU (one implementation for the library, the `kiln` command and the
 * server): IoU per class, mIoU over the classes present in labels or predictions, overall
 * accuracy, and each class's support (labelled points).
 *
 * Labels equal to −1 are skipped; inputs are checked by job-inputs.ts first, so any other
 * label or prediction outside the classes never reaches this point.
 */
import { confusionMatrix, segMetrics } from '@kiln/pointcloud-ssl';

export interface SegmentationScore {
  miou: number;
  accuracy: number;
  classes: { name: string; iou: number | null; support: number }[];
}

/** Accumulates the confusion matrix in chunks, so a job can report progress. */
export class ScoreAccumulator {
  readonly confusion: Float64Array;

  constructor(readonly names: readonly string[]) {
    this.confusion = new Float64Array(names.length * names.length);
  }

  add(labels: Int32Array, predictions: Int32Array): void {
    confusionMatrix(predictions, labels, this.names.length, this.confusion);
  }

  score(): SegmentationScore {
    const k = this.names.length;
    const m = segMetrics(this.confusion, k);
    const classes = this.names.map((name, c) => {
      let support = 0;
      for (let j = 0; j < k; j++) support += this.confusion[c * k + j]!;
      const iou = m.iou[c]!;
      return { name, iou: Number.isNaN(iou) ? null : iou, support };
    });
    return { miou: m.mIoU, accuracy: m.OA, classes };
  }
}
