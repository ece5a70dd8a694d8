/**
 * PLY (Stanford polygon file) reader and writer: ascii, binary_little_endian and
 * binary_big_endian; any element and any scalar or list property. Vertex properties map onto
 * a PointCloudBatch (x y z, red green blue [alpha], nx ny nz, label); other elements (faces,
 * edges, ...) are parsed so their bytes are skipped correctly and are returned as well.
 */
import { writeFileAtomic } from '@kiln/tensor';
import type { PointCloudBatch } from '../point-cloud.js';
import { PointCloudFormatError, forEachLine, parseTokens, readBytes, readLine } from './text.js';

export type PlyFormat = 'ascii' | 'binary_little_endian' | 'binary_big_endian';
export type PlyScalarType = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

const TYPE_ALIASES: Record<string, PlyScalarType> = {
  char: 'int8',
  int8: 'int8',
  uchar: 'uint8',
  uint8: 'uint8',
  short: 'int16',
  int16: 'int16',
  ushort: 'uint16',
  uint16: 'uint16',
  int: 'int32',
  int32: 'int32',
  uint: 'uint32',
  uint32: 'uint32',
  float: 'float32',
  float32: 'float32',
  double: 'float64',
  float64: 'float64',
};

const TYPE_SIZE: Record<PlyScalarType, number> = {
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  float32: 4,
  float64: 8,
};

type ScalarArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | Float32Array | Float64Array;

function makeArray(type: PlyScalarType, n: number): ScalarArray {
  switch (type) {
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
      return new Uint8Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'uint16':
      return new Uint16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
  }
}

export interface PlyProperty {
  name: string;
  type: PlyScalarType;
  /** For list properties: the type of the per-row item count. */
  countType?: PlyScalarType;
}

export interface PlyElementHeader {
  name: string;
  count: number;
  properties: PlyProperty[];
}

export interface PlyHeader {
  format: PlyFormat;
  elements: PlyElementHeader[];
  comments: string[];
  /** Byte length of the header including the end_header line. */
  headerBytes: number;
  /** Number of header lines (the body's first line is headerLines + 1). */
  headerLines: number;
}

/** A list property: row r owns values[offsets[r] .. offsets[r+1]). */
export interface PlyList {
  offsets: Int32Array;
  values: Float64Array;
}

export interface PlyData {
  header: PlyHeader;
  /** element name → property name → values (typed by the declared type) or a list. */
  elements: Record<string, Record<string, ScalarArray | PlyList>>;
}

function parseHeader(bytes: Uint8Array, file: string): PlyHeader {
  let pos = 0;
  let lineNo = 0;
  const next = (): string => {
    const l = readLine(bytes, pos);
    if (!l) throw new PointCloudFormatError(file, 'header ends before end_header', lineNo);
    pos = l.next;
    lineNo++;
    return l.text;
  };
  if (next() !== 'ply') throw new PointCloudFormatError(file, "not a PLY file (first line must be 'ply')", 1);
  let format: PlyFormat | undefined;
  const elements: PlyElementHeader[] = [];
  const comments: string[] = [];
  for (;;) {
    const text = next();
    const words = text.trim().split(/\s+/);
    const key = words[0];
    if (key === 'end_header') break;
    if (key === '' || key === undefined) continue;
    if (key === 'comment' || key === 'obj_info') {
      comments.push(text.trim().slice(key.length).trim());
    } else if (key === 'format') {
      if (format !== undefined) throw new PointCloudFormatError(file, 'second format line', lineNo);
      const f = words[1];
      if (f !== 'ascii' && f !== 'binary_little_endian' && f !== 'binary_big_endian') {
        throw new PointCloudFormatError(file, `unknown format '${f}'`, lineNo);
      }
      if (words[2] !== '1.0') throw new PointCloudFormatError(file, `unsupported PLY version '${words[2]}'`, lineNo);
      format = f;
    } else if (key === 'element') {
      const count = Number(words[2]);
      if (words.length !== 3 || !Number.isInteger(count) || count < 0) {
        throw new PointCloudFormatError(file, `malformed element line '${text}' (expected 'element <name> <count>')`, lineNo);
      }
      if (elements.some((e) => e.name === words[1])) throw new PointCloudFormatError(file, `duplicate element '${words[1]}'`, lineNo);
      elements.push({ name: words[1]!, count, properties: [] });
    } else if (key === 'property') {
      const el = elements[elements.length - 1];
      if (!el) throw new PointCloudFormatError(file, 'property before any element', lineNo);
      let prop: PlyProperty;
      if (words[1] === 'list') {
        const countType = TYPE_ALIASES[words[2] ?? ''];
        const type = TYPE_ALIASES[words[3] ?? ''];
        if (words.length !== 5 || !countType || !type) {
          throw new PointCloudFormatError(file, `malformed list property '${text}'`, lineNo);
        }
        if (countType === 'float32' || countType === 'float64') {
          throw new PointCloudFormatError(file, `list count type must be an integer type, got '${words[2]}'`, lineNo);
        }
        prop = { name: words[4]!, type, countType };
      } else {
        const type = TYPE_ALIASES[words[1] ?? ''];
        if (words.length !== 3 || !type) throw new PointCloudFormatError(file, `malformed property '${text}' (unknown type?)`, lineNo);
        prop = { name: words[2]!, type };
      }
      if (el.properties.some((p) => p.name === prop.name)) {
        throw new PointCloudFormatError(file, `duplicate property '${prop.name}' in element '${el.name}'`, lineNo);
      }
      el.properties.push(prop);
    } else {
      throw new PointCloudFormatError(file, `unknown header keyword '${key}'`, lineNo);
    }
  }
  if (!format) throw new PointCloudFormatError(file, 'header has no format line');
  return { format, elements, comments, headerBytes: pos, headerLines: lineNo };
}

