import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import type { PointCloudBatch } from '../point-cloud.js';
import { lzfCompress, lzfDecompress } from './lzf.js';
import { encodePcd, parsePcd, pcdToPointCloud, readPcd, writePcd } from './pcd.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('LZF', () => {
  it('decodes a hand-written stream: literal, short and long back-references, overlapping copy', () => {
    // "abcabcabcab" + 'x' * 12:
    //   literal of 3 'abc'        → ctrl 2, a b c
    //   back-ref len 8 dist 3     → L = 8 - 2 = 6 < 7: ctrl (6 << 5) | 0 = 0xc0, offset byte 3 - 1 = 2
    //   literal 'x'               → ctrl 0, 'x'
    //   back-ref len 11 dist 1    → L = 9 ≥ 7: ctrl (7 << 5) | 0 = 0xe0, extra 9 - 7 = 2, offset byte 0
    const stream = Uint8Array.of(2, 97, 98, 99, 0xc0, 2, 0, 120, 0xe0, 2, 0);
    const out = lzfDecompress(stream, 23);
    expect(new TextDecoder().decode(out)).toBe(`abcabcabcab${'x'.repeat(12)}`);
  });

  it('rejects corrupt streams', () => {
    expect(() => lzfDecompress(Uint8Array.of(2, 97, 98), 3, 'f.pcd')).toThrow(/f.pcd: literal run of 3 bytes runs past/);
    expect(() => lzfDecompress(Uint8Array.of(0, 97, 0x20, 5), 10)).toThrow(/before the start/);
    expect(() => lzfDecompress(Uint8Array.of(0, 97), 2)).toThrow(/decompressed 1 bytes, header declares 2/);
  });

  it('round-trips random, repetitive and empty data', () => {
    const rng = createRng(4);
    const cases = [new Uint8Array(0), Uint8Array.of(7), new Uint8Array(5000).fill(9)];
    const mixed = new Uint8Array(20000);
    for (let i = 0; i < mixed.length; i++) mixed[i] = i % 700 < 350 ? rng.int(0, 256) : (i * 7) & 15;
    cases.push(mixed, Uint8Array.from({ length: 3000 }, () => rng.int(0, 256)));
    for (const c of cases) {
      const packed = lzfCompress(c);
      expect(Array.from(lzfDecompress(packed, c.length))).toEqual(Array.from(c));
    }
    expect(lzfCompress(new Uint8Array(5000).fill(9)).length).toBeLessThan(100);
  });
});

function cloud(): PointCloudBatch {
  return {
    coord: Float32Array.of(0.5, -1, 2, 3, 4.25, -5, 1e-3, 0, 7, 1, 1, 1),
    color: Float32Array.of(1, 0, 0, 0, 1, 0, 0.2, 0.4, 0.6, 1, 1, 1),
    normal: Float32Array.of(0, 0, 1, 0, 1, 0, 1, 0, 0, 0.6, 0.8, 0),
    label: Int32Array.of(0, 12, -1, 5),
    offset: Int32Array.of(4),
  };
}

