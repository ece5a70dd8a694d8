import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PointCloudBatch, validatePointCloud } from '../point-cloud.js';
import { encodePly, parsePly, plyToPointCloud, readPly, writePly } from './ply.js';

const enc = (s: string) => new TextEncoder().encode(s);

const ASCII = `ply
format ascii 1.0
comment made by hand
element vertex 3
property float x
property float y
property float z
property uchar red
property uchar green
property uchar blue
property float nx
property float ny
property float nz
property int label
element face 2
property list uchar int vertex_indices
end_header
0 0 0 255 0 0 0 0 1 3
1 0 0 0 255 0 0 0 1 -1
0 1 0.5 0 0 255 1 0 0 12
3 0 1 2
4 0 1 2 0
`;

function cloud(): PointCloudBatch {
  return {
    coord: Float32Array.of(0.5, -1, 2, 3, 4.25, -5, 1e-3, 0, 7),
    color: Float32Array.of(1, 0, 0, 0, 1, 0, 0.2, 0.4, 0.6),
    normal: Float32Array.of(0, 0, 1, 0, 1, 0, 1, 0, 0),
    label: Int32Array.of(0, 12, -1),
    offset: Int32Array.of(3),
  };
}

/** A binary PLY built byte by byte (not with encodePly) holding a face list before the vertices. */
function handBinary(little: boolean): Uint8Array {
  const head = enc(
    `ply\nformat ${little ? 'binary_little_endian' : 'binary_big_endian'} 1.0\nelement face 2\nproperty list uchar int vertex_indices\nproperty short flag\nelement vertex 2\nproperty double x\nproperty double y\nproperty double z\nproperty ushort label\nend_header\n`,
  );
  const body = new Uint8Array(1 + 12 + 2 + 1 + 16 + 2 + 2 * (24 + 2));
  const v = new DataView(body.buffer);
  let p = 0;
  v.setUint8(p, 3);
  p += 1;
  for (const i of [0, 1, 2]) {
    v.setInt32(p, i, little);
    p += 4;
  }
  v.setInt16(p, -7, little);
  p += 2;
  v.setUint8(p, 4);
  p += 1;
  for (const i of [3, 2, 1, 0]) {
    v.setInt32(p, i, little);
    p += 4;
  }
  v.setInt16(p, 9, little);
  p += 2;
  for (const [x, y, z, l] of [
    [1.5, 2.5, 3.5, 4],
    [-1, -2, -3, 11],
  ]) {
    v.setFloat64(p, x!, little);
    v.setFloat64(p + 8, y!, little);
    v.setFloat64(p + 16, z!, little);
    v.setUint16(p + 24, l!, little);
    p += 26;
  }
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

describe('PLY', () => {
  it('reads ascii with colours, normals, labels and a face list', () => {
    const ply = parsePly(enc(ASCII), 'a.ply');
    expect(ply.header.format).toBe('ascii');
    expect(ply.header.comments).toEqual(['made by hand']);
    const faces = ply.elements['face']!['vertex_indices'] as { offsets: Int32Array; values: Float64Array };
    expect(Array.from(faces.offsets)).toEqual([0, 3, 7]);
    expect(Array.from(faces.values)).toEqual([0, 1, 2, 0, 1, 2, 0]);
    const pc = plyToPointCloud(ply);
    expect(Array.from(pc.coord)).toEqual([0, 0, 0, 1, 0, 0, 0, 1, 0.5]);
    expect(Array.from(pc.color!)).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    expect(Array.from(pc.normal!)).toEqual([0, 0, 1, 0, 0, 1, 1, 0, 0]);
    expect(Array.from(pc.label!)).toEqual([3, -1, 12]);
    expect(Array.from(pc.offset)).toEqual([3]);
  });

  it('accepts CRLF line endings and blank body lines in ascii', () => {
    const text = 'ply\r\nformat ascii 1.0\r\nelement vertex 2\r\nproperty float x\r\nproperty float y\r\nproperty float z\r\nend_header\r\n1 2 3\r\n\r\n4 5 6\r\n';
    const pc = plyToPointCloud(parsePly(enc(text), 'crlf.ply'));
    validatePointCloud(pc, 'crlf.ply');
    expect(Array.from(pc.coord)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads hand-built binary little and big endian, skipping a list element that comes first', () => {
    for (const little of [true, false]) {
      const ply = parsePly(handBinary(little), 'b.ply');
      expect(Array.from(ply.elements['face']!['flag'] as Int16Array)).toEqual([-7, 9]);
      const pc = plyToPointCloud(ply);
      expect(Array.from(pc.coord)).toEqual([1.5, 2.5, 3.5, -1, -2, -3]);
      expect(Array.from(pc.label!)).toEqual([4, 11]);
      expect(pc.color).toBeUndefined();
    }
  });

  it('round-trips through the writer in every format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-ply-'));
    for (const format of ['ascii', 'binary_little_endian', 'binary_big_endian'] as const) {
      const path = join(dir, `${format}.ply`);
      await writePly(path, cloud(), { format, colorType: 'float32' });
      const back = await readPly(path);
      expect(Array.from(back.coord)).toEqual(Array.from(cloud().coord));
      expect(Array.from(back.color!)).toEqual(Array.from(cloud().color!));
      expect(Array.from(back.normal!)).toEqual(Array.from(cloud().normal!));
      expect(Array.from(back.label!)).toEqual([0, 12, -1]);
    }
    const u8 = plyToPointCloud(parsePly(encodePly(cloud())));
    expect(u8.color![7]).toBeCloseTo(102 / 255, 6); // 0.4 → 102 as uchar
  });

  it('names the file, line or field of malformed input', () => {
    const bad = (text: string) => () => parsePly(enc(text), 'bad.ply');
    expect(bad('plx\n')).toThrow(/bad.ply: line 1: not a PLY file/);
    expect(bad('ply\nformat binary_middle_endian 1.0\nend_header\n')).toThrow(/line 2: unknown format/);
    expect(bad('ply\nformat ascii 1.0\nelement vertex 1\nproperty float128 x\nend_header\n')).toThrow(/line 4: malformed property/);
    expect(bad('ply\nformat ascii 1.0\nproperty float x\nend_header\n')).toThrow(/line 3: property before any element/);
    expect(bad('ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\n')).toThrow(/header ends before end_header/);
    const h = 'ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty uchar c\nend_header\n';
    expect(bad(`${h}1 2\n3\n`)).toThrow(/bad.ply: line 8: vertex 1: expected a value for property 'c'/);
    expect(bad(`${h}1 2 9\n3 4\n`)).toThrow(/line 7: vertex 0: 3 values on the line, 2 expected/);
    expect(bad(`${h}1 2\n3 256\n`)).toThrow(/line 8: vertex 1: property 'c' \(uint8\) has bad value/);
    expect(bad(`${h}1 2\n3 x\n`)).toThrow(/line 8/);
    expect(bad(`${h}1 2\n`)).toThrow(/file ends after 1 of 2 'vertex' rows/);
    expect(bad(`${h}1 2\n3 4\n5 6\n`)).toThrow(/line 9: data after the last declared element/);
    const binary = handBinary(true);
    expect(() => parsePly(binary.subarray(0, binary.length - 3), 'short.ply')).toThrow(/short.ply: binary body too short: element 'vertex'/);
    const longer = new Uint8Array(binary.length + 4);
    longer.set(binary);
    expect(() => parsePly(longer, 'long.ply')).toThrow(/4 bytes after the last declared element/);
    const noXyz = 'ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n';
    expect(() => plyToPointCloud(parsePly(enc(noXyz)), 'n.ply')).toThrow(/n.ply: vertex element lacks/);
  });

  it('reports a missing file by path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-ply-'));
    await expect(readPly(join(dir, 'nope.ply'))).rejects.toThrow(/nope.ply/);
    writeFileSync(join(dir, 'empty.ply'), '');
    await expect(readPly(join(dir, 'empty.ply'))).rejects.toThrow(/empty.ply/);
  });
});
