/**
 * Seeded point-cloud augmentations, each applied per scene of a batch (every scene draws its
 * own angle, scale, flips, crop centre ...), in the spirit of Pointcept's transforms.
 * Each returns a new batch and never changes its input; point-removing ones (crop, dropout)
 * also return the kept input indices so any other per-point data can follow.
 */
import type { Rng } from '@kiln/tensor';
import { type PointCloudBatch, gatherPoints } from './point-cloud.js';

function copyGeometry(batch: PointCloudBatch): PointCloudBatch {
  const out: PointCloudBatch = { ...batch, coord: batch.coord.slice() };
  if (batch.normal) out.normal = batch.normal.slice();
  return out;
}

function sceneBounds(coord: Float32Array, start: number, end: number): [number, number, number] {
  let x0 = Number.POSITIVE_INFINITY;
  let y0 = Number.POSITIVE_INFINITY;
  let z0 = Number.POSITIVE_INFINITY;
  let x1 = Number.NEGATIVE_INFINITY;
  let y1 = Number.NEGATIVE_INFINITY;
  let z1 = Number.NEGATIVE_INFINITY;
  for (let p = start; p < end; p++) {
    const x = coord[3 * p]!;
    const y = coord[3 * p + 1]!;
    const z = coord[3 * p + 2]!;
    if (x < x0) x0 = x;
    if (x > x1) x1 = x;
    if (y < y0) y0 = y;
    if (y > y1) y1 = y;
    if (z < z0) z0 = z;
    if (z > z1) z1 = z;
  }
  return [(x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2];
}

/** Multiplies points [start, end) (and normals) by the 3×3 row-major matrix m about centre c. */
function transformScene(batch: PointCloudBatch, start: number, end: number, m: number[], c: [number, number, number]): void {
  const { coord, normal } = batch;
  for (let p = start; p < end; p++) {
    const x = coord[3 * p]! - c[0];
    const y = coord[3 * p + 1]! - c[1];
    const z = coord[3 * p + 2]! - c[2];
    coord[3 * p] = m[0]! * x + m[1]! * y + m[2]! * z + c[0];
    coord[3 * p + 1] = m[3]! * x + m[4]! * y + m[5]! * z + c[1];
    coord[3 * p + 2] = m[6]! * x + m[7]! * y + m[8]! * z + c[2];
    if (normal) {
      const a = normal[3 * p]!;
      const b = normal[3 * p + 1]!;
      const d = normal[3 * p + 2]!;
      normal[3 * p] = m[0]! * a + m[1]! * b + m[2]! * d;
      normal[3 * p + 1] = m[3]! * a + m[4]! * b + m[5]! * d;
      normal[3 * p + 2] = m[6]! * a + m[7]! * b + m[8]! * d;
    }
  }
}

function forEachScene(batch: PointCloudBatch, fn: (start: number, end: number, scene: number) => void): void {
  let start = 0;
  for (let s = 0; s < batch.offset.length; s++) {
    fn(start, batch.offset[s]!, s);
    start = batch.offset[s]!;
  }
}

export interface RotateOptions {
  /** Angle range about z in radians (default [−π, π]). */
  angle?: [number, number];
  /** Largest tilt about x and y in radians (default π/64, Pointcept's x/y rotation). 0 = none. */
  tilt?: number;
}

/** Random rotation about z (and small tilts about x, y) around each scene's bounding-box centre. */
export function randomRotate(batch: PointCloudBatch, rng: Rng, options: RotateOptions = {}): PointCloudBatch {
  const [a0, a1] = options.angle ?? [-Math.PI, Math.PI];
  const tilt = options.tilt ?? Math.PI / 64;
  const out = copyGeometry(batch);
  forEachScene(out, (start, end) => {
    const t = a0 + (a1 - a0) * rng.next();
    const ax = tilt * (2 * rng.next() - 1);
    const ay = tilt * (2 * rng.next() - 1);
    const [cz, sz] = [Math.cos(t), Math.sin(t)];
    const [cx, sx] = [Math.cos(ax), Math.sin(ax)];
    const [cy, sy] = [Math.cos(ay), Math.sin(ay)];
    // R = Rz · Ry · Rx
    const m = [
      cz * cy,
      cz * sy * sx - sz * cx,
      cz * sy * cx + sz * sx,
      sz * cy,
      sz * sy * sx + cz * cx,
      sz * sy * cx - cz * sx,
      -sy,
      cy * sx,
      cy * cx,
    ];
    transformScene(out, start, end, m, sceneBounds(out.coord, start, end));
  });
  return out;
}

export interface ScaleOptions {
  /** Scale range (default [0.9, 1.1]). */
  range?: [number, number];
  /** Draw a separate factor per axis (default false). */
  anisotropic?: boolean;
}

/** Random scaling about the origin, as Pointcept's RandomScale (normals are renormalised). */
export function randomScale(batch: PointCloudBatch, rng: Rng, options: ScaleOptions = {}): PointCloudBatch {
  const [lo, hi] = options.range ?? [0.9, 1.1];
  if (!(lo > 0 && hi >= lo)) throw new RangeError(`randomScale: range must be 0 < low ≤ high, got [${lo}, ${hi}]`);
  const out = copyGeometry(batch);
  forEachScene(out, (start, end) => {
    const sx = lo + (hi - lo) * rng.next();
    const sy = options.anisotropic ? lo + (hi - lo) * rng.next() : sx;
    const sz = options.anisotropic ? lo + (hi - lo) * rng.next() : sx;
    for (let p = start; p < end; p++) {
      out.coord[3 * p]! *= sx;
      out.coord[3 * p + 1]! *= sy;
      out.coord[3 * p + 2]! *= sz;
      if (out.normal && options.anisotropic) {
        // normals transform by the inverse transpose
        const a = out.normal[3 * p]! / sx;
        const b = out.normal[3 * p + 1]! / sy;
        const c = out.normal[3 * p + 2]! / sz;
        const l = Math.hypot(a, b, c) || 1;
        out.normal[3 * p] = a / l;
        out.normal[3 * p + 1] = b / l;
        out.normal[3 * p + 2] = c / l;
      }
    }
  });
  return out;
}

/** Mirrors x and y independently with probability p each (default 0.5), about each scene's centre. */
export function randomFlip(batch: PointCloudBatch, rng: Rng, options: { p?: number } = {}): PointCloudBatch {
  const prob = options.p ?? 0.5;
  const out = copyGeometry(batch);
  forEachScene(out, (start, end) => {
    const fx = rng.next() < prob ? -1 : 1;
    const fy = rng.next() < prob ? -1 : 1;
    transformScene(out, start, end, [fx, 0, 0, 0, fy, 0, 0, 0, 1], sceneBounds(out.coord, start, end));
  });
  return out;
}

/** Adds clipped Gaussian noise to coordinates (Pointcept RandomJitter: sigma 0.01, clip 0.05). */
export function randomJitter(batch: PointCloudBatch, rng: Rng, options: { sigma?: number; clip?: number } = {}): PointCloudBatch {
  const sigma = options.sigma ?? 0.01;
  const clip = options.clip ?? 0.05;
  const out: PointCloudBatch = { ...batch, coord: batch.coord.slice() };
  const noise = rng.normalArray(out.coord.length, 0, sigma);
  for (let i = 0; i < noise.length; i++) {
    const v = noise[i]!;
    out.coord[i]! += Math.max(-clip, Math.min(clip, v));
  }
  return out;
}

export interface ColorJitterOptions {
  /** Largest brightness shift per scene (default 0.1). */
  brightness?: number;
  /** Contrast factor range per scene (default [0.8, 1.2]). */
  contrast?: [number, number];
  /** Per-point, per-channel Gaussian noise std (default 0.02, as ChromaticJitter's 0.05·255 on 0..1 scale is harsher). */
  noise?: number;
}

/** Brightness/contrast per scene and per-point noise on colours, clipped to 0..1. */
export function colorJitter(batch: PointCloudBatch, rng: Rng, options: ColorJitterOptions = {}): PointCloudBatch {
  if (!batch.color) return batch;
  const brightness = options.brightness ?? 0.1;
  const [c0, c1] = options.contrast ?? [0.8, 1.2];
  const noiseStd = options.noise ?? 0.02;
  const color = batch.color.slice();
  const noise = noiseStd > 0 ? rng.normalArray(color.length, 0, noiseStd) : undefined;
  forEachScene(batch, (start, end) => {
    const shift = brightness * (2 * rng.next() - 1);
    const contrast = c0 + (c1 - c0) * rng.next();
    let mean = 0;
    for (let i = 3 * start; i < 3 * end; i++) mean += color[i]!;
    mean /= Math.max(1, 3 * (end - start));
    for (let i = 3 * start; i < 3 * end; i++) {
      const v = (color[i]! - mean) * contrast + mean + shift + (noise ? noise[i]! : 0);
      color[i] = Math.min(1, Math.max(0, v));
    }
  });
  return { ...batch, color };
}

export interface SubsetResult {
  batch: PointCloudBatch;
  /** Kept input indices, scene by scene, in input order. */
  index: Int32Array;
}

/** Collects kept indices per scene into one preallocated array, then gathers the points. */
function subset(batch: PointCloudBatch, keep: (start: number, end: number, out: Int32Array, at: number) => number): SubsetResult {
  const kept = new Int32Array(batch.coord.length / 3);
  const sizes = new Int32Array(batch.offset.length);
  let at = 0;
  forEachScene(batch, (start, end, s) => {
    const next = keep(start, end, kept, at);
    sizes[s] = next - at;
    at = next;
  });
  const index = kept.slice(0, at);
  return { batch: gatherPoints(batch, index, sizes), index };
}

/**
 * Keeps the `maxPoints` points nearest to a random point of each scene (Pointcept's SphereCrop
 * in 'random' mode); scenes with fewer points are kept whole. Kept points stay in input order.
 */
export function randomCrop(batch: PointCloudBatch, rng: Rng, options: { maxPoints: number }): SubsetResult {
  const { maxPoints } = options;
  if (!Number.isInteger(maxPoints) || maxPoints < 1) throw new RangeError(`randomCrop: maxPoints must be a positive integer, got ${maxPoints}`);
  const { coord } = batch;
  return subset(batch, (start, end, out, at) => {
    const n = end - start;
    let w = at;
    if (n <= maxPoints) {
      for (let p = start; p < end; p++) out[w++] = p;
      return w;
    }
    const c = start + rng.int(0, n);
    const cx = coord[3 * c]!;
    const cy = coord[3 * c + 1]!;
    const cz = coord[3 * c + 2]!;
    const dist = new Float64Array(n);
    for (let p = start; p < end; p++) {
      const dx = coord[3 * p]! - cx;
      const dy = coord[3 * p + 1]! - cy;
      const dz = coord[3 * p + 2]! - cz;
      dist[p - start] = dx * dx + dy * dy + dz * dz;
    }
    const sorted = dist.slice().sort();
    const threshold = sorted[maxPoints - 1]!;
    // Everything strictly inside, then ties at the threshold in input order until full.
    let inside = 0;
    for (let i = 0; i < n; i++) if (dist[i]! < threshold) inside++;
    let ties = maxPoints - inside;
    for (let i = 0; i < n; i++) {
      const d = dist[i]!;
      if (d < threshold) out[w++] = start + i;
      else if (d === threshold && ties > 0) {
        out[w++] = start + i;
        ties--;
      }
    }
    return w;
  });
}

/**
 * With probability p per scene, drops a fraction `ratio` of its points uniformly at random
 * (Pointcept's RandomDropout: ratio 0.2, p 0.2). Kept points stay in input order.
 */
export function randomDropout(batch: PointCloudBatch, rng: Rng, options: { ratio?: number; p?: number } = {}): SubsetResult {
  const ratio = options.ratio ?? 0.2;
  const p = options.p ?? 0.2;
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`randomDropout: ratio must be in [0, 1), got ${ratio}`);
  return subset(batch, (start, end, out, at) => {
    const n = end - start;
    let w = at;
    if (rng.next() >= p) {
      for (let q = start; q < end; q++) out[w++] = q;
      return w;
    }
    const keepCount = Math.max(1, Math.floor(n * (1 - ratio)));
    const perm = rng.permutation(n);
    const mask = new Uint8Array(n);
    for (let i = 0; i < keepCount; i++) mask[perm[i]!] = 1;
    for (let i = 0; i < n; i++) if (mask[i]) out[w++] = start + i;
    return w;
  });
}

