// ScanNet v2 scans packed by struct (fixtures/write_fixtures.py): vertices, colours, normals as
// Pointcept's preprocessing computes them, and NYU40 ids mapped to the 20 benchmark classes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readPointCloud } from './read.js';
import { SCANNET20_CLASSES, SCANNET20_NYU40_IDS, nyu40ToScanNet20, readScanNetScan } from './scannet.js';

const ROOT = join(import.meta.dirname, '..', 'fixtures', 'scannet-raw');
const expected = JSON.parse(readFileSync(join(ROOT, 'expected.json'), 'utf8')) as Record<string, { coord: number[]; color: number[]; nyu40: number[]; normal: number[] }>;

describe('ScanNet v2 raw scans', () => {
  it('maps NYU40 ids to the 20 classes, everything else to -1', () => {
    expect(SCANNET20_CLASSES).toHaveLength(20);
    expect(SCANNET20_NYU40_IDS.map(nyu40ToScanNet20)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    for (const other of [0, 13, 15, 17, 18, 19, 20, 21, 22, 23, 25, 26, 27, 29, 30, 31, 32, 35, 37, 38, 40, 41]) expect(nyu40ToScanNet20(other)).toBe(-1);
    expect(SCANNET20_CLASSES[nyu40ToScanNet20(33)]).toBe('toilet');
  });

  for (const scene of ['scene0000_00', 'scene0011_00']) {
    it(`reads ${scene} from its folder or either PLY file`, async () => {
      const want = expected[scene]!;
      const dir = join(ROOT, 'scans', scene);
      for (const path of [dir, join(dir, `${scene}_vh_clean_2.ply`), join(dir, `${scene}_vh_clean_2.labels.ply`)]) {
        const scan = await readScanNetScan(path);
        expect(scan.name).toBe(scene);
        expect(Array.from(scan.coord)).toEqual(want.coord);
        expect(Array.from(scan.color!)).toEqual(want.color.map((c) => Math.fround(c / 255)));
        expect(Array.from(scan.nyu40!)).toEqual(want.nyu40);
        expect(Array.from(scan.label!)).toEqual(want.nyu40.map(nyu40ToScanNet20));
        for (const [i, v] of scan.normal!.entries()) expect(v).toBeCloseTo(want.normal[i]!, 5);
      }
      const viaRead = await readPointCloud(dir);
      expect(Array.from(viaRead.label!)).toEqual(want.nyu40.map(nyu40ToScanNet20));
    });
  }

  it('names the missing file', async () => {
    await expect(readScanNetScan(join(ROOT, 'scans'))).rejects.toThrow(/scans: not a ScanNet scan: expected <scene>\/<scene>_vh_clean_2\.ply/);
    await expect(readScanNetScan(join(ROOT, 'scene9999_00_vh_clean_2.ply'))).rejects.toThrow(/scene9999_00_vh_clean_2\.ply: file not found/);
  });
});
