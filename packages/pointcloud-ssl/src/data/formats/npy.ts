/**
 * NumPy's `.npy` format (versions 1.0, 2.0 and 3.0), read without numpy: the magic
 * `\x93NUMPY`, a version, a little-endian header length (2 bytes in v1, 4 in v2/v3), a Python
 * dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, 3), }` (latin-1 in v1/v2,
 * UTF-8 in v3), then the raw array bytes.
 *
 * Every numeric dtype is read, in either byte order: bool, int8…int64, uint8…uint64, float16,
 * float32, float64, longdouble (`f16`: x86's 80-bit extended format, numpy's longdouble on
 * x86-64, rounded to float64) and the complex types (real and imaginary parts interleaved).
 * Fortran-ordered arrays are transposed to C order, so `data` is always row-major. Object
 * arrays (`|O`, which np.save pickles), structured, string and datetime dtypes are refused
 * with an error naming the file: nothing is ever unpickled.
 */
import { float16BitsToFloat32 } from '@kiln/tensor';
import { PointCloudFormatError, readBytes } from './text.js';

export type NpyDtype =
  | 'bool'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'float16'
  | 'float32'
  | 'float64'
  | 'longdouble'
  | 'complex64'
  | 'complex128'
  | 'clongdouble';

export type NpyData = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

export interface NpyArray {
  dtype: NpyDtype;
  /** The descr string of the header, e.g. '<f4' or '>i8'. */
  descr: string;
  shape: number[];
  /** Was the file's data column-major? (`data` is row-major either way.) */
  fortranOrder: boolean;
  /**
   * The values in C (row-major) order: bool as 0/1 bytes, 64-bit integers as BigInt arrays,
   * float16 widened to Float32Array, longdouble rounded to Float64Array; complex arrays hold
   * 2·size values, real and imaginary part of each element in turn.
   */
  data: NpyData;
  /** Elements (the product of the shape). */
  size: number;
}

interface DtypeInfo {
  dtype: NpyDtype;
  itemBytes: number;
}

/** kind + item size → dtype (the byte order is handled separately). */
const DTYPES: Record<string, DtypeInfo> = {
  b1: { dtype: 'bool', itemBytes: 1 },
  i1: { dtype: 'int8', itemBytes: 1 },
  u1: { dtype: 'uint8', itemBytes: 1 },
  i2: { dtype: 'int16', itemBytes: 2 },
  u2: { dtype: 'uint16', itemBytes: 2 },
  i4: { dtype: 'int32', itemBytes: 4 },
  u4: { dtype: 'uint32', itemBytes: 4 },
  i8: { dtype: 'int64', itemBytes: 8 },
  u8: { dtype: 'uint64', itemBytes: 8 },
  f2: { dtype: 'float16', itemBytes: 2 },
  f4: { dtype: 'float32', itemBytes: 4 },
  f8: { dtype: 'float64', itemBytes: 8 },
  f16: { dtype: 'longdouble', itemBytes: 16 },
  c8: { dtype: 'complex64', itemBytes: 8 },
  c16: { dtype: 'complex128', itemBytes: 16 },
  c32: { dtype: 'clongdouble', itemBytes: 32 },
};

const NATIVE_LITTLE = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

// ---------------------------------------------------------------------------------------------
// The header: a Python literal. A small recursive-descent parser for the subset np.save writes
// (dicts, tuples, lists, strings, integers, True/False/None); nothing is evaluated.

type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