function readScalar(view: DataView, pos: number, type: PlyScalarType, little: boolean): number {
  switch (type) {
    case 'int8':
      return view.getInt8(pos);
    case 'uint8':
      return view.getUint8(pos);
    case 'int16':
      return view.getInt16(pos, little);
    case 'uint16':
      return view.getUint16(pos, little);
    case 'int32':
      return view.getInt32(pos, little);
    case 'uint32':
      return view.getUint32(pos, little);
    case 'float32':
      return view.getFloat32(pos, little);
    case 'float64':
      return view.getFloat64(pos, little);
  }
}

/** Reads `count` values of one property spaced `stride` bytes apart into `out`. */
function readColumn(
  view: DataView,
  start: number,
  stride: number,
  count: number,
  type: PlyScalarType,
  little: boolean,
  out: ScalarArray,
): void {
  let pos = start;
  switch (type) {
    case 'int8':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getInt8(pos);
      return;
    case 'uint8':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getUint8(pos);
      return;
    case 'int16':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getInt16(pos, little);
      return;
    case 'uint16':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getUint16(pos, little);
      return;
    case 'int32':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getInt32(pos, little);
      return;
    case 'uint32':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getUint32(pos, little);
      return;
    case 'float32':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getFloat32(pos, little);
      return;
    case 'float64':
      for (let r = 0; r < count; r++, pos += stride) out[r] = view.getFloat64(pos, little);
      return;
  }
}

function checkInteger(value: number, type: PlyScalarType): boolean {
  if (type === 'float32' || type === 'float64') return true; // NaN is rejected by the caller
  if (!Number.isInteger(value)) return false;
  const bits = TYPE_SIZE[type] * 8;
  const signed = type.startsWith('int');
  const lo = signed ? -(2 ** (bits - 1)) : 0;
  const hi = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  return value >= lo && value <= hi;
}

