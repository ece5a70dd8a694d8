// Each transform against Pointcept's formula, fed the very random draws it made (a recording
// Rng), plus the deterministic ones on hand-checked values, parameter checking and pipelines.
import { createRng, type Rng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { generateSyntheticScene } from './synthetic.js';
import {
  CenterShift,
  ChromaticAutoContrast,
  ChromaticJitter,
  ChromaticTranslation,
  Compose,
  GridSample,
  NormalizeColor,
  type PointSample,
  RandomDropout,
  RandomFlip,
  RandomJitter,
  RandomRotate,
  RandomScale,
  SphereCrop,
  buildTransform,
  sampleFromScene,
  sceneFromSample,
} from './transforms.js';

/** An Rng that logs what each call returned, so a test can redo Pointcept's arithmetic with the same draws. */
function recording(seed: number): Rng & { draws: { fn: string; value: unknown }[] } {
  const inner = createRng(seed);
  const draws: { fn: string; value: unknown }[] = [];
  const log =
    <A extends unknown[], R>(fn: string, f: (...a: A) => R) =>
    (...a: A): R => {
      const value = f(...a);
      draws.push({ fn, value });
      return value;
    };
  return {
    ...inner,
    next: log('next', inner.next),
    int: log('int', inner.int),
    normalArray: log('normalArray', inner.normalArray),
    permutation: log('permutation', inner.permutation),
    draws,
  };
}

function sample(points = 200, seed = 3): PointSample {
  const scene = generateSyntheticScene(seed, { points });
  return sampleFromScene({ coord: scene.coord, color: scene.color, normal: scene.normal, label: scene.label, offset: scene.offset });
}

const near = (a: ArrayLike<number>, b: ArrayLike<number>, digits = 4) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, digits);
};

function bboxCenter(c: Float32Array): number[] {
  const lo = [Infinity, Infinity, Infinity];
  const hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < c.length; i += 3) for (let k = 0; k < 3; k++) {
    lo[k] = Math.min(lo[k]!, c[i + k]!);
    hi[k] = Math.max(hi[k]!, c[i + k]!);
  }
  return [0, 1, 2].map((k) => (lo[k]! + hi[k]!) / 2);
}

