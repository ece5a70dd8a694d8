/**
 * HDF5 point-cloud sets in the layout of ModelNet40 (`ply_data_train0.h5`), ScanObjectNN
 * (`training_objectdataset.h5`) and ShapeNetPart: a dataset `data` of shape [B, P, C] (C ≥ 3:
 * x y z, then optionally nx ny nz), a per-shape class `label` of shape [B] or [B, 1], and an
 * optional per-point dataset (`pid` / `seg` for part labels, `mask` for ScanObjectNN's
 * object/background mask). Read with h5wasm (the HDF5 C library compiled to WebAssembly),
 * loaded on first use.
 */
import type { PointCloudBatch } from '../point-cloud.js';
import { PointCloudFormatError } from './text.js';

type H5Module = typeof import('h5wasm/node');

let h5Promise: Promise<H5Module> | undefined;

/** Loads and initialises h5wasm once. */
export async function loadH5wasm(): Promise<H5Module> {
  h5Promise ??= (async () => {
    const mod = await import('h5wasm/node');
    await mod.ready;
    return mod;
  })();
  return h5Promise;
}

export interface PointSet {
  /** B*P*C values, shape after shape, point after point. */
  data: Float32Array;
  shapes: number;
  pointsPerShape: number;
  channels: number;
  /** Class of each shape. */
  label: Int32Array;
  /** Per-point labels (B*P) from `pointLabelKey`, when the file has them. */
  pointLabel?: Int32Array;
}

export interface ReadPointSetOptions {
  dataKey?: string;
  labelKey?: string;
  /** Per-point label dataset; default: the first of 'pid', 'seg', 'mask' that exists. */
  pointLabelKey?: string | null;
}

function toNumberArray(value: unknown, file: string, key: string): Float64Array | Float32Array | Int32Array | Uint8Array {
  if (value instanceof BigInt64Array || value instanceof BigUint64Array) {
    const out = new Float64Array(value.length);
    for (let i = 0; i < value.length; i++) out[i] = Number(value[i]!);
    return out;
  }
  if (
    value instanceof Float32Array ||
    value instanceof Float64Array ||
    value instanceof Int32Array ||
    value instanceof Uint8Array ||
    value instanceof Int8Array ||
    value instanceof Int16Array ||
    value instanceof Uint16Array ||
    value instanceof Uint32Array
  ) {
    return value as Float64Array;
  }
  throw new PointCloudFormatError(file, `dataset '${key}' is not numeric (got ${Object.prototype.toString.call(value)})`);
}

function toIntegers(values: ArrayLike<number>, file: string, key: string): Int32Array {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < -1 || v > 2 ** 31 - 1) {
      throw new PointCloudFormatError(file, `dataset '${key}' entry ${i} = ${v} is not an integer label ≥ -1`);
    }
    out[i] = v;
  }
  return out;
}

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * HDF5's format signature sits at byte 0 or after a user block of 512, 1024, 2048, ... bytes.
 * Checked here because h5wasm reports an unreadable file with an unhelpful message.
 */
async function checkSignature(path: string): Promise<void> {
  const { open } = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw new PointCloudFormatError(path, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message);
  }
  try {
    const size = (await handle.stat()).size;
    const buf = new Uint8Array(8);
    for (let at = 0; at + 8 <= size; at = at === 0 ? 512 : at * 2) {
      await handle.read(buf, 0, 8, at);
      if (SIGNATURE.every((b, i) => buf[i] === b)) return;
    }
  } finally {
    await handle.close();
  }
  throw new PointCloudFormatError(path, 'not a readable HDF5 file (no HDF5 signature)');
}

