// Batches with an empty scene in the middle (a crop can leave one) go through every data and
// serialization step without errors and keep their offsets consistent.
import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { SERIALIZATION_ORDERS } from '../serialization/encode.js';
import { computeGridCoord, serializeBatch, serializedPool } from '../serialization/serialize.js';
import { augment } from './augment.js';
import { applyGridSample, gridSample } from './grid-sample.js';
import { type PointCloudBatch, concatScenes, validatePointCloud } from './point-cloud.js';
import { generateSyntheticScene } from './synthetic.js';

describe('empty scenes', () => {
  it('survive sampling, augmentation, serialization and pooling', () => {
    const strip = ({ coord, color, normal, label, offset }: PointCloudBatch) => ({ coord, color, normal, label, offset });
    const empty: PointCloudBatch = {
      coord: new Float32Array(0),
      color: new Float32Array(0),
      normal: new Float32Array(0),
      label: new Int32Array(0),
      offset: Int32Array.of(0),
    };
    const batch = concatScenes([strip(generateSyntheticScene(1, { points: 400 })), empty, strip(generateSyntheticScene(2, { points: 300 }))]);
    expect(Array.from(batch.offset)).toEqual([400, 400, 700]);
    validatePointCloud(batch);
    const aug = augment(batch, createRng(1), { crop: { maxPoints: 250 } });
    expect(Array.from(aug.batch.offset)).toEqual([250, 250, 500]);
    const sampled = applyGridSample(aug.batch, gridSample(aug.batch, { gridSize: 0.1, rng: createRng(2) }));
    expect(sampled.offset[0]).toBe(sampled.offset[1]);
    validatePointCloud(sampled);
    const grid = computeGridCoord(sampled.coord, sampled.offset, 0.1);
    const ser = serializeBatch(grid, { offset: sampled.offset, orders: SERIALIZATION_ORDERS });
    const pool = serializedPool(grid, ser, 2);
    expect(pool.counts.reduce((a, b) => a + b, 0)).toBe(sampled.coord.length / 3);
    const none = serializeBatch(new Int32Array(0), { offset: Int32Array.of(0), orders: ['hilbert'] });
    expect(none.order[0]!.length).toBe(0);
  });
});
