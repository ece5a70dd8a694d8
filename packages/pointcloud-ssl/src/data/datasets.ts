/**
 * Data sets on disk: the scenes of a folder, listed without reading them, split into train and
 * validation scenes, and read one at a time on demand (so a data set larger than memory works).
 *
 * A scene is named by a `SceneRef`, plain JSON, so a worker thread can load it too. Types:
 * - `pointcept`: Pointcept's preprocessed scene folders (`<root>/<split>/<scene>/coord.npy`);
 * - `s3dis`: raw S3DIS (`Area_N/<room>/Annotations/`), PointNet's HDF5 blocks (`*.h5` with
 *   `room_filelist.txt`), or S3DIS after Pointcept's preprocessing; Area 5 is held out by default;
 * - `scannet`: raw ScanNet v2 scans (`scans/<scene>/<scene>_vh_clean_2.ply`, splits from
 *   `scannetv2_<split>.txt`), or ScanNet after Pointcept's preprocessing (labels: segment20);
 * - `ply`: a folder of PLY files (split sub-folders `train/`, `val/`, …);
 * - `synthetic`: the built-in indoor-scene generator (no folder).
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { hdf5PointSetSize, pointSetToBatch, readHdf5PointSet } from './formats/hdf5.js';
import { listPointceptScenes, readPointceptScene } from './formats/pointcept.js';
import { readPly } from './formats/ply.js';
import { readS3disRoom } from './formats/s3dis.js';
import { SCANNET20_CLASSES, readScanNetScan, scanNetMeshPath } from './formats/scannet.js';
import { PointCloudFormatError } from './formats/text.js';
import { type PointCloudBatch, S3DIS_CLASSES } from './point-cloud.js';
import { generateSyntheticScene, syntheticSceneSeed } from './synthetic.js';

export const DATASET_TYPES = ['synthetic', 'pointcept', 's3dis', 'scannet', 'ply'] as const;
export type DatasetType = (typeof DATASET_TYPES)[number];

/** One scene, by where it is; JSON-serialisable. */
export type SceneRef = { name: string; split: string } & (
  | { kind: 'pointcept'; path: string; segmentKey?: string }
  | { kind: 's3dis-room'; path: string }
  | { kind: 'hdf5-block'; path: string; row: number }
  | { kind: 'scannet-scan'; path: string }
  | { kind: 'ply'; path: string }
  | { kind: 'synthetic'; seed: number; index: number; points: number }
);

export interface DatasetSpec {
  type: DatasetType;
  /** The data folder (not used by `synthetic`). */
  root?: string;
  /** Which scenes train / validate: split folder names, S3DIS areas ('Area_5'), scene names. */
  trainSplit?: string[];
  valSplit?: string[];
  /** Pointcept data: the segment file to read as labels ('segment20', 'segment200', ...). */
  segmentKey?: string;
  /** `synthetic`: the generator's data seed, scene counts and points per scene. */
  synthetic?: { seed: number; trainScenes: number; valScenes: number; points: number };
}

