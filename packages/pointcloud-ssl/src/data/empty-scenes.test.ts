// Batches with an empty scene in the middle (a crop can leave one) go through every data and
// serialization step without errors and keep their offsets consistent.
import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { SERIALIZATION_ORDERS } from '../serialization/encode.js';
import { computeGridCoord, serializeBatch, serializedPool } from '../serialization/serialize.js';
import { applyGridSample, gridSample } from './grid-sample.js';
import { type PointCloudBatch, concatScenes, sceneSizes, validatePointCloud } from './point-cloud.js';
import { makeMicroBatch } from './stream.js';
import { trainingPipeline } from './pipeline.js';
import { generateSyntheticScene } from './synthetic.js';
import { Compose, SphereCrop, sampleFromScene, sceneFromSample } from './transforms.js';

describe('empty scenes', () => {
  it('survive sampling, augmentation, serialization and pooling', async () => {
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
    const scenes = [0, 1, 2].map((i) => {
      const [s, e] = [i === 0 ? 0 : batch.offset[i - 1]!, batch.offset[i]!];
      return { coord: batch.coord.slice(3 * s, 3 * e), color: batch.color!.slice(3 * s, 3 * e), label: batch.label!.slice(s, e), offset: Int32Array.of(e - s) };
    });
    // every transform of the training pipeline, and a crop, on each scene (the empty one included)
    const pipeline = trainingPipeline({ gridSize: 0.1, maxPoints: 250 });
    const views = await makeMicroBatch({ scenes: [], pipeline, views: 2, batchScenes: 3, microBatches: 1, seed: 3 }, 0, 0, async (i) => scenes[i]!, 3);
    for (const view of views) {
      validatePointCloud(view);
      expect(Array.from(sceneSizes(view))).toContain(0); // the empty scene stays, empty
    }
    const crop = new Compose([new SphereCrop({ point_max: 250 }), { type: 'NormalizeColor' }]);
    const cropped = concatScenes(scenes.map((s) => sceneFromSample(crop.apply(sampleFromScene(s), createRng(1)))));
    expect(Array.from(cropped.offset)).toEqual([250, 250, 500]);
    const sampled = applyGridSample(cropped, gridSample(cropped, { gridSize: 0.1, rng: createRng(2) }));
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
