import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { S3DIS_CLASS_ID } from '../point-cloud.js';
import { parseS3disObject, readS3disArea, readS3disRoom, s3disClassOfFile, writeS3disRoom } from './s3dis.js';

function room(dir: string, files: Record<string, string>): string {
  mkdirSync(join(dir, 'Annotations'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'Annotations', name), text);
  return dir;
}

describe('S3DIS', () => {
  it('reads a room folder: labels from file names, colours scaled, instances per object', async () => {
    const base = mkdtempSync(join(tmpdir(), 'kiln-s3dis-'));
    const dir = room(join(base, 'Area_1', 'office_1'), {
      'chair_1.txt': '1.0 2.0 0.5 255 0 0\n1.1 2.0 0.5 255 0 0\n',
      'wall_2.txt': '0 0 0 0 0 255\r\n',
      'stairs_1.txt': '5 5 5 10 20 30\n',
    });
    const r = await readS3disRoom(dir);
    expect(r.name).toBe('office_1');
    expect(r.objects.map((o) => o.file)).toEqual(['chair_1.txt', 'stairs_1.txt', 'wall_2.txt']);
    expect(Array.from(r.label!)).toEqual([S3DIS_CLASS_ID.chair, S3DIS_CLASS_ID.chair, S3DIS_CLASS_ID.clutter, S3DIS_CLASS_ID.wall]);
    expect(Array.from(r.instance)).toEqual([0, 0, 1, 2]);
    expect(Array.from(r.coord.subarray(0, 3))).toEqual([1, 2, 0.5]);
    expect(r.color![0]).toBe(1);
    expect(r.color![6]).toBeCloseTo(10 / 255, 6);
    room(join(base, 'Area_1', 'hallway_2'), { 'floor_1.txt': '0 0 0 1 1 1\n0 1 0 1 1 1\n' });
    const area = await readS3disArea(join(base, 'Area_1'));
    expect(area.rooms).toEqual(['hallway_2', 'office_1']);
    expect(Array.from(area.batch.offset)).toEqual([2, 6]);
  });

  it('writes a room that reads back the same', async () => {
    const base = mkdtempSync(join(tmpdir(), 'kiln-s3dis-'));
    const scene = {
      coord: Float32Array.of(0, 0, 0, 1, 1, 1, 2, 2, 2),
      color: Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1),
      label: Int32Array.of(8, 2, 8),
      offset: Int32Array.of(3),
    };
    await writeS3disRoom(join(base, 'r'), scene);
    const back = await readS3disRoom(join(base, 'r'));
    expect(back.objects.map((o) => o.className).sort()).toEqual(['chair', 'wall']);
    expect(back.coord.length).toBe(9);
    const chairPts = Array.from(back.label!).filter((l) => l === 8).length;
    expect(chairPts).toBe(2);
  });

  it('names the file and line of malformed input', async () => {
    expect(() => parseS3disObject('1 2 3 4 5 6\n1 2 3 4 5\n', 'chair_1.txt')).toThrow(/chair_1.txt: line 2: expected 6 values/);
    expect(() => parseS3disObject('1 2 3 4 5 6 7\n', 'a.txt')).toThrow(/line 1: expected 6 values 'x y z r g b', got more/);
    expect(() => parseS3disObject('1 2 3 4 5 300\n', 'a.txt')).toThrow(/line 1: colour 'b' = 300 outside 0..255/);
    expect(() => parseS3disObject('1 2 z 4 5 6\n', 'a.txt')).toThrow(/line 1: value 3 \('z'\) is not a number/);
    const lenient = parseS3disObject('1 2 3 4 5 6\n1 2 3 4\x105 6\n7 8 9 1 2 3\n', 'h6.txt', { skipBadLines: true });
    expect(lenient.skippedLines).toEqual([2]);
    expect(Array.from(lenient.coord)).toEqual([1, 2, 3, 7, 8, 9]);
    expect(() => s3disClassOfFile('/x/Annotations/lamp_1.txt')).toThrow(/lamp_1.txt: unknown S3DIS class 'lamp'/);
    expect(() => s3disClassOfFile('/x/Annotations/notes.txt')).toThrow(/notes.txt: annotation file name/);
    const base = mkdtempSync(join(tmpdir(), 'kiln-s3dis-'));
    await expect(readS3disRoom(base)).rejects.toThrow(/no 'Annotations' folder/);
    const dir = room(join(base, 'bad'), { 'table_1.txt': '0 0 0 0 0 0\n0 0 0 0 0\n' });
    await expect(readS3disRoom(dir)).rejects.toThrow(/table_1.txt: line 2/);
  });
});