/** Parses a PLY file held in memory. `file` names it in error messages. */
export function parsePly(bytes: Uint8Array, file = '<ply>'): PlyData {
  const header = parseHeader(bytes, file);
  const elements: PlyData['elements'] = {};
  // Storage per property; lists grow in plain arrays of offsets/values.
  type Store = { prop: PlyProperty; scalar?: ScalarArray; offsets?: Int32Array; values?: number[] };
  const stores: Store[][] = header.elements.map((el) =>
    el.properties.map((prop) =>
      prop.countType
        ? { prop, offsets: new Int32Array(el.count + 1), values: [] as number[] }
        : { prop, scalar: makeArray(prop.type, el.count) },
    ),
  );
  if (header.format === 'ascii') {
    const body = new TextDecoder('latin1').decode(bytes.subarray(header.headerBytes));
    let e = 0;
    let row = 0;
    while (e < header.elements.length && header.elements[e]!.count === 0) e++;
    const maxTokens = 1 << 16;
    const tokens = new Float64Array(maxTokens);
    forEachLine(body, header.headerLines + 1, (line, start, end) => {
      if (e >= header.elements.length) {
        throw new PointCloudFormatError(file, 'data after the last declared element', line);
      }
      const el = header.elements[e]!;
      const n = parseTokens(body, start, end, tokens);
      if (n > maxTokens) throw new PointCloudFormatError(file, `more than ${maxTokens} values on one line`, line);
      let t = 0;
      for (const st of stores[e]!) {
        const p = st.prop;
        if (p.countType) {
          if (t >= n) throw new PointCloudFormatError(file, `${el.name} ${row}: missing count of list '${p.name}'`, line);
          const count = tokens[t++]!;
          if (!checkInteger(count, p.countType) || count < 0) {
            throw new PointCloudFormatError(file, `${el.name} ${row}: bad list count '${count}' for '${p.name}'`, line);
          }
          if (t + count > n) {
            throw new PointCloudFormatError(file, `${el.name} ${row}: list '${p.name}' declares ${count} items but the line ends`, line);
          }
          for (let k = 0; k < count; k++) st.values!.push(tokens[t++]!);
          st.offsets![row + 1] = st.values!.length;
        } else {
          if (t >= n) {
            throw new PointCloudFormatError(file, `${el.name} ${row}: expected a value for property '${p.name}', the line has ${n} values`, line);
          }
          const v = tokens[t++]!;
          if (Number.isNaN(v) || !checkInteger(v, p.type)) {
            throw new PointCloudFormatError(file, `${el.name} ${row}: property '${p.name}' (${p.type}) has bad value`, line);
          }
          st.scalar![row] = v;
        }
      }
      if (t !== n) throw new PointCloudFormatError(file, `${el.name} ${row}: ${n} values on the line, ${t} expected`, line);
      row++;
      while (e < header.elements.length && row === header.elements[e]!.count) {
        e++;
        row = 0;
      }
      return undefined;
    });
    if (e < header.elements.length) {
      const el = header.elements[e]!;
      throw new PointCloudFormatError(file, `file ends after ${row} of ${el.count} '${el.name}' rows`);
    }
  } else {
    const little = header.format === 'binary_little_endian';
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let pos = header.headerBytes;
    const end = bytes.length;
    for (let e = 0; e < header.elements.length; e++) {
      const el = header.elements[e]!;
      const st = stores[e]!;
      const fixed = st.every((s) => !s.prop.countType);
      const rowBytes = st.reduce((a, s) => a + TYPE_SIZE[s.prop.type], 0);
      if (fixed && pos + rowBytes * el.count > end) {
        throw new PointCloudFormatError(
          file,
          `binary body too short: element '${el.name}' needs ${rowBytes * el.count} bytes at byte ${pos}, ${end - pos} left`,
        );
      }
      if (fixed) {
        // Fixed-size rows: read one property at a time down the rows, so each loop makes a
        // single typed DataView call (fast for millions of vertices).
        let off = 0;
        for (const s of st) {
          readColumn(view, pos + off, rowBytes, el.count, s.prop.type, little, s.scalar!);
          off += TYPE_SIZE[s.prop.type];
        }
        pos += rowBytes * el.count;
        continue;
      }
      for (let r = 0; r < el.count; r++) {
        for (const s of st) {
          const p = s.prop;
          if (p.countType) {
            if (pos + TYPE_SIZE[p.countType] > end) {
              throw new PointCloudFormatError(file, `binary body ends inside ${el.name} ${r} (list '${p.name}')`);
            }
            const count = readScalar(view, pos, p.countType, little);
            pos += TYPE_SIZE[p.countType];
            if (count < 0) throw new PointCloudFormatError(file, `${el.name} ${r}: negative list count ${count} for '${p.name}'`);
            const size = TYPE_SIZE[p.type];
            if (pos + count * size > end) {
              throw new PointCloudFormatError(file, `binary body ends inside ${el.name} ${r} (list '${p.name}' of ${count} items)`);
            }
            for (let k = 0; k < count; k++) {
              s.values!.push(readScalar(view, pos, p.type, little));
              pos += size;
            }
            s.offsets![r + 1] = s.values!.length;
          } else {
            if (pos + TYPE_SIZE[p.type] > end) throw new PointCloudFormatError(file, `binary body ends inside ${el.name} ${r}`);
            s.scalar![r] = readScalar(view, pos, p.type, little);
            pos += TYPE_SIZE[p.type];
          }
        }
      }
    }
    if (pos !== end) {
      throw new PointCloudFormatError(file, `${end - pos} bytes after the last declared element (counts in the header are wrong?)`);
    }
  }
  header.elements.forEach((el, e) => {
    const props: Record<string, ScalarArray | PlyList> = {};
    for (const s of stores[e]!) {
      props[s.prop.name] = s.prop.countType ? { offsets: s.offsets!, values: Float64Array.from(s.values!) } : s.scalar!;
    }
    elements[el.name] = props;
  });
  return { header, elements };
}

