// .npy files written by numpy (fixtures/write_fixtures.py): every numeric dtype, both byte
// orders, C and Fortran order, header versions 1–3, and the files that must be refused.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { npyToFloat32, npyToLabels, parseNpy, readNpy } from './npy.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'npy');
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Record<
  string,
  { dtype: string; shape: number[]; fortran: boolean; values: (number | string | number[])[] }
>;

/** The reader's values in the form the fixture's JSON stores them. */
function plain(data: ArrayLike<number | bigint>, complex: boolean): (number | string | number[])[] {
  const out: (number | string | number[])[] = [];
  if (complex) {
    for (let i = 0; i < data.length; i += 2) out.push([Number(data[i]), Number(data[i + 1])]);
    return out;
  }
  for (let i = 0; i < data.length; i++) out.push(typeof data[i] === 'bigint' ? String(data[i]) : (data[i] as number));
  return out;
}

describe('.npy reader', () => {
  const files = Object.keys(expected);
  it('has fixtures for 16 dtypes × 2 byte orders × 2 memory orders', () => {
    expect(files.filter((f) => /-(le|be)-[CF]\.npy$/.test(f))).toHaveLength(64);
  });

  for (const file of files) {
    it(`reads ${file}`, async () => {
      const want = expected[file]!;
      const a = await readNpy(join(DIR, file));
      expect(a.dtype).toBe(want.dtype);
      expect(a.shape).toEqual(want.shape);
      expect(a.fortranOrder).toBe(want.fortran);
      const complex = want.dtype.startsWith('complex') || want.dtype === 'clongdouble';
      const got = plain(a.data as ArrayLike<number | bigint>, complex);
      // float32 values went to JSON as the doubles they equal, so equality is exact
      expect(got).toEqual(want.values);
    });
  }

  it('converts to float32 and to labels, checking ranges', async () => {
    const f = await readNpy(join(DIR, 'float64-be-F.npy'));
    const x = npyToFloat32(f, 'f');
    expect(x).toBeInstanceOf(Float32Array);
    expect(x[5]).toBe(Math.fround((5 - 11.75) * 1.234567890123e5));
    const labels = npyToLabels(await readNpy(join(DIR, 'uint16-be-F.npy')), 'l');
    expect(labels[23]).toBe(23 * 2801);
    expect(labels).toBeInstanceOf(Int32Array);
    expect(() => npyToLabels(f, 'float64-be-F.npy')).toThrow(/float64-be-F\.npy: element 0 is -1450617.*integer label ≥ -1/);
    expect(() => npyToFloat32(parseNpy(readFileSync(join(DIR, 'complex64-le-C.npy'))), 'c.npy')).toThrow(/c\.npy: dtype '<c8' is complex/);
  });

  it('refuses pickles, records, strings and dates, and truncated files, naming the file', async () => {
    await expect(readNpy(join(DIR, 'object.npy'))).rejects.toThrow(/object\.npy: dtype '\|O' is an object array.*pickles are refused/);
    await expect(readNpy(join(DIR, 'structured.npy'))).rejects.toThrow(/structured\.npy: structured dtype/);
    await expect(readNpy(join(DIR, 'strings.npy'))).rejects.toThrow(/strings\.npy: dtype '<U5' holds strings/);
    await expect(readNpy(join(DIR, 'datetime.npy'))).rejects.toThrow(/datetime\.npy: dtype '<M8\[D\]' holds dates/);
    await expect(readNpy(join(DIR, 'truncated.npy'))).rejects.toThrow(/truncated\.npy: data is truncated: shape \[2, 3, 4\] of '<f4' needs 96 bytes, the file has 91/);
    await expect(readNpy(join(DIR, 'missing.npy'))).rejects.toThrow(/missing\.npy: file not found/);
    expect(() => parseNpy(new TextEncoder().encode('PK\x03\x04 a zip'), 'scene.npz')).toThrow(/scene\.npz: not a \.npy file/);
  });

  it('refuses headers that are not the plain dict numpy writes', () => {
    const make = (header: string, version = 1) => {
      const body = new TextEncoder().encode(header);
      const lenBytes = version === 1 ? 2 : 4;
      const out = new Uint8Array(8 + lenBytes + body.length + 4);
      out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
      const view = new DataView(out.buffer);
      if (version === 1) view.setUint16(8, body.length, true);
      else view.setUint32(8, body.length, true);
      out.set(body, 8 + lenBytes);
      return out;
    };
    expect(parseNpy(make("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }")).data).toEqual(Int32Array.of(0));
    expect(() => parseNpy(make("{'descr': '<i4', 'shape': (1,)}"), 'a.npy')).toThrow(/a\.npy: bad header: no 'fortran_order' key/);
    expect(() => parseNpy(make("{'descr': '<i4', 'fortran_order': False, 'shape': (-1,)}"), 'a.npy')).toThrow(/'shape' is \[-1\]/);
    expect(() => parseNpy(make("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'x': __import__('os')}"), 'a.npy')).toThrow(/bad header/);
    expect(() => parseNpy(make("{'descr': '<i4', 'fortran_order': False, 'shape': (1,)}", 4), 'a.npy')).toThrow(/unsupported \.npy format version 4\.0/);
  });
});
