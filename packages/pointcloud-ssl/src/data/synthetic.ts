/**
 * The built-in synthetic indoor-scene generator, Kiln's default point-cloud data set.
 *
 * A room is a list of planar quads and cylinders, each tagged with an S3DIS class and an
 * instance: floor, ceiling, walls, beams and columns, doors, windows and boards set into the
 * walls, bookcases with shelves, tables (four legs or a pedestal), chairs (with or without
 * arms), sofas and clutter (boxes, cylinders, spheres on the floor and on tables). Everything
 * a scene draws is random per seed: the room's size, rotation and position; the number,
 * size, pose and style of each object; colours (a per-class palette, hue and brightness
 * shifted per object, plus scene lighting); sampling density per object; and sensor noise.
 * So a chair in one scene does not look like a chair in another — the cross-scene variation
 * the CSP/SPD methods target.
 *
 * Points are spread over surfaces in proportion to area × a per-object density, exactly
 * `points` in total, written straight into typed arrays (no per-point objects).
 */
import { type Rng, createRng } from '@kiln/tensor';
import { type PointCloudBatch, S3DIS_CLASS_ID, type S3disClass, concatScenes } from './point-cloud.js';

export interface SyntheticSceneOptions {
  /** Exact number of points (default 4096). */
  points?: number;
  /** Sensor noise standard deviation in metres; default drawn per scene in [0.002, 0.012]. */
  noise?: number;
  /** Apply a random rotation about z and translation to the whole room (default true). */
  randomPose?: boolean;
}

export interface SyntheticScene extends PointCloudBatch {
  color: Float32Array;
  normal: Float32Array;
  label: Int32Array;
  /** Object instance per point (0 = floor, 1 = ceiling, then one id per object). */
  instance: Int32Array;
  /** Room size [width, depth, height] in metres before the pose. */
  room: [number, number, number];
}

/** A planar parallelogram o + s·u + t·v, s, t ∈ [0, 1]; or a cylinder side when `radius` is set. */
interface Surface {
  cls: number;
  instance: number;
  o: [number, number, number];
  u: [number, number, number];
  v: [number, number, number];
  /** Cylinder: axis along z from o with height u[2]. */
  radius?: number;
  /** Sphere of this radius around o. */
  sphere?: number;
  color: [number, number, number];
  /** Per-point colour variation (texture). */
  colorNoise: number;
  /** Points per square metre, relative. */
  density: number;
}

type Vec3 = [number, number, number];

/** Per-class base colours (0..1). Each object picks one, then shifts it. */
const PALETTE: Record<S3disClass, Vec3[]> = {
  ceiling: [
    [0.92, 0.92, 0.9],
    [0.85, 0.86, 0.88],
    [0.8, 0.78, 0.72],
  ],
  floor: [
    [0.55, 0.4, 0.28],
    [0.45, 0.45, 0.47],
    [0.7, 0.65, 0.55],
    [0.3, 0.32, 0.38],
  ],
  wall: [
    [0.88, 0.86, 0.8],
    [0.78, 0.82, 0.86],
    [0.9, 0.85, 0.7],
    [0.7, 0.75, 0.68],
  ],
  beam: [
    [0.8, 0.8, 0.78],
    [0.6, 0.5, 0.4],
  ],
  column: [
    [0.82, 0.8, 0.76],
    [0.6, 0.6, 0.62],
  ],
  window: [
    [0.55, 0.7, 0.85],
    [0.75, 0.8, 0.85],
    [0.4, 0.45, 0.5],
  ],
  door: [
    [0.5, 0.33, 0.2],
    [0.85, 0.85, 0.82],
    [0.35, 0.25, 0.18],
  ],
  table: [
    [0.6, 0.45, 0.3],
    [0.9, 0.9, 0.88],
    [0.25, 0.25, 0.27],
    [0.72, 0.6, 0.45],
  ],
  chair: [
    [0.15, 0.15, 0.18],
    [0.6, 0.15, 0.12],
    [0.2, 0.3, 0.55],
    [0.55, 0.42, 0.3],
  ],
  sofa: [
    [0.3, 0.35, 0.5],
    [0.5, 0.2, 0.2],
    [0.45, 0.45, 0.42],
    [0.25, 0.4, 0.3],
  ],
  bookcase: [
    [0.45, 0.3, 0.2],
    [0.85, 0.83, 0.78],
    [0.3, 0.3, 0.32],
  ],
  board: [
    [0.95, 0.95, 0.95],
    [0.15, 0.3, 0.2],
    [0.2, 0.2, 0.22],
  ],
  clutter: [
    [0.8, 0.2, 0.2],
    [0.2, 0.6, 0.3],
    [0.9, 0.8, 0.2],
    [0.4, 0.4, 0.8],
    [0.7, 0.7, 0.7],
    [0.2, 0.2, 0.2],
  ],
};

