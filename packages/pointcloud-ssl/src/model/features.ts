/**
 * Per-point input features of a batch: coordinates centred per scene (and scaled), colour
 * when present, normals when asked for. Centring per scene keeps a scene's features
 * independent of where its neighbours in the batch sit.
 */
import { tf, type Tensor } from '@kiln/tensor';
import type { PointCloudBatch } from '../data/point-cloud.js';

export interface FeatureOptions {
  /** Include colours (zeros when the batch has none). */
  color: boolean;
  /** Include normals (zeros when the batch has none). */
  normal: boolean;
  /** Coordinates are divided by this after centring (metres). */
  coordScale: number;
}

export function featureChannels(options: FeatureOptions): number {
  return 3 + (options.color ? 3 : 0) + (options.normal ? 3 : 0);
}

/** Feature rows [n, featureChannels] as a plain array. */
export function pointFeatureArray(batch: PointCloudBatch, options: FeatureOptions): Float32Array {
  const n = batch.coord.length / 3;
  const c = featureChannels(options);
  const out = new Float32Array(n * c);
  let start = 0;
  for (const end of batch.offset) {
    const mean = [0, 0, 0];
    for (let p = start; p < end; p++) for (let k = 0; k < 3; k++) mean[k]! += batch.coord[3 * p + k]!;
    const count = Math.max(1, end - start);
    for (let p = start; p < end; p++) {
      let j = p * c;
      for (let k = 0; k < 3; k++) out[j++] = (batch.coord[3 * p + k]! - mean[k]! / count) / options.coordScale;
      if (options.color) for (let k = 0; k < 3; k++) out[j++] = batch.color ? batch.color[3 * p + k]! * 2 - 1 : 0;
      if (options.normal) for (let k = 0; k < 3; k++) out[j++] = batch.normal ? batch.normal[3 * p + k]! : 0;
    }
    start = end;
  }
  return out;
}

export function pointFeatures(batch: PointCloudBatch, options: FeatureOptions): Tensor {
  return tf.tensor2d(pointFeatureArray(batch, options), [batch.coord.length / 3, featureChannels(options)]);
}
