/**
 * S3DIS (Stanford Large-Scale 3D Indoor Spaces) room folders as distributed
 * (Stanford3dDataset_v1.2_Aligned_Version): `<area>/<room>/Annotations/<class>_<i>.txt`, one
 * object per file, one point per line "x y z r g b" (colour 0..255). The room's label of a
 * point is its object's class; the object index is returned as an instance id.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeFileAtomic } from '@kiln/tensor';
import { type PointCloudBatch, S3DIS_CLASSES, S3DIS_CLASS_ID, type S3disClass, concatScenes } from '../point-cloud.js';
import { PointCloudFormatError, forEachLine, parseTokens, readBytes } from './text.js';

/**
 * Class names that occur in S3DIS files but are not among the 13 classes. Area_5 holds
 * `stairs` objects; Pointcept's preprocessing folds them into clutter, and so do we.
 */
export const S3DIS_CLASS_ALIASES: Readonly<Record<string, S3disClass>> = { stairs: 'clutter' };

export interface S3disRoom extends PointCloudBatch {
  /** Object index per point (order of the sorted annotation file names). */
  instance: Int32Array;
  /** Room name (the folder name). */
  name: string;
  /** One entry per object: its file name and class. */
  objects: Array<{ file: string; className: S3disClass; points: number; skippedLines: number[] }>;
}

/** Class of an annotation file name `<class>_<i>.txt`; throws naming the file when unknown. */
export function s3disClassOfFile(file: string): S3disClass {
  const base = basename(file);
  const m = /^([A-Za-z]+)_\d+\.txt$/.exec(base);
  if (!m) throw new PointCloudFormatError(file, "annotation file name must look like '<class>_<index>.txt'");
  const name = m[1]!.toLowerCase();
  if ((S3DIS_CLASSES as readonly string[]).includes(name)) return name as S3disClass;
  const alias = S3DIS_CLASS_ALIASES[name];
  if (alias) return alias;
  throw new PointCloudFormatError(file, `unknown S3DIS class '${name}' (expected one of ${S3DIS_CLASSES.join(', ')})`);
}

export interface S3disReadOptions {
  /**
   * Skip malformed lines instead of throwing (the released data has at least one: a stray
   * control character in Area_5/hallway_6). Skipped line numbers are reported per object.
   */
  skipBadLines?: boolean;
}

