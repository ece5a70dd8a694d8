// Data sets on disk, listed and split without reading the scenes, then read one at a time:
// every layout the CLI's --dataset accepts, on fixtures written by numpy, h5py and struct.
import { readFileSync } from 'node:fs';
import { cpSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultSplits, listScenes, loadScene, openDataset, selectScenes } from './datasets.js';
import { readPointCloud } from './formats/read.js';
import { S3DIS_CLASSES } from './point-cloud.js';
import { generateSyntheticScenes } from './synthetic.js';

const FIXTURES = join(import.meta.dirname, 'fixtures');
const names = (refs: { name: string }[]) => refs.map((r) => r.name);

describe('data sets', () => {
  it('S3DIS after Pointcept preprocessing: Area 5 held out by default, any split on request', async () => {
    const ds = await openDataset({ type: 's3dis', root: join(FIXTURES, 'pointcept-s3dis') });
    expect(ds.classes).toBe(S3DIS_CLASSES);
    expect(names(ds.train)).toEqual(['Area_1-hallway_2', 'Area_1-office_1', 'Area_2-office_3']);
    expect(names(ds.val)).toEqual(['Area_5-office_4']);
    const custom = await openDataset({ type: 'pointcept', root: join(FIXTURES, 'pointcept-s3dis'), trainSplit: ['Area_2', 'Area_5'], valSplit: ['Area_1-office_1'] });
    expect(names(custom.train)).toEqual(['Area_2-office_3', 'Area_5-office_4']);
    expect(names(custom.val)).toEqual(['Area_1-office_1']);
    expect(custom.classes).toBe(S3DIS_CLASSES);
    const scene = await loadScene(ds.val[0]!);
    expect(scene.coord.length).toBe(180);
    await expect(openDataset({ type: 's3dis', root: join(FIXTURES, 'pointcept-s3dis'), valSplit: ['Area_7'] })).rejects.toThrow(
      /pointcept-s3dis: validation split 'Area_7' matches no scene \(splits here: Area_1, Area_2, Area_5;/,
    );
  });

  it('S3DIS scenes named Area_N-room in one flat folder: the areas are read off the names', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kiln-flat-'));
    for (const [area, room] of [['Area_1', 'office_1'], ['Area_2', 'office_3'], ['Area_5', 'office_4']]) {
      cpSync(join(FIXTURES, 'pointcept-s3dis', area!, room!), join(root, 'train', `${area}-${room}`), { recursive: true });
    }
    const ds = await openDataset({ type: 'pointcept', root });
    expect(names(ds.train)).toEqual(['Area_1-office_1', 'Area_2-office_3']);
    expect(names(ds.val)).toEqual(['Area_5-office_4']);
    expect(ds.classes).toBe(S3DIS_CLASSES);
  });

  it('ScanNet after Pointcept preprocessing and raw ScanNet v2 (split lists)', async () => {
    const pre = await openDataset({ type: 'scannet', root: join(FIXTURES, 'pointcept-scannet') });
    expect(names(pre.train)).toEqual(['scene0000_00', 'scene0000_01']);
    expect(names(pre.val)).toEqual(['scene0011_00']);
    expect(pre.classes).toHaveLength(20);
    const s200 = await openDataset({ type: 'scannet', root: join(FIXTURES, 'pointcept-scannet'), segmentKey: 'segment200' });
    expect(s200.classes).toBeUndefined();
    const want = JSON.parse(readFileSync(join(FIXTURES, 'pointcept-scannet', 'expected.json'), 'utf8'));
    expect(Array.from((await loadScene(s200.val[0]!)).label!)).toEqual(want['val/scene0011_00'].segments.segment200);
    const test = await loadScene((await selectScenes(pre.all, ['test'], pre.root, 'test'))[0]!);
    expect(test.label!.every((l) => l === -1)).toBe(true); // no segment file: ignored everywhere

    const raw = await openDataset({ type: 'scannet', root: join(FIXTURES, 'scannet-raw') });
    expect(names(raw.train)).toEqual(['scene0000_00']);
    expect(names(raw.val)).toEqual(['scene0011_00']);
    expect((await loadScene(raw.val[0]!)).label!.length).toBe(16);
    // a split given as a list file (in the root, or any path)
    const lists = await openDataset({ type: 'scannet', root: join(FIXTURES, 'scannet-raw'), trainSplit: ['scannetv2_val.txt'], valSplit: [join(FIXTURES, 'scannet-raw', 'scannetv2_train.txt')] });
    expect([names(lists.train), names(lists.val)]).toEqual([['scene0011_00'], ['scene0000_00']]);
  });

  it("PointNet's S3DIS HDF5 blocks (gzip, per-point labels, colour from channels 3–5), read block by block", async () => {
    const root = join(FIXTURES, 's3dis-hdf5');
    const want = JSON.parse(readFileSync(join(root, 'expected.json'), 'utf8')) as { data: number[]; label: number[]; rooms: string[] };
    const ds = await openDataset({ type: 's3dis', root });
    expect(names(ds.train)).toEqual(['Area_1-office_1#0', 'Area_1-office_1#1', 'Area_3-WC_1#0']);
    expect(names(ds.val)).toEqual(['Area_5-hallway_2#0']);
    const P = 16;
    for (const ref of ds.all) {
      const b = (ref as { row: number }).row;
      const scene = await loadScene(ref);
      for (let p = 0; p < P; p++) {
        const row = want.data.slice((b * P + p) * 9, (b * P + p + 1) * 9);
        expect(Array.from(scene.coord.slice(3 * p, 3 * p + 3))).toEqual(row.slice(0, 3));
        expect(Array.from(scene.color!.slice(3 * p, 3 * p + 3))).toEqual(row.slice(3, 6));
        expect(scene.label![p]).toBe(want.label[b * P + p]);
      }
      expect(scene.normal).toBeUndefined();
    }
    const all = await readPointCloud(root);
    expect(Array.from(all.offset)).toEqual([16, 32, 48, 64]);
    expect(Array.from(all.label!)).toEqual(want.label);
  });

  it('a folder of PLY files (double coordinates as Open3D writes them; ascii and both binary orders)', async () => {
    const root = join(FIXTURES, 'ply-folder');
    const want = JSON.parse(readFileSync(join(root, 'expected.json'), 'utf8')) as Record<string, { coord: number[]; color: number[]; normal: number[]; label: number[] }>;
    const ds = await openDataset({ type: 'ply', root });
    expect(ds.classes).toBeUndefined();
    expect(names(ds.train)).toEqual(['room_a', 'room_b']);
    for (const ref of [...ds.train, ...ds.val]) {
      const w = want[`${ref.split}/${ref.name}`]!;
      const scene = await loadScene(ref);
      expect(Array.from(scene.coord)).toEqual(w.coord.map(Math.fround));
      expect(Array.from(scene.color!)).toEqual(w.color.map((c) => Math.fround(c / 255)));
      expect(Array.from(scene.normal!)).toEqual(w.normal);
      expect(Array.from(scene.label!)).toEqual(w.label.map(Number)); // int64 in the JSON: strings
    }
    expect(Array.from((await readPointCloud(join(root, 'train'))).offset)).toEqual([30, 60]);
  });

  it('the synthetic data set is the generator, scene for scene', async () => {
    const ds = await openDataset({ type: 'synthetic', synthetic: { seed: 4, trainScenes: 2, valScenes: 1, points: 64 } });
    const direct = generateSyntheticScenes({ seed: 4, scenes: 3, points: 64 });
    for (const [i, ref] of [...ds.train, ...ds.val].entries()) expect(Array.from((await loadScene(ref)).coord)).toEqual(Array.from(direct[i]!.coord));
  });

  it('refuses folders that hold no scenes of the type, naming the folder and the layout expected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-ds-'));
    mkdirSync(join(dir, 'train'));
    writeFileSync(join(dir, 'train', 'notes.txt'), 'x');
    await expect(listScenes('s3dis', dir)).rejects.toThrow(/no scenes found: expected S3DIS as released \(Area_1\/<room>\/Annotations/);
    await expect(listScenes('scannet', dir)).rejects.toThrow(/no scenes found: expected ScanNet v2 scans/);
    await expect(listScenes('ply', dir)).rejects.toThrow(/no scenes found: expected \.ply files/);
    await expect(listScenes('pointcept', dir)).rejects.toThrow(/no Pointcept scene folders/);
    await expect(listScenes('pointcept', join(dir, 'nope'))).rejects.toThrow(/nope: data folder not found/);
    await expect(listScenes('ply', join(dir, 'train', 'notes.txt'))).rejects.toThrow(/notes\.txt: expected a data folder for --dataset ply, got a file/);
    const h5 = join(dir, 'h5');
    mkdirSync(h5);
    writeFileSync(join(h5, 'ply_data_all_0.h5'), 'junk');
    await expect(listScenes('s3dis', h5)).rejects.toThrow(/room_filelist\.txt/);
    expect(defaultSplits([{ kind: 'ply', name: 'a', split: 'train', path: '' }])).toEqual({ train: ['train'], val: ['val'] });
  });
});