const COLOR_NAMES = [
  ['red', 'green', 'blue'],
  ['r', 'g', 'b'],
  ['diffuse_red', 'diffuse_green', 'diffuse_blue'],
] as const;
const NORMAL_NAMES = [
  ['nx', 'ny', 'nz'],
  ['normal_x', 'normal_y', 'normal_z'],
] as const;
/** Property names read as the semantic label, in order of preference. */
export const PLY_LABEL_NAMES = ['label', 'semantic', 'semantic_label', 'class', 'scalar_label', 'segment'] as const;

/** Turns the vertex element of parsed PLY data into a single-scene PointCloudBatch. */
export function plyToPointCloud(ply: PlyData, file = '<ply>'): PointCloudBatch {
  const v = ply.elements['vertex'];
  if (!v) throw new PointCloudFormatError(file, "no 'vertex' element");
  const scalar = (name: string): ScalarArray | undefined => {
    const a = v[name];
    if (a === undefined) return undefined;
    if (!ArrayBuffer.isView(a)) throw new PointCloudFormatError(file, `vertex property '${name}' is a list, expected a scalar`);
    return a;
  };
  const x = scalar('x');
  const y = scalar('y');
  const z = scalar('z');
  if (!x || !y || !z) throw new PointCloudFormatError(file, "vertex element lacks one of the properties 'x', 'y', 'z'");
  const n = x.length;
  const coord = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    coord[3 * i] = x[i]!;
    coord[3 * i + 1] = y[i]!;
    coord[3 * i + 2] = z[i]!;
  }
  const out: PointCloudBatch = { coord, offset: Int32Array.of(n) };
  for (const names of COLOR_NAMES) {
    const r = scalar(names[0]);
    const g = scalar(names[1]);
    const b = scalar(names[2]);
    if (!r || !g || !b) continue;
    // Integer colours are 0..255 (uint8) or 0..65535 (uint16); float colours are already 0..1.
    const type = ply.header.elements.find((e) => e.name === 'vertex')!.properties.find((p) => p.name === names[0])!.type;
    const scale = type === 'uint16' ? 1 / 65535 : type.startsWith('float') ? 1 : 1 / 255;
    const color = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      color[3 * i] = r[i]! * scale;
      color[3 * i + 1] = g[i]! * scale;
      color[3 * i + 2] = b[i]! * scale;
    }
    for (let i = 0; i < color.length; i++) {
      if (!(color[i]! >= 0 && color[i]! <= 1)) {
        throw new PointCloudFormatError(file, `vertex ${Math.floor(i / 3)}: colour ${color[i]} outside 0..1 after scaling (${type})`);
      }
    }
    out.color = color;
    break;
  }
  for (const names of NORMAL_NAMES) {
    const a = scalar(names[0]);
    const b = scalar(names[1]);
    const c = scalar(names[2]);
    if (!a || !b || !c) continue;
    const normal = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      normal[3 * i] = a[i]!;
      normal[3 * i + 1] = b[i]!;
      normal[3 * i + 2] = c[i]!;
    }
    out.normal = normal;
    break;
  }
  for (const name of PLY_LABEL_NAMES) {
    const l = scalar(name);
    if (!l) continue;
    const label = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const value = l[i]!;
      if (!Number.isInteger(value) || value < -1) {
        throw new PointCloudFormatError(file, `vertex ${i}: label property '${name}' = ${value} is not an integer ≥ -1`);
      }
      label[i] = value;
    }
    out.label = label;
    break;
  }
  return out;
}