function parsePythonLiteral(text: string, fail: (why: string) => never): PyValue {
  let i = 0;
  const skip = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (): PyValue => {
    skip();
    const c = text[i];
    if (c === undefined) return fail('header ends inside a value');
    if (c === "'" || c === '"') {
      const quote = c;
      let out = '';
      i++;
      while (i < text.length && text[i] !== quote) {
        if (text[i] === '\\') {
          i++;
          const e = text[i];
          out += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '');
        } else out += text[i];
        i++;
      }
      if (text[i] !== quote) fail('unterminated string in the header');
      i++;
      return out;
    }
    if (c === '{') {
      i++;
      const out: Record<string, PyValue> = {};
      for (;;) {
        skip();
        if (text[i] === '}') {
          i++;
          return out;
        }
        const key = value();
        if (typeof key !== 'string') fail('a header dict key is not a string');
        skip();
        if (text[i] !== ':') fail(`expected ':' after key '${key as string}' in the header`);
        i++;
        out[key as string] = value();
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail("expected ',' or '}' in the header dict");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const out: PyValue[] = [];
      for (;;) {
        skip();
        if (text[i] === close) {
          i++;
          return out;
        }
        out.push(value());
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}' in the header`);
      }
    }
    const word = /^[A-Za-z_]\w*|^[-+]?\d+L?/.exec(text.slice(i))?.[0];
    if (!word) return fail(`unexpected '${c}' in the header`);
    i += word.length;
    if (word === 'True') return true;
    if (word === 'False') return false;
    if (word === 'None') return null;
    if (/^[-+]?\d+L?$/.test(word)) return Number(word.replace('L', ''));
    return fail(`unexpected name '${word}' in the header`);
  };
  const v = value();
  skip();
  if (i !== text.length) fail('extra text after the header dict');
  return v;
}

interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
  dataStart: number;
}

