/**
 * Pointcept's data transforms, by Pointcept's names, parameters (snake_case, as in its config
 * files) and defaults, each acting on one scene's `PointSample` (Pointcept's `data_dict`).
 * Colours are in Pointcept's raw 0–255 scale until `NormalizeColor` divides them by 255, so a
 * pipeline transcribed from a Pointcept config behaves the same. Randomness comes from the
 * `Rng` handed to `apply`, drawn in Pointcept's order:
 * `random.random()` / `np.random.rand()` → `rng.next()`, `np.random.uniform(a, b)` →
 * `a + (b − a)·rng.next()`, `np.random.randn` → `rng.normalArray`, `np.random.randint(n)` →
 * `rng.int(0, n)`, `np.random.choice(n, k, replace=False)` → the first k of a permutation.
 *
 * Point-selecting transforms (GridSample, SphereCrop, RandomDropout) gather every per-point
 * array of the sample (Pointcept's `index_operator`), including `index`, which traces each
 * point back to the scene as loaded (test fragments vote through it).
 */
import type { Rng } from '@kiln/tensor';
import { gridSample, gridSampleParts } from './grid-sample.js';
import type { PointCloudBatch } from './point-cloud.js';

/** One scene as the transforms see it (Pointcept's data_dict). */
export interface PointSample {
  coord: Float32Array;
  /** 0–255 until NormalizeColor, 0–1 after. */
  color?: Float32Array;
  normal?: Float32Array;
  /** Semantic label per point, -1 = ignore. */
  segment?: Int32Array;
  instance?: Int32Array;
  /** Grid coordinates of GridSample(return_grid_coord=True). */
  gridCoord?: Int32Array;
  /** Each point's index in the scene as loaded. */
  index?: Int32Array;
}

export interface Transform {
  readonly type: string;
  apply(sample: PointSample, rng: Rng): PointSample;
}

const pointCount = (s: PointSample) => s.coord.length / 3;

/** Pointcept's index_operator: every per-point array gathered by `idx`. */
export function selectPoints(sample: PointSample, idx: Int32Array): PointSample {
  const m = idx.length;
  const take3 = (a: Float32Array) => {
    const out = new Float32Array(3 * m);
    for (let j = 0; j < m; j++) {
      const i = idx[j]!;
      out[3 * j] = a[3 * i]!;
      out[3 * j + 1] = a[3 * i + 1]!;
      out[3 * j + 2] = a[3 * i + 2]!;
    }
    return out;
  };
  const take1 = (a: Int32Array) => {
    const out = new Int32Array(m);
    for (let j = 0; j < m; j++) out[j] = a[idx[j]!]!;
    return out;
  };
  const out: PointSample = { coord: take3(sample.coord) };
  if (sample.color) out.color = take3(sample.color);
  if (sample.normal) out.normal = take3(sample.normal);
  if (sample.segment) out.segment = take1(sample.segment);
  if (sample.instance) out.instance = take1(sample.instance);
  if (sample.index) out.index = take1(sample.index);
  if (sample.gridCoord) {
    const g = new Int32Array(3 * m);
    for (let j = 0; j < m; j++) for (let k = 0; k < 3; k++) g[3 * j + k] = sample.gridCoord[3 * idx[j]! + k]!;
    out.gridCoord = g;
  }
  return out;
}

function minMax(coord: Float32Array): [number[], number[]] {
  const lo = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
  const hi = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (let i = 0; i < coord.length; i += 3) {
    for (let k = 0; k < 3; k++) {
      const v = coord[i + k]!;
      if (v < lo[k]!) lo[k] = v;
      if (v > hi[k]!) hi[k] = v;
    }
  }
  return [lo, hi];
}

// ---------------------------------------------------------------------------------------------
// Parameters: Pointcept's keyword arguments, checked with errors that name the transform.

type Params = Record<string, unknown>;

