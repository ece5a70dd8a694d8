import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  E2M1,
  E4M3,
  E5M2,
  type MiniFloatFormat,
  castToMiniFloat,
  decodeE8M0,
  decodeMiniFloat,
  encodeE8M0Ceil,
  encodeMiniFloat,
  enumerateMiniFloat,
} from './minifloat.js';

/** Positive finite values of a format in increasing order, with their codes. */
function positives(f: MiniFloatFormat): { code: number; value: number }[] {
  return enumerateMiniFloat(f)
    .filter((e) => e.code < f.codes / 2 && Number.isFinite(e.value))
    .sort((a, b) => a.value - b.value);
}

describe('exhaustive enumerations', () => {
  it('E4M3: 256 codes, max 448, min normal 2^-6, min subnormal 2^-9, NaN only at S.1111.111', () => {
    const all = enumerateMiniFloat(E4M3);
    expect(all).toHaveLength(256);
    const nan = all.filter((e) => Number.isNaN(e.value)).map((e) => e.code);
    expect(nan).toEqual([0x7f, 0xff]);
    expect(all.some((e) => !Number.isFinite(e.value) && !Number.isNaN(e.value))).toBe(false);
    const pos = positives(E4M3);
    expect(pos).toHaveLength(127); // 0 plus 126 positive values
    expect(pos.at(-1)).toEqual({ code: 0x7e, value: 448 });
    expect(pos[1]!.value).toBe(2 ** -9);
    expect(decodeMiniFloat(0x08, E4M3)).toBe(2 ** -6);
    expect(decodeMiniFloat(0x80, E4M3)).toBe(-0);
    expect(decodeMiniFloat(0xfe, E4M3)).toBe(-448);
  });

  it('E5M2: 256 codes, max 57344, ±inf, 6 NaN codes, min normal 2^-14, min subnormal 2^-16', () => {
    const all = enumerateMiniFloat(E5M2);
    expect(all.filter((e) => Number.isNaN(e.value)).map((e) => e.code)).toEqual([0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff]);
    expect(decodeMiniFloat(0x7c, E5M2)).toBe(Number.POSITIVE_INFINITY);
    expect(decodeMiniFloat(0xfc, E5M2)).toBe(Number.NEGATIVE_INFINITY);
    const pos = positives(E5M2);
    expect(pos.at(-1)).toEqual({ code: 0x7b, value: 57344 });
    expect(pos[1]!.value).toBe(2 ** -16);
    expect(decodeMiniFloat(0x04, E5M2)).toBe(2 ** -14);
  });

  it('E2M1: 16 codes with magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6', () => {
    const all = enumerateMiniFloat(E2M1).map((e) => e.value);
    expect(all).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6]);
  });

  for (const f of [E4M3, E5M2, E2M1]) {
    it(`${f.name}: every code round-trips through encode(decode(code))`, () => {
      for (const { code, value } of enumerateMiniFloat(f)) {
        if (Number.isNaN(value)) {
          expect(Number.isNaN(castToMiniFloat(value, f))).toBe(true);
          continue;
        }
        expect(castToMiniFloat(value, f, { saturate: false })).toBe(value);
        expect(encodeMiniFloat(value, f, { saturate: false })).toBe(code);
      }
    });

    it(`${f.name}: rounding at every midpoint goes to the even code, and off-midpoint to the nearest`, () => {
      const pos = positives(f);
      for (let i = 0; i + 1 < pos.length; i++) {
        const lo = pos[i]!;
        const hi = pos[i + 1]!;
        const mid = (lo.value + hi.value) / 2;
        const even = lo.code % 2 === 0 ? lo : hi;
        expect(castToMiniFloat(mid, f)).toBe(even.value);
        expect(castToMiniFloat(-mid, f)).toBe(-even.value);
        const eps = (hi.value - lo.value) * 1e-6;
        expect(castToMiniFloat(mid - eps, f)).toBe(lo.value);
        expect(castToMiniFloat(mid + eps, f)).toBe(hi.value);
      }
    });
  }

  it('overflow: saturating casts clamp to ±max, non-saturating E4M3 gives NaN and E5M2 ±inf', () => {
    expect(castToMiniFloat(464, E4M3, { saturate: false })).toBe(448); // midpoint to even (448)
    expect(Number.isNaN(castToMiniFloat(464.01, E4M3, { saturate: false }))).toBe(true);
    expect(castToMiniFloat(1e9, E4M3)).toBe(448);
    expect(castToMiniFloat(Number.NEGATIVE_INFINITY, E4M3)).toBe(-448);
    expect(castToMiniFloat(61439, E5M2, { saturate: false })).toBe(57344);
    expect(castToMiniFloat(61440, E5M2, { saturate: false })).toBe(Number.POSITIVE_INFINITY); // midpoint, max is odd
    expect(castToMiniFloat(Number.POSITIVE_INFINITY, E5M2, { saturate: false })).toBe(Number.POSITIVE_INFINITY);
    expect(castToMiniFloat(1e9, E5M2)).toBe(57344);
    expect(castToMiniFloat(100, E2M1)).toBe(6);
    expect(castToMiniFloat(5, E2M1)).toBe(4);
    expect(castToMiniFloat(2 ** -11, E4M3)).toBe(0); // below half the smallest subnormal
    expect(castToMiniFloat(3 * 2 ** -11, E4M3)).toBe(2 ** -9);
    expect(Object.is(castToMiniFloat(-1e-30, E4M3), -0)).toBe(true);
    // NaN stays NaN, also in E2M1, which has no NaN code: a quantize–dequantize never hides one
    expect(castToMiniFloat(Number.NaN, E2M1)).toBeNaN();
    expect(() => encodeMiniFloat(Number.NaN, E2M1)).toThrow(/e2m1: the format has no NaN/);
  });

  it('stochastic rounding picks the neighbours with probability by distance (unbiased)', () => {
    let s = 12345;
    const random = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    let sum = 0;
    const n = 20000;
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const v = castToMiniFloat(2.4, E2M1, { random });
      seen.add(v);
      sum += v;
    }
    expect([...seen].sort()).toEqual([2, 3]);
    expect(sum / n).toBeCloseTo(2.4, 1);
  });

  it('E8M0 scales round up to a power of two', () => {
    expect(decodeE8M0(127)).toBe(1);
    expect(Number.isNaN(decodeE8M0(255))).toBe(true);
    expect(encodeE8M0Ceil(1)).toBe(127);
    expect(encodeE8M0Ceil(1.0001)).toBe(128);
    expect(encodeE8M0Ceil(0.5)).toBe(126);
    expect(encodeE8M0Ceil(0)).toBe(0);
    expect(encodeE8M0Ceil(2 ** 200)).toBe(254);
  });
});

describe('independent reference: ml_dtypes casts (fixtures/ml-dtypes-reference.py)', () => {
  const ref = JSON.parse(readFileSync(new URL('./fixtures/ml-dtypes-casts.json', import.meta.url), 'utf8')) as Record<
    string,
    { probes: number[]; casts: Array<number | string | null> }
  >;
  for (const name of ['e4m3', 'e5m2', 'e2m1'] as const) {
    it(`${name}: every value, midpoint and midpoint neighbour casts as ml_dtypes (non-saturating)`, () => {
      const { probes, casts } = ref[name]!;
      expect(probes.length).toBeGreaterThan(60);
      const bad: string[] = [];
      probes.forEach((p, i) => {
        const c = casts[i];
        const want = c === null ? Number.NaN : c === 'inf' ? Number.POSITIVE_INFINITY : c === '-inf' ? Number.NEGATIVE_INFINITY : (c as number);
        const got = castToMiniFloat(p, name, { saturate: false });
        if (!(Number.isNaN(want) ? Number.isNaN(got) : got === want)) bad.push(`${p} → ${got}, want ${want}`);
      });
      expect(bad).toEqual([]);
    });
  }
});