/** Reads a ModelNet/ScanObjectNN-style HDF5 file. */
export async function readHdf5PointSet(path: string, options: ReadPointSetOptions = {}): Promise<PointSet> {
  const h5 = await loadH5wasm();
  await checkSignature(path);
  const dataKey = options.dataKey ?? 'data';
  const labelKey = options.labelKey ?? 'label';
  let f: InstanceType<H5Module['File']>;
  try {
    f = new h5.File(path, 'r');
  } catch (e) {
    throw new PointCloudFormatError(path, `not a readable HDF5 file (${(e as Error).message})`);
  }
  try {
    const keys = f.keys();
    const dataset = (key: string) => {
      const d = f.get(key);
      if (!d || !(d instanceof h5.Dataset)) {
        throw new PointCloudFormatError(path, `no dataset '${key}' (datasets here: ${keys.join(', ') || 'none'})`);
      }
      return d;
    };
    const data = dataset(dataKey);
    const shape = data.shape ?? [];
    if (shape.length !== 3) {
      throw new PointCloudFormatError(path, `dataset '${dataKey}' must have shape [B, P, C], got [${shape.join(', ')}]`);
    }
    const [shapes, pointsPerShape, channels] = shape as [number, number, number];
    if (channels < 3) throw new PointCloudFormatError(path, `dataset '${dataKey}' has ${channels} channels, need at least x y z`);
    const raw = toNumberArray(data.value, path, dataKey);
    const values = raw instanceof Float32Array ? raw : Float32Array.from(raw);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) {
        const c = i % channels;
        const p = Math.floor(i / channels) % pointsPerShape;
        const b = Math.floor(i / (channels * pointsPerShape));
        throw new PointCloudFormatError(path, `dataset '${dataKey}'[${b}, ${p}, ${c}] is not finite`);
      }
    }
    const lab = dataset(labelKey);
    const lshape = lab.shape ?? [];
    const lcount = lshape.reduce((a, b) => a * b, 1);
    if (!(lshape.length === 1 || (lshape.length === 2 && lshape[1] === 1)) || lshape[0] !== shapes) {
      throw new PointCloudFormatError(path, `dataset '${labelKey}' must have shape [${shapes}] or [${shapes}, 1], got [${lshape.join(', ')}]`);
    }
    const label = toIntegers(toNumberArray(lab.value, path, labelKey), path, labelKey);
    if (label.length !== lcount) throw new PointCloudFormatError(path, `dataset '${labelKey}' holds ${label.length} values, shape says ${lcount}`);
    const out: PointSet = { data: values, shapes, pointsPerShape, channels, label };
    let pointKey = options.pointLabelKey;
    if (pointKey === undefined) pointKey = ['pid', 'seg', 'mask'].find((k) => keys.includes(k)) ?? null;
    if (pointKey !== null) {
      const pl = dataset(pointKey);
      const pshape = pl.shape ?? [];
      if (pshape.length !== 2 || pshape[0] !== shapes || pshape[1] !== pointsPerShape) {
        throw new PointCloudFormatError(path, `dataset '${pointKey}' must have shape [${shapes}, ${pointsPerShape}], got [${pshape.join(', ')}]`);
      }
      out.pointLabel = toIntegers(toNumberArray(pl.value, path, pointKey), path, pointKey);
    }
    return out;
  } finally {
    f.close();
  }
}

/**
 * A PointSet as a batch of B scenes of P points: coordinates from channels 0..2, normals from
 * channels 3..5 when C ≥ 6, per-point labels from `pointLabel` when present.
 */
export function pointSetToBatch(set: PointSet): PointCloudBatch {
  const { shapes, pointsPerShape: p, channels: c, data } = set;
  const n = shapes * p;
  const coord = new Float32Array(3 * n);
  const normal = c >= 6 ? new Float32Array(3 * n) : undefined;
  for (let i = 0; i < n; i++) {
    coord[3 * i] = data[c * i]!;
    coord[3 * i + 1] = data[c * i + 1]!;
    coord[3 * i + 2] = data[c * i + 2]!;
    if (normal) {
      normal[3 * i] = data[c * i + 3]!;
      normal[3 * i + 1] = data[c * i + 4]!;
      normal[3 * i + 2] = data[c * i + 5]!;
    }
  }
  const offset = new Int32Array(shapes);
  for (let b = 0; b < shapes; b++) offset[b] = (b + 1) * p;
  const out: PointCloudBatch = { coord, offset };
  if (normal) out.normal = normal;
  if (set.pointLabel) out.label = set.pointLabel;
  return out;
}

/** Writes a PointSet as HDF5 (`data` float32 [B, P, C], `label` int32 [B], optional `pid` int32 [B, P]). */
export async function writeHdf5PointSet(path: string, set: PointSet, pointLabelKey = 'pid'): Promise<void> {
  const h5 = await loadH5wasm();
  const { shapes, pointsPerShape, channels } = set;
  if (set.data.length !== shapes * pointsPerShape * channels) {
    throw new Error(`writeHdf5PointSet(${path}): data has ${set.data.length} values, shape [${shapes}, ${pointsPerShape}, ${channels}]`);
  }
  if (set.label.length !== shapes) throw new Error(`writeHdf5PointSet(${path}): ${set.label.length} labels for ${shapes} shapes`);
  // Write next to the target and rename, so readers never see a half-written file.
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const f = new h5.File(tmp, 'w');
  try {
    f.create_dataset({ name: 'data', data: set.data, shape: [shapes, pointsPerShape, channels], dtype: '<f' });
    f.create_dataset({ name: 'label', data: set.label, shape: [shapes], dtype: '<i' });
    if (set.pointLabel) {
      f.create_dataset({ name: pointLabelKey, data: set.pointLabel, shape: [shapes, pointsPerShape], dtype: '<i' });
    }
  } finally {
    f.close();
  }
  const { rename } = await import('node:fs/promises');
  await rename(tmp, path);
}