class ParamReader {
  private used = new Set<string>();
  constructor(
    private readonly type: string,
    private readonly params: Params,
  ) {}
  private fail(key: string, want: string): never {
    throw new Error(`${this.type}: parameter ${key} = ${JSON.stringify(this.params[key])}: ${want}`);
  }
  private get(key: string): unknown {
    this.used.add(key);
    return this.params[key];
  }
  number(key: string, fallback: number, check: (v: number) => boolean = Number.isFinite, want = 'must be a finite number'): number {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) this.fail(key, want);
    return v as number;
  }
  optionalNumber(key: string, check: (v: number) => boolean, want: string): number | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) this.fail(key, want);
    return v as number;
  }
  boolean(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false');
    return v as boolean;
  }
  choice<T extends string>(key: string, fallback: T, values: readonly T[]): T {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(key, `must be one of ${values.map((x) => `'${x}'`).join(', ')}`);
    return v as T;
  }
  pair(key: string, fallback: [number, number]): [number, number] {
    const v = this.get(key);
    if (v === undefined || v === null) return fallback;
    if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || v[0] > v[1]) this.fail(key, 'must be [low, high] with low ≤ high');
    return v as [number, number];
  }
  vector3(key: string): [number, number, number] | null {
    const v = this.get(key);
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) this.fail(key, 'must be [x, y, z] or null');
    return v as [number, number, number];
  }
  /** Refuses parameters the transform does not have (a typo would otherwise be ignored). */
  done(): void {
    const unknown = Object.keys(this.params).find((k) => k !== 'type' && !this.used.has(k));
    if (unknown) throw new Error(`${this.type}: unknown parameter '${unknown}' (parameters: ${[...this.used].join(', ') || 'none'})`);
  }
}

// ---------------------------------------------------------------------------------------------
// The transforms

/** CenterShift(apply_z=True): x and y to their mid-range, z to its minimum (or left alone). */
export class CenterShift implements Transform {
  readonly type = 'CenterShift';
  readonly applyZ: boolean;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.applyZ = r.boolean('apply_z', true);
    r.done();
  }
  apply(s: PointSample): PointSample {
    if (pointCount(s) === 0) return s;
    const [lo, hi] = minMax(s.coord);
    const shift = [(lo[0]! + hi[0]!) / 2, (lo[1]! + hi[1]!) / 2, this.applyZ ? lo[2]! : 0];
    const coord = new Float32Array(s.coord.length);
    for (let i = 0; i < coord.length; i += 3) for (let k = 0; k < 3; k++) coord[i + k] = s.coord[i + k]! - shift[k]!;
    return { ...s, coord };
  }
}

/** NormalizeColor(): colour / 255. */
export class NormalizeColor implements Transform {
  readonly type = 'NormalizeColor';
  constructor(params: Params = {}) {
    new ParamReader(this.type, params).done();
  }
  apply(s: PointSample): PointSample {
    if (!s.color) return s;
    return { ...s, color: s.color.map((v) => v / 255) };
  }
}

function rotationMatrix(axis: 'x' | 'y' | 'z', angle: number): number[] {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  if (axis === 'x') return [1, 0, 0, 0, c, -s, 0, s, c];
  if (axis === 'y') return [c, 0, s, 0, 1, 0, -s, 0, c];
  return [c, -s, 0, s, c, 0, 0, 0, 1];
}

function rotate(a: Float32Array, m: number[], center: number[]): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i += 3) {
    const x = a[i]! - center[0]!;
    const y = a[i + 1]! - center[1]!;
    const z = a[i + 2]! - center[2]!;
    out[i] = m[0]! * x + m[1]! * y + m[2]! * z + center[0]!;
    out[i + 1] = m[3]! * x + m[4]! * y + m[5]! * z + center[1]!;
    out[i + 2] = m[6]! * x + m[7]! * y + m[8]! * z + center[2]!;
  }
  return out;
}

/**
 * RandomRotate(angle=[-1, 1], center=None, axis='z', always_apply=False, p=0.5): with
 * probability p, rotation by uniform(angle)·π about `axis` through `center` (default: the
 * bounding-box centre); normals rotate too.
 */
export class RandomRotate implements Transform {
  readonly type = 'RandomRotate';
  readonly angle: [number, number];
  readonly axis: 'x' | 'y' | 'z';
  readonly p: number;
  readonly center: [number, number, number] | null;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.angle = r.pair('angle', [-1, 1]);
    this.center = r.vector3('center');
    this.axis = r.choice('axis', 'z', ['x', 'y', 'z'] as const);
    const always = r.boolean('always_apply', false);
    const p = r.number('p', 0.5, (v) => v >= 0 && v <= 1, 'must be in [0, 1]');
    this.p = always ? 1 : p;
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    if (rng.next() > this.p) return s;
    const angle = (this.angle[0] + (this.angle[1] - this.angle[0]) * rng.next()) * Math.PI;
    const m = rotationMatrix(this.axis, angle);
    let center: number[] = this.center ?? [0, 0, 0];
    if (!this.center && pointCount(s) > 0) {
      const [lo, hi] = minMax(s.coord);
      center = [0, 1, 2].map((k) => (lo[k]! + hi[k]!) / 2);
    }
    const out: PointSample = { ...s, coord: rotate(s.coord, m, center) };
    if (s.normal) out.normal = rotate(s.normal, m, [0, 0, 0]);
    return out;
  }
}

