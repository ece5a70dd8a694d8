/**
 * PCD (Point Cloud Library) v0.7 reader and writer: DATA ascii, binary (packed records, point
 * after point, little endian) and binary_compressed (two uint32 sizes, then LZF of the
 * fields laid out one after another: all x, then all y, ...).
 * Fields map onto a PointCloudBatch: x y z; rgb / rgba (packed 0x00RRGGBB in a float or
 * uint32); normal_x normal_y normal_z; label.
 */
import { writeFileAtomic } from '@kiln/tensor';
import type { PointCloudBatch } from '../point-cloud.js';
import { lzfCompress, lzfDecompress } from './lzf.js';
import { PointCloudFormatError, forEachLine, parseTokens, readBytes, readLine } from './text.js';

export type PcdDataFormat = 'ascii' | 'binary' | 'binary_compressed';

export interface PcdField {
  name: string;
  /** Bytes per value: 1, 2, 4 or 8. */
  size: number;
  /** I signed integer, U unsigned integer, F float. */
  type: 'I' | 'U' | 'F';
  /** Values per point. */
  count: number;
}

export interface PcdHeader {
  version: string;
  fields: PcdField[];
  width: number;
  height: number;
  viewpoint: number[];
  points: number;
  data: PcdDataFormat;
  headerBytes: number;
  headerLines: number;
}

export interface PcdData {
  header: PcdHeader;
  /** Field name → values (count per point, point-major), as float64 for uniformity. */
  fields: Record<string, Float64Array>;
  /** Raw 32-bit words of rgb/rgba fields, so packed colours survive exactly. */
  rawWords: Record<string, Uint32Array>;
}

const REQUIRED = ['VERSION', 'FIELDS', 'SIZE', 'TYPE', 'WIDTH', 'HEIGHT', 'POINTS', 'DATA'] as const;

function parseHeader(bytes: Uint8Array, file: string): PcdHeader {
  let pos = 0;
  let lineNo = 0;
  const seen: Record<string, { words: string[]; line: number }> = {};
  for (;;) {
    const l = readLine(bytes, pos);
    if (!l) throw new PointCloudFormatError(file, 'header ends before the DATA line', lineNo);
    pos = l.next;
    lineNo++;
    const text = l.text.trim();
    if (text === '' || text.startsWith('#')) continue;
    const words = text.split(/\s+/);
    const key = words[0]!.toUpperCase();
    if (!['VERSION', 'FIELDS', 'SIZE', 'TYPE', 'COUNT', 'WIDTH', 'HEIGHT', 'VIEWPOINT', 'POINTS', 'DATA'].includes(key)) {
      throw new PointCloudFormatError(file, `unknown header entry '${words[0]}'`, lineNo);
    }
    if (seen[key]) throw new PointCloudFormatError(file, `header entry ${key} appears twice`, lineNo);
    seen[key] = { words: words.slice(1), line: lineNo };
    if (key === 'DATA') break;
  }
  for (const k of REQUIRED) if (!seen[k]) throw new PointCloudFormatError(file, `header lacks the ${k} entry`);
  const get = (k: string) => seen[k]!;
  const names = get('FIELDS').words;
  if (names.length === 0) throw new PointCloudFormatError(file, 'FIELDS is empty', get('FIELDS').line);
  const perField = (k: string, fallback?: string): string[] => {
    const e = seen[k];
    if (!e) return names.map(() => fallback!);
    if (e.words.length !== names.length) {
      throw new PointCloudFormatError(file, `${k} has ${e.words.length} entries but FIELDS has ${names.length}`, e.line);
    }
    return e.words;
  };
  const sizes = perField('SIZE');
  const types = perField('TYPE');
  const counts = perField('COUNT', '1');
  const fields: PcdField[] = names.map((name, i) => {
    const size = Number(sizes[i]);
    const type = types[i]!.toUpperCase();
    const count = Number(counts[i]);
    if (![1, 2, 4, 8].includes(size)) throw new PointCloudFormatError(file, `field '${name}': SIZE ${sizes[i]} is not 1, 2, 4 or 8`, get('SIZE').line);
    if (type !== 'I' && type !== 'U' && type !== 'F') {
      throw new PointCloudFormatError(file, `field '${name}': TYPE ${types[i]} is not I, U or F`, get('TYPE').line);
    }
    if (type === 'F' && size !== 4 && size !== 8) throw new PointCloudFormatError(file, `field '${name}': float of SIZE ${size}`, get('SIZE').line);
    if (!Number.isInteger(count) || count < 1) throw new PointCloudFormatError(file, `field '${name}': COUNT ${counts[i]} is not a positive integer`);
    return { name, size, type, count };
  });
  const int = (k: string): number => {
    const e = get(k);
    const v = Number(e.words[0]);
    if (e.words.length !== 1 || !Number.isInteger(v) || v < 0) {
      throw new PointCloudFormatError(file, `${k} must be one non-negative integer, got '${e.words.join(' ')}'`, e.line);
    }
    return v;
  };
  const width = int('WIDTH');
  const height = int('HEIGHT');
  const points = int('POINTS');
  if (width * height !== points) {
    throw new PointCloudFormatError(file, `WIDTH × HEIGHT = ${width} × ${height} differs from POINTS ${points}`, get('POINTS').line);
  }
  const data = get('DATA').words[0]?.toLowerCase();
  if (data !== 'ascii' && data !== 'binary' && data !== 'binary_compressed') {
    throw new PointCloudFormatError(file, `DATA '${get('DATA').words[0]}' is not ascii, binary or binary_compressed`, get('DATA').line);
  }
  const viewpoint = seen['VIEWPOINT'] ? seen['VIEWPOINT'].words.map(Number) : [0, 0, 0, 1, 0, 0, 0];
  if (viewpoint.length !== 7 || viewpoint.some((v) => Number.isNaN(v))) {
    throw new PointCloudFormatError(file, 'VIEWPOINT must have 7 numbers', seen['VIEWPOINT']?.line);
  }
  return {
    version: get('VERSION').words[0] ?? '',
    fields,
    width,
    height,
    viewpoint,
    points,
    data,
    headerBytes: pos,
    headerLines: lineNo,
  };
}