describe('PCD', () => {
  it('reads a hand-written ascii file with float-packed and integer rgb and NaN points', () => {
    // 0x00ff8000 as float32 bits: orange
    const dv = new DataView(new ArrayBuffer(4));
    dv.setUint32(0, 0x00ff8000, true);
    const rgbFloat = dv.getFloat32(0, true);
    const text = `# comment
VERSION .7
FIELDS x y z rgb label
SIZE 4 4 4 4 4
TYPE F F F F U
COUNT 1 1 1 1 1
WIDTH 4
HEIGHT 1
VIEWPOINT 0 0 0 1 0 0 0
POINTS 4
DATA ascii
1 2 3 ${rgbFloat.toPrecision(9)} 4
nan nan nan 0 0
-1 -2 -3.5 ${rgbFloat.toPrecision(9)} 7
0 0 1 ${0xff0080ff} 9
`;
    const pc = pcdToPointCloud(parsePcd(enc(text), 'a.pcd'));
    expect(Array.from(pc.coord)).toEqual([1, 2, 3, -1, -2, -3.5, 0, 0, 1]);
    // the last point is PCL's style: the uint32 word (alpha 0xff) printed as an integer
    expect(Array.from(pc.color!).map((v) => Math.round(v * 255))).toEqual([255, 128, 0, 255, 128, 0, 0, 128, 255]);
    expect(Array.from(pc.label!)).toEqual([4, 7, 9]);
  });

  it('reads hand-packed binary (point-major) and binary_compressed (field-major) bodies', () => {
    const head = (data: string) =>
      enc(`VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 2\nTYPE F F F U\nWIDTH 2\nHEIGHT 1\nPOINTS 2\nDATA ${data}\n`);
    const pts = [
      [1, 2, 3, 100],
      [4, 5, 6, 65535],
    ];
    const rowMajor = new DataView(new ArrayBuffer(28));
    pts.forEach((p, i) => {
      rowMajor.setFloat32(14 * i, p[0]!, true);
      rowMajor.setFloat32(14 * i + 4, p[1]!, true);
      rowMajor.setFloat32(14 * i + 8, p[2]!, true);
      rowMajor.setUint16(14 * i + 12, p[3]!, true);
    });
    const h1 = head('binary');
    const b1 = new Uint8Array(h1.length + 28);
    b1.set(h1);
    b1.set(new Uint8Array(rowMajor.buffer), h1.length);
    const d1 = parsePcd(b1, 'b.pcd');
    expect(Array.from(d1.fields['intensity']!)).toEqual([100, 65535]);
    expect(Array.from(pcdToPointCloud(d1).coord)).toEqual([1, 2, 3, 4, 5, 6]);

    const soa = new DataView(new ArrayBuffer(28));
    [0, 1, 2].forEach((k) => {
      soa.setFloat32(8 * k, pts[0]![k]!, true);
      soa.setFloat32(8 * k + 4, pts[1]![k]!, true);
    });
    soa.setUint16(24, 100, true);
    soa.setUint16(26, 65535, true);
    const raw = new Uint8Array(soa.buffer);
    // stored as two literal runs (valid LZF without any back-reference)
    const lzf = new Uint8Array(30);
    lzf[0] = 13;
    lzf.set(raw.subarray(0, 14), 1);
    lzf[15] = 13;
    lzf.set(raw.subarray(14), 16);
    const h2 = head('binary_compressed');
    const b2 = new Uint8Array(h2.length + 8 + 30);
    b2.set(h2);
    const sizes = new DataView(b2.buffer, h2.length, 8);
    sizes.setUint32(0, 30, true);
    sizes.setUint32(4, 28, true);
    b2.set(lzf, h2.length + 8);
    const d2 = parsePcd(b2, 'c.pcd');
    expect(Array.from(d2.fields['intensity']!)).toEqual([100, 65535]);
    expect(Array.from(pcdToPointCloud(d2).coord)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads COUNT > 1 fields in binary (point-major) and binary_compressed (per field, per point)', () => {
    const head = (data: string) =>
      enc(`VERSION 0.7\nFIELDS x y z pair\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 2\nWIDTH 2\nHEIGHT 1\nPOINTS 2\nDATA ${data}\n`);
    const rows = [
      [1, 2, 3, 10, 11],
      [4, 5, 6, 20, 21],
    ];
    const pm = new DataView(new ArrayBuffer(40));
    rows.flat().forEach((v, i) => {
      pm.setFloat32(4 * i, v, true);
    });
    const fm = new DataView(new ArrayBuffer(40));
    // x x y y z z (p0 pair0 pair1) (p1 pair0 pair1)
    [1, 4, 2, 5, 3, 6, 10, 11, 20, 21].forEach((v, i) => {
      fm.setFloat32(4 * i, v, true);
    });
    const join = (...parts: Uint8Array[]) => {
      const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    };
    const b = parsePcd(join(head('binary'), new Uint8Array(pm.buffer)), 'pair.pcd');
    expect(Array.from(b.fields['pair']!)).toEqual([10, 11, 20, 21]);
    const raw = new Uint8Array(fm.buffer);
    const sizes = new DataView(new ArrayBuffer(8));
    const lzf = join(Uint8Array.of(31), raw.subarray(0, 32), Uint8Array.of(7), raw.subarray(32));
    sizes.setUint32(0, lzf.length, true);
    sizes.setUint32(4, 40, true);
    const c = parsePcd(join(head('binary_compressed'), new Uint8Array(sizes.buffer), lzf), 'pair.pcd');
    expect(Array.from(c.fields['pair']!)).toEqual([10, 11, 20, 21]);
    expect(Array.from(pcdToPointCloud(c).coord)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('round-trips every DATA format through the writer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-pcd-'));
    const c = cloud();
    for (const data of ['ascii', 'binary', 'binary_compressed'] as const) {
      const path = join(dir, `${data}.pcd`);
      await writePcd(path, c, data);
      const back = await readPcd(path);
      expect(Array.from(back.coord)).toEqual(Array.from(c.coord));
      expect(Array.from(back.normal!)).toEqual(Array.from(c.normal!));
      expect(Array.from(back.label!)).toEqual(Array.from(c.label!));
      expect(Array.from(back.color!).map((v) => Math.round(v * 255))).toEqual(Array.from(c.color!).map((v) => Math.round(v * 255)));
    }
  });

  it('names the file, line or field of malformed input', () => {
    const bad = (text: string | Uint8Array) => () => parsePcd(typeof text === 'string' ? enc(text) : text, 'bad.pcd');
    const h = (over: Record<string, string> = {}) => {
      const e: Record<string, string> = {
        VERSION: '0.7',
        FIELDS: 'x y z',
        SIZE: '4 4 4',
        TYPE: 'F F F',
        COUNT: '1 1 1',
        WIDTH: '2',
        HEIGHT: '1',
        POINTS: '2',
        DATA: 'ascii',
        ...over,
      };
      return `${Object.entries(e)
        .filter(([, v]) => v !== '')
        .map(([k, v]) => `${k} ${v}`)
        .join('\n')}\n`;
    };
    expect(bad(h({ SIZE: '4 4' }))).toThrow(/bad.pcd: line 3: SIZE has 2 entries but FIELDS has 3/);
    expect(bad(h({ TYPE: 'F F Q' }))).toThrow(/field 'z': TYPE Q/);
    expect(bad(h({ POINTS: '3' }))).toThrow(/WIDTH × HEIGHT = 2 × 1 differs from POINTS 3/);
    expect(bad(h({ DATA: 'binary_lz4' }))).toThrow(/line 9: DATA 'binary_lz4'/);
    expect(bad(h({ WIDTH: '' }))).toThrow(/lacks the WIDTH entry/);
    expect(bad('VERSION 0.7\nFOO 1\n')).toThrow(/line 2: unknown header entry 'FOO'/);
    expect(bad(`${h()}1 2 3\n4 5\n`)).toThrow(/line 11: point 1: 2 values, expected 3/);
    expect(bad(`${h()}1 2 3\n`)).toThrow(/1 data lines but POINTS = 2/);
    expect(bad(`${h()}1 2 3\n1 2 3\n1 2 3\n`)).toThrow(/line 12: more than POINTS = 2/);
    const bin = encodePcd(cloud(), 'binary');
    expect(bad(bin.subarray(0, bin.length - 1))).toThrow(/binary body has \d+ bytes/);
    const comp = encodePcd(cloud(), 'binary_compressed');
    const broken = comp.slice();
    broken[broken.length - 1] = 0xff; // a back-reference control byte with nothing after it
    expect(bad(broken)).toThrow(/bad.pcd: .*LZF|bad.pcd: .*back-reference|bad.pcd:/);
    expect(bad(comp.subarray(0, comp.length - 5))).toThrow(/compressed size \d+ exceeds/);
  });
});