/** RandomScale(scale=[0.95, 1.05], anisotropic=False): coordinates × uniform(scale), about the origin. */
export class RandomScale implements Transform {
  readonly type = 'RandomScale';
  readonly scale: [number, number];
  readonly anisotropic: boolean;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.scale = r.pair('scale', [0.95, 1.05]);
    this.anisotropic = r.boolean('anisotropic', false);
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    const draw = () => this.scale[0] + (this.scale[1] - this.scale[0]) * rng.next();
    const f = this.anisotropic ? [draw(), draw(), draw()] : [draw()];
    const coord = new Float32Array(s.coord.length);
    for (let i = 0; i < coord.length; i += 3) for (let k = 0; k < 3; k++) coord[i + k] = s.coord[i + k]! * f[this.anisotropic ? k : 0]!;
    // Pointcept leaves normals as they are, even for anisotropic scaling.
    return { ...s, coord };
  }
}

/** RandomFlip(p=0.5): x negated with probability p, then y with probability p (normals too). */
export class RandomFlip implements Transform {
  readonly type = 'RandomFlip';
  readonly p: number;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.p = r.number('p', 0.5, (v) => v >= 0 && v <= 1, 'must be in [0, 1]');
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    const flipX = rng.next() < this.p;
    const flipY = rng.next() < this.p;
    if (!flipX && !flipY) return s;
    const flip = (a: Float32Array) => {
      const out = a.slice();
      for (let i = 0; i < out.length; i += 3) {
        if (flipX) out[i] = -out[i]!;
        if (flipY) out[i + 1] = -out[i + 1]!;
      }
      return out;
    };
    const out: PointSample = { ...s, coord: flip(s.coord) };
    if (s.normal) out.normal = flip(s.normal);
    return out;
  }
}

/** RandomJitter(sigma=0.01, clip=0.05): coordinates + clip(sigma · N(0, 1), ±clip). */
export class RandomJitter implements Transform {
  readonly type = 'RandomJitter';
  readonly sigma: number;
  readonly clip: number;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.sigma = r.number('sigma', 0.01, (v) => v >= 0, 'must be ≥ 0');
    this.clip = r.number('clip', 0.05, (v) => v > 0, 'must be > 0 (Pointcept asserts clip > 0)');
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    const noise = rng.normalArray(s.coord.length);
    const coord = new Float32Array(s.coord.length);
    for (let i = 0; i < coord.length; i++) coord[i] = s.coord[i]! + Math.max(-this.clip, Math.min(this.clip, this.sigma * noise[i]!));
    return { ...s, coord };
  }
}

/**
 * ChromaticAutoContrast(p=0.2, blend_factor=None): with probability p, stretches each colour
 * channel to 0–255 over the scene and blends it in by blend_factor (uniform(0, 1) when None);
 * nothing happens when every channel is flat.
 */
export class ChromaticAutoContrast implements Transform {
  readonly type = 'ChromaticAutoContrast';
  readonly p: number;
  readonly blendFactor: number | null;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.p = r.number('p', 0.2, (v) => v >= 0 && v <= 1, 'must be in [0, 1]');
    this.blendFactor = r.optionalNumber('blend_factor', (v) => v >= 0 && v <= 1, 'must be in [0, 1] or null');
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    if (!s.color || !(rng.next() < this.p)) return s;
    const [lo, hi] = minMax(s.color);
    const diff = [0, 1, 2].map((k) => hi[k]! - lo[k]!);
    if (!diff.some((d) => d > 0)) return s;
    const scale = diff.map((d) => (d > 0 ? 255 / d : 1));
    const blend = this.blendFactor ?? rng.next();
    const color = new Float32Array(s.color.length);
    for (let i = 0; i < color.length; i += 3) {
      for (let k = 0; k < 3; k++) {
        const v = s.color[i + k]!;
        color[i + k] = (1 - blend) * v + blend * (v - lo[k]!) * scale[k]!;
      }
    }
    return { ...s, color };
  }
}

/** ChromaticTranslation(p=0.95, ratio=0.05): with probability p, one shift per channel in ±255·ratio, clipped to 0–255. */
export class ChromaticTranslation implements Transform {
  readonly type = 'ChromaticTranslation';
  readonly p: number;
  readonly ratio: number;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.p = r.number('p', 0.95, (v) => v >= 0 && v <= 1, 'must be in [0, 1]');
    this.ratio = r.number('ratio', 0.05, (v) => v >= 0, 'must be ≥ 0');
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    if (!s.color || !(rng.next() < this.p)) return s;
    const tr = [0, 1, 2].map(() => (rng.next() - 0.5) * 255 * 2 * this.ratio);
    const color = new Float32Array(s.color.length);
    for (let i = 0; i < color.length; i++) color[i] = Math.min(255, Math.max(0, tr[i % 3]! + s.color[i]!));
    return { ...s, color };
  }
}