function readValue(view: DataView, pos: number, f: PcdField): number {
  switch (f.type) {
    case 'F':
      return f.size === 4 ? view.getFloat32(pos, true) : view.getFloat64(pos, true);
    case 'I':
      return f.size === 1
        ? view.getInt8(pos)
        : f.size === 2
          ? view.getInt16(pos, true)
          : f.size === 4
            ? view.getInt32(pos, true)
            : Number(view.getBigInt64(pos, true));
    case 'U':
      return f.size === 1
        ? view.getUint8(pos)
        : f.size === 2
          ? view.getUint16(pos, true)
          : f.size === 4
            ? view.getUint32(pos, true)
            : Number(view.getBigUint64(pos, true));
  }
}

/** Reads component `c` of field `f` for n points spaced `stride` bytes apart. */
function readColumn(view: DataView, start: number, stride: number, n: number, f: PcdField, out: Float64Array, c: number, count: number): void {
  let pos = start;
  let o = c;
  if (f.type === 'F' && f.size === 4) {
    for (let p = 0; p < n; p++, pos += stride, o += count) out[o] = view.getFloat32(pos, true);
  } else if (f.type === 'F') {
    for (let p = 0; p < n; p++, pos += stride, o += count) out[o] = view.getFloat64(pos, true);
  } else if (f.size === 4 && f.type === 'U') {
    for (let p = 0; p < n; p++, pos += stride, o += count) out[o] = view.getUint32(pos, true);
  } else if (f.size === 4) {
    for (let p = 0; p < n; p++, pos += stride, o += count) out[o] = view.getInt32(pos, true);
  } else {
    for (let p = 0; p < n; p++, pos += stride, o += count) out[o] = readValue(view, pos, f);
  }
}

function readWords(view: DataView, start: number, stride: number, n: number, out: Uint32Array): void {
  for (let p = 0, pos = start; p < n; p++, pos += stride) out[p] = view.getUint32(pos, true);
}

const isColorField = (f: PcdField) => (f.name === 'rgb' || f.name === 'rgba') && f.size === 4 && f.count === 1;

