/**
 * HDF5 point-cloud sets, a dataset `data` of shape [B, P, C] (C ≥ 3: x y z first) and a
 * dataset `label`, in two layouts:
 * - shapes (ModelNet40 `ply_data_train0.h5`, ScanObjectNN `training_objectdataset.h5`,
 *   ShapeNetPart): `label` [B] or [B, 1] is each shape's class, channels 3–5 are normals, and
 *   an optional per-point dataset (`pid` / `seg` part labels, ScanObjectNN's `mask`) labels
 *   the points;
 * - PointNet's S3DIS blocks (`indoor3d_sem_seg_hdf5_data/ply_data_all_*.h5`): `label`
 *   [B, P] labels every point, `data` [B, P, 9] holds x y z, r g b / 255 and the
 *   room-normalised x y z; channels 3–5 are read as colour.
 * Read with h5wasm (the HDF5 C library compiled to WebAssembly; gzip-compressed datasets as
 * h5py writes them included), loaded on first use.
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
  /** B: the shapes (or blocks) read. */
  shapes: number;
  pointsPerShape: number;
  channels: number;
  /** Class of each shape (empty when `label` labels points, as in S3DIS blocks). */
  label: Int32Array;
  /** Per-point labels (B*P): `label` itself when it is [B, P], else from `pointLabelKey`. */
  pointLabel?: Int32Array;
  /** What channels 3–5 hold: normals (shapes) or colour in 0–1 (S3DIS blocks). */
  extraChannels?: 'normal' | 'color';
}

export interface ReadPointSetOptions {
  dataKey?: string;
  labelKey?: string;
  /** Per-point label dataset; default: the first of 'pid', 'seg', 'mask' that exists. */
  pointLabelKey?: string | null;
  /**
   * What channels 3–5 hold. Default: 'color' when `label` is per point (PointNet's S3DIS
   * blocks: r g b / 255), 'normal' otherwise (ModelNet's nx ny nz).
   */
  extraChannels?: 'normal' | 'color';
  /** Read only shapes [start, end) (h5wasm reads just those rows, not the whole file). */
  rows?: [number, number];
}

/** Number of shapes (blocks) in an HDF5 point set, without reading the data. */
export async function hdf5PointSetSize(path: string, dataKey = 'data'): Promise<number> {
  return withH5File(path, (f, h5) => {
    const d = f.get(dataKey);
    if (!d || !(d instanceof h5.Dataset)) throw new PointCloudFormatError(path, `no dataset '${dataKey}' (datasets here: ${f.keys().join(', ') || 'none'})`);
    const shape = d.shape ?? [];
    if (shape.length !== 3) throw new PointCloudFormatError(path, `dataset '${dataKey}' must have shape [B, P, C], got [${shape.join(', ')}]`);
    return shape[0]!;
  });
}

