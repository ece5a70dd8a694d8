/**
 * Pointcept's preprocessed scenes: one folder per scene holding `.npy` arrays, as its
 * preprocessing scripts write them and its `DefaultDataset` reads them —
 * `coord.npy` [N, 3] (float32), `color.npy` [N, 3] (uint8, 0–255), `normal.npy` [N, 3],
 * a segment file [N] or [N, 1] (`segment.npy` for S3DIS, `segment20.npy` / `segment200.npy`
 * for ScanNet; int16 or int64, -1 = unlabelled) and `instance.npy`. Any numeric dtype is
 * accepted; colours are 0–255 whatever the dtype (Pointcept divides by 255) and come back
 * in 0–1.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { PointCloudBatch } from '../point-cloud.js';
import { type NpyArray, npyToFloat32, npyToLabels, readNpy } from './npy.js';
import { PointCloudFormatError } from './text.js';

/** Segment files in order of preference when none is named (ScanNet: the 20-class one). */
export const POINTCEPT_SEGMENT_FILES = ['segment', 'segment20', 'segment200'] as const;

export interface PointceptScene extends PointCloudBatch {
  /** Instance id per point (-1 = none), when `instance.npy` exists. */
  instance?: Int32Array;
  /** The segment file the labels came from ('segment20'), if any. */
  segmentKey?: string;
}

export interface PointceptSceneOptions {
  /**
   * The segment file (without `.npy`) to read as labels. Default: the first of `segment`,
   * `segment20`, `segment200` present; none present means no labels (a test split).
   */
  segmentKey?: string;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Whether `dir` is a Pointcept scene folder (has coord.npy). */
export async function isPointceptScene(dir: string): Promise<boolean> {
  return exists(join(dir, 'coord.npy'));
}

function rows(a: NpyArray, file: string, width: number, n?: number): number {
  const ok = width === 1 ? a.shape.length === 1 || (a.shape.length === 2 && a.shape[1] === 1) : a.shape.length === 2 && a.shape[1] === width;
  const want = width === 1 ? '[N] or [N, 1]' : `[N, ${width}]`;
  if (!ok) throw new PointCloudFormatError(file, `shape is [${a.shape.join(', ')}], expected ${want}${n !== undefined ? ` with N = ${n} (the points of coord.npy)` : ''}`);
  const count = a.shape[0]!;
  if (n !== undefined && count !== n) throw new PointCloudFormatError(file, `has ${count} rows but coord.npy has ${n} points`);
  return count;
}

/** Reads one Pointcept scene folder into a single-scene batch. */
export async function readPointceptScene(dir: string, options: PointceptSceneOptions = {}): Promise<PointceptScene> {
  const file = (name: string) => join(dir, `${name}.npy`);
  if (!(await exists(dir))) throw new PointCloudFormatError(dir, 'scene folder not found');
  if (!(await exists(file('coord')))) {
    throw new PointCloudFormatError(dir, 'not a Pointcept scene folder: coord.npy is missing (expected coord.npy [N, 3], and optionally color.npy, normal.npy, segment*.npy, instance.npy)');
  }
  const coordArr = await readNpy(file('coord'));
  const n = rows(coordArr, file('coord'), 3);
  const coord = npyToFloat32(coordArr, file('coord'));
  for (let i = 0; i < coord.length; i++) {
    if (!Number.isFinite(coord[i]!)) throw new PointCloudFormatError(file('coord'), `point ${Math.floor(i / 3)} has a non-finite coordinate (${coord[i]})`);
  }
  const scene: PointceptScene = { coord, offset: Int32Array.of(n) };
  if (await exists(file('color'))) {
    const arr = await readNpy(file('color'));
    rows(arr, file('color'), 3, n);
    const raw = npyToFloat32(arr, file('color'));
    const color = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i]!;
      if (!(v >= 0 && v <= 255)) throw new PointCloudFormatError(file('color'), `point ${Math.floor(i / 3)} has colour ${v}, expected 0–255`);
      color[i] = v / 255;
    }
    scene.color = color;
  }
  if (await exists(file('normal'))) {
    const arr = await readNpy(file('normal'));
    rows(arr, file('normal'), 3, n);
    scene.normal = npyToFloat32(arr, file('normal'));
  }
  let key = options.segmentKey;
  if (key !== undefined) {
    if (!(await exists(file(key)))) {
      const present = (await readdir(dir)).filter((f) => f.startsWith('segment') && f.endsWith('.npy'));
      throw new PointCloudFormatError(dir, `no ${key}.npy (the labels asked for); segment files here: ${present.join(', ') || 'none'}`);
    }
  } else {
    for (const k of POINTCEPT_SEGMENT_FILES) {
      if (await exists(file(k))) {
        key = k;
        break;
      }
    }
  }
  if (key !== undefined) {
    const arr = await readNpy(file(key));
    rows(arr, file(key), 1, n);
    scene.label = npyToLabels(arr, file(key));
    scene.segmentKey = key;
  }
  if (await exists(file('instance'))) {
    const arr = await readNpy(file('instance'));
    rows(arr, file('instance'), 1, n);
    scene.instance = npyToLabels(arr, file('instance'));
  }
  return scene;
}

export interface PointceptSceneEntry {
  /** The scene's name as Pointcept reports it (S3DIS: `Area_1-office_1`). */
  name: string;
  /** The split folder it sits in ('train', 'Area_1'), or '' for scenes directly under the root. */
  split: string;
  path: string;
}

const AREA = /^Area_\d+$/;

/**
 * The scenes under a Pointcept data root, sorted: `<root>/<split>/<scene>/coord.npy` (the usual
 * layout: `train/`, `val/`, `test/`, or S3DIS's `Area_1/` … `Area_6/`), scenes directly under
 * the root, or the root itself when it is one scene folder.
 */
export async function listPointceptScenes(root: string): Promise<PointceptSceneEntry[]> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(root);
  } catch {
    throw new PointCloudFormatError(root, 'data folder not found');
  }
  if (!info.isDirectory()) throw new PointCloudFormatError(root, 'expected a folder of Pointcept scenes, got a file');
  if (await isPointceptScene(root)) return [{ name: basename(root), split: '', path: root }];
  const out: PointceptSceneEntry[] = [];
  const subdirs = async (dir: string) => {
    const names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    return names.sort();
  };
  for (const child of await subdirs(root)) {
    const path = join(root, child);
    if (await isPointceptScene(path)) {
      out.push({ name: child, split: '', path });
      continue;
    }
    for (const scene of await subdirs(path)) {
      const scenePath = join(path, scene);
      if (!(await isPointceptScene(scenePath))) continue;
      out.push({ name: AREA.test(child) ? `${child}-${scene}` : scene, split: child, path: scenePath });
    }
  }
  if (out.length === 0) {
    throw new PointCloudFormatError(
      root,
      'no Pointcept scene folders: expected <root>/<split>/<scene>/coord.npy (e.g. train/scene0000_00/coord.npy or Area_1/office_1/coord.npy)',
    );
  }
  return out;
}