/** Parses a PCD file held in memory. */
export function parsePcd(bytes: Uint8Array, file = '<pcd>'): PcdData {
  const header = parseHeader(bytes, file);
  const n = header.points;
  const fields: Record<string, Float64Array> = {};
  const rawWords: Record<string, Uint32Array> = {};
  for (const f of header.fields) {
    if (fields[f.name] && f.name !== '_') throw new PointCloudFormatError(file, `field '${f.name}' appears twice in FIELDS`);
    fields[f.name] = new Float64Array(n * f.count);
    if (isColorField(f)) rawWords[f.name] = new Uint32Array(n);
  }
  const scratch = new DataView(new ArrayBuffer(8));
  const setRaw = (f: PcdField, p: number, value: number) => {
    // The packed colour is a bit pattern; for a float field keep its float32 bits.
    if (f.type === 'F') {
      scratch.setFloat32(0, value, true);
      rawWords[f.name]![p] = scratch.getUint32(0, true);
    } else {
      rawWords[f.name]![p] = value >>> 0;
    }
  };
  if (header.data === 'ascii') {
    const body = new TextDecoder('latin1').decode(bytes.subarray(header.headerBytes));
    const perPoint = header.fields.reduce((a, f) => a + f.count, 0);
    const tokens = new Float64Array(perPoint);
    let p = 0;
    forEachLine(body, header.headerLines + 1, (line, start, end) => {
      if (p >= n) throw new PointCloudFormatError(file, `more than POINTS = ${n} data lines`, line);
      const got = parseTokens(body, start, end, tokens);
      if (got !== perPoint) throw new PointCloudFormatError(file, `point ${p}: ${got} values, expected ${perPoint}`, line);
      let t = 0;
      for (const f of header.fields) {
        for (let c = 0; c < f.count; c++) {
          const v = tokens[t++]!;
          // 'nan' marks invalid points in organised clouds: allowed for floats only.
          if (Number.isNaN(v) && f.type !== 'F') {
            throw new PointCloudFormatError(file, `point ${p}: field '${f.name}' is not a number`, line);
          }
          if (f.type !== 'F' && !Number.isInteger(v)) {
            throw new PointCloudFormatError(file, `point ${p}: field '${f.name}' (${f.type}${f.size}) = ${v} is not an integer`, line);
          }
          fields[f.name]![p * f.count + c] = v;
        }
        if (isColorField(f)) {
          const v = fields[f.name]![p]!;
          // PCL writes a float rgb in ascii as its uint32 bit pattern (opaque colours are NaN as
          // floats); older writers print the float itself, whose bits hold the colour. An integer
          // token is the word; anything else is a float (NaN, whose bits are lost, gives black).
          if (f.type !== 'F' || (Number.isInteger(v) && v >= 0 && v < 2 ** 32)) rawWords[f.name]![p] = v >>> 0;
          else if (Number.isNaN(v)) rawWords[f.name]![p] = 0;
          else setRaw(f, p, v);
        }
      }
      p++;
      return undefined;
    });
    if (p !== n) throw new PointCloudFormatError(file, `${p} data lines but POINTS = ${n}`);
  } else if (header.data === 'binary') {
    const rowBytes = header.fields.reduce((a, f) => a + f.size * f.count, 0);
    const need = rowBytes * n;
    const have = bytes.length - header.headerBytes;
    if (have !== need) throw new PointCloudFormatError(file, `binary body has ${have} bytes, ${n} points × ${rowBytes} bytes need ${need}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset + header.headerBytes, need);
    // Point-major records: read each field component down the rows (one typed call per loop).
    let off = 0;
    for (const f of header.fields) {
      for (let c = 0; c < f.count; c++) {
        readColumn(view, off + c * f.size, rowBytes, n, f, fields[f.name]!, c, f.count);
      }
      if (isColorField(f)) readWords(view, off, rowBytes, n, rawWords[f.name]!);
      off += f.size * f.count;
    }
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < header.headerBytes + 8) throw new PointCloudFormatError(file, 'binary_compressed body lacks its two size words');
    const compressed = view.getUint32(header.headerBytes, true);
    const uncompressed = view.getUint32(header.headerBytes + 4, true);
    const rowBytes = header.fields.reduce((a, f) => a + f.size * f.count, 0);
    if (uncompressed !== rowBytes * n) {
      throw new PointCloudFormatError(file, `binary_compressed: uncompressed size ${uncompressed} != ${n} points × ${rowBytes} bytes`);
    }
    const start = header.headerBytes + 8;
    if (start + compressed > bytes.length) {
      throw new PointCloudFormatError(file, `binary_compressed: compressed size ${compressed} exceeds the ${bytes.length - start} bytes left`);
    }
    let raw: Uint8Array;
    try {
      raw = n === 0 ? new Uint8Array(0) : lzfDecompress(bytes.subarray(start, start + compressed), uncompressed, `${file}: LZF body`);
    } catch (e) {
      throw new PointCloudFormatError(file, (e as Error).message.replace(`${file}: `, ''));
    }
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    let pos = 0;
    // Structure of arrays: each field's values for all points, one field after another.
    for (const f of header.fields) {
      const stride = f.size * f.count;
      for (let c = 0; c < f.count; c++) readColumn(dv, pos + c * f.size, stride, n, f, fields[f.name]!, c, f.count);
      if (isColorField(f)) readWords(dv, pos, stride, n, rawWords[f.name]!);
      pos += stride * n;
    }
  }
  return { header, fields, rawWords };
}

/** Label field names, in order of preference. */
export const PCD_LABEL_NAMES = ['label', 'semantic', 'class', 'segment'] as const;

/**
 * The cloud as a PointCloudBatch. Points whose x, y or z is NaN (the invalid pixels of an
 * organised cloud) are dropped.
 */
export function pcdToPointCloud(pcd: PcdData, file = '<pcd>'): PointCloudBatch {
  const { fields, rawWords } = pcd;
  const x = fields['x'];
  const y = fields['y'];
  const z = fields['z'];
  if (!x || !y || !z) throw new PointCloudFormatError(file, "FIELDS lacks one of 'x', 'y', 'z'");
  for (const name of ['x', 'y', 'z']) {
    const f = pcd.header.fields.find((g) => g.name === name)!;
    if (f.count !== 1) throw new PointCloudFormatError(file, `field '${name}' has COUNT ${f.count}, expected 1`);
  }
  const n = pcd.header.points;
  const keep = new Int32Array(n);
  let m = 0;
  for (let p = 0; p < n; p++) if (!Number.isNaN(x[p]!) && !Number.isNaN(y[p]!) && !Number.isNaN(z[p]!)) keep[m++] = p;
  const coord = new Float32Array(3 * m);
  for (let j = 0; j < m; j++) {
    const p = keep[j]!;
    coord[3 * j] = x[p]!;
    coord[3 * j + 1] = y[p]!;
    coord[3 * j + 2] = z[p]!;
  }
  const out: PointCloudBatch = { coord, offset: Int32Array.of(m) };
  const words = rawWords['rgb'] ?? rawWords['rgba'];
  if (words) {
    const color = new Float32Array(3 * m);
    for (let j = 0; j < m; j++) {
      const w = words[keep[j]!]!;
      color[3 * j] = ((w >>> 16) & 255) / 255;
      color[3 * j + 1] = ((w >>> 8) & 255) / 255;
      color[3 * j + 2] = (w & 255) / 255;
    }
    out.color = color;
  }
  const nx = fields['normal_x'];
  const ny = fields['normal_y'];
  const nz = fields['normal_z'];
  if (nx && ny && nz) {
    const normal = new Float32Array(3 * m);
    for (let j = 0; j < m; j++) {
      const p = keep[j]!;
      normal[3 * j] = nx[p]!;
      normal[3 * j + 1] = ny[p]!;
      normal[3 * j + 2] = nz[p]!;
    }
    out.normal = normal;
  }
  for (const name of PCD_LABEL_NAMES) {
    const l = fields[name];
    if (!l) continue;
    const label = new Int32Array(m);
    for (let j = 0; j < m; j++) {
      const v = l[keep[j]!]!;
      if (!Number.isInteger(v) || v < -1) throw new PointCloudFormatError(file, `point ${keep[j]}: label field '${name}' = ${v} is not an integer ≥ -1`);
      label[j] = v;
    }
    out.label = label;
    break;
  }
  return out;
}

export async function readPcd(path: string): Promise<PointCloudBatch> {
  return pcdToPointCloud(parsePcd(await readBytes(path), path), path);
}

/** Encodes a cloud as PCD v0.7 with fields x y z [rgb] [normal_x normal_y normal_z] [label]. */
export function encodePcd(cloud: PointCloudBatch, data: PcdDataFormat = 'binary_compressed'): Uint8Array {
  const n = cloud.coord.length / 3;
  const { color, normal, label } = cloud;
  const cols: Array<{ field: PcdField; write: (view: DataView, pos: number, p: number) => void; text: (p: number) => string }> = [];
  const f32 = (name: string, get: (p: number) => number) =>
    cols.push({
      field: { name, size: 4, type: 'F', count: 1 },
      write: (v, pos, p) => v.setFloat32(pos, get(p), true),
      text: (p) => String(Math.fround(get(p))),
    });
  f32('x', (p) => cloud.coord[3 * p]!);
  f32('y', (p) => cloud.coord[3 * p + 1]!);
  f32('z', (p) => cloud.coord[3 * p + 2]!);
  if (color) {
    const packed = (p: number) => {
      const c = (k: number) => Math.round(Math.min(1, Math.max(0, color[3 * p + k]!)) * 255);
      return ((c(0) << 16) | (c(1) << 8) | c(2)) >>> 0;
    };
    // rgb as U4 keeps the colour exact in ascii too (a float rgb's text form can lose bits).
    cols.push({
      field: { name: 'rgb', size: 4, type: 'U', count: 1 },
      write: (v, pos, p) => v.setUint32(pos, packed(p), true),
      text: (p) => String(packed(p)),
    });
  }
  if (normal) {
    f32('normal_x', (p) => normal[3 * p]!);
    f32('normal_y', (p) => normal[3 * p + 1]!);
    f32('normal_z', (p) => normal[3 * p + 2]!);
  }
  if (label) {
    cols.push({
      field: { name: 'label', size: 4, type: 'I', count: 1 },
      write: (v, pos, p) => v.setInt32(pos, label[p]!, true),
      text: (p) => String(label[p]),
    });
  }
  const fs = cols.map((c) => c.field);
  const head = [
    '# .PCD v0.7 - Point Cloud Data file format',
    'VERSION 0.7',
    `FIELDS ${fs.map((f) => f.name).join(' ')}`,
    `SIZE ${fs.map((f) => f.size).join(' ')}`,
    `TYPE ${fs.map((f) => f.type).join(' ')}`,
    `COUNT ${fs.map((f) => f.count).join(' ')}`,
    `WIDTH ${n}`,
    'HEIGHT 1',
    'VIEWPOINT 0 0 0 1 0 0 0',
    `POINTS ${n}`,
    `DATA ${data}`,
  ];
  const headBytes = new TextEncoder().encode(`${head.join('\n')}\n`);
  let body: Uint8Array;
  if (data === 'ascii') {
    const rows: string[] = new Array(n);
    for (let p = 0; p < n; p++) rows[p] = cols.map((c) => c.text(p)).join(' ');
    body = new TextEncoder().encode(n > 0 ? `${rows.join('\n')}\n` : '');
  } else {
    const rowBytes = fs.reduce((a, f) => a + f.size, 0);
    const raw = new Uint8Array(rowBytes * n);
    const view = new DataView(raw.buffer);
    if (data === 'binary') {
      let pos = 0;
      for (let p = 0; p < n; p++) {
        for (const c of cols) {
          c.write(view, pos, p);
          pos += c.field.size;
        }
      }
      body = raw;
    } else {
      let pos = 0;
      for (const c of cols) {
        for (let p = 0; p < n; p++) {
          c.write(view, pos, p);
          pos += c.field.size;
        }
      }
      const packed = lzfCompress(raw);
      body = new Uint8Array(8 + packed.length);
      const bv = new DataView(body.buffer);
      bv.setUint32(0, packed.length, true);
      bv.setUint32(4, raw.length, true);
      body.set(packed, 8);
    }
  }
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}

export async function writePcd(path: string, cloud: PointCloudBatch, data: PcdDataFormat = 'binary_compressed'): Promise<void> {
  await writeFileAtomic(path, encodePcd(cloud, data));
}
