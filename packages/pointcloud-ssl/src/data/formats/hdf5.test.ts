import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadH5wasm, pointSetToBatch, readHdf5PointSet, writeHdf5PointSet } from './hdf5.js';

describe('HDF5 point sets', () => {
  it('reads a ModelNet-style file written with h5wasm directly ([B,P,6] data, [B,1] uint8 labels)', async () => {
    const h5 = await loadH5wasm();
    const dir = mkdtempSync(join(tmpdir(), 'kiln-h5-'));
    const path = join(dir, 'ply_data_train0.h5');
    const B = 2;
    const P = 4;
    const C = 6;
    const data = Float32Array.from({ length: B * P * C }, (_, i) => i / 10);
    const f = new h5.File(path, 'w');
    f.create_dataset({ name: 'data', data, shape: [B, P, C], dtype: '<f' });
    f.create_dataset({ name: 'label', data: Uint8Array.of(7, 39), shape: [B, 1], dtype: '|B' });
    f.create_dataset({ name: 'pid', data: Int32Array.from({ length: B * P }, (_, i) => i % 3), shape: [B, P], dtype: '<i' });
    f.close();
    const set = await readHdf5PointSet(path);
    expect([set.shapes, set.pointsPerShape, set.channels]).toEqual([B, P, C]);
    expect(Array.from(set.label)).toEqual([7, 39]);
    const batch = pointSetToBatch(set);
    expect(Array.from(batch.offset)).toEqual([4, 8]);
    expect(batch.coord[3]).toBeCloseTo(0.6, 6); // point 1's x is channel 0 of row 1
    expect(batch.normal![0]).toBeCloseTo(0.3, 6);
    expect(Array.from(batch.label!)).toEqual([0, 1, 2, 0, 1, 2, 0, 1]);
  });

  it('reads ScanObjectNN-style int64 labels and round-trips through the writer', async () => {
    const h5 = await loadH5wasm();
    const dir = mkdtempSync(join(tmpdir(), 'kiln-h5-'));
    const path = join(dir, 'training_objectdataset.h5');
    const f = new h5.File(path, 'w');
    f.create_dataset({ name: 'data', data: new Float32Array(3 * 5 * 3).fill(0.25), shape: [3, 5, 3], dtype: '<f' });
    f.create_dataset({ name: 'label', data: BigInt64Array.of(1n, 14n, 0n), shape: [3], dtype: '<q' });
    f.close();
    const set = await readHdf5PointSet(path);
    expect(Array.from(set.label)).toEqual([1, 14, 0]);
    expect(set.pointLabel).toBeUndefined();
    const out = join(dir, 'copy.h5');
    await writeHdf5PointSet(out, { ...set, pointLabel: new Int32Array(15).fill(2) });
    const back = await readHdf5PointSet(out);
    expect(Array.from(back.data)).toEqual(Array.from(set.data));
    expect(Array.from(back.pointLabel!)).toEqual(new Array(15).fill(2));
  });

  it('names the file and dataset of malformed input', async () => {
    const h5 = await loadH5wasm();
    const dir = mkdtempSync(join(tmpdir(), 'kiln-h5-'));
    const write = (name: string, fill: (f: InstanceType<typeof h5.File>) => void) => {
      const path = join(dir, name);
      const f = new h5.File(path, 'w');
      fill(f);
      f.close();
      return path;
    };
    const noLabel = write('nolabel.h5', (f) => {
      f.create_dataset({ name: 'data', data: new Float32Array(6), shape: [1, 2, 3], dtype: '<f' });
    });
    await expect(readHdf5PointSet(noLabel)).rejects.toThrow(/nolabel.h5: no dataset 'label' \(datasets here: data\)/);
    const flat = write('flat.h5', (f) => {
      f.create_dataset({ name: 'data', data: new Float32Array(6), shape: [2, 3], dtype: '<f' });
      f.create_dataset({ name: 'label', data: Int32Array.of(0, 1), shape: [2], dtype: '<i' });
    });
    await expect(readHdf5PointSet(flat)).rejects.toThrow(/flat.h5: dataset 'data' must have shape \[B, P, C\], got \[2, 3\]/);
    const count = write('count.h5', (f) => {
      f.create_dataset({ name: 'data', data: new Float32Array(12), shape: [2, 2, 3], dtype: '<f' });
      f.create_dataset({ name: 'label', data: Int32Array.of(0, 1, 2), shape: [3], dtype: '<i' });
    });
    await expect(readHdf5PointSet(count)).rejects.toThrow(/count.h5: dataset 'label' must have shape \[2\]/);
    const nan = write('nan.h5', (f) => {
      f.create_dataset({ name: 'data', data: Float32Array.of(0, 0, 0, 0, Number.NaN, 0), shape: [1, 2, 3], dtype: '<f' });
      f.create_dataset({ name: 'label', data: Int32Array.of(0), shape: [1], dtype: '<i' });
    });
    await expect(readHdf5PointSet(nan)).rejects.toThrow(/nan.h5: dataset 'data'\[0, 1, 1\] is not finite/);
    const junk = join(dir, 'junk.h5');
    writeFileSync(junk, 'not hdf5 at all');
    await expect(readHdf5PointSet(junk)).rejects.toThrow(/junk.h5: not a readable HDF5 file/);
    await expect(readHdf5PointSet(join(dir, 'missing.h5'))).rejects.toThrow(/missing.h5: file not found/);
  });
});

describe('HDF5 filters h5py writes', () => {
  const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
  it('reads chunked shuffle + gzip + fletcher32 datasets and refuses plugin filters by name', async () => {
    const want = JSON.parse(readFileSync(join(FIXTURES, 's3dis-hdf5', 'expected.json'), 'utf8')) as { data: number[]; label: number[] };
    const set = await readHdf5PointSet(join(FIXTURES, 'hdf5-filters', 'shuffled.h5'));
    expect(Array.from(set.data)).toEqual(want.data);
    expect(Array.from(set.pointLabel!)).toEqual(want.label);
    await expect(readHdf5PointSet(join(FIXTURES, 'hdf5-filters', 'lzf.h5'))).rejects.toThrow(
      /lzf\.h5: dataset 'data' is compressed with the 'lzf' filter \(id 32000\), which this reader cannot decode/,
    );
  });
});
