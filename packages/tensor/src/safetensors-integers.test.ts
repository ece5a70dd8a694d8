/**
 * Integer entries turned into int32 tensors: every value of I64, U64 and U32 must fit int32
 * exactly, or the conversion throws. A silent wrap (2^31 read back as -2^31) would corrupt
 * token ids or counts restored from a checkpoint without any error.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from './backends.js';
import { decodeSafetensors, encodeSafetensors, entryToTensor, type SafetensorsEntry } from './safetensors.js';

beforeAll(async () => {
  await initBackend({ env: { KILN_BACKEND: 'cpu' } });
});

const I32_MAX = 2 ** 31 - 1;
const I32_MIN = -(2 ** 31);

function i64(values: bigint[]): SafetensorsEntry {
  return { dtype: 'I64', shape: [values.length], data: BigInt64Array.from(values) };
}

describe('entryToTensor on 64- and unsigned 32-bit integers', () => {
  it('keeps the int32 extremes exactly', () => {
    const values = [BigInt(I32_MIN), -1n, 0n, 1n, BigInt(I32_MAX)];
    expect(Array.from(entryToTensor(i64(values)).dataSync())).toEqual([I32_MIN, -1, 0, 1, I32_MAX]);
    const u64: SafetensorsEntry = { dtype: 'U64', shape: [2], data: BigUint64Array.from([0n, BigInt(I32_MAX)]) };
    expect(Array.from(entryToTensor(u64).dataSync())).toEqual([0, I32_MAX]);
    const u32: SafetensorsEntry = { dtype: 'U32', shape: [3], data: Uint32Array.from([0, 7, I32_MAX]) };
    const t = entryToTensor(u32);
    expect(t.dtype).toBe('int32');
    expect(Array.from(t.dataSync())).toEqual([0, 7, I32_MAX]);
  });

  it('rejects one past either end, naming the tensor, dtype, value and index', () => {
    expect(() => entryToTensor(i64([0n, BigInt(I32_MAX) + 1n]), 'ids')).toThrow(
      new RangeError('ids: I64 value 2147483648 at index 1 does not fit an int32 tensor'),
    );
    expect(() => entryToTensor(i64([BigInt(I32_MIN) - 1n]), 'ids')).toThrow(
      new RangeError('ids: I64 value -2147483649 at index 0 does not fit an int32 tensor'),
    );
    expect(() => entryToTensor(i64([2n ** 40n]))).toThrow(/tensor: I64 value 1099511627776 at index 0/);
    expect(() => entryToTensor(i64([-(2n ** 62n)]))).toThrow(RangeError);
  });

  it('rejects unsigned values at and above 2^31 instead of wrapping them negative', () => {
    const u32 = (v: number): SafetensorsEntry => ({ dtype: 'U32', shape: [1], data: Uint32Array.from([v]) });
    expect(() => entryToTensor(u32(2 ** 31), 'n')).toThrow(new RangeError('n: U32 value 2147483648 at index 0 does not fit an int32 tensor'));
    expect(() => entryToTensor(u32(2 ** 32 - 1), 'n')).toThrow(/U32 value 4294967295/);
    const u64: SafetensorsEntry = { dtype: 'U64', shape: [1], data: BigUint64Array.from([2n ** 63n]) };
    expect(() => entryToTensor(u64)).toThrow(/U64 value 9223372036854776000 at index 0/);
  });

  it('applies the same check to values read back from a file', () => {
    const bytes = encodeSafetensors({ big: i64([1n, 2n ** 31n]), ok: i64([3n, -4n]) });
    const file = decodeSafetensors(bytes, 'ids.safetensors');
    expect(Array.from(entryToTensor(file.tensors.ok!).dataSync())).toEqual([3, -4]);
    expect(() => entryToTensor(file.tensors.big!, 'big')).toThrow(/big: I64 value 2147483648 at index 1/);
  });

  it('converts the narrow integer dtypes without a range check (they always fit)', () => {
    const cases: SafetensorsEntry[] = [
      { dtype: 'I16', shape: [2], data: Int16Array.from([-32768, 32767]) },
      { dtype: 'U16', shape: [2], data: Uint16Array.from([0, 65535]) },
      { dtype: 'I8', shape: [2], data: Int8Array.from([-128, 127]) },
      { dtype: 'U8', shape: [2], data: Uint8Array.from([0, 255]) },
      { dtype: 'I32', shape: [2], data: Int32Array.from([I32_MIN, I32_MAX]) },
    ];
    const want = [
      [-32768, 32767],
      [0, 65535],
      [-128, 127],
      [0, 255],
      [I32_MIN, I32_MAX],
    ];
    cases.forEach((entry, i) => {
      const t = entryToTensor(entry);
      expect(t.dtype).toBe('int32');
      expect(Array.from(t.dataSync())).toEqual(want[i]);
    });
  });
});