function parseHeader(bytes: Uint8Array, file: string): NpyHeader {
  const fail = (why: string): never => {
    throw new PointCloudFormatError(file, why);
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail('not a .npy file (no \\x93NUMPY magic)');
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if (!(major >= 1 && major <= 3) || minor !== 0) fail(`unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are read)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) fail('file ends inside the header length');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes;
  if (start + headerLength > bytes.length) fail(`file ends inside the header (${headerLength} header bytes declared, ${bytes.length - start} present)`);
  const raw = bytes.subarray(start, start + headerLength);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw);
  const dict = parsePythonLiteral(text.trim(), (why) => fail(`bad header: ${why}`));
  if (dict === null || typeof dict !== 'object' || Array.isArray(dict)) return fail('bad header: not a dict');
  for (const key of ['descr', 'fortran_order', 'shape']) if (!(key in dict)) fail(`bad header: no '${key}' key`);
  const extra = Object.keys(dict).filter((k) => !['descr', 'fortran_order', 'shape'].includes(k));
  if (extra.length > 0) fail(`bad header: unknown key '${extra[0]}'`);
  const { descr, fortran_order: fortranOrder, shape } = dict as { descr: PyValue; fortran_order: PyValue; shape: PyValue };
  if (Array.isArray(descr)) fail('structured dtype (a record with named fields) is not a numeric array');
  if (typeof descr !== 'string') return fail(`bad header: 'descr' is ${JSON.stringify(descr)}`);
  if (typeof fortranOrder !== 'boolean') return fail(`bad header: 'fortran_order' is ${JSON.stringify(fortranOrder)}`);
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)) {
    return fail(`bad header: 'shape' is ${JSON.stringify(shape)}, expected a tuple of non-negative integers`);
  }
  return { descr, fortranOrder, shape: shape as number[], dataStart: start + headerLength };
}

function dtypeOf(descr: string, file: string): DtypeInfo & { little: boolean } {
  const order = descr[0];
  const body = order === '<' || order === '>' || order === '|' || order === '=' ? descr.slice(1) : descr;
  const kind = body[0];
  if (kind === 'O') throw new PointCloudFormatError(file, `dtype '${descr}' is an object array: np.save pickled it, and pickles are refused (they can run code); save a numeric array instead`);
  if (kind === 'S' || kind === 'U' || kind === 'a') throw new PointCloudFormatError(file, `dtype '${descr}' holds strings, not numbers`);
  if (kind === 'M' || kind === 'm') throw new PointCloudFormatError(file, `dtype '${descr}' holds dates or time spans, not numbers`);
  if (kind === 'V') throw new PointCloudFormatError(file, `dtype '${descr}' is raw void data, not numbers`);
  const info = DTYPES[body];
  if (!info) throw new PointCloudFormatError(file, `unknown or unsupported dtype '${descr}'`);
  // '=' is this machine's order (numpy itself writes '<' or '>'); '|' is a single byte.
  return { ...info, little: order === '>' ? false : order === '=' ? NATIVE_LITTLE : true };
}

/** x86 80-bit extended precision (bytes 0–7 significand with explicit integer bit, 8–9 sign and exponent). */
function readExtended(view: DataView, pos: number, little: boolean): number {
  // Big-endian files store the 10 meaningful bytes last-to-first within the 16-byte item.
  const byte = (k: number) => view.getUint8(little ? pos + k : pos + 15 - k);
  const lo = (byte(0) | (byte(1) << 8) | (byte(2) << 16) | (byte(3) << 24)) >>> 0;
  const hi = (byte(4) | (byte(5) << 8) | (byte(6) << 16) | (byte(7) << 24)) >>> 0;
  const se = byte(8) | (byte(9) << 8);
  const sign = se & 0x8000 ? -1 : 1;
  const exp = se & 0x7fff;
  const significand = hi * 2 ** 32 + lo; // one rounding to 53 bits
  if (exp === 0x7fff) return (hi & 0x7fffffff) === 0 && lo === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  const e = (exp === 0 ? 1 : exp) - 16383 - 63;
  // Scale in two steps so neither factor over- or underflows on the way.
  const half = Math.trunc(e / 2);
  return sign * significand * 2 ** half * 2 ** (e - half);
}

/** Decodes `count` items of `dtype` from bytes[pos..] (in storage order). */
function decode(bytes: Uint8Array, pos: number, count: number, info: DtypeInfo, little: boolean): NpyData {
  const { dtype, itemBytes } = info;
  // Same byte order as this machine: copy the bytes into an aligned buffer and view them.
  const direct = (make: (buf: ArrayBuffer) => NpyData) => make(bytes.slice(pos, pos + count * itemBytes).buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, count * itemBytes);
  const sameOrder = little === NATIVE_LITTLE || itemBytes === 1;
  switch (dtype) {
    case 'bool': {
      const out = bytes.slice(pos, pos + count);
      for (let i = 0; i < count; i++) out[i] = out[i] ? 1 : 0;
      return out;
    }
    case 'int8':
      return direct((b) => new Int8Array(b));
    case 'uint8':
      return direct((b) => new Uint8Array(b));
    case 'int16': {
      if (sameOrder) return direct((b) => new Int16Array(b));
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, little);
      return out;
    }
    case 'uint16': {
      if (sameOrder) return direct((b) => new Uint16Array(b));
      const out = new Uint16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, little);
      return out;
    }
    case 'int32': {
      if (sameOrder) return direct((b) => new Int32Array(b));
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, little);
      return out;
    }
    case 'uint32': {
      if (sameOrder) return direct((b) => new Uint32Array(b));
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, little);
      return out;
    }
    case 'int64': {
      if (sameOrder) return direct((b) => new BigInt64Array(b));
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(8 * i, little);
      return out;
    }
    case 'uint64': {
      if (sameOrder) return direct((b) => new BigUint64Array(b));
      const out = new BigUint64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigUint64(8 * i, little);
      return out;
    }
    case 'float16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(view.getUint16(2 * i, little));
      return out;
    }
    case 'float32':
    case 'complex64': {
      const values = dtype === 'complex64' ? 2 * count : count;
      if (sameOrder) return direct((b) => new Float32Array(b));
      const out = new Float32Array(values);
      for (let i = 0; i < values; i++) out[i] = view.getFloat32(4 * i, little);
      return out;
    }
    case 'float64':
    case 'complex128': {
      const values = dtype === 'complex128' ? 2 * count : count;
      if (sameOrder) return direct((b) => new Float64Array(b));
      const out = new Float64Array(values);
      for (let i = 0; i < values; i++) out[i] = view.getFloat64(8 * i, little);
      return out;
    }
    case 'longdouble':
    case 'clongdouble': {
      const values = dtype === 'clongdouble' ? 2 * count : count;
      const out = new Float64Array(values);
      for (let i = 0; i < values; i++) out[i] = readExtended(view, 16 * i, little);
      return out;
    }
  }
}

/** Reorders column-major values (`width` numbers per element) into row-major order. */
function fortranToC<T extends NpyData>(data: T, shape: number[], width: number): T {
  if (shape.length < 2) return data;
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new (data.constructor as { new (n: number): T })(data.length);
  // Element at C index (i0, …, ik) lives at F offset Σ i_j · Π_{l<j} shape_l.
  const fStride = new Array<number>(shape.length);
  let s = 1;
  for (let d = 0; d < shape.length; d++) {
    fStride[d] = s;
    s *= shape[d]!;
  }
  const idx = new Array<number>(shape.length).fill(0);
  let f = 0;
  for (let c = 0; c < size; c++) {
    for (let k = 0; k < width; k++) (out as unknown as number[])[c * width + k] = (data as unknown as number[])[f * width + k]!;
    // Advance the C index (last axis fastest) and keep the F offset in step.
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      f += fStride[d]!;
      if (idx[d]! < shape[d]!) break;
      f -= idx[d]! * fStride[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** Parses a `.npy` file held in memory; `file` names it in errors. */
export function parseNpy(bytes: Uint8Array, file = '<npy>'): NpyArray {
  const header = parseHeader(bytes, file);
  const info = dtypeOf(header.descr, file);
  const size = header.shape.reduce((a, b) => a * b, 1);
  const need = size * info.itemBytes;
  const have = bytes.length - header.dataStart;
  if (have < need) {
    throw new PointCloudFormatError(file, `data is truncated: shape [${header.shape.join(', ')}] of '${header.descr}' needs ${need} bytes, the file has ${have}`);
  }
  if (have > need) {
    throw new PointCloudFormatError(file, `${have - need} bytes after the data of shape [${header.shape.join(', ')}] ('${header.descr}'): not a single .npy array`);
  }
  let data = decode(bytes, header.dataStart, size, info, info.little);
  const width = info.dtype.startsWith('complex') || info.dtype === 'clongdouble' ? 2 : 1;
  if (header.fortranOrder) data = fortranToC(data, header.shape, width);
  return { dtype: info.dtype, descr: header.descr, shape: header.shape, fortranOrder: header.fortranOrder, data, size };
}

/** Reads a `.npy` file. */
export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readBytes(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PointCloudFormatError(path, code === 'ENOENT' ? 'file not found' : (e as Error).message);
  }
  return parseNpy(bytes, path);
}

const isComplex = (a: NpyArray) => a.dtype === 'complex64' || a.dtype === 'complex128' || a.dtype === 'clongdouble';

/** The array's values as float32 (real dtypes only; 64-bit integers must fit a double exactly). */
export function npyToFloat32(a: NpyArray, file: string): Float32Array {
  if (isComplex(a)) throw new PointCloudFormatError(file, `dtype '${a.descr}' is complex, expected real numbers`);
  if (a.data instanceof Float32Array) return a.data;
  const out = new Float32Array(a.size);
  if (a.data instanceof BigInt64Array || a.data instanceof BigUint64Array) {
    for (let i = 0; i < a.size; i++) out[i] = Number(a.data[i]!);
  } else {
    out.set(a.data as ArrayLike<number>);
  }
  return out;
}

/**
 * The array's values as integer labels (int32): integer or bool dtypes, or floats that hold
 * whole numbers; anything below -1 or beyond int32 is an error naming the element.
 */
export function npyToLabels(a: NpyArray, file: string): Int32Array {
  if (isComplex(a)) throw new PointCloudFormatError(file, `dtype '${a.descr}' is complex, expected integer labels`);
  const out = new Int32Array(a.size);
  const data = a.data;
  for (let i = 0; i < a.size; i++) {
    const v = typeof data[i] === 'bigint' ? Number(data[i] as bigint) : (data[i] as number);
    if (!Number.isInteger(v) || v < -1 || v > 2 ** 31 - 1) {
      throw new PointCloudFormatError(file, `element ${i} is ${String(data[i])}: expected an integer label ≥ -1 (-1 = ignore)`);
    }
    out[i] = v;
  }
  return out;
}
