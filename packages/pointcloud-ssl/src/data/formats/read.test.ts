import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateSyntheticScene } from '../synthetic.js';
import { writeHdf5PointSet } from './hdf5.js';
import { detectPointCloudKind, readPointCloud, writePointCloud } from './read.js';
import { writeS3disRoom } from './s3dis.js';

describe('readPointCloud / writePointCloud', () => {
  it('dispatches on extension and folder layout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-read-'));
    const scene = generateSyntheticScene(2, { points: 300 });
    for (const name of ['a.ply', 'b.pcd']) {
      await writePointCloud(join(dir, name), scene);
      const back = await readPointCloud(join(dir, name));
      expect(Array.from(back.coord)).toEqual(Array.from(scene.coord));
      expect(Array.from(back.label!)).toEqual(Array.from(scene.label));
    }
    await writeS3disRoom(join(dir, 'area', 'room_1'), scene);
    expect(await detectPointCloudKind(join(dir, 'area', 'room_1'))).toBe('s3dis-room');
    expect(await detectPointCloudKind(join(dir, 'area'))).toBe('s3dis-area');
    expect((await readPointCloud(join(dir, 'area'))).coord.length).toBe(900);
    await writeHdf5PointSet(join(dir, 's.h5'), { data: new Float32Array(12), shapes: 2, pointsPerShape: 2, channels: 3, label: Int32Array.of(0, 1) });
    expect(Array.from((await readPointCloud(join(dir, 's.h5'))).offset)).toEqual([2, 4]);
    await expect(readPointCloud(join(dir, 'x.xyz'))).rejects.toThrow(/x.xyz: unknown point-cloud file type '.xyz'/);
    await expect(writePointCloud(join(dir, 'x.obj'), scene)).rejects.toThrow(/x.obj: cannot write '.obj'/);
  });
});
