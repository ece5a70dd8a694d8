import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './half.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  entryToTensor,
  loadSafetensors,
  SafetensorsError,
  type SafetensorsEntry,
  saveSafetensors,
  tensorToEntry,
} from './safetensors.js';
import { initTestBackend } from './test-backend.js';
import { tf } from './tf.js';

let dir: string;

beforeAll(async () => {
  await initTestBackend();
  dir = await mkdtemp(join(tmpdir(), 'kiln-safetensors-'));
});

/** A file built by hand from the format's definition, to check against the writer. */
function handMade(header: object, data: Uint8Array): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  Buffer.from(data).copy(out, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('reads a hand-made file exactly', () => {
    const data = new Uint8Array([...new Uint8Array(new Float32Array([1.5, -2]).buffer), ...new Uint8Array(new BigInt64Array([7n, -1n]).buffer), 1, 0, 1]);
    const bytes = handMade(
      {
        __metadata__: { format: 'pt' },
        a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
        b: { dtype: 'I64', shape: [1, 2], data_offsets: [8, 24] },
        c: { dtype: 'BOOL', shape: [3], data_offsets: [24, 27] },
      },
      data,
    );
    const file = decodeSafetensors(bytes, 'hand.safetensors');
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(Array.from(file.tensors.a!.data as Float32Array)).toEqual([1.5, -2]);
    expect(Array.from(file.tensors.b!.data as BigInt64Array)).toEqual([7n, -1n]);
    expect(file.tensors.b!.shape).toEqual([1, 2]);
    expect(Array.from(file.tensors.c!.data as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(entryToTensor(file.tensors.b!).dataSync())).toEqual([7, -1]);
  });

  it('writes the exact layout: u64 LE header length, 8-aligned JSON, data in header order', () => {
    const bytes = encodeSafetensors(
      { w: { dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }, i: { dtype: 'I32', shape: [1], data: new Int32Array([3]) } },
      { step: '10' },
    );
    const view = Buffer.from(bytes);
    const n = Number(view.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(view.subarray(8, 8 + n).toString());
    expect(Object.keys(header)).toEqual(['__metadata__', 'w', 'i']);
    expect(header.w).toEqual({ dtype: 'F32', shape: [2], data_offsets: [0, 8] });
    expect(header.i).toEqual({ dtype: 'I32', shape: [1], data_offsets: [8, 12] });
    expect(Array.from(new Float32Array(bytes.slice(8 + n, 16 + n).buffer))).toEqual([1, 2]);
    expect(bytes.length).toBe(8 + n + 12);
  });

  it('round-trips every dtype through a file, atomically', async () => {
    const path = join(dir, 'all.safetensors');
    const entries: Record<string, SafetensorsEntry> = {
      f64: { dtype: 'F64', shape: [2], data: new Float64Array([Math.PI, -0]) },
      f16: { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) },
      bf16: { dtype: 'BF16', shape: [2], data: new Uint16Array([0x3f80, 0x4049]) },
      i64: { dtype: 'I64', shape: [2], data: new BigInt64Array([-(2n ** 62n), 5n]) },
      u8: { dtype: 'U8', shape: [2, 2], data: new Uint8Array([0, 1, 254, 255]) },
      bool: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 0]) },
      empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      scalar: { dtype: 'I32', shape: [], data: new Int32Array([-9]) },
    };
    await saveSafetensors(path, entries, { note: 'ünïcode ✓' });
    const loaded = await loadSafetensors(path);
    expect(loaded.metadata).toEqual({ note: 'ünïcode ✓' });
    for (const [name, entry] of Object.entries(entries)) {
      expect(loaded.tensors[name]!.dtype).toBe(entry.dtype);
      expect(loaded.tensors[name]!.shape).toEqual(entry.shape);
      expect(Array.from(loaded.tensors[name]!.data as ArrayLike<number | bigint>)).toEqual(Array.from(entry.data as ArrayLike<number | bigint>));
    }
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('saves tf tensors and reads them back as tensors', async () => {
    const path = join(dir, 'tf.safetensors');
    const w = tf.tensor([[1, 2], [3, 4.5]]);
    await saveSafetensors(path, { w, n: tf.tensor([1, 2], [2], 'int32'), m: tf.tensor([true, false], [2], 'bool') });
    const { tensors } = await loadSafetensors(path);
    expect(tensors.w!.dtype).toBe('F32');
    expect(entryToTensor(tensors.w!).arraySync()).toEqual([[1, 2], [3, 4.5]]);
    expect(entryToTensor(tensors.n!).dtype).toBe('int32');
    expect(entryToTensor(tensors.m!).arraySync()).toEqual([1, 0]);
    const half = await tensorToEntry(tf.tensor([1, 0.1, 65504, 1e6]), 'F16');
    expect(Array.from(entryToTensor(half).dataSync())).toEqual([1, float16BitsToFloat32(float32ToFloat16Bits(0.1)), 65504, Number.POSITIVE_INFINITY]);
  });

  it('replaces an existing file whole', async () => {
    const path = join(dir, 'replace.safetensors');
    await saveSafetensors(path, { a: { dtype: 'U8', shape: [1], data: new Uint8Array([1]) } });
    await saveSafetensors(path, { b: { dtype: 'U8', shape: [2], data: new Uint8Array([2, 3]) } });
    expect(Object.keys((await loadSafetensors(path)).tensors)).toEqual(['b']);
  });

  describe('bad files name the file and the problem', () => {
    const good = () =>
      handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(new Float32Array([1, 2]).buffer));
    const badFile = async (name: string, bytes: Uint8Array) => {
      const path = join(dir, name);
      await writeFile(path, bytes);
      return loadSafetensors(path);
    };

    it('truncated file', async () => {
      await expect(badFile('short.safetensors', new Uint8Array(5))).rejects.toThrow(/short\.safetensors: truncated: 5 bytes/);
      const g = good();
      await expect(badFile('cut-header.safetensors', g.slice(0, 20))).rejects.toThrow(/cut-header\.safetensors: truncated: header length \d+ exceeds/);
      await expect(badFile('cut-data.safetensors', g.slice(0, g.length - 3))).rejects.toThrow(
        /cut-data\.safetensors: tensor "a": data_offsets \[0, 8\] out of range: the data section has 5 bytes/,
      );
    });

    it('header that is not JSON', async () => {
      const bytes = Buffer.alloc(8 + 5);
      bytes.writeBigUInt64LE(5n, 0);
      bytes.write('{nope', 8);
      await expect(badFile('nojson.safetensors', bytes)).rejects.toThrow(/nojson\.safetensors: header is not JSON/);
      const arr = handMade([1, 2] as unknown as object, new Uint8Array());
      await expect(badFile('array.safetensors', arr)).rejects.toThrow(/header is not a JSON object/);
    });

    it('offsets out of range or overlapping', async () => {
      const data = new Uint8Array(16);
      await expect(
        badFile('range.safetensors', handMade({ a: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } }, data)),
      ).rejects.toThrow(/range\.safetensors: tensor "a": data_offsets \[12, 20\] out of range/);
      await expect(
        badFile(
          'overlap.safetensors',
          handMade(
            { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
            data,
          ),
        ),
      ).rejects.toThrow(/overlap\.safetensors: tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/);
      await expect(
        badFile('backwards.safetensors', handMade({ a: { dtype: 'U8', shape: [0], data_offsets: [8, 4] } }, data)),
      ).rejects.toThrow(/end before they start/);
    });

    it('unknown dtype', async () => {
      await expect(
        badFile('dtype.safetensors', handMade({ a: { dtype: 'F8_E9', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2))),
      ).rejects.toThrow(/dtype\.safetensors: tensor "a": unknown dtype "F8_E9"/);
    });

    it('shape that does not match its bytes', async () => {
      await expect(
        badFile('shape.safetensors', handMade({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))),
      ).rejects.toThrow(/shape\.safetensors: tensor "a": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] hold 8/);
      await expect(
        badFile('negshape.safetensors', handMade({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, new Uint8Array(8))),
      ).rejects.toThrow(/shape \[-1\] is not a list of non-negative integers/);
    });

    it('errors are SafetensorsError with the file', async () => {
      const err = await badFile('typed.safetensors', new Uint8Array(3)).catch((e) => e);
      expect(err).toBeInstanceOf(SafetensorsError);
      expect(err.file).toMatch(/typed\.safetensors$/);
    });

    it('rejects bad entries on write', async () => {
      await expect(saveSafetensors(join(dir, 'x.safetensors'), { a: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).rejects.toThrow(
        /tensor "a" has 2 values but shape \[3\] needs 3/,
      );
      await expect(saveSafetensors(join(dir, 'x.safetensors'), { a: { dtype: 'F32', shape: [2], data: new Int32Array(2) } as never })).rejects.toThrow(
        /needs a Float32Array, got Int32Array/,
      );
      expect(await readFile(join(dir, 'x.safetensors')).catch(() => 'absent')).toBe('absent');
    });
  });
});

describe('16-bit floats', () => {
  it('round to nearest even, with subnormals, overflow and NaN', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // halfway to the next binade rounds to inf
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16Bits(2 ** -25)).toBe(0x0000); // tie rounds to even (zero)
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie to even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(Number.NaN)))).toBe(true);
    expect(float16BitsToFloat32(0x0001)).toBe(2 ** -24);
    expect(float32ToBfloat16Bits(1)).toBe(0x3f80);
    expect(bfloat16BitsToFloat32(0x4049)).toBeCloseTo(3.140625, 6);
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie to even
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
  });

  it('round-trip every float16 bit pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = float16BitsToFloat32(bits);
      if (Number.isNaN(v)) continue;
      expect(float32ToFloat16Bits(v)).toBe(bits);
    }
  });
});