export interface AugmentOptions {
  rotate?: RotateOptions | false;
  scale?: ScaleOptions | false;
  flip?: { p?: number } | false;
  jitter?: { sigma?: number; clip?: number } | false;
  color?: ColorJitterOptions | false;
  dropout?: { ratio?: number; p?: number } | false;
  crop?: { maxPoints: number } | false;
}

/**
 * The usual training chain: dropout → rotate (z + tilt) → scale → flip → jitter → colour →
 * crop. Pass `false` to skip a step. Returns the batch and the kept input indices.
 */
export function augment(batch: PointCloudBatch, rng: Rng, options: AugmentOptions = {}): SubsetResult {
  let b = batch;
  let index = new Int32Array(batch.coord.length / 3);
  for (let i = 0; i < index.length; i++) index[i] = i;
  const follow = (r: SubsetResult) => {
    b = r.batch;
    const composed = new Int32Array(r.index.length);
    for (let i = 0; i < composed.length; i++) composed[i] = index[r.index[i]!]!;
    index = composed;
  };
  if (options.dropout !== false) follow(randomDropout(b, rng, options.dropout ?? {}));
  if (options.rotate !== false) b = randomRotate(b, rng, options.rotate ?? {});
  if (options.scale !== false) b = randomScale(b, rng, options.scale ?? {});
  if (options.flip !== false) b = randomFlip(b, rng, options.flip ?? {});
  if (options.jitter !== false) b = randomJitter(b, rng, options.jitter ?? {});
  if (options.color !== false) b = colorJitter(b, rng, options.color ?? {});
  if (options.crop) follow(randomCrop(b, rng, options.crop));
  return { batch: b, index };
}
