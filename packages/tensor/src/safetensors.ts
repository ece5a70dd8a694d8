/**
 * The safetensors format, exactly: an 8-byte little-endian header length, a JSON header
 * mapping each name to `{ dtype, shape, data_offsets }` (plus an optional `__metadata__`
 * of strings), then the tensors' bytes, little-endian, in header order. Writes are atomic
 * (a temporary file in the same folder, then a rename), so a crash never leaves a torn file.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile, open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { bfloat16BitsToFloat32, float16BitsToFloat32, float32ToBfloat16Bits, float32ToFloat16Bits } from './half.js';
import { tf } from './tf.js';

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

const BYTES: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** The JavaScript array each dtype is held in (F16 and BF16 as their raw bits). */
export type SafetensorsData =
  | Float64Array | Float32Array | BigInt64Array | BigUint64Array | Int32Array | Int16Array | Int8Array
  | Uint32Array | Uint16Array | Uint8Array;

/** One tensor as stored: dtype, shape, and its values (F16/BF16 as Uint16Array bits, BOOL as 0/1 bytes). */
export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

export interface SafetensorsFile {
  tensors: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** A tensor to save: a tf tensor (float32 → F32, int32 → I32, bool → BOOL) or an explicit entry. */
export type SafetensorsInput = tf.Tensor | SafetensorsEntry;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(BYTES, value);
}

function arrayFor(dtype: SafetensorsDtype, bytes: Uint8Array): SafetensorsData {
  // Copy into a fresh, aligned buffer: the file's bytes may sit at any offset (and
  // Buffer#slice would not copy).
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const buf = copy.buffer;
  switch (dtype) {
    case 'F64': return new Float64Array(buf);
    case 'F32': return new Float32Array(buf);
    case 'F16': case 'BF16': case 'U16': return new Uint16Array(buf);
    case 'I64': return new BigInt64Array(buf);
    case 'U64': return new BigUint64Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'U32': return new Uint32Array(buf);
    case 'I16': return new Int16Array(buf);
    case 'I8': return new Int8Array(buf);
    case 'U8': case 'BOOL': return new Uint8Array(buf);
  }
}

const ARRAY_TYPES: Record<SafetensorsDtype, new (n: number) => SafetensorsData> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array, U64: BigUint64Array,
  I32: Int32Array, U32: Uint32Array, I16: Int16Array, I8: Int8Array, U16: Uint16Array, U8: Uint8Array, BOOL: Uint8Array,
};

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * An entry from a tf tensor; `as` stores float32 data as F16 or BF16 instead of F32.
 * Asynchronous because GPU backends can only read tensors back asynchronously.
 */
export async function tensorToEntry(tensor: tf.Tensor, as?: 'F32' | 'F16' | 'BF16'): Promise<SafetensorsEntry> {
  const shape = [...tensor.shape];
  const values = await tensor.data();
  switch (tensor.dtype) {
    case 'float32': {
      const target = as ?? 'F32';
      if (target === 'F32') return { dtype: 'F32', shape, data: Float32Array.from(values as Float32Array) };
      const toBits = target === 'F16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
      const bits = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) bits[i] = toBits(values[i] as number);
      return { dtype: target, shape, data: bits };
    }
    case 'int32': return { dtype: 'I32', shape, data: Int32Array.from(values as Int32Array) };
    case 'bool': return { dtype: 'BOOL', shape, data: Uint8Array.from(values as Uint8Array) };
    default: throw new Error(`safetensors: cannot store a tf tensor of dtype ${tensor.dtype}`);
  }
}

/**
 * A tf tensor from an entry: floats become float32 (F16/BF16 decoded), integers int32
 * (64-bit values must fit), BOOL bool.
 */
export function entryToTensor(entry: SafetensorsEntry, name = 'tensor'): tf.Tensor {
  const { dtype, shape, data } = entry;
  switch (dtype) {
    case 'F32': return tf.tensor(data as Float32Array, shape, 'float32');
    case 'F64': return tf.tensor(Float32Array.from(data as Float64Array), shape, 'float32');
    case 'F16': case 'BF16': {
      const decode = dtype === 'F16' ? float16BitsToFloat32 : bfloat16BitsToFloat32;
      const out = new Float32Array(data.length);
      for (let i = 0; i < data.length; i++) out[i] = decode((data as Uint16Array)[i]!);
      return tf.tensor(out, shape, 'float32');
    }
    case 'BOOL': return tf.tensor(data as Uint8Array, shape, 'bool');
    case 'I64': case 'U64': case 'U32': {
      const out = new Int32Array(data.length);
      for (let i = 0; i < data.length; i++) {
        const v = Number((data as BigInt64Array | Uint32Array)[i]!);
        if (v > 2147483647 || v < -2147483648) {
          throw new RangeError(`${name}: ${dtype} value ${v} at index ${i} does not fit an int32 tensor`);
        }
        out[i] = v;
      }
      return tf.tensor(out, shape, 'int32');
    }
    default: return tf.tensor(Int32Array.from(data as Int32Array | Int16Array | Int8Array | Uint16Array | Uint8Array), shape, 'int32');
  }
}