export interface Dataset {
  type: DatasetType;
  root: string;
  /** Class names in label order, when the data set's classes are known (S3DIS, ScanNet). */
  classes?: readonly string[];
  train: SceneRef[];
  val: SceneRef[];
  /** Every scene found, with its split, for messages and `kiln … --help`-style listings. */
  all: SceneRef[];
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function subdirs(dir: string): Promise<string[]> {
  return (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

const AREA = /^Area_\d+$/;

// ---------------------------------------------------------------------------------------------
// Listing each layout

async function listPointcept(root: string, segmentKey?: string): Promise<SceneRef[]> {
  return (await listPointceptScenes(root)).map((e) => ({ kind: 'pointcept', name: e.name, split: e.split, path: e.path, ...(segmentKey ? { segmentKey } : {}) }));
}

async function listS3disRaw(root: string): Promise<SceneRef[]> {
  const out: SceneRef[] = [];
  const areas = AREA.test(basename(root)) ? [''] : (await subdirs(root)).filter((a) => AREA.test(a));
  for (const area of areas) {
    const dir = join(root, area);
    const areaName = area || basename(root);
    for (const room of await subdirs(dir)) {
      if (await isDir(join(dir, room, 'Annotations'))) out.push({ kind: 's3dis-room', name: `${areaName}-${room}`, split: areaName, path: join(dir, room) });
    }
  }
  return out;
}

/**
 * PointNet's `indoor3d_sem_seg_hdf5_data`: `ply_data_all_*.h5` (in `all_files.txt` order when
 * it exists) and `room_filelist.txt`, one room name (`Area_1_office_1`) per block of all files
 * in that order. Every block is a scene (its x y are centred on the block, so a room's blocks
 * cannot be put back together).
 */
async function listHdf5Blocks(root: string): Promise<SceneRef[]> {
  let files = (await readdir(root)).filter((f) => f.endsWith('.h5') || f.endsWith('.hdf5')).sort();
  const order = join(root, 'all_files.txt');
  if (await isFile(order)) {
    const listed = (await readFile(order, 'utf8')).split(/\r?\n/).map((l) => basename(l.trim())).filter(Boolean);
    const missing = listed.find((f) => !files.includes(f));
    if (missing) throw new PointCloudFormatError(order, `lists ${missing}, which is not in ${root}`);
    files = listed;
  }
  const roomsFile = join(root, 'room_filelist.txt');
  if (!(await isFile(roomsFile))) {
    throw new PointCloudFormatError(root, 'PointNet S3DIS blocks need room_filelist.txt (one room name per block, e.g. Area_1_office_1) next to the .h5 files');
  }
  const rooms = (await readFile(roomsFile, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const out: SceneRef[] = [];
  let block = 0;
  const perRoom = new Map<string, number>();
  for (const file of files) {
    const path = join(root, file);
    const blocks = await hdf5PointSetSize(path);
    for (let row = 0; row < blocks; row++, block++) {
      const room = rooms[block];
      if (room === undefined) throw new PointCloudFormatError(roomsFile, `has ${rooms.length} lines, but the .h5 files hold more blocks (block ${block} is row ${row} of ${file})`);
      const area = /^(Area_\d+)_/.exec(room)?.[1];
      if (!area) throw new PointCloudFormatError(roomsFile, `line ${block + 1}: '${room}' is not a room name like Area_1_office_1`);
      const k = perRoom.get(room) ?? 0;
      perRoom.set(room, k + 1);
      out.push({ kind: 'hdf5-block', name: `${area}-${room.slice(area.length + 1)}#${k}`, split: area, path, row });
    }
  }
  if (block !== rooms.length) throw new PointCloudFormatError(roomsFile, `has ${rooms.length} lines for ${block} blocks in the .h5 files`);
  return out;
}

async function listScanNetRaw(root: string): Promise<SceneRef[]> {
  const out: SceneRef[] = [];
  const dirs = [root, join(root, 'scans'), join(root, 'scans_test')];
  for (const dir of dirs) {
    if (!(await isDir(dir))) continue;
    const split = dir === root ? '' : basename(dir);
    for (const scene of await subdirs(dir)) {
      const path = join(dir, scene);
      const mesh = await scanNetMeshPath(path);
      if (mesh && (await isFile(mesh))) out.push({ kind: 'scannet-scan', name: scene, split, path });
    }
  }
  return out;
}

async function listPly(root: string): Promise<SceneRef[]> {
  const out: SceneRef[] = [];
  const plys = async (dir: string) => (await readdir(dir)).filter((f) => extname(f).toLowerCase() === '.ply').sort();
  for (const f of await plys(root)) out.push({ kind: 'ply', name: basename(f, extname(f)), split: '', path: join(root, f) });
  for (const sub of await subdirs(root)) {
    for (const f of await plys(join(root, sub))) out.push({ kind: 'ply', name: basename(f, extname(f)), split: sub, path: join(root, sub, f) });
  }
  return out;
}

async function containsPointcept(root: string): Promise<boolean> {
  try {
    await listPointceptScenes(root);
    return true;
  } catch {
    return false;
  }
}

/** Every scene of a data folder, with its split; errors name the folder and what was expected. */
export async function listScenes(type: DatasetType, root: string, segmentKey?: string): Promise<SceneRef[]> {
  if (type === 'synthetic') throw new Error("listScenes: the 'synthetic' data set has no folder");
  if (!(await isDir(root))) {
    throw new PointCloudFormatError(root, (await isFile(root)) ? `expected a data folder for --dataset ${type}, got a file` : 'data folder not found');
  }
  let scenes: SceneRef[] = [];
  let expected = '';
  switch (type) {
    case 'pointcept':
      return listPointcept(root, segmentKey);
    case 's3dis': {
      if (await containsPointcept(root)) return listPointcept(root, segmentKey);
      const entries = await readdir(root);
      if (entries.some((f) => f.endsWith('.h5') || f.endsWith('.hdf5'))) return listHdf5Blocks(root);
      scenes = await listS3disRaw(root);
      expected =
        'expected S3DIS as released (Area_1/<room>/Annotations/<class>_<i>.txt), after Pointcept preprocessing (Area_1/<room>/coord.npy), or PointNet HDF5 blocks (ply_data_all_0.h5 + room_filelist.txt)';
      break;
    }
    case 'scannet': {
      if (await containsPointcept(root)) return listPointcept(root, segmentKey);
      scenes = await listScanNetRaw(root);
      expected = 'expected ScanNet v2 scans (scans/scene0000_00/scene0000_00_vh_clean_2.ply) or ScanNet after Pointcept preprocessing (train/scene0000_00/coord.npy)';
      break;
    }
    case 'ply':
      scenes = await listPly(root);
      expected = 'expected .ply files, directly or in split folders (train/*.ply, val/*.ply)';
      break;
  }
  if (scenes.length === 0) throw new PointCloudFormatError(root, `no scenes found: ${expected}`);
  return scenes;
}

// ---------------------------------------------------------------------------------------------
// Splits

function isS3disLike(scenes: readonly SceneRef[]): boolean {
  return scenes.some((s) => AREA.test(s.split) || /^Area_\d+-/.test(s.name));
}

/** The default split names: S3DIS areas 1–4 and 6 for training, Area 5 held out; else train / val. */
export function defaultSplits(scenes: readonly SceneRef[]): { train: string[]; val: string[] } {
  if (isS3disLike(scenes)) {
    const areas = [...new Set(scenes.map((s) => /^(Area_\d+)/.exec(s.split)?.[1] ?? /^(Area_\d+)-/.exec(s.name)?.[1]).filter((a): a is string => !!a))].sort();
    return { train: areas.filter((a) => a !== 'Area_5'), val: ['Area_5'] };
  }
  return { train: ['train'], val: ['val'] };
}

/**
 * The scenes a split names: each token is a split folder ('train', 'Area_1'), an S3DIS area
 * matched by scene-name prefix ('Area_5' picks 'Area_5-office_1'), a scene name, or, for raw
 * ScanNet, a list file (`scannetv2_<token>.txt` in the root, or a path) of scene names.
 */
export async function selectScenes(scenes: readonly SceneRef[], tokens: readonly string[], root: string, what: string): Promise<SceneRef[]> {
  const picked = new Set<SceneRef>();
  for (const token of tokens) {
    let matched = scenes.filter((s) => s.split === token || s.name === token || s.name.startsWith(`${token}-`));
    if (matched.length === 0 && scenes.some((s) => s.kind === 'scannet-scan')) {
      let file: string | undefined;
      for (const candidate of [join(root, `scannetv2_${token}.txt`), join(root, token), token]) {
        if (await isFile(candidate)) {
          file = candidate;
          break;
        }
      }
      if (file) {
        const names = new Set((await readFile(file, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter(Boolean));
        matched = scenes.filter((s) => names.has(s.name));
        if (matched.length === 0) throw new PointCloudFormatError(file, `names ${names.size} scenes, none of them under ${root}`);
      }
    }
    if (matched.length === 0) {
      const splits = [...new Set(scenes.map((s) => s.split).filter(Boolean))];
      throw new PointCloudFormatError(
        root,
        `${what} split '${token}' matches no scene (splits here: ${splits.join(', ') || 'none'}; scenes: ${scenes
          .slice(0, 5)
          .map((s) => s.name)
          .join(', ')}${scenes.length > 5 ? ', …' : ''})`,
      );
    }
    for (const s of matched) picked.add(s);
  }
  return [...picked];
}

function classesOf(type: DatasetType, scenes: readonly SceneRef[], segmentKey?: string): readonly string[] | undefined {
  if (type === 's3dis' || type === 'synthetic') return S3DIS_CLASSES;
  if (segmentKey === 'segment200') return undefined;
  if (type === 'scannet' || segmentKey === 'segment20') return SCANNET20_CLASSES;
  if (type === 'pointcept' && isS3disLike(scenes)) return S3DIS_CLASSES;
  return undefined;
}

/** Lists a data set and splits it; validation may be empty only when `valSplit` is []. */
export async function openDataset(spec: DatasetSpec): Promise<Dataset> {
  if (spec.type === 'synthetic') {
    const s = spec.synthetic ?? { seed: 1, trainScenes: 16, valScenes: 8, points: 160 };
    const ref = (index: number, split: string): SceneRef => ({ kind: 'synthetic', name: `synthetic-${index}`, split, seed: s.seed, index, points: s.points });
    const train = Array.from({ length: s.trainScenes }, (_, i) => ref(i, 'train'));
    const val = Array.from({ length: s.valScenes }, (_, i) => ref(s.trainScenes + i, 'val'));
    return { type: 'synthetic', root: '', classes: S3DIS_CLASSES, train, val, all: [...train, ...val] };
  }
  if (!spec.root) throw new Error(`openDataset: --dataset ${spec.type} needs a data folder`);
  const all = await listScenes(spec.type, spec.root, spec.segmentKey);
  const defaults = defaultSplits(all);
  const train = await selectScenes(all, spec.trainSplit ?? defaults.train, spec.root, 'training');
  const val = (spec.valSplit ?? defaults.val).length === 0 ? [] : await selectScenes(all, spec.valSplit ?? defaults.val, spec.root, 'validation');
  const classes = classesOf(spec.type, all, spec.segmentKey);
  return { type: spec.type, root: spec.root, ...(classes ? { classes } : {}), train, val, all };
}

// ---------------------------------------------------------------------------------------------
// Loading

/** A scene's points (single-scene batch; labels -1 where the data has none). */
export async function loadScene(ref: SceneRef): Promise<PointCloudBatch> {
  let scene: PointCloudBatch;
  switch (ref.kind) {
    case 'pointcept':
      scene = await readPointceptScene(ref.path, ref.segmentKey ? { segmentKey: ref.segmentKey } : {});
      break;
    case 's3dis-room':
      scene = await readS3disRoom(ref.path);
      break;
    case 'hdf5-block':
      scene = pointSetToBatch(await readHdf5PointSet(ref.path, { rows: [ref.row, ref.row + 1] }), ref.path);
      break;
    case 'scannet-scan':
      scene = await readScanNetScan(ref.path);
      break;
    case 'ply':
      scene = await readPly(ref.path);
      break;
    case 'synthetic':
      scene = generateSyntheticScene(syntheticSceneSeed(ref.seed, ref.index), { points: ref.points });
      break;
  }
  const n = scene.coord.length / 3;
  const out: PointCloudBatch = { coord: scene.coord, offset: Int32Array.of(n), label: scene.label ?? new Int32Array(n).fill(-1) };
  if (scene.color) out.color = scene.color;
  if (scene.normal) out.normal = scene.normal;
  return out;
}