/** ChromaticJitter(p=0.95, std=0.005): with probability p, per-point noise N(0, (255·std)²), clipped to 0–255. */
export class ChromaticJitter implements Transform {
  readonly type = 'ChromaticJitter';
  readonly p: number;
  readonly std: number;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.p = r.number('p', 0.95, (v) => v >= 0 && v <= 1, 'must be in [0, 1]');
    this.std = r.number('std', 0.005, (v) => v >= 0, 'must be ≥ 0');
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    if (!s.color || !(rng.next() < this.p)) return s;
    const noise = rng.normalArray(s.color.length);
    const color = new Float32Array(s.color.length);
    for (let i = 0; i < color.length; i++) color[i] = Math.min(255, Math.max(0, noise[i]! * this.std * 255 + s.color[i]!));
    return { ...s, color };
  }
}

/**
 * RandomDropout(dropout_ratio=0.2, dropout_application_ratio=0.5): with probability
 * dropout_application_ratio keeps int(n·(1 − ratio)) points chosen without replacement (in
 * the order drawn, as np.random.choice returns them).
 */
export class RandomDropout implements Transform {
  readonly type = 'RandomDropout';
  readonly ratio: number;
  readonly applicationRatio: number;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.ratio = r.number('dropout_ratio', 0.2, (v) => v >= 0 && v < 1, 'must be in [0, 1)');
    this.applicationRatio = r.number('dropout_application_ratio', 0.5, (v) => v >= 0 && v <= 1, 'must be in [0, 1]');
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    if (!(rng.next() < this.applicationRatio)) return s;
    const n = pointCount(s);
    const keep = Math.floor(n * (1 - this.ratio));
    return selectPoints(s, rng.permutation(n).slice(0, keep));
  }
}

/**
 * GridSample(grid_size=0.05, hash_type='fnv', mode='train', return_grid_coord=False, …):
 * one point per occupied cell of `floor(coord / grid_size)` (see grid-sample.ts for the cell
 * order and the choice of member). `apply` is train mode; `fragments` is test mode, one
 * sample per part (Pointcept returns the list of parts), each with `index`.
 */
export class GridSample implements Transform {
  readonly type = 'GridSample';
  readonly gridSize: number;
  readonly mode: 'train' | 'test';
  readonly returnGridCoord: boolean;
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.gridSize = r.number('grid_size', 0.05, (v) => v > 0, 'must be > 0');
    // Cells are grouped by their exact key here; any hash names the same cells.
    r.choice('hash_type', 'fnv', ['fnv', 'ravel'] as const);
    this.mode = r.choice('mode', 'train', ['train', 'test'] as const);
    this.returnGridCoord = r.boolean('return_grid_coord', false);
    r.boolean('return_inverse', false);
    r.done();
  }
  private asBatch(s: PointSample): PointCloudBatch {
    return { coord: s.coord, offset: Int32Array.of(pointCount(s)) };
  }
  apply(s: PointSample, rng: Rng): PointSample {
    if (this.mode === 'test') throw new Error("GridSample: mode 'test' makes fragments, not one sample; use it as the test voxelization (fragments), not in a transform list");
    const r = gridSample(this.asBatch(s), { gridSize: this.gridSize, mode: 'train', rng });
    const out = selectPoints(s, r.index);
    if (this.returnGridCoord) out.gridCoord = r.gridCoord;
    return out;
  }
  /** Test mode: part i keeps member i mod count of every cell; the parts cover every point. */
  fragments(s: PointSample): PointSample[] {
    const r = gridSampleParts(this.asBatch(s), this.gridSize);
    const base = s.index ? s : { ...s, index: Int32Array.from({ length: pointCount(s) }, (_, i) => i) };
    return r.parts.map((idx) => {
      const out = selectPoints(base, idx);
      if (this.returnGridCoord) out.gridCoord = r.gridCoord;
      return out;
    });
  }
}

/**
 * SphereCrop(point_max=80000, sample_rate=None, mode='random'): when the scene has more than
 * point_max points (or int(sample_rate·n) when given), keeps the point_max nearest to a centre
 * — a random point ('random') or point n // 2 ('center') — in order of distance (ties in input
 * order).
 */
