import { initBackend, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { castFp8, castFp8Op } from './fp8.js';
import { decodeMiniFloat, E2M1, E4M3, E5M2, encodeMiniFloat, type MiniFloatFormat, roundToFormat } from './minifloat.js';

type Tensor = tf.Tensor;

/** Every finite non-negative value of a format, ascending, with its code. */
function positiveGrid(f: MiniFloatFormat): { value: number; code: number }[] {
  const bits = 1 + f.exponentBits + f.mantissaBits;
  const out: { value: number; code: number }[] = [];
  for (let code = 0; code < 1 << (bits - 1); code++) {
    const value = decodeMiniFloat(code, f);
    if (Number.isFinite(value)) out.push({ value, code });
  }
  return out.sort((a, b) => a.value - b.value);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** The float32 neighbours of a positive float32 value. */
function nextUp(v: number): number {
  f32[0] = v;
  u32[0]! += 1;
  return f32[0]!;
}
function nextDown(v: number): number {
  f32[0] = v;
  u32[0]! -= 1;
  return f32[0]!;
}

/**
 * The rounding boundary cases of a format: every representable value, each midpoint
 * between neighbours and its two float32 neighbours, past the max, ±inf, NaN; with what
 * round-to-nearest-even must give.
 */
function boundaryCases(f: MiniFloatFormat): { x: number[]; want: number[] } {
  const grid = positiveGrid(f);
  const x: number[] = [];
  const want: number[] = [];
  const add = (v: number, w: number) => {
    x.push(v, -v);
    want.push(w, -w);
  };
  grid.forEach(({ value }, i) => {
    add(value, value);
    const next = grid[i + 1];
    if (!next) return;
    const mid = (value + next.value) / 2;
    const evenIsLower = (grid[i]!.code & 1) === 0;
    add(mid, evenIsLower ? value : next.value);
    add(nextDown(mid), value);
    add(nextUp(mid), next.value);
  });
  add(f.max * 1.03, f.max);
  add(f.max * 1000, f.max);
  add(Number.POSITIVE_INFINITY, f.max);
  x.push(Number.NaN);
  want.push(Number.NaN);
  return { x, want };
}

function sameValues(got: ArrayLike<number>, want: ArrayLike<number>): void {
  for (let i = 0; i < want.length; i++) {
    if (Number.isNaN(want[i]!)) expect(Number.isNaN(got[i]!)).toBe(true);
    else if (got[i] !== want[i]) throw new Error(`element ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

describe('small-float formats (host)', () => {
  it.each([
    [E4M3, 448, 2 ** -9, 254],
    [E5M2, 57344, 2 ** -16, 248],
    [E2M1, 6, 0.5, 16],
  ] as const)('%o: every code decodes, encodes back and is a fixed point of rounding', (f, max, minSub, finiteCodes) => {
    const bits = 1 + f.exponentBits + f.mantissaBits;
    let finite = 0;
    for (let code = 0; code < 1 << bits; code++) {
      const v = decodeMiniFloat(code, f);
      if (!Number.isFinite(v)) continue;
      finite++;
      expect(roundToFormat(v, f)).toBe(v);
      expect(encodeMiniFloat(v, f)).toBe(code);
    }
    expect(finite).toBe(finiteCodes);
    const grid = positiveGrid(f);
    expect(grid[grid.length - 1]!.value).toBe(max);
    expect(grid[1]!.value).toBe(minSub);
  });

  it('knows the special codes: E4M3 has NaN at S.1111.111 and no inf; E5M2 has inf and NaN', () => {
    expect(decodeMiniFloat(0x7e, E4M3)).toBe(448);
    expect(decodeMiniFloat(0x7f, E4M3)).toBeNaN();
    expect(decodeMiniFloat(0x7c, E5M2)).toBe(Number.POSITIVE_INFINITY);
    expect(decodeMiniFloat(0xfc, E5M2)).toBe(Number.NEGATIVE_INFINITY);
    expect(decodeMiniFloat(0x7d, E5M2)).toBeNaN();
    expect(decodeMiniFloat(0x08, E4M3)).toBe(2 ** -6); // min normal
    expect(decodeMiniFloat(0x04, E5M2)).toBe(2 ** -14);
    expect(positiveGrid(E2M1).map((g) => g.value)).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
  });

  it.each([E4M3, E5M2, E2M1])('%o: rounds every boundary to nearest even and saturates', (f) => {
    const { x, want } = boundaryCases(f);
    sameValues(
      x.map((v) => roundToFormat(v, f)),
      want,
    );
  });
});

describe('castFp8 on cpu', () => {
  beforeAll(async () => {
    await initBackend({ env: { KILN_BACKEND: 'cpu' } });
  });

  it.each(['e4m3', 'e5m2'] as const)('%s: kernel and reference give exactly the boundary table', (format) => {
    const f = format === 'e4m3' ? E4M3 : E5M2;
    const { x, want } = boundaryCases(f);
    const xt = tf.tensor(x);
    expect(castFp8Op.hasKernel()).toBe(true);
    sameValues(castFp8(xt, format, { scale: 1 }).values.dataSync(), want);
    sameValues(castFp8Op.reference({ x: xt, scale: tf.tensor([1]) }, { format }).dataSync(), want);
  });

  it('scales into the format and back; current scaling maps amax to the max', () => {
    const x = tf.tensor([0.001, -0.5, 2, 3.3]);
    const { values, scale } = castFp8(x, 'e4m3');
    expect(scale.dataSync()[0]).toBeCloseTo(448 / 3.3, 3);
    const got = values.dataSync();
    expect(got[3]).toBeCloseTo(3.3, 6);
    const s = scale.dataSync()[0]!;
    Array.from(x.dataSync()).forEach((v, i) => {
      expect(got[i]).toBe(Math.fround(roundToFormat(Math.fround(v * s), E4M3) / s));
    });
    // The scale may also be passed positionally.
    expect(Array.from(castFp8(x, 'e4m3', 4).values.dataSync())).toEqual(Array.from(castFp8(x, 'e4m3', { scale: 4 }).values.dataSync()));
    expect(castFp8(x, 'e4m3', tf.scalar(8)).scale.dataSync()[0]).toBe(8);
    const zero = castFp8(tf.zeros([3]), 'e5m2');
    expect(Array.from(zero.values.dataSync())).toEqual([0, 0, 0]);
    expect(zero.scale.dataSync()[0]).toBe(1);
  });

  it('stochastic rounding is unbiased and identical on kernel and reference', () => {
    const v = 1.0 + 1 / 32; // a quarter of the way from 1 to 1.125 in E4M3
    const x = tf.fill([4000], v);
    const a = castFp8(x, 'e4m3', { scale: 1, stochastic: true, seed: 7 }).values;
    const vals = a.dataSync();
    for (const q of vals) expect([1, 1.125]).toContain(q);
    const mean = Array.from(vals).reduce((s, q) => s + q, 0) / vals.length;
    expect(Math.abs(mean - v)).toBeLessThan(0.004);
    const ref = castFp8Op.reference({ x, scale: tf.tensor([1]) }, { format: 'e4m3', stochastic: true, seed: 7 });
    expect(Array.from(ref.dataSync())).toEqual(Array.from(vals));
    const other = castFp8(x, 'e4m3', { scale: 1, stochastic: true, seed: 8 }).values.dataSync();
    expect(Array.from(other)).not.toEqual(Array.from(vals));
  });

  it('passes gradients straight through, on the kernel and the reference', () => {
    const x = tf.tensor([0.3, -700, 1e-9, 5]);
    const w = tf.tensor([1, 2, 3, 4]);
    const g = tf.grad((v: Tensor) => tf.sum(tf.mul(castFp8(v, 'e4m3', { scale: 1 }).values, w)))(x);
    expect(Array.from(g.dataSync())).toEqual([1, 2, 3, 4]);
    const r = tf.grad((v: Tensor) => tf.sum(tf.mul(castFp8Op.reference({ x: v, scale: tf.tensor([1]) }, { format: 'e5m2' }), w)))(x);
    expect(Array.from(r.dataSync())).toEqual([1, 2, 3, 4]);
  });

  it('rejects NaN, infinite and non-positive scales and unknown formats', () => {
    const x = tf.ones([2]);
    expect(() => castFp8(x, 'e4m3', { scale: Number.NaN })).toThrow(/'scale' must be a finite number > 0, got NaN/);
    expect(() => castFp8(x, 'e4m3', { scale: Number.POSITIVE_INFINITY })).toThrow(/'scale' must be a finite number > 0, got Infinity/);
    expect(() => castFp8(x, 'e4m3', { scale: 0 })).toThrow(/'scale' must be a finite number > 0, got 0/);
    expect(() => castFp8(x, 'e4m3', { scale: tf.scalar(Number.NaN) })).toThrow(/'scale' must be a finite number > 0, got NaN \(a tensor/);
    expect(() => castFp8(x, 'e3m4' as never)).toThrow(/'format' must be 'e4m3' or 'e5m2', got 'e3m4'/);
    expect(() => castFp8(x, 'e4m3', { stochastic: true })).toThrow(/needs an integer 'seed'/);
    expect(() => castFp8(tf.ones([2], 'int32'), 'e4m3')).toThrow(/'x' must be float32, got int32/);
  });
});