/** Reads a PLY file into a single-scene PointCloudBatch. */
export async function readPly(path: string): Promise<PointCloudBatch> {
  return plyToPointCloud(parsePly(await readBytes(path), path), path);
}

export interface PlyWriteOptions {
  format?: PlyFormat;
  /** Colours as uchar 0..255 (default, what viewers expect) or float 0..1. */
  colorType?: 'uint8' | 'float32';
  comments?: string[];
}

/** Encodes one point cloud (all scenes together) as a PLY vertex element. */
export function encodePly(cloud: PointCloudBatch, options: PlyWriteOptions = {}): Uint8Array {
  const format = options.format ?? 'binary_little_endian';
  const colorType = options.colorType ?? 'uint8';
  const n = cloud.coord.length / 3;
  const props: Array<{ name: string; type: PlyScalarType; get: (i: number) => number }> = [
    { name: 'x', type: 'float32', get: (i) => cloud.coord[3 * i]! },
    { name: 'y', type: 'float32', get: (i) => cloud.coord[3 * i + 1]! },
    { name: 'z', type: 'float32', get: (i) => cloud.coord[3 * i + 2]! },
  ];
  const { color, normal, label } = cloud;
  if (color) {
    ['red', 'green', 'blue'].forEach((name, k) => {
      props.push(
        colorType === 'uint8'
          ? { name, type: 'uint8', get: (i) => Math.round(Math.min(1, Math.max(0, color[3 * i + k]!)) * 255) }
          : { name, type: 'float32', get: (i) => color[3 * i + k]! },
      );
    });
  }
  if (normal) {
    ['nx', 'ny', 'nz'].forEach((name, k) => {
      props.push({ name, type: 'float32', get: (i) => normal[3 * i + k]! });
    });
  }
  if (label) props.push({ name: 'label', type: 'int32', get: (i) => label[i]! });
  const lines = ['ply', `format ${format} 1.0`];
  for (const c of options.comments ?? []) lines.push(`comment ${c.replace(/\n/g, ' ')}`);
  lines.push(`element vertex ${n}`);
  for (const p of props) lines.push(`property ${TYPE_NAME[p.type]} ${p.name}`);
  lines.push('end_header');
  const head = new TextEncoder().encode(`${lines.join('\n')}\n`);
  if (format === 'ascii') {
    const rows: string[] = new Array(n);
    for (let i = 0; i < n; i++) rows[i] = props.map((p) => String(p.get(i))).join(' ');
    const body = new TextEncoder().encode(n > 0 ? `${rows.join('\n')}\n` : '');
    const out = new Uint8Array(head.length + body.length);
    out.set(head, 0);
    out.set(body, head.length);
    return out;
  }
  const little = format === 'binary_little_endian';
  const rowBytes = props.reduce((a, p) => a + TYPE_SIZE[p.type], 0);
  const out = new Uint8Array(head.length + rowBytes * n);
  out.set(head, 0);
  const view = new DataView(out.buffer);
  let pos = head.length;
  for (let i = 0; i < n; i++) {
    for (const p of props) {
      const v = p.get(i);
      if (p.type === 'float32') view.setFloat32(pos, v, little);
      else if (p.type === 'uint8') view.setUint8(pos, v);
      else view.setInt32(pos, v, little);
      pos += TYPE_SIZE[p.type];
    }
  }
  return out;
}

const TYPE_NAME: Record<PlyScalarType, string> = {
  int8: 'char',
  uint8: 'uchar',
  int16: 'short',
  uint16: 'ushort',
  int32: 'int',
  uint32: 'uint',
  float32: 'float',
  float64: 'double',
};

/** Writes a PLY file atomically. */
export async function writePly(path: string, cloud: PointCloudBatch, options: PlyWriteOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodePly(cloud, options));
}