describe('Pointcept transforms', () => {
  it('CenterShift and NormalizeColor', () => {
    const s: PointSample = { coord: Float32Array.of(1, 2, 3, 5, -2, 4, 3, 0, 10), color: Float32Array.of(0, 255, 51, 102, 0, 0, 0, 0, 0) };
    expect(Array.from(new CenterShift().apply(s).coord)).toEqual([-2, 2, 0, 2, -2, 1, 0, 0, 7]);
    expect(Array.from(new CenterShift({ apply_z: false }).apply(s).coord)).toEqual([-2, 2, 3, 2, -2, 4, 0, 0, 10]);
    expect(Array.from(new NormalizeColor().apply(s).color!)).toEqual([0, 1, 0.2, 0.4, 0, 0, 0, 0, 0].map(Math.fround));
    expect(Array.from(s.coord)).toEqual([1, 2, 3, 5, -2, 4, 3, 0, 10]); // inputs are never changed
  });

  it('RandomRotate: uniform(angle)·π about the axis through the box centre (or the given one), with probability p', () => {
    const s = sample();
    for (const axis of ['x', 'y', 'z'] as const) {
      for (const center of [null, [0.5, -1, 2]] as const) {
        const rng = recording(11);
        const t = new RandomRotate({ angle: [-1 / 64, 1 / 2], axis, p: 1, center });
        const out = t.apply(s, rng);
        const u = rng.draws[1]!.value as number;
        const a = (-1 / 64 + (1 / 2 + 1 / 64) * u) * Math.PI;
        const [c, sn] = [Math.cos(a), Math.sin(a)];
        const R = axis === 'x' ? [1, 0, 0, 0, c, -sn, 0, sn, c] : axis === 'y' ? [c, 0, sn, 0, 1, 0, -sn, 0, c] : [c, -sn, 0, sn, c, 0, 0, 0, 1];
        const ctr = center ?? bboxCenter(s.coord);
        const want: number[] = [];
        const wantN: number[] = [];
        for (let i = 0; i < s.coord.length; i += 3) {
          const v = [0, 1, 2].map((k) => s.coord[i + k]! - ctr[k]!);
          for (let r = 0; r < 3; r++) want.push(R[3 * r]! * v[0]! + R[3 * r + 1]! * v[1]! + R[3 * r + 2]! * v[2]! + ctr[r]!);
          for (let r = 0; r < 3; r++) wantN.push(R[3 * r]! * s.normal![i]! + R[3 * r + 1]! * s.normal![i + 1]! + R[3 * r + 2]! * s.normal![i + 2]!);
        }
        near(out.coord, want);
        near(out.normal!, wantN);
      }
    }
    // p: skipped when random() > p (one draw, nothing else)
    const rng = recording(5);
    let skipped = 0;
    for (let i = 0; i < 200; i++) if (new RandomRotate({ p: 0.3 }).apply(s, rng) === s) skipped++;
    expect(skipped).toBeGreaterThan(110);
    expect(skipped).toBeLessThan(170);
    expect(new RandomRotate({ p: 0, always_apply: true }).p).toBe(1);
  });

  it('RandomScale, RandomFlip, RandomJitter', () => {
    const s = sample();
    let rng = recording(1);
    let out = new RandomScale({ scale: [0.9, 1.1] }).apply(s, rng);
    const f = 0.9 + 0.2 * (rng.draws[0]!.value as number);
    near(out.coord, Array.from(s.coord, (v) => v * f), 5);
    expect(out.normal).toBe(s.normal); // Pointcept leaves normals alone
    rng = recording(2);
    out = new RandomScale({ anisotropic: true }).apply(s, rng);
    const fs = rng.draws.map((d) => 0.95 + 0.1 * (d.value as number));
    near(out.coord, Array.from(s.coord, (v, i) => v * fs[i % 3]!), 5);

    for (let seed = 0; seed < 8; seed++) {
      rng = recording(seed);
      out = new RandomFlip().apply(s, rng);
      const [fx, fy] = rng.draws.map((d) => ((d.value as number) < 0.5 ? -1 : 1));
      expect(Array.from(out.coord)).toEqual(Array.from(s.coord, (v, i) => (i % 3 === 0 ? fx! * v : i % 3 === 1 ? fy! * v : v)));
      expect(Array.from(out.normal!)).toEqual(Array.from(s.normal!, (v, i) => (i % 3 === 0 ? fx! * v : i % 3 === 1 ? fy! * v : v)));
    }

    rng = recording(3);
    out = new RandomJitter({ sigma: 0.02, clip: 0.03 }).apply(s, rng);
    const noise = rng.draws[0]!.value as Float32Array;
    near(out.coord, Array.from(s.coord, (v, i) => v + Math.max(-0.03, Math.min(0.03, 0.02 * noise[i]!))), 6);
    expect(Array.from(out.coord, (v, i) => Math.abs(v - s.coord[i]!)).every((d) => d <= 0.03 + 1e-6)).toBe(true);
  });

  it('ChromaticAutoContrast, ChromaticTranslation, ChromaticJitter on the 0–255 scale', () => {
    const s = sample();
    let rng = recording(4);
    let out = new ChromaticAutoContrast({ p: 1 }).apply(s, rng);
    const blend = rng.draws[1]!.value as number;
    const lo = [0, 1, 2].map((k) => Math.min(...Array.from(s.color!).filter((_, i) => i % 3 === k)));
    const hi = [0, 1, 2].map((k) => Math.max(...Array.from(s.color!).filter((_, i) => i % 3 === k)));
    near(out.color!, Array.from(s.color!, (v, i) => (1 - blend) * v + (blend * (v - lo[i % 3]!) * 255) / (hi[i % 3]! - lo[i % 3]!)), 3);
    const flat: PointSample = { coord: new Float32Array(6), color: Float32Array.of(10, 10, 10, 10, 10, 10) };
    expect(new ChromaticAutoContrast({ p: 1, blend_factor: 0.5 }).apply(flat, createRng(0))).toBe(flat);
    out = new ChromaticAutoContrast({ p: 1, blend_factor: 1 }).apply(s, createRng(0));
    for (let k = 0; k < 3; k++) {
      const ch = Array.from(out.color!).filter((_, i) => i % 3 === k);
      expect(Math.min(...ch)).toBeCloseTo(0, 3);
      expect(Math.max(...ch)).toBeCloseTo(255, 3);
    }

    rng = recording(5);
    out = new ChromaticTranslation({ p: 1, ratio: 0.5 }).apply(s, rng);
    const tr = rng.draws.slice(1).map((d) => ((d.value as number) - 0.5) * 255 * 2 * 0.5);
    near(out.color!, Array.from(s.color!, (v, i) => Math.min(255, Math.max(0, v + tr[i % 3]!))), 3);

    rng = recording(6);
    out = new ChromaticJitter({ p: 1, std: 0.05 }).apply(s, rng);
    const n = rng.draws[1]!.value as Float32Array;
    near(out.color!, Array.from(s.color!, (v, i) => Math.min(255, Math.max(0, v + n[i]! * 0.05 * 255))), 3);
    expect(new ChromaticJitter({ p: 0 }).apply(s, createRng(1))).toBe(s);
    const noColor: PointSample = { coord: s.coord };
    const quiet = recording(1);
    new ChromaticJitter({ p: 1 }).apply(noColor, quiet);
    expect(quiet.draws).toHaveLength(0); // no colour: no draw, as in Pointcept
  });

  it('RandomDropout keeps int(n·(1 − ratio)) points in the order drawn, every per-point array along', () => {
    const s = { ...sample(101), index: Int32Array.from({ length: 101 }, (_, i) => i) };
    const rng = recording(9);
    const out = new RandomDropout({ dropout_ratio: 0.3, dropout_application_ratio: 1 }).apply(s, rng);
    const perm = rng.draws[1]!.value as Int32Array;
    expect(Array.from(out.index!)).toEqual(Array.from(perm.slice(0, Math.floor(101 * 0.7))));
    for (const [j, i] of Array.from(out.index!).entries()) {
      expect(out.segment![j]).toBe(s.segment![i]);
      expect(out.color![3 * j + 2]).toBe(s.color![3 * i + 2]);
    }
  });

  it('GridSample: one point per cell in train mode; test fragments cover every point once per part', () => {
    const s = sample(2000);
    const t = new GridSample({ grid_size: 0.3, return_grid_coord: true });
    const out = t.apply(s, createRng(1));
    const cells = new Set<string>();
    for (let i = 0; i < s.coord.length; i += 3) cells.add([0, 1, 2].map((k) => Math.floor(s.coord[i + k]! / 0.3)).join());
    expect(out.coord.length / 3).toBe(cells.size);
    expect(out.gridCoord!.length).toBe(out.coord.length);
    const parts = new GridSample({ grid_size: 0.3, mode: 'test' }).fragments(s);
    const seen = new Int32Array(2000);
    for (const p of parts) {
      expect(p.coord.length / 3).toBe(cells.size);
      for (const [j, i] of Array.from(p.index!).entries()) {
        seen[i]!++;
        expect(p.coord[3 * j]).toBe(s.coord[3 * i]);
      }
    }
    expect(seen.every((c) => c >= 1)).toBe(true);
    expect(() => new GridSample({ mode: 'test' }).apply(s, createRng(1))).toThrow(/fragments/);
  });

  it('SphereCrop keeps the point_max nearest to the centre, nearest first', () => {
    const s = { ...sample(300), index: Int32Array.from({ length: 300 }, (_, i) => i) };
    const rng = recording(2);
    const out = new SphereCrop({ point_max: 50 }).apply(s, rng);
    const c = rng.draws[0]!.value as number;
    const d = (i: number) => [0, 1, 2].reduce((a, k) => a + (s.coord[3 * i + k]! - s.coord[3 * c + k]!) ** 2, 0);
    const want = Array.from({ length: 300 }, (_, i) => i)
      .sort((a, b) => d(a) - d(b) || a - b)
      .slice(0, 50);
    expect(Array.from(out.index!)).toEqual(want);
    const centered = new SphereCrop({ point_max: 10, mode: 'center' }).apply(s, createRng(0));
    expect(centered.index![0]).toBe(150);
    expect(new SphereCrop({ sample_rate: 0.5 }).apply(s, createRng(0)).coord.length).toBe(3 * 150);
    expect(new SphereCrop({ point_max: 300 }).apply(s, createRng(0))).toBe(s);
  });

  it('builds pipelines from config entries and names bad ones', () => {
    const pipe = new Compose([{ type: 'CenterShift', apply_z: true }, { type: 'RandomRotate', axis: 'z', p: 1 }, { type: 'NormalizeColor' }]);
    const scene = sceneFromSample(pipe.apply(sample(), createRng(0)));
    expect(scene.color!.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(() => sceneFromSample(new CenterShift().apply(sample()))).toThrow(/outside 0–1: end the pipeline with NormalizeColor/);
    expect(() => buildTransform({ type: 'RandomRotat' })).toThrow(/unknown transform 'RandomRotat' \(transforms: CenterShift, NormalizeColor, RandomRotate/);
    expect(() => buildTransform({ type: 'RandomRotate', angel: [0, 1] })).toThrow(/RandomRotate: unknown parameter 'angel'/);
    expect(() => buildTransform({ type: 'RandomRotate', axis: 'w' })).toThrow(/RandomRotate: parameter axis = "w": must be one of 'x', 'y', 'z'/);
    expect(() => buildTransform({ type: 'RandomJitter', clip: 0 })).toThrow(/clip = 0: must be > 0/);
    expect(() => buildTransform({ type: 'SphereCrop', mode: 'all' })).toThrow(/mode 'all' is not supported/);
    expect(() => buildTransform({ type: 'RandomScale', scale: [1.1, 0.9] })).toThrow(/scale = \[1.1,0.9\]: must be \[low, high\]/);
  });
});
