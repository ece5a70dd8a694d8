/**
 * Checks an evaluation job's checkpoint and data set against each other before anything is
 * computed: dtypes, shapes, the number of classes, label ranges, scene offsets. Everything
 * here reads the decoded files only (their size is capped by the upload limit); nothing
 * allocates in proportion to what a file merely declares. Errors name the file, the tensor
 * and the offending value.
 *
 * Labels: −1 marks a point to ignore (Pointcept's `ignore_index`, @kiln/pointcloud-ssl's
 * IGNORE_LABEL); any other label outside 0..classes−1 is an error, never a reason to grow the
 * class count.
 */
import { IGNORE_LABEL, validatePointCloud } from '@kiln/pointcloud-ssl';
import type { SafetensorsEntry, SafetensorsFile } from '@kiln/tensor';

/** Most classes a job may score (the stored result's limit as well). */
export const MAX_CLASSES = 1000;
/** A class name: 1-200 characters, none of them a control character. */
function isClassName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length < 1 || name.length > 200) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

export class JobInputError extends Error {
  override name = 'JobInputError';
}

const INTEGER_DTYPES = new Set(['I8', 'I16', 'I32', 'I64', 'U8', 'U16', 'U32', 'U64']);
const FLOAT_DTYPES = new Set(['F32', 'F64']);

function need(file: SafetensorsFile, name: string, where: string): SafetensorsEntry {
  const entry = Object.hasOwn(file.tensors, name) ? file.tensors[name] : undefined;
  if (!entry) throw new JobInputError(`${where} has no tensor '${name}' (it has: ${Object.keys(file.tensors).join(', ') || 'none'})`);
  return entry;
}

function checkShape(entry: SafetensorsEntry, want: (number | 'any')[], what: string): void {
  const ok = entry.shape.length === want.length && want.every((d, i) => d === 'any' || entry.shape[i] === d);
  if (!ok) throw new JobInputError(`${what} has shape [${entry.shape.join(', ')}], expected [${want.map((d) => (d === 'any' ? '·' : d)).join(', ')}]`);
}

/** Integer values as an Int32Array; refuses float tensors and values beyond int32. */
export function integers(entry: SafetensorsEntry, what: string): Int32Array {
  if (!INTEGER_DTYPES.has(entry.dtype)) throw new JobInputError(`${what} has dtype ${entry.dtype}; an integer dtype (I32, I64, ...) is needed`);
  if (entry.data instanceof Int32Array) return entry.data;
  const out = new Int32Array(entry.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = Number(entry.data[i]!);
    if (v > 2147483647 || v < -2147483648) throw new JobInputError(`${what}: value ${v} at index ${i} is out of range`);
    out[i] = v;
  }
  return out;
}

/** Float values as a Float32Array (F32 or F64). */
export function floats(entry: SafetensorsEntry, what: string): Float32Array {
  if (!FLOAT_DTYPES.has(entry.dtype)) throw new JobInputError(`${what} has dtype ${entry.dtype}; F32 or F64 is needed`);
  return entry.data instanceof Float32Array ? entry.data : Float32Array.from(entry.data as Float64Array);
}

/** Checks class names from a job or a data set's `classes` metadata entry. */
export function checkClassNames(names: unknown, where: string): string[] {
  if (!Array.isArray(names)) throw new JobInputError(`${where} must be a JSON list of class names`);
  if (names.length === 0 || names.length > MAX_CLASSES) throw new JobInputError(`${where} lists ${names.length} classes; 1 to ${MAX_CLASSES} are allowed`);
  names.forEach((n, i) => {
    if (!isClassName(n)) {
      throw new JobInputError(`${where}[${i}] = ${JSON.stringify(n).slice(0, 60)} is not a class name (1-200 characters, no control characters)`);
    }
  });
  return names as string[];
}

/** The `classes` metadata entry of a data set, when it has one. */
function metadataClasses(data: SafetensorsFile): string[] | undefined {
  const raw = data.metadata.classes;
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new JobInputError("data set metadata 'classes' is not JSON");
  }
  return checkClassNames(parsed, "data set metadata 'classes'");
}

/** Throws naming the first label outside 0..classes−1 that is not the ignore label. */
export function checkLabels(labels: Int32Array, classes: number, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const t = labels[i]!;
    if (t !== IGNORE_LABEL && (t < 0 || t >= classes)) {
      throw new JobInputError(`${what}: point ${i} has label ${t}, outside the ${classes} classes 0..${classes - 1} (use ${IGNORE_LABEL} for points to ignore)`);
    }
  }
}

function checkPredictions(predictions: Int32Array, classes: number, what: string): void {
  for (let i = 0; i < predictions.length; i++) {
    const p = predictions[i]!;
    if (p < 0 || p >= classes) throw new JobInputError(`${what}: point ${i} is predicted as ${p}, outside the ${classes} classes 0..${classes - 1}`);
  }
}

export interface SegmentationInputs {
  labels: Int32Array;
  predictions: Int32Array;
  classes: string[];
  /** N×3 positions for the 3-D view, when the data set has `points`. */
  points: Float32Array | undefined;
}

function argmaxRows(logits: Float32Array, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (logits[r * cols + c]! > logits[r * cols + best]!) best = c;
    out[r] = best;
  }
  return out;
}

