/**
 * One entry point for "my own data": picks the reader from the path (extension, or folder
 * layout) and returns a PointCloudBatch. A folder of several scenes comes back as one
 * multi-scene batch, scene by scene (see ../datasets.ts to read them one at a time).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type { DatasetType } from '../datasets.js';
import { listScenes, loadScene } from '../datasets.js';
import { type PointCloudBatch, concatScenes } from '../point-cloud.js';
import { pointSetToBatch, readHdf5PointSet } from './hdf5.js';
import { type PcdDataFormat, readPcd, writePcd } from './pcd.js';
import { type PlyFormat, readPly, writePly } from './ply.js';
import { readPointceptScene } from './pointcept.js';
import { readS3disArea, readS3disRoom } from './s3dis.js';
import { readScanNetScan, scanNetMeshPath } from './scannet.js';
import { PointCloudFormatError } from './text.js';

export type PointCloudFileKind =
  | 'ply'
  | 'pcd'
  | 'hdf5'
  | 'pointcept-scene'
  | 'scannet-scan'
  | 's3dis-room'
  | 's3dis-area'
  | 's3dis-hdf5-folder'
  | 'pointcept-folder'
  | 'ply-folder';

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

const FOLDER_KINDS: Partial<Record<PointCloudFileKind, DatasetType>> = {
  's3dis-hdf5-folder': 's3dis',
  'pointcept-folder': 'pointcept',
  'ply-folder': 'ply',
};

/** What `readPointCloud` would do with `path`. */
export async function detectPointCloudKind(path: string): Promise<PointCloudFileKind> {
  if (await isDir(path)) {
    if (await isFile(join(path, 'coord.npy'))) return 'pointcept-scene';
    if (await isDir(join(path, 'Annotations'))) return 's3dis-room';
    if (await scanNetMeshPath(path)) return 'scannet-scan';
    const entries = await readdir(path, { withFileTypes: true });
    const files = entries.filter((e) => e.isFile()).map((e) => e.name.toLowerCase());
    if (files.some((f) => f.endsWith('.h5') || f.endsWith('.hdf5')) && files.includes('room_filelist.txt')) return 's3dis-hdf5-folder';
    if (files.some((f) => f.endsWith('.ply'))) return 'ply-folder';
    for (const e of entries) {
      if (e.isDirectory() && (await isDir(join(path, e.name, 'Annotations')))) return 's3dis-area';
    }
    try {
      await listScenes('pointcept', path);
      return 'pointcept-folder';
    } catch {
      throw new PointCloudFormatError(
        path,
        'no point clouds found: expected a Pointcept scene (coord.npy), an S3DIS room (Annotations/) or area, a ScanNet scan (<scene>_vh_clean_2.ply), .ply files, or PointNet HDF5 blocks (*.h5 + room_filelist.txt)',
      );
    }
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.ply') return (await scanNetMeshPath(path)) ? 'scannet-scan' : 'ply';
  if (ext === '.pcd') return 'pcd';
  if (ext === '.h5' || ext === '.hdf5') return 'hdf5';
  if (ext === '.npy') {
    if (basename(path) === 'coord.npy') return 'pointcept-scene';
    throw new PointCloudFormatError(path, 'a single .npy array is not a point cloud: give its Pointcept scene folder (the one with coord.npy)');
  }
  throw new PointCloudFormatError(path, `unknown point-cloud file type '${ext || '(none)'}' (expected .ply, .pcd, .h5/.hdf5, a coord.npy, or a folder)`);
}

/**
 * Reads a PLY, PCD, HDF5 point set (one scene per shape or block), a Pointcept scene folder
 * (or its coord.npy), a ScanNet scan, an S3DIS room or area, or a folder of such scenes.
 */
export async function readPointCloud(path: string): Promise<PointCloudBatch> {
  const kind = await detectPointCloudKind(path);
  switch (kind) {
    case 'ply':
      return readPly(path);
    case 'pcd':
      return readPcd(path);
    case 'hdf5':
      return pointSetToBatch(await readHdf5PointSet(path), path);
    case 'pointcept-scene': {
      const { coord, color, normal, label, offset } = await readPointceptScene(basename(path) === 'coord.npy' ? dirname(path) : path);
      return { coord, offset, ...(color ? { color } : {}), ...(normal ? { normal } : {}), ...(label ? { label } : {}) };
    }
    case 'scannet-scan': {
      const { coord, color, normal, label, offset } = await readScanNetScan(path);
      return { coord, offset, ...(color ? { color } : {}), ...(normal ? { normal } : {}), ...(label ? { label } : {}) };
    }
    case 's3dis-room': {
      const { coord, color, label, offset } = await readS3disRoom(path);
      return { coord, color: color!, label: label!, offset };
    }
    case 's3dis-area':
      return (await readS3disArea(path)).batch;
    default: {
      const scenes = await listScenes(FOLDER_KINDS[kind]!, path);
      return concatScenes(await Promise.all(scenes.map(loadScene)));
    }
  }
}

/** Writes PLY or PCD by extension (all scenes of the batch together). */
export async function writePointCloud(
  path: string,
  cloud: PointCloudBatch,
  options: { plyFormat?: PlyFormat; pcdData?: PcdDataFormat } = {},
): Promise<void> {
  const ext = extname(path).toLowerCase();
  if (ext === '.ply') return writePly(path, cloud, options.plyFormat ? { format: options.plyFormat } : {});
  if (ext === '.pcd') return writePcd(path, cloud, options.pcdData ?? 'binary_compressed');
  throw new PointCloudFormatError(path, `cannot write '${ext || '(none)'}': use .ply or .pcd`);
}
