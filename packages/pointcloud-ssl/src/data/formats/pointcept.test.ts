// Pointcept scene folders written by numpy (fixtures/write_fixtures.py) read back exactly.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listPointceptScenes, readPointceptScene } from './pointcept.js';
import { readPointCloud } from './read.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');
interface Expected {
  points: number;
  coord: number[];
  color: number[];
  normal: number[];
  segments: Record<string, number[]>;
  instance: number[];
}
const load = (name: string) => JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8')) as Record<string, Expected>;

describe('Pointcept scene folders', () => {
  it('reads S3DIS as Pointcept preprocesses it (segment [N, 1] int16, colour uint8)', async () => {
    const expected = load('pointcept-s3dis');
    const scenes = await listPointceptScenes(join(FIXTURES, 'pointcept-s3dis'));
    expect(scenes.map((s) => s.name)).toEqual(['Area_1-hallway_2', 'Area_1-office_1', 'Area_2-office_3', 'Area_5-office_4']);
    expect(scenes.map((s) => s.split)).toEqual(['Area_1', 'Area_1', 'Area_2', 'Area_5']);
    for (const entry of scenes) {
      const want = expected[entry.name]!;
      const scene = await readPointceptScene(entry.path);
      expect(Array.from(scene.coord)).toEqual(want.coord);
      expect(Array.from(scene.color!)).toEqual(want.color.map((c) => Math.fround(c / 255)));
      expect(Array.from(scene.normal!)).toEqual(want.normal);
      expect(Array.from(scene.label!)).toEqual(want.segments.segment);
      expect(Array.from(scene.instance!)).toEqual(want.instance);
      expect(scene.segmentKey).toBe('segment');
      expect(Array.from(scene.offset)).toEqual([want.points]);
    }
  });

  it('reads ScanNet with segment20 by default (int16 or int64), segment200 on request, unlabelled test scenes', async () => {
    const expected = load('pointcept-scannet');
    const root = join(FIXTURES, 'pointcept-scannet');
    const scenes = await listPointceptScenes(root);
    expect(scenes.map((s) => `${s.split}/${s.name}`)).toEqual(['test/scene0707_00', 'train/scene0000_00', 'train/scene0000_01', 'val/scene0011_00']);
    for (const key of ['train/scene0000_00', 'train/scene0000_01', 'val/scene0011_00']) {
      const scene = await readPointceptScene(join(root, key));
      expect(scene.segmentKey).toBe('segment20');
      expect(Array.from(scene.label!)).toEqual(expected[key]!.segments.segment20);
      expect(scene.label!.includes(-1)).toBe(true);
      const s200 = await readPointceptScene(join(root, key), { segmentKey: 'segment200' });
      expect(Array.from(s200.label!)).toEqual(expected[key]!.segments.segment200);
    }
    const test = await readPointceptScene(join(root, 'test', 'scene0707_00'));
    expect(test.label).toBeUndefined();
    expect(Array.from(test.coord)).toEqual(expected['test/scene0707_00']!.coord);
    await expect(readPointceptScene(join(root, 'test', 'scene0707_00'), { segmentKey: 'segment20' })).rejects.toThrow(
      /scene0707_00: no segment20\.npy \(the labels asked for\); segment files here: none/,
    );
    // readPointCloud: a scene folder, its coord.npy, and a split folder of several scenes
    expect((await readPointCloud(join(root, 'val', 'scene0011_00'))).coord.length).toBe(150);
    expect((await readPointCloud(join(root, 'val', 'scene0011_00', 'coord.npy'))).label!.length).toBe(50);
    const split = await readPointCloud(join(root, 'train'));
    expect(Array.from(split.offset)).toEqual([50, 101]);
  });

  it('names the file and the expectation when a scene is malformed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-pointcept-'));
    const scene = join(dir, 'train', 'bad');
    cpSync(join(FIXTURES, 'pointcept-s3dis', 'Area_1', 'office_1'), scene, { recursive: true });
    cpSync(join(FIXTURES, 'npy', 'float32-le-C.npy'), join(scene, 'normal.npy'));
    await expect(readPointceptScene(scene)).rejects.toThrow(/bad\/normal\.npy: shape is \[2, 3, 4\], expected \[N, 3\] with N = 60/);
    cpSync(join(FIXTURES, 'pointcept-s3dis', 'Area_5', 'office_4', 'normal.npy'), join(scene, 'normal.npy'));
    cpSync(join(FIXTURES, 'pointcept-scannet', 'val', 'scene0011_00', 'color.npy'), join(scene, 'color.npy'));
    await expect(readPointceptScene(scene)).rejects.toThrow(/bad\/color\.npy: has 50 rows but coord\.npy has 60 points/);
    cpSync(join(FIXTURES, 'npy', 'object.npy'), join(scene, 'color.npy'));
    await expect(readPointceptScene(scene)).rejects.toThrow(/bad\/color\.npy: dtype '\|O' is an object array/);
    rmSync(join(scene, 'coord.npy'));
    await expect(readPointceptScene(scene)).rejects.toThrow(/bad: not a Pointcept scene folder: coord\.npy is missing/);
    writeFileSync(join(dir, 'notes.txt'), 'x');
    await expect(listPointceptScenes(dir)).rejects.toThrow(/no Pointcept scene folders: expected <root>\/<split>\/<scene>\/coord\.npy/);
    await expect(listPointceptScenes(join(dir, 'missing'))).rejects.toThrow(/missing: data folder not found/);
  });
});
