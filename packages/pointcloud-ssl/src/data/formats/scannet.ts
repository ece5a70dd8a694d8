/**
 * ScanNet v2 raw scans: `<scene>/<scene>_vh_clean_2.ply` (the mesh: vertices with x y z and
 * red green blue alpha, faces) and `<scene>_vh_clean_2.labels.ply` (the same vertices with a
 * `label` property holding each vertex's NYU40 class id). Points are the mesh vertices;
 * normals are computed from the faces as Pointcept's `preprocess_scannet.py` does; labels are
 * the NYU40 ids mapped to the 20 benchmark classes, every other id to -1 (ignore).
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { PointCloudBatch } from '../point-cloud.js';
import { type PlyData, parsePly, plyToPointCloud } from './ply.js';
import { PointCloudFormatError, readBytes } from './text.js';

/** The ScanNet benchmark's 20 classes, in label order. */
export const SCANNET20_CLASSES = [
  'wall',
  'floor',
  'cabinet',
  'bed',
  'chair',
  'sofa',
  'table',
  'door',
  'window',
  'bookshelf',
  'picture',
  'counter',
  'desk',
  'curtain',
  'refrigerator',
  'shower curtain',
  'toilet',
  'sink',
  'bathtub',
  'otherfurniture',
] as const;

/** NYU40 id of each of the 20 classes (label k ↔ NYU40 id SCANNET20_NYU40_IDS[k]). */
export const SCANNET20_NYU40_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39] as const;

/** Benchmark label of an NYU40 id (-1 for ids outside the 20 classes, 0 = unannotated included). */
export function nyu40ToScanNet20(id: number): number {
  return (SCANNET20_NYU40_IDS as readonly number[]).indexOf(id);
}

const MESH_SUFFIX = '_vh_clean_2.ply';
const LABEL_SUFFIX = '_vh_clean_2.labels.ply';

export interface ScanNetScan extends PointCloudBatch {
  /** The raw NYU40 id per vertex, when the labels file exists. */
  nyu40?: Int32Array;
  name: string;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The mesh file of a scan given its folder or either of its PLY files; undefined when it is no ScanNet scan. */
export async function scanNetMeshPath(path: string): Promise<string | undefined> {
  if (path.endsWith(LABEL_SUFFIX)) return path.slice(0, -LABEL_SUFFIX.length) + MESH_SUFFIX;
  if (path.endsWith(MESH_SUFFIX)) return path;
  const inside = join(path, `${basename(path)}${MESH_SUFFIX}`);
  return (await isFile(inside)) ? inside : undefined;
}

function faceIndices(ply: PlyData, file: string, vertices: number): Int32Array {
  const face = ply.elements.face;
  if (!face) return new Int32Array(0);
  const list = face.vertex_indices ?? face.vertex_index;
  if (!list || ArrayBuffer.isView(list)) throw new PointCloudFormatError(file, "face element has no 'vertex_indices' list");
  const rows = list.offsets.length - 1;
  const out = new Int32Array(3 * rows);
  for (let f = 0; f < rows; f++) {
    const start = list.offsets[f]!;
    if (list.offsets[f + 1]! - start !== 3) throw new PointCloudFormatError(file, `face ${f} has ${list.offsets[f + 1]! - start} vertices, expected triangles`);
    for (let k = 0; k < 3; k++) {
      const v = list.values[start + k]!;
      if (!(v >= 0 && v < vertices)) throw new PointCloudFormatError(file, `face ${f} refers to vertex ${v}, the mesh has ${vertices}`);
      out[3 * f + k] = v;
    }
  }
  return out;
}

/**
 * Vertex normals as `preprocess_scannet.py` computes them: each face's unit normal weighted by
 * its area, summed per vertex, divided by the length + 1e-8. Vertices on no face get zero.
 */
export function meshVertexNormals(coord: Float32Array, faces: Int32Array): Float32Array {
  const n = coord.length / 3;
  const acc = new Float64Array(3 * n);
  for (let f = 0; f < faces.length; f += 3) {
    const a = faces[f]!;
    const b = faces[f + 1]!;
    const c = faces[f + 2]!;
    const ux = coord[3 * b]! - coord[3 * a]!;
    const uy = coord[3 * b + 1]! - coord[3 * a + 1]!;
    const uz = coord[3 * b + 2]! - coord[3 * a + 2]!;
    const vx = coord[3 * c]! - coord[3 * a]!;
    const vy = coord[3 * c + 1]! - coord[3 * a + 1]!;
    const vz = coord[3 * c + 2]! - coord[3 * a + 2]!;
    const cx = uy * vz - uz * vy;
    const cy = uz * vx - ux * vz;
    const cz = ux * vy - uy * vx;
    // unit normal × area = (e1 × e2) / |e1 × e2| · |e1 × e2| / 2
    for (const v of [a, b, c]) {
      acc[3 * v]! += 0.5 * cx;
      acc[3 * v + 1]! += 0.5 * cy;
      acc[3 * v + 2]! += 0.5 * cz;
    }
  }
  const out = new Float32Array(3 * n);
  for (let v = 0; v < n; v++) {
    const l = Math.sqrt(acc[3 * v]! ** 2 + acc[3 * v + 1]! ** 2 + acc[3 * v + 2]! ** 2) + 1e-8;
    out[3 * v] = acc[3 * v]! / l;
    out[3 * v + 1] = acc[3 * v + 1]! / l;
    out[3 * v + 2] = acc[3 * v + 2]! / l;
  }
  return out;
}

/**
 * Reads a ScanNet v2 scan (its folder, or either PLY file): coordinates, colours (0–1),
 * normals from the mesh, and labels mapped NYU40 → 20 classes when the `.labels.ply` exists.
 */
export async function readScanNetScan(path: string): Promise<ScanNetScan> {
  const mesh = await scanNetMeshPath(path);
  if (!mesh) throw new PointCloudFormatError(path, `not a ScanNet scan: expected <scene>/<scene>${MESH_SUFFIX}`);
  if (!(await isFile(mesh))) throw new PointCloudFormatError(mesh, 'file not found (the scan mesh)');
  const ply = parsePly(await readBytes(mesh), mesh);
  const cloud = plyToPointCloud(ply, mesh);
  const n = cloud.coord.length / 3;
  const scan: ScanNetScan = { coord: cloud.coord, offset: cloud.offset, name: basename(mesh).slice(0, -MESH_SUFFIX.length) };
  if (cloud.color) scan.color = cloud.color;
  scan.normal = meshVertexNormals(cloud.coord, faceIndices(ply, mesh, n));
  const labelsPath = join(dirname(mesh), `${scan.name}${LABEL_SUFFIX}`);
  if (await isFile(labelsPath)) {
    const labels = parsePly(await readBytes(labelsPath), labelsPath);
    const raw = labels.elements.vertex?.label;
    if (!raw || !ArrayBuffer.isView(raw)) throw new PointCloudFormatError(labelsPath, "vertex element has no scalar 'label' property (the NYU40 id)");
    if (raw.length !== n) throw new PointCloudFormatError(labelsPath, `has ${raw.length} vertices, the mesh ${basename(mesh)} has ${n}`);
    const nyu40 = new Int32Array(n);
    const label = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const id = raw[i]!;
      if (!Number.isInteger(id) || id < 0) throw new PointCloudFormatError(labelsPath, `vertex ${i}: label ${id} is not an NYU40 id`);
      nyu40[i] = id;
      label[i] = nyu40ToScanNet20(id);
    }
    scan.nyu40 = nyu40;
    scan.label = label;
  }
  return scan;
}