/** Opens an HDF5 file for reading (checking the signature first), runs `body`, closes it. */
async function withH5File<T>(path: string, body: (f: InstanceType<H5Module['File']>, h5: H5Module) => T): Promise<T> {
  const h5 = await loadH5wasm();
  await checkSignature(path);
  let f: InstanceType<H5Module['File']>;
  try {
    f = new h5.File(path, 'r');
  } catch (e) {
    throw new PointCloudFormatError(path, `not a readable HDF5 file (${(e as Error).message})`);
  }
  try {
    return body(f, h5);
  } finally {
    f.close();
  }
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

/**
 * The filters the HDF5 library itself decodes: deflate (gzip), shuffle, fletcher32, szip,
 * nbit, scaleoffset. A dataset compressed with a plugin filter (h5py's LZF, Blosc, Zstd, …)
 * would read back as garbage, so it is refused by name instead.
 */
const BUILT_IN_FILTERS = new Set([1, 2, 3, 4, 5, 6]);

function checkFilters(d: { filters: { id: number; name: string }[] }, file: string, key: string): void {
  const plugin = d.filters.find((f) => !BUILT_IN_FILTERS.has(f.id));
  if (plugin) {
    throw new PointCloudFormatError(
      file,
      `dataset '${key}' is compressed with the '${plugin.name}' filter (id ${plugin.id}), which this reader cannot decode; re-save it with compression='gzip' (or none)`,
    );
  }
}

/** Reads an HDF5 point set (ModelNet / ScanObjectNN shapes, or PointNet's S3DIS blocks). */
export async function readHdf5PointSet(path: string, options: ReadPointSetOptions = {}): Promise<PointSet> {
  const dataKey = options.dataKey ?? 'data';
  const labelKey = options.labelKey ?? 'label';
  return withH5File(path, (f, h5) => {
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
    checkFilters(data, path, dataKey);
    const [total, pointsPerShape, channels] = shape as [number, number, number];
    if (channels < 3) throw new PointCloudFormatError(path, `dataset '${dataKey}' has ${channels} channels, need at least x y z`);
    const [first, last] = options.rows ?? [0, total];
    if (!(Number.isInteger(first) && Number.isInteger(last) && first >= 0 && first <= last && last <= total)) {
      throw new PointCloudFormatError(path, `rows [${first}, ${last}) are outside the ${total} shapes of '${dataKey}'`);
    }
    const shapes = last - first;
    // A slice of rows when asked for part of the file; the whole dataset otherwise.
    const read = (d: typeof data, rank: number) => (options.rows ? d.slice([[first, last], ...Array.from({ length: rank - 1 }, () => [] as [])]) : d.value);
    const raw = toNumberArray(read(data, 3), path, dataKey);
    const values = raw instanceof Float32Array ? raw : Float32Array.from(raw);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) {
        const c = i % channels;
        const p = Math.floor(i / channels) % pointsPerShape;
        const b = first + Math.floor(i / (channels * pointsPerShape));
        throw new PointCloudFormatError(path, `dataset '${dataKey}'[${b}, ${p}, ${c}] is not finite`);
      }
    }
    const lab = dataset(labelKey);
    const lshape = lab.shape ?? [];
    const perPoint = lshape.length === 2 && lshape[0] === total && lshape[1] === pointsPerShape && pointsPerShape !== 1;
    const perShape = (lshape.length === 1 || (lshape.length === 2 && lshape[1] === 1)) && lshape[0] === total;
    if (!perPoint && !perShape) {
      throw new PointCloudFormatError(
        path,
        `dataset '${labelKey}' must have shape [${total}] or [${total}, 1] (a class per shape) or [${total}, ${pointsPerShape}] (a label per point), got [${lshape.join(', ')}]`,
      );
    }
    checkFilters(lab, path, labelKey);
    const labels = toIntegers(toNumberArray(read(lab, lshape.length), path, labelKey), path, labelKey);
    const out: PointSet = {
      data: values,
      shapes,
      pointsPerShape,
      channels,
      label: perPoint ? new Int32Array(0) : labels,
      extraChannels: options.extraChannels ?? (perPoint ? 'color' : 'normal'),
    };
    if (perPoint) {
      out.pointLabel = labels;
      return out;
    }
    let pointKey = options.pointLabelKey;
    if (pointKey === undefined) pointKey = ['pid', 'seg', 'mask'].find((k) => keys.includes(k)) ?? null;
    if (pointKey !== null) {
      const pl = dataset(pointKey);
      const pshape = pl.shape ?? [];
      if (pshape.length !== 2 || pshape[0] !== total || pshape[1] !== pointsPerShape) {
        throw new PointCloudFormatError(path, `dataset '${pointKey}' must have shape [${total}, ${pointsPerShape}], got [${pshape.join(', ')}]`);
      }
      checkFilters(pl, path, pointKey);
      out.pointLabel = toIntegers(toNumberArray(read(pl, 2), path, pointKey), path, pointKey);
    }
    return out;
  });
}

/**
 * A PointSet as a batch of B scenes of P points: coordinates from channels 0–2; channels 3–5
 * (when C ≥ 6) as normals, or as colour for S3DIS blocks (checked to lie in 0–1); per-point
 * labels when present.
 */
export function pointSetToBatch(set: PointSet, file = '<hdf5>'): PointCloudBatch {
  const { shapes, pointsPerShape: p, channels: c, data } = set;
  const n = shapes * p;
  const coord = new Float32Array(3 * n);
  const extra = c >= 6 ? new Float32Array(3 * n) : undefined;
  const asColor = (set.extraChannels ?? 'normal') === 'color';
  for (let i = 0; i < n; i++) {
    coord[3 * i] = data[c * i]!;
    coord[3 * i + 1] = data[c * i + 1]!;
    coord[3 * i + 2] = data[c * i + 2]!;
    if (extra) {
      for (let k = 0; k < 3; k++) {
        const v = data[c * i + 3 + k]!;
        if (asColor && !(v >= 0 && v <= 1)) {
          throw new PointCloudFormatError(file, `point ${i % p} of block ${Math.floor(i / p)}: colour channel ${3 + k} is ${v}, expected r g b / 255 in 0–1`);
        }
        extra[3 * i + k] = v;
      }
    }
  }
  const offset = new Int32Array(shapes);
  for (let b = 0; b < shapes; b++) offset[b] = (b + 1) * p;
  const out: PointCloudBatch = { coord, offset };
  if (extra && asColor) out.color = extra;
  else if (extra) out.normal = extra;
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
  if (set.label.length !== shapes) throw new Error(`writeHdf5PointSet(${path}): ${set.label.length} labels for ${shapes} shapes (the writer stores the shapes layout)`);
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
