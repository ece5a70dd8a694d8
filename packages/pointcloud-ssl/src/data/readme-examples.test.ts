// The README's data and serialization examples, run as written (file paths replaced by
// files this test creates), so the documentation cannot drift from the code.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { pointSetToBatch, readHdf5PointSet, writeHdf5PointSet } from './formats/hdf5.js';
import { readPcd, writePcd } from './formats/pcd.js';
import { readPly, writePly } from './formats/ply.js';
import { readS3disRoom, writeS3disRoom } from './formats/s3dis.js';
import { S3DIS_CLASSES } from './point-cloud.js';
import { loadScene, openDataset } from './datasets.js';
import { trainingPipeline } from './pipeline.js';
import { SceneStream } from './stream.js';
import { applyGridSample, gridSample } from './grid-sample.js';
import { generateSyntheticBatch, generateSyntheticScene } from './synthetic.js';
import { encodeSerialization } from '../serialization/encode.js';
import { serializeBatch, serializedPool } from '../serialization/serialize.js';

describe('README examples', () => {
  it('quick start', () => {
    const batch = generateSyntheticBatch({ scenes: 2, seed: 7, points: 4096 });
    const sampling = gridSample(batch, { gridSize: 0.05, mode: 'train', rng: createRng(1) });
    const sampled = applyGridSample(batch, sampling);
    const ser = serializeBatch(sampled.gridCoord, { offset: sampled.offset, orders: ['z', 'hilbert'] });
    expect(sampled.offset.length).toBe(2);
    expect(ser.depth).toBeGreaterThan(4);
    expect(S3DIS_CLASSES).toContain(S3DIS_CLASSES[sampled.label![ser.order[0]![0]!]!]);
  });

  it('formats', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-readme-'));
    const scene = generateSyntheticScene(1, { points: 500 });
    await writePly(join(dir, 'scan.ply'), scene);
    const cloud = await readPly(join(dir, 'scan.ply'));
    await writePcd(join(dir, 'scan.pcd'), cloud, 'binary_compressed');
    const again = await readPcd(join(dir, 'scan.pcd'));
    expect(Array.from(again.coord)).toEqual(Array.from(cloud.coord));
    await writeS3disRoom(join(dir, 'office_1'), scene);
    const room = await readS3disRoom(join(dir, 'office_1'));
    expect(room.instance.length).toBe(room.coord.length / 3);
    await writeHdf5PointSet(join(dir, 'ply_data_train0.h5'), {
      data: new Float32Array(2 * 8 * 3),
      shapes: 2,
      pointsPerShape: 8,
      channels: 3,
      label: Int32Array.of(3, 4),
    });
    const shapes = pointSetToBatch(await readHdf5PointSet(join(dir, 'ply_data_train0.h5')));
    expect(Array.from(shapes.offset)).toEqual([8, 16]);
  });

  it('data sets and the stream', async () => {
    const root = join(import.meta.dirname, 'fixtures', 'pointcept-s3dis'); // stands for data/s3dis
    const s3dis = await openDataset({ type: 's3dis', root });
    const room = await loadScene(s3dis.val[0]!);
    expect([s3dis.train.length, s3dis.val[0]!.name, room.coord.length / 3, s3dis.classes]).toEqual([3, 'Area_5-office_4', 60, S3DIS_CLASSES]);
    const ds = await openDataset({ type: 's3dis', root });
    const stream = new SceneStream(
      { scenes: ds.train, pipeline: trainingPipeline({ gridSize: 0.05, maxPoints: 8192 }), views: 2, batchScenes: 2, microBatches: 1, seed: 0 },
      { workers: 1, prefetch: 2, micros: [0], endStep: 100 },
    );
    const [view1, view2] = await stream.get(0, 0);
    await stream.close();
    expect(Array.from(view1!.offset)).toEqual(Array.from(view2!.offset));
  });

  it('serialization', () => {
    const grid = Int32Array.of(5, 3, 6, 1, 0, 0, 5, 3, 6);
    expect(Array.from(encodeSerialization(grid, { depth: 3, order: 'z' }))).toEqual([350, 4, 350]);
    expect(Array.from(encodeSerialization(grid, { depth: 3, order: 'z', batch: Int32Array.of(0, 0, 1) }))).toEqual([350, 4, 862]);
    const s = serializeBatch(grid, { batch: Int32Array.of(0, 0, 1), depth: 3, orders: ['z', 'hilbert'] });
    expect(Array.from(s.order[0]!)).toEqual([1, 0, 2]);
    expect(Array.from(s.inverse[0]!)).toEqual([1, 0, 2]);
    expect(Array.from(serializedPool(grid, s, 2).cluster)).toEqual([1, 0, 2]);
  });
});
