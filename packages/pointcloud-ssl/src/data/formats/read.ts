/**
 * One entry point for "my own data": picks the reader from the path (extension, or a folder
 * with Annotations/ for S3DIS) and returns a PointCloudBatch.
 */
import { stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { PointCloudBatch } from '../point-cloud.js';
import { pointSetToBatch, readHdf5PointSet } from './hdf5.js';
import { type PcdDataFormat, readPcd, writePcd } from './pcd.js';
import { type PlyFormat, readPly, writePly } from './ply.js';
import { readS3disArea, readS3disRoom } from './s3dis.js';
import { PointCloudFormatError } from './text.js';

export type PointCloudFileKind = 'ply' | 'pcd' | 'hdf5' | 's3dis-room' | 's3dis-area';

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** What `readPointCloud` would do with `path`. */
export async function detectPointCloudKind(path: string): Promise<PointCloudFileKind> {
  if (await isDir(path)) {
    if (await isDir(join(path, 'Annotations'))) return 's3dis-room';
    return 's3dis-area';
  }
  const ext = extname(path).toLowerCase();
  if (ext === '.ply') return 'ply';
  if (ext === '.pcd') return 'pcd';
  if (ext === '.h5' || ext === '.hdf5') return 'hdf5';
  throw new PointCloudFormatError(path, `unknown point-cloud file type '${ext || '(none)'}' (expected .ply, .pcd, .h5/.hdf5 or an S3DIS folder)`);
}

/** Reads a PLY, PCD, HDF5 point set (one scene per shape) or an S3DIS room/area folder. */
export async function readPointCloud(path: string): Promise<PointCloudBatch> {
  switch (await detectPointCloudKind(path)) {
    case 'ply':
      return readPly(path);
    case 'pcd':
      return readPcd(path);
    case 'hdf5':
      return pointSetToBatch(await readHdf5PointSet(path));
    case 's3dis-room': {
      const { coord, color, label, offset } = await readS3disRoom(path);
      return { coord, color: color!, label: label!, offset };
    }
    case 's3dis-area':
      return (await readS3disArea(path)).batch;
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