class SceneBuilder {
  readonly surfaces: Surface[] = [];
  private nextInstance = 0;
  constructor(readonly rng: Rng) {}

  uniform(a: number, b: number): number {
    return a + (b - a) * this.rng.next();
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  newInstance(): number {
    return this.nextInstance++;
  }

  /** A colour for one object of class `cls`: palette pick + hue/brightness jitter. */
  objectColor(cls: S3disClass): Vec3 {
    const options = PALETTE[cls];
    const base = options[this.rng.int(0, options.length)]!;
    const bright = this.uniform(0.8, 1.15);
    return base.map((c) => Math.min(1, Math.max(0, c * bright + this.uniform(-0.06, 0.06)))) as Vec3;
  }

  quad(cls: S3disClass, instance: number, o: Vec3, u: Vec3, v: Vec3, color: Vec3, density: number, colorNoise = 0.03): void {
    this.surfaces.push({ cls: S3DIS_CLASS_ID[cls], instance, o, u, v, color, colorNoise, density });
  }

  /**
   * An axis-aligned box in object space (centre c, half sizes h), rotated by `yaw` about the
   * vertical through (px, py). The bottom face is skipped when it rests on something.
   */
  box(
    cls: S3disClass,
    instance: number,
    c: Vec3,
    h: Vec3,
    yaw: number,
    pivot: [number, number],
    color: Vec3,
    density: number,
    skipBottom = true,
  ): void {
    const cos = Math.cos(yaw);
    const sin = Math.sin(yaw);
    const rot = (p: Vec3): Vec3 => {
      const x = p[0] - pivot[0];
      const y = p[1] - pivot[1];
      return [pivot[0] + cos * x - sin * y, pivot[1] + sin * x + cos * y, p[2]];
    };
    const rv = (d: Vec3): Vec3 => [cos * d[0] - sin * d[1], sin * d[0] + cos * d[1], d[2]];
    const [cx, cy, cz] = c;
    const [hx, hy, hz] = h;
    const faces: Array<[Vec3, Vec3, Vec3]> = [
      [[cx - hx, cy - hy, cz + hz], [2 * hx, 0, 0], [0, 2 * hy, 0]], // top
      [[cx - hx, cy - hy, cz - hz], [2 * hx, 0, 0], [0, 0, 2 * hz]], // -y
      [[cx - hx, cy + hy, cz - hz], [2 * hx, 0, 0], [0, 0, 2 * hz]], // +y
      [[cx - hx, cy - hy, cz - hz], [0, 2 * hy, 0], [0, 0, 2 * hz]], // -x
      [[cx + hx, cy - hy, cz - hz], [0, 2 * hy, 0], [0, 0, 2 * hz]], // +x
    ];
    if (!skipBottom) faces.push([[cx - hx, cy - hy, cz - hz], [2 * hx, 0, 0], [0, 2 * hy, 0]]);
    for (const [o, u, v] of faces) this.quad(cls, instance, rot(o), rv(u), rv(v), color, density);
  }

  cylinder(cls: S3disClass, instance: number, base: Vec3, radius: number, height: number, color: Vec3, density: number): void {
    this.surfaces.push({
      cls: S3DIS_CLASS_ID[cls],
      instance,
      o: base,
      u: [0, 0, height],
      v: [0, 0, 0],
      radius,
      color,
      colorNoise: 0.03,
      density,
    });
  }

  sphere(cls: S3disClass, instance: number, centre: Vec3, radius: number, color: Vec3, density: number): void {
    this.surfaces.push({ cls: S3DIS_CLASS_ID[cls], instance, o: centre, u: [0, 0, 0], v: [0, 0, 0], sphere: radius, color, colorNoise: 0.03, density });
  }
}

/** Footprints already used on the floor, to keep furniture from overlapping. */
class FloorPlan {
  private readonly rects: Array<[number, number, number, number]> = [];
  constructor(
    readonly w: number,
    readonly d: number,
  ) {}
  /** Tries to reserve an axis-aligned footprint (of the rotated object's bounding circle). */
  place(b: SceneBuilder, radius: number, margin = 0.05, tries = 12): [number, number] | null {
    for (let t = 0; t < tries; t++) {
      const x = b.uniform(radius + margin, this.w - radius - margin);
      const y = b.uniform(radius + margin, this.d - radius - margin);
      if (!(x > 0 && y > 0)) return null;
      if (this.rects.every(([x0, y0, x1, y1]) => x + radius < x0 || x - radius > x1 || y + radius < y0 || y - radius > y1)) {
        this.rects.push([x - radius, y - radius, x + radius, y + radius]);
        return [x, y];
      }
    }
    return null;
  }
  reserve(x0: number, y0: number, x1: number, y1: number): void {
    this.rects.push([x0, y0, x1, y1]);
  }
}

/** Wall frame: origin at a room corner, `along` unit vector, inward normal, length. */
interface WallFrame {
  o: Vec3;
  along: Vec3;
  inward: Vec3;
  length: number;
}

function walls(w: number, d: number): WallFrame[] {
  return [
    { o: [0, 0, 0], along: [1, 0, 0], inward: [0, 1, 0], length: w },
    { o: [w, 0, 0], along: [0, 1, 0], inward: [-1, 0, 0], length: d },
    { o: [w, d, 0], along: [-1, 0, 0], inward: [0, -1, 0], length: w },
    { o: [0, d, 0], along: [0, -1, 0], inward: [1, 0, 0], length: d },
  ];
}

const add = (a: Vec3, b: Vec3): Vec3 => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const scale = (a: Vec3, s: number): Vec3 => [a[0] * s, a[1] * s, a[2] * s];

/** A rectangle set into wall `f` at distance s along it, z from z0, size (len × ht), `depth` in front of the wall. */
function wallPanel(b: SceneBuilder, cls: S3disClass, f: WallFrame, s: number, z0: number, len: number, ht: number, depth: number, color: Vec3, density: number): void {
  const o = add(add(f.o, scale(f.along, s)), add([0, 0, z0], scale(f.inward, depth)));
  b.quad(cls, b.newInstance(), o, scale(f.along, len), [0, 0, ht], color, density);
}

function buildRoom(b: SceneBuilder): [number, number, number] {
  const w = b.uniform(3.5, 8);
  const d = b.uniform(3, 7);
  const h = b.uniform(2.6, 3.4);
  const plan = new FloorPlan(w, d);
  const dens = () => b.uniform(0.6, 1.6);
  // Floor and ceiling (ceilings are often scanned sparsely).
  b.quad('floor', b.newInstance(), [0, 0, 0], [w, 0, 0], [0, d, 0], b.objectColor('floor'), b.uniform(0.7, 1.3), 0.05);
  b.quad('ceiling', b.newInstance(), [0, 0, h], [w, 0, 0], [0, d, 0], b.objectColor('ceiling'), b.uniform(0.3, 1.0));
  const frames = walls(w, d);
  const wallColor = b.objectColor('wall');
  for (const f of frames) {
    if (b.chance(0.93)) b.quad('wall', b.newInstance(), f.o, scale(f.along, f.length), [0, 0, h], wallColor, b.uniform(0.7, 1.2));
  }
  // Beams across the ceiling, columns in corners or along walls.
  const beams = b.rng.int(0, 3);
  const beamColor = b.objectColor('beam');
  for (let i = 0; i < beams; i++) {
    const bw = b.uniform(0.15, 0.4) / 2;
    const bh = b.uniform(0.2, 0.45) / 2;
    if (b.chance(0.5)) b.box('beam', b.newInstance(), [w / 2, b.uniform(0.5, d - 0.5), h - bh], [w / 2, bw, bh], 0, [0, 0], beamColor, dens());
    else b.box('beam', b.newInstance(), [b.uniform(0.5, w - 0.5), d / 2, h - bh], [bw, d / 2, bh], 0, [0, 0], beamColor, dens());
  }
  const columns = b.rng.int(0, 3);
  const columnColor = b.objectColor('column');
  for (let i = 0; i < columns; i++) {
    const r = b.uniform(0.15, 0.35);
    const corner = b.rng.int(0, 4);
    const cx = corner % 2 === 0 ? r : w - r;
    const cy = corner < 2 ? r : d - r;
    const along = b.chance(0.5) ? [b.uniform(r, w - r), cy] : [cx, b.uniform(r, d - r)];
    const [x, y] = b.chance(0.5) ? [cx, cy] : (along as [number, number]);
    if (b.chance(0.6)) b.box('column', b.newInstance(), [x, y, h / 2], [r, r, h / 2], 0, [0, 0], columnColor, dens());
    else b.cylinder('column', b.newInstance(), [x, y, 0], r, h, columnColor, dens());
    plan.reserve(x - r, y - r, x + r, y + r);
  }
  // Doors, windows and boards on the walls, kept apart along each wall.
  const used: Array<Array<[number, number]>> = frames.map(() => []);
  const slot = (wi: number, len: number): number | null => {
    const f = frames[wi]!;
    for (let t = 0; t < 10; t++) {
      const s = b.uniform(0.2, Math.max(0.21, f.length - len - 0.2));
      if (s + len > f.length - 0.1) continue;
      if (used[wi]!.every(([a, c]) => s + len + 0.1 < a || s > c + 0.1)) {
        used[wi]!.push([s, s + len]);
        return s;
      }
    }
    return null;
  };
  const doors = b.rng.int(1, 3);
  for (let i = 0; i < doors; i++) {
    const wi = b.rng.int(0, 4);
    const len = b.uniform(0.8, 1.6);
    const ht = b.uniform(1.95, 2.3);
    const s = slot(wi, len);
    if (s === null) continue;
    wallPanel(b, 'door', frames[wi]!, s, 0, len, ht, b.uniform(0.01, 0.05), b.objectColor('door'), dens());
    const f = frames[wi]!;
    const p = add(f.o, scale(f.along, s + len / 2));
    plan.reserve(p[0] - len / 2 - 0.3, p[1] - len / 2 - 0.3, p[0] + len / 2 + 0.3, p[1] + len / 2 + 0.3); // keep doorways clear
  }
  const windows = b.rng.int(0, 4);
  const windowColor = b.objectColor('window');
  for (let i = 0; i < windows; i++) {
    const wi = b.rng.int(0, 4);
    const len = b.uniform(0.6, 2.2);
    const s = slot(wi, len);
    if (s === null) continue;
    const z0 = b.uniform(0.7, 1.2);
    wallPanel(b, 'window', frames[wi]!, s, z0, len, Math.min(h - z0 - 0.2, b.uniform(0.8, 1.6)), b.uniform(-0.08, 0.03), windowColor, dens());
  }
  const boards = b.rng.int(0, 3);
  for (let i = 0; i < boards; i++) {
    const wi = b.rng.int(0, 4);
    const len = b.uniform(1, 3);
    const s = slot(wi, len);
    if (s === null) continue;
    wallPanel(b, 'board', frames[wi]!, s, b.uniform(0.8, 1.1), len, b.uniform(0.8, 1.3), b.uniform(0.01, 0.03), b.objectColor('board'), dens());
  }
  // Bookcases against walls.
  const bookcases = b.rng.int(0, 4);
  for (let i = 0; i < bookcases; i++) {
    const wi = b.rng.int(0, 4);
    const len = b.uniform(0.7, 2);
    const s = slot(wi, len);
    if (s === null) continue;
    const f = frames[wi]!;
    const depth = b.uniform(0.28, 0.45);
    const ht = b.uniform(1.2, Math.min(2.3, h - 0.2));
    const yaw = Math.atan2(f.along[1], f.along[0]);
    const corner = add(f.o, scale(f.along, s));
    const inst = b.newInstance();
    const color = b.objectColor('bookcase');
    const c: Vec3 = [corner[0], corner[1], 0];
    // Build in the wall's frame: x along the wall, y inward.
    b.box('bookcase', inst, [c[0] + len / 2, c[1] + depth / 2, ht / 2], [len / 2, depth / 2, ht / 2], yaw, [c[0], c[1]], color, dens());
    const shelves = b.rng.int(2, 6);
    for (let k = 1; k < shelves; k++) {
      const z = (ht * k) / shelves;
      const cos = Math.cos(yaw);
      const sin = Math.sin(yaw);
      b.quad('bookcase', inst, [c[0], c[1], z], [cos * len, sin * len, 0], [-sin * depth, cos * depth, 0], color, dens());
    }
    const p1 = add(corner, scale(f.inward, depth));
    const p2 = add(p1, scale(f.along, len));
    plan.reserve(Math.min(corner[0], p2[0]), Math.min(corner[1], p2[1]), Math.max(corner[0], p2[0]), Math.max(corner[1], p2[1]));
  }
  // Tables with chairs around them.
  const tables = b.rng.int(0, 4);
  const chairStyle = b.rng.int(0, 3); // chairs of one room tend to match
  const chairColor = b.objectColor('chair');
  for (let i = 0; i < tables; i++) {
    const tl = b.uniform(0.8, 2.2) / 2;
    const tw = b.uniform(0.6, 1.1) / 2;
    const radius = Math.hypot(tl, tw) + 0.5;
    const at = plan.place(b, radius);
    if (!at) continue;
    const [x, y] = at;
    const yaw = b.uniform(0, Math.PI);
    const th = b.uniform(0.68, 0.8);
    const inst = b.newInstance();
    const color = b.objectColor('table');
    const top = b.uniform(0.015, 0.03);
    b.box('table', inst, [x, y, th - top], [tl, tw, top], yaw, [x, y], color, dens(), false);
    if (b.chance(0.75)) {
      const leg = b.uniform(0.02, 0.04);
      for (const [sx, sy] of [
        [-1, -1],
        [1, -1],
        [1, 1],
        [-1, 1],
      ]) {
        b.box('table', inst, [x + sx! * (tl - leg * 2), y + sy! * (tw - leg * 2), (th - 2 * top) / 2], [leg, leg, (th - 2 * top) / 2], yaw, [x, y], color, dens());
      }
    } else {
      b.cylinder('table', inst, [x, y, 0], b.uniform(0.05, 0.1), th - 2 * top, color, dens());
    }
    // Clutter on the table.
    const items = b.rng.int(0, 4);
    for (let k = 0; k < items; k++) {
      const cx = x + b.uniform(-tl * 0.7, tl * 0.7) * Math.cos(yaw);
      const cy = y + b.uniform(-tl * 0.7, tl * 0.7) * Math.sin(yaw);
      clutterItem(b, [cx, cy, th]);
    }
    // Chairs around it.
    const chairs = b.rng.int(0, 5);
    for (let k = 0; k < chairs; k++) {
      const side = k % 4;
      const dist = (side % 2 === 0 ? tw : tl) + b.uniform(0.25, 0.45);
      const ang = yaw + (side * Math.PI) / 2 + Math.PI / 2 + b.uniform(-0.3, 0.3);
      const cx = x + Math.cos(ang) * dist;
      const cy = y + Math.sin(ang) * dist;
      if (cx < 0.3 || cy < 0.3 || cx > w - 0.3 || cy > d - 0.3) continue;
      chair(b, cx, cy, ang + Math.PI / 2 + b.uniform(-0.4, 0.4), chairStyle, chairColor);
    }
  }
  // Loose chairs.
  const loose = b.rng.int(0, 3);
  for (let k = 0; k < loose; k++) {
    const at = plan.place(b, 0.4);
    if (at) chair(b, at[0], at[1], b.uniform(0, 2 * Math.PI), b.rng.int(0, 3), b.objectColor('chair'));
  }
  // Sofas.
  const sofas = b.rng.int(0, 3);
  for (let k = 0; k < sofas; k++) {
    const len = b.uniform(1.2, 2.4) / 2;
    const dep = b.uniform(0.75, 1) / 2;
    const at = plan.place(b, Math.hypot(len, dep));
    if (!at) continue;
    const [x, y] = at;
    const yaw = b.uniform(0, 2 * Math.PI);
    const inst = b.newInstance();
    const color = b.objectColor('sofa');
    const seat = b.uniform(0.38, 0.48);
    const back = b.uniform(0.75, 0.95);
    b.box('sofa', inst, [x, y, seat / 2], [len, dep, seat / 2], yaw, [x, y], color, dens());
    b.box('sofa', inst, [x, y + dep - 0.1, back / 2], [len, 0.1, back / 2], yaw, [x, y], color, dens());
    if (b.chance(0.7)) {
      for (const sx of [-1, 1]) {
        b.box('sofa', inst, [x + sx * (len - 0.08), y, (seat + 0.2) / 2], [0.08, dep, (seat + 0.2) / 2], yaw, [x, y], color, dens());
      }
    }
  }
  // Clutter on the floor.
  const floorItems = b.rng.int(2, 9);
  for (let k = 0; k < floorItems; k++) {
    const at = plan.place(b, 0.3, 0.02, 4);
    if (at) clutterItem(b, [at[0], at[1], 0]);
  }
  return [w, d, h];
}

function chair(b: SceneBuilder, x: number, y: number, yaw: number, style: number, color: Vec3): void {
  const inst = b.newInstance();
  const sw = b.uniform(0.4, 0.52) / 2;
  const seat = b.uniform(0.42, 0.5);
  const thick = b.uniform(0.03, 0.08) / 2;
  const dens = b.uniform(0.8, 2);
  b.box('chair', inst, [x, y, seat - thick], [sw, sw, thick], yaw, [x, y], color, dens, false);
  const backTop = seat + b.uniform(0.3, 0.5);
  b.box('chair', inst, [x, y + sw - 0.02, (seat + backTop) / 2], [sw, 0.02, (backTop - seat) / 2], yaw, [x, y], color, dens);
  if (style === 2) {
    // office chair: a central column
    b.cylinder('chair', inst, [x, y, 0], 0.03, seat - 2 * thick, color, dens);
  } else {
    const leg = 0.018;
    for (const [sx, sy] of [
      [-1, -1],
      [1, -1],
      [1, 1],
      [-1, 1],
    ]) {
      b.box('chair', inst, [x + sx! * (sw - leg), y + sy! * (sw - leg), (seat - 2 * thick) / 2], [leg, leg, (seat - 2 * thick) / 2], yaw, [x, y], color, dens);
    }
  }
  if (style === 1) {
    for (const sx of [-1, 1]) b.box('chair', inst, [x + sx * sw, y, seat + 0.12], [0.02, sw, 0.02], yaw, [x, y], color, dens);
  }
}

function clutterItem(b: SceneBuilder, at: Vec3): void {
  const inst = b.newInstance();
  const color = b.objectColor('clutter');
  const dens = b.uniform(1, 3);
  const kind = b.rng.int(0, 3);
  const s = b.uniform(0.05, 0.3);
  if (kind === 0) b.box('clutter', inst, [at[0], at[1], at[2] + s / 2], [s / 2, b.uniform(0.03, 0.2), s / 2], b.uniform(0, Math.PI), [at[0], at[1]], color, dens);
  else if (kind === 1) b.cylinder('clutter', inst, at, s / 3, s * b.uniform(1, 2.5), color, dens);
  else b.sphere('clutter', inst, [at[0], at[1], at[2] + s / 2], s / 2, color, dens);
}

/**
 * Relative sampling density per class id: scanners pass close to furniture and see large
 * planes at grazing angles, so objects get more points per m² than walls and ceilings (and
 * small classes are not starved at a few thousand points per room).
 */
const CLASS_DENSITY: readonly number[] = [
  0.5, // ceiling
  0.8, // floor
  0.7, // wall
  1.2, // beam
  1.2, // column
  1.2, // window
  1.5, // door
  3, // table
  4, // chair
  3, // sofa
  2, // bookcase
  1.5, // board
  4, // clutter
];

function surfaceArea(s: Surface): number {
  if (s.sphere !== undefined) return 4 * Math.PI * s.sphere * s.sphere;
  if (s.radius !== undefined) return 2 * Math.PI * s.radius * s.u[2];
  const [ux, uy, uz] = s.u;
  const [vx, vy, vz] = s.v;
  return Math.hypot(uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx);
}

/** Generates one scene, deterministic in `seed`. */
export function generateSyntheticScene(seed: number, options: SyntheticSceneOptions = {}): SyntheticScene {
  const points = options.points ?? 4096;
  if (!Number.isInteger(points) || points < 1) throw new RangeError(`generateSyntheticScene: points must be a positive integer, got ${points}`);
  const rng = createRng(seed);
  const b = new SceneBuilder(rng);
  const room = buildRoom(b);
  const surfaces = b.surfaces;
  // Allocate points by area × density (largest remainder, so the total is exact).
  const weights = surfaces.map((s) => surfaceArea(s) * s.density * CLASS_DENSITY[s.cls]!);
  const total = weights.reduce((a, c) => a + c, 0);
  const counts = new Int32Array(surfaces.length);
  const frac = new Float64Array(surfaces.length);
  let assigned = 0;
  for (let i = 0; i < surfaces.length; i++) {
    const exact = (points * weights[i]!) / total;
    counts[i] = Math.floor(exact);
    frac[i] = exact - counts[i]!;
    assigned += counts[i]!;
  }
  const byFrac = Array.from(frac.keys()).sort((a, c) => frac[c]! - frac[a]! || a - c);
  for (let k = 0; assigned < points; k++) {
    counts[byFrac[k % byFrac.length]!]!++;
    assigned++;
  }
  const coord = new Float32Array(3 * points);
  const color = new Float32Array(3 * points);
  const normal = new Float32Array(3 * points);
  const label = new Int32Array(points);
  const instance = new Int32Array(points);
  const drawnNoise = b.uniform(0.002, 0.012); // always drawn, so the option changes nothing else
  const noise = options.noise ?? drawnNoise;
  if (!(noise >= 0)) throw new RangeError(`generateSyntheticScene: noise must be ≥ 0, got ${noise}`);
  const light = b.uniform(0.75, 1.15);
  const tint: Vec3 = [b.uniform(0.92, 1.08), b.uniform(0.92, 1.08), b.uniform(0.92, 1.08)];
  // Sensor noise comes from its own stream, so the same seed samples the same surface points
  // whatever the noise level.
  const noiseRng = rng.fork();
  const gauss = noise > 0 ? noiseRng.normalArray(points * 3) : new Float32Array(points * 3);
  let g = 0;
  let p = 0;
  for (let i = 0; i < surfaces.length; i++) {
    const s = surfaces[i]!;
    let nx = 0;
    let ny = 0;
    let nz = 1;
    if (s.radius === undefined && s.sphere === undefined) {
      const [ux, uy, uz] = s.u;
      const [vx, vy, vz] = s.v;
      nx = uy * vz - uz * vy;
      ny = uz * vx - ux * vz;
      nz = ux * vy - uy * vx;
      const len = Math.hypot(nx, ny, nz) || 1;
      nx /= len;
      ny /= len;
      nz /= len;
    }
    for (let k = 0; k < counts[i]!; k++, p++) {
      let x: number;
      let y: number;
      let z: number;
      if (s.sphere !== undefined) {
        // uniform on the sphere: z uniform in [-1, 1], azimuth uniform (Archimedes)
        nz = 2 * rng.next() - 1;
        const t = rng.next() * 2 * Math.PI;
        const r = Math.sqrt(Math.max(0, 1 - nz * nz));
        nx = r * Math.cos(t);
        ny = r * Math.sin(t);
        x = s.o[0] + s.sphere * nx;
        y = s.o[1] + s.sphere * ny;
        z = s.o[2] + s.sphere * nz;
      } else if (s.radius !== undefined) {
        const t = rng.next() * 2 * Math.PI;
        nx = Math.cos(t);
        ny = Math.sin(t);
        nz = 0;
        x = s.o[0] + s.radius * nx;
        y = s.o[1] + s.radius * ny;
        z = s.o[2] + rng.next() * s.u[2];
      } else {
        const a = rng.next();
        const c = rng.next();
        x = s.o[0] + a * s.u[0] + c * s.v[0];
        y = s.o[1] + a * s.u[1] + c * s.v[1];
        z = s.o[2] + a * s.u[2] + c * s.v[2];
      }
      coord[3 * p] = x + noise * gauss[g++]!;
      coord[3 * p + 1] = y + noise * gauss[g++]!;
      coord[3 * p + 2] = z + noise * gauss[g++]!;
      normal[3 * p] = nx;
      normal[3 * p + 1] = ny;
      normal[3 * p + 2] = nz;
      const jitter = s.colorNoise * (rng.next() - 0.5) * 2;
      for (let ch = 0; ch < 3; ch++) {
        const v = (s.color[ch]! + jitter) * light * tint[ch]!;
        color[3 * p + ch] = Math.min(1, Math.max(0, v));
      }
      label[p] = s.cls;
      instance[p] = s.instance;
    }
  }
  if (options.randomPose ?? true) {
    const yaw = b.uniform(0, 2 * Math.PI);
    const tx = b.uniform(-5, 5);
    const ty = b.uniform(-5, 5);
    const cos = Math.cos(yaw);
    const sin = Math.sin(yaw);
    for (let q = 0; q < points; q++) {
      const x = coord[3 * q]!;
      const y = coord[3 * q + 1]!;
      coord[3 * q] = cos * x - sin * y + tx;
      coord[3 * q + 1] = sin * x + cos * y + ty;
      const a = normal[3 * q]!;
      const c = normal[3 * q + 1]!;
      normal[3 * q] = cos * a - sin * c;
      normal[3 * q + 1] = sin * a + cos * c;
    }
  }
  return { coord, color, normal, label, instance, offset: Int32Array.of(points), room };
}

/** Seed of scene `index` of a data set with seed `seed` (independent streams per scene). */
export function syntheticSceneSeed(seed: number, index: number): number {
  // SplitMix-style mix of the two numbers, so neighbouring indices give unrelated rooms.
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export interface SyntheticDatasetOptions extends SyntheticSceneOptions {
  /** Number of scenes. */
  scenes: number;
  seed: number;
  /** First scene index (to split one seed's stream into train/val/test ranges). */
  start?: number;
}

/** Scenes start .. start + scenes − 1 of the data set `seed`, each a single-scene batch. */
export function generateSyntheticScenes(options: SyntheticDatasetOptions): SyntheticScene[] {
  const out: SyntheticScene[] = [];
  const start = options.start ?? 0;
  for (let i = 0; i < options.scenes; i++) out.push(generateSyntheticScene(syntheticSceneSeed(options.seed, start + i), options));
  return out;
}

/** The same scenes concatenated into one batch (offset per scene); `instance` is dropped. */
export function generateSyntheticBatch(options: SyntheticDatasetOptions): PointCloudBatch {
  return concatScenes(generateSyntheticScenes(options).map(({ coord, color, normal, label, offset }) => ({ coord, color, normal, label, offset })));
}