/** Parses the "x y z r g b" lines of one object file; colour is scaled to 0..1. */
export function parseS3disObject(
  text: string,
  file = '<s3dis>',
  options: S3disReadOptions = {},
): { coord: Float32Array; color: Float32Array; skippedLines: number[] } {
  const skippedLines: number[] = [];
  let lines = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lines++;
  lines++;
  const coord = new Float32Array(3 * lines);
  const color = new Float32Array(3 * lines);
  const tokens = new Float64Array(6);
  let n = 0;
  forEachLine(text, 1, (line, start, end) => {
    const got = parseTokens(text, start, end, tokens);
    let problem: string | undefined;
    if (got !== 6) problem = `expected 6 values 'x y z r g b', got ${got > 6 ? 'more' : got}`;
    for (let k = 0; k < 6 && problem === undefined; k++) {
      const v = tokens[k]!;
      if (!Number.isFinite(v)) problem = `value ${k + 1} ('${'xyzrgb'[k]}') is not a number`;
      else if (k >= 3 && (v < 0 || v > 255)) problem = `colour '${'xyzrgb'[k]}' = ${v} outside 0..255`;
    }
    if (problem !== undefined) {
      if (!options.skipBadLines) throw new PointCloudFormatError(file, problem, line);
      skippedLines.push(line);
      return undefined;
    }
    coord[3 * n] = tokens[0]!;
    coord[3 * n + 1] = tokens[1]!;
    coord[3 * n + 2] = tokens[2]!;
    color[3 * n] = tokens[3]! / 255;
    color[3 * n + 1] = tokens[4]! / 255;
    color[3 * n + 2] = tokens[5]! / 255;
    n++;
    return undefined;
  });
  return { coord: coord.slice(0, 3 * n), color: color.slice(0, 3 * n), skippedLines };
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Reads one room folder (the one holding `Annotations/`). */
export async function readS3disRoom(roomDir: string, options: S3disReadOptions = {}): Promise<S3disRoom> {
  const annotations = join(roomDir, 'Annotations');
  if (!(await isDir(annotations))) throw new PointCloudFormatError(roomDir, "no 'Annotations' folder in the room");
  const files = (await readdir(annotations)).filter((f) => f.endsWith('.txt')).sort();
  if (files.length === 0) throw new PointCloudFormatError(annotations, 'no <class>_<i>.txt object files');
  const parts: PointCloudBatch[] = [];
  const instanceParts: Int32Array[] = [];
  const objects: S3disRoom['objects'] = [];
  for (let i = 0; i < files.length; i++) {
    const path = join(annotations, files[i]!);
    const className = s3disClassOfFile(path);
    const bytes = await readBytes(path);
    const { skippedLines, ...obj } = parseS3disObject(new TextDecoder('latin1').decode(bytes), path, options);
    const n = obj.coord.length / 3;
    parts.push({ ...obj, label: new Int32Array(n).fill(S3DIS_CLASS_ID[className]), offset: Int32Array.of(n) });
    instanceParts.push(new Int32Array(n).fill(i));
    objects.push({ file: files[i]!, className, points: n, skippedLines });
  }
  const merged = concatScenes(parts);
  const n = merged.coord.length / 3;
  const instance = new Int32Array(n);
  let at = 0;
  for (const part of instanceParts) {
    instance.set(part, at);
    at += part.length;
  }
  return { ...merged, offset: Int32Array.of(n), instance, name: basename(roomDir), objects };
}

/** Reads every room of an area folder (rooms = sub-folders with an Annotations folder), sorted by name, as one batch. */
export async function readS3disArea(
  areaDir: string,
  options: S3disReadOptions = {},
): Promise<{ batch: PointCloudBatch; rooms: string[] }> {
  const entries = (await readdir(areaDir)).sort();
  const rooms: S3disRoom[] = [];
  for (const e of entries) {
    if (await isDir(join(areaDir, e, 'Annotations'))) rooms.push(await readS3disRoom(join(areaDir, e), options));
  }
  if (rooms.length === 0) throw new PointCloudFormatError(areaDir, 'no room folders with Annotations/');
  const batch = concatScenes(rooms.map(({ coord, color, label, offset }) => ({ coord, color: color!, label: label!, offset })));
  return { batch, rooms: rooms.map((r) => r.name) };
}

/**
 * Writes a labelled scene as an S3DIS room folder: one `<class>_<i>.txt` per class (or per
 * instance when `instance` is given), lines "x y z r g b" with integer colours.
 */
export async function writeS3disRoom(roomDir: string, scene: PointCloudBatch & { instance?: Int32Array }): Promise<void> {
  const { coord, color, label } = scene;
  if (!label) throw new Error(`writeS3disRoom(${roomDir}): the scene has no labels`);
  const n = coord.length / 3;
  const groups = new Map<string, number[]>();
  for (let p = 0; p < n; p++) {
    const l = label[p]!;
    if (l < 0) continue;
    const cls = S3DIS_CLASSES[l];
    if (!cls) throw new Error(`writeS3disRoom(${roomDir}): label ${l} of point ${p} is not an S3DIS class id`);
    const key = `${cls}_${scene.instance ? scene.instance[p]! : 0}`;
    let g = groups.get(key);
    if (!g) {
      g = [];
      groups.set(key, g);
    }
    g.push(p);
  }
  const fs = await import('node:fs/promises');
  await fs.mkdir(join(roomDir, 'Annotations'), { recursive: true });
  const perClass = new Map<string, number>();
  for (const [key, pts] of groups) {
    const cls = key.slice(0, key.lastIndexOf('_'));
    const i = (perClass.get(cls) ?? 0) + 1;
    perClass.set(cls, i);
    const lines = pts.map((p) => {
      const c = (k: number) => (color ? Math.round(color[3 * p + k]! * 255) : 128);
      return `${coord[3 * p]!.toFixed(6)} ${coord[3 * p + 1]!.toFixed(6)} ${coord[3 * p + 2]!.toFixed(6)} ${c(0)} ${c(1)} ${c(2)}`;
    });
    await writeFileAtomic(join(roomDir, 'Annotations', `${cls}_${i}.txt`), `${lines.join('\n')}\n`);
  }
}