function checkEntry(name: string, value: SafetensorsEntry): SafetensorsEntry {
  const { dtype, shape, data } = value;
  if (!isDtype(dtype)) throw new Error(`safetensors: tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`safetensors: tensor "${name}" has invalid shape ${JSON.stringify(shape)}`);
  }
  if (!(data instanceof ARRAY_TYPES[dtype])) {
    throw new Error(`safetensors: tensor "${name}" of dtype ${dtype} needs a ${ARRAY_TYPES[dtype].name}, got ${data?.constructor?.name}`);
  }
  if (data.length !== product(shape)) {
    throw new Error(`safetensors: tensor "${name}" has ${data.length} values but shape [${shape.join(', ')}] needs ${product(shape)}`);
  }
  return value;
}

/** Encodes entries (in the object's key order) and metadata to the safetensors bytes. */
export function encodeSafetensors(tensors: Record<string, SafetensorsEntry>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors: metadata "${k}" must be a string, got ${typeof v}`);
    }
    header.__metadata__ = metadata;
  }
  const entries = Object.entries(tensors).map(([name, value]) => {
    if (name === '__metadata__') throw new Error('safetensors: "__metadata__" is reserved and cannot name a tensor');
    return [name, checkEntry(name, value)] as const;
  });
  let offset = 0;
  for (const [name, entry] of entries) {
    const end = offset + entry.data.byteLength;
    header[name] = { dtype: entry.dtype, shape: entry.shape, data_offsets: [offset, end] };
    offset = end;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
  const jsonBytes = Buffer.byteLength(json);
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const [, entry] of entries) {
    const bytes = new Uint8Array(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
}

/** Decodes safetensors bytes; `file` names the source in errors. */
export function decodeSafetensors(bytes: Uint8Array, file = '<buffer>'): SafetensorsFile {
  const fail = (problem: string): never => {
    throw new SafetensorsError(file, problem);
  };
  if (bytes.length < 8) fail(`truncated: ${bytes.length} bytes, shorter than the 8-byte header length`);
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    fail(`truncated: header length ${headerLength} exceeds the ${bytes.length - 8} bytes after it`);
  }
  const dataStart = 8 + Number(headerLength);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, Number(headerLength)).toString('utf8'));
  } catch (err) {
    fail(`header is not JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: { name: string; start: number; end: number }[] = [];
  const tensors: Record<string, SafetensorsEntry> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail('__metadata__ is not an object of strings');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__ "${k}" is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (info === null || typeof info !== 'object') fail(`tensor "${name}": entry is not an object`);
    if (!isDtype(info.dtype)) fail(`tensor "${name}": unknown dtype ${JSON.stringify(info.dtype)}`);
    const dtype = info.dtype as SafetensorsDtype;
    const shape = info.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(`tensor "${name}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    const offsets = info.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => !Number.isSafeInteger(o) || o < 0)) {
      fail(`tensor "${name}": data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [start, end] = offsets as [number, number];
    if (end < start) fail(`tensor "${name}": data_offsets [${start}, ${end}] end before they start`);
    if (end > dataLength) fail(`tensor "${name}": data_offsets [${start}, ${end}] out of range: the data section has ${dataLength} bytes (file truncated?)`);
    const needed = product(shape as number[]) * BYTES[dtype];
    if (end - start !== needed) {
      fail(`tensor "${name}": shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${needed} bytes but data_offsets [${start}, ${end}] hold ${end - start}`);
    }
    spans.push({ name, start, end });
    tensors[name] = { dtype, shape: shape as number[], data: arrayFor(dtype, bytes.subarray(dataStart + start, dataStart + end)) };
  }
  const sorted = [...spans].sort((a, b) => a.start - b.start || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.start < prev.end) {
      fail(`tensors "${prev.name}" [${prev.start}, ${prev.end}] and "${cur.name}" [${cur.start}, ${cur.end}] overlap`);
    }
  }
  return { tensors, metadata };
}

/** Writes the file atomically: a temporary sibling is written, flushed, then renamed over `path`. */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  const entries: Record<string, SafetensorsEntry> = {};
  for (const [name, value] of Object.entries(tensors)) {
    entries[name] = value instanceof tf.Tensor ? await tensorToEntry(value) : value;
  }
  await writeFileAtomic(path, encodeSafetensors(entries, metadata));
}

/** Writes `bytes` to `path` so that readers see either the old file or the whole new one. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, bytes);
    const handle = await open(tmp, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Reads and validates a safetensors file; errors name the file and the problem. */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  const bytes = await readFile(path);
  return decodeSafetensors(bytes, path);
}