/**
 * The `segmentation` job: the checkpoint holds `predictions` [N] (integers) or `logits`
 * [N, C]; the data set `labels` [N], optionally `points` [N, 3] and a `classes` metadata
 * entry. The class count is C for logits, else the number of class names (the job's, or the
 * data set's), else one more than the largest label or prediction (at most MAX_CLASSES).
 */
export function segmentationInputs(checkpoint: SafetensorsFile, data: SafetensorsFile, jobClasses?: string[]): SegmentationInputs {
  const labelsEntry = need(data, 'labels', 'the data set');
  checkShape(labelsEntry, ['any'], "data set tensor 'labels'");
  const labels = integers(labelsEntry, "data set tensor 'labels'");
  const n = labels.length;
  const named = jobClasses?.length ? checkClassNames(jobClasses, 'job classes') : metadataClasses(data);
  let predictions: Int32Array;
  let classCount: number;
  if (Object.hasOwn(checkpoint.tensors, 'logits')) {
    const logits = checkpoint.tensors.logits!;
    checkShape(logits, [n, 'any'], "checkpoint tensor 'logits'");
    classCount = logits.shape[1]!;
    if (classCount < 1 || classCount > MAX_CLASSES) throw new JobInputError(`checkpoint tensor 'logits' has ${classCount} classes; 1 to ${MAX_CLASSES} are allowed`);
    if (named && named.length !== classCount) throw new JobInputError(`${named.length} class names for logits of ${classCount} classes`);
    predictions = argmaxRows(floats(logits, "checkpoint tensor 'logits'"), n, classCount);
  } else {
    if (!Object.hasOwn(checkpoint.tensors, 'predictions')) throw new JobInputError("the checkpoint has neither 'predictions' [N] nor 'logits' [N, C]");
    const entry = checkpoint.tensors.predictions!;
    checkShape(entry, [n], "checkpoint tensor 'predictions'");
    predictions = integers(entry, "checkpoint tensor 'predictions'");
    if (named) {
      classCount = named.length;
    } else {
      let top = 0;
      for (let i = 0; i < n; i++) top = Math.max(top, labels[i]!, predictions[i]!);
      classCount = top + 1;
      if (classCount > MAX_CLASSES) {
        throw new JobInputError(`labels and predictions reach ${top}, which implies ${classCount} classes (more than ${MAX_CLASSES}); name the classes (job 'classes' or data set metadata 'classes')`);
      }
    }
  }
  checkLabels(labels, classCount, "data set tensor 'labels'");
  checkPredictions(predictions, classCount, "checkpoint tensor 'predictions'");
  let points: Float32Array | undefined;
  if (Object.hasOwn(data.tensors, 'points')) {
    checkShape(data.tensors.points!, [n, 3], "data set tensor 'points'");
    points = floats(data.tensors.points!, "data set tensor 'points'");
  }
  const classes = named ?? Array.from({ length: classCount }, (_, k) => `class ${k}`);
  return { labels, predictions, classes, points };
}

export interface Scenes {
  coord: Float32Array;
  color: Float32Array | undefined;
  normal: Float32Array | undefined;
  label: Int32Array;
  offset: Int32Array;
}

/**
 * The `pointcloud` job's data set: concatenated scenes (`coord` [N, 3], `label` [N],
 * `offset` [scenes], `color` / `normal` [N, 3] when the model's features use them), checked
 * against the model's class count and features. Every scene must have points.
 */
export function scenesFor(data: SafetensorsFile, model: { numClasses: number; color: boolean; normal: boolean }): Scenes {
  const coordEntry = need(data, 'coord', 'the data set');
  checkShape(coordEntry, ['any', 3], "data set tensor 'coord'");
  const n = coordEntry.shape[0]!;
  const labelEntry = need(data, 'label', 'the data set');
  checkShape(labelEntry, [n], "data set tensor 'label'");
  const offsetEntry = need(data, 'offset', 'the data set');
  checkShape(offsetEntry, ['any'], "data set tensor 'offset'");
  if (offsetEntry.shape[0] === 0) throw new JobInputError("data set tensor 'offset' is empty: there are no scenes");
  const perPoint = (name: 'color' | 'normal', used: boolean): Float32Array | undefined => {
    if (!used) return undefined;
    const entry = need(data, name, `the data set (the model uses ${name})`);
    checkShape(entry, [n, 3], `data set tensor '${name}'`);
    return floats(entry, `data set tensor '${name}'`);
  };
  const scenes: Scenes = {
    coord: floats(coordEntry, "data set tensor 'coord'"),
    color: perPoint('color', model.color),
    normal: perPoint('normal', model.normal),
    label: integers(labelEntry, "data set tensor 'label'"),
    offset: integers(offsetEntry, "data set tensor 'offset'"),
  };
  try {
    validatePointCloud({ coord: scenes.coord, label: scenes.label, offset: scenes.offset, ...(scenes.color ? { color: scenes.color } : {}), ...(scenes.normal ? { normal: scenes.normal } : {}) }, 'data set');
  } catch (err) {
    throw new JobInputError((err as Error).message);
  }
  let previous = 0;
  scenes.offset.forEach((end, i) => {
    if (end <= previous) throw new JobInputError(`data set: scene ${i} has no points (offset[${i}] = ${end})`);
    previous = end;
  });
  checkLabels(scenes.label, model.numClasses, "data set tensor 'label'");
  return scenes;
}