export class SphereCrop implements Transform {
  readonly type = 'SphereCrop';
  readonly pointMax: number;
  readonly sampleRate: number | null;
  readonly mode: 'random' | 'center';
  constructor(params: Params = {}) {
    const r = new ParamReader(this.type, params);
    this.pointMax = r.number('point_max', 80000, (v) => Number.isInteger(v) && v > 0, 'must be a positive integer');
    this.sampleRate = r.optionalNumber('sample_rate', (v) => v > 0 && v <= 1, 'must be in (0, 1] or null');
    const mode = r.choice('mode', 'random', ['random', 'center', 'all', 'given'] as const);
    if (mode === 'all' || mode === 'given') throw new Error(`SphereCrop: mode '${mode}' is not supported ('random' and 'center' are; Pointcept's 'all' is gone and 'given' needs correspondences)`);
    this.mode = mode;
    r.done();
  }
  apply(s: PointSample, rng: Rng): PointSample {
    const n = pointCount(s);
    const pointMax = this.sampleRate !== null ? Math.floor(this.sampleRate * n) : this.pointMax;
    if (n <= pointMax) return s;
    const c = this.mode === 'random' ? rng.int(0, n) : Math.floor(n / 2);
    const cx = s.coord[3 * c]!;
    const cy = s.coord[3 * c + 1]!;
    const cz = s.coord[3 * c + 2]!;
    const dist = new Float64Array(n);
    for (let p = 0; p < n; p++) {
      const dx = s.coord[3 * p]! - cx;
      const dy = s.coord[3 * p + 1]! - cy;
      const dz = s.coord[3 * p + 2]! - cz;
      dist[p] = dx * dx + dy * dy + dz * dz;
    }
    const order = Int32Array.from({ length: n }, (_, i) => i).sort((a, b) => dist[a]! - dist[b]! || a - b);
    return selectPoints(s, order.slice(0, pointMax));
  }
}

// ---------------------------------------------------------------------------------------------
// Building pipelines from Pointcept-style config entries: { type: 'RandomRotate', axis: 'z', … }

/** A transform as a config entry: its Pointcept name in `type`, its keyword arguments beside it. */
export type TransformConfig = { type: string } & Params;

const REGISTRY: Record<string, new (params: Params) => Transform> = {
  CenterShift,
  NormalizeColor,
  RandomRotate,
  RandomScale,
  RandomFlip,
  RandomJitter,
  ChromaticAutoContrast,
  ChromaticTranslation,
  ChromaticJitter,
  RandomDropout,
  GridSample,
  SphereCrop,
};

export const TRANSFORM_TYPES = Object.keys(REGISTRY);

export function buildTransform(config: TransformConfig): Transform {
  const make = REGISTRY[config?.type];
  if (!make) throw new Error(`unknown transform '${config?.type}' (transforms: ${TRANSFORM_TYPES.join(', ')})`);
  const { type: _type, ...params } = config;
  return new make(params);
}

/** Pointcept's Compose: the transforms applied in turn. */
export class Compose implements Transform {
  readonly type = 'Compose';
  readonly transforms: Transform[];
  constructor(configs: readonly (TransformConfig | Transform)[] = []) {
    this.transforms = configs.map((c) => ('apply' in c && typeof c.apply === 'function' ? (c as Transform) : buildTransform(c as TransformConfig)));
  }
  apply(sample: PointSample, rng: Rng): PointSample {
    let s = sample;
    for (const t of this.transforms) s = t.apply(s, rng);
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Between scenes (colour 0–1, label) and samples (colour 0–255, segment)

/** A single-scene batch as a sample: colours to Pointcept's 0–255, labels to `segment`. */
export function sampleFromScene(scene: PointCloudBatch): PointSample {
  const s: PointSample = { coord: scene.coord };
  if (scene.color) s.color = scene.color.map((v) => v * 255);
  if (scene.normal) s.normal = scene.normal;
  if (scene.label) s.segment = scene.label;
  return s;
}

/** A transformed sample as a single-scene batch; its colours must be 0–1 (NormalizeColor ran). */
export function sceneFromSample(s: PointSample, where = 'pipeline output'): PointCloudBatch {
  const n = pointCount(s);
  const out: PointCloudBatch = { coord: s.coord, offset: Int32Array.of(n) };
  if (s.color) {
    for (let i = 0; i < s.color.length; i++) {
      const v = s.color[i]!;
      if (!(v >= 0 && v <= 1)) throw new Error(`${where}: colour ${v} of point ${Math.floor(i / 3)} is outside 0–1: end the pipeline with NormalizeColor`);
    }
    out.color = s.color;
  }
  if (s.normal) out.normal = s.normal;
  if (s.segment) out.label = s.segment;
  return out;
}
