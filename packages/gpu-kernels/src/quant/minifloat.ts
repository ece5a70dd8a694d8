/**
 * Small floating-point formats (docs/reference.md, "Minifloats"): FP8 E4M3 and E5M2, and NVFP4's element
 * format E2M1. Rounding is to nearest, ties to even, saturating at the format's largest
 * finite value (so ±inf and overflow become ±max); NaN stays NaN. Stochastic rounding
 * rounds up with probability equal to the distance from the lower neighbour.
 */

export interface MiniFloatFormat {
  name: string;
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  /** Exponent of the smallest normal number, 1 − bias. */
  minExponent: number;
  /** Largest finite value. */
  max: number;
}

/** 1-4-3, bias 7, no infinity (S.1111.111 is NaN), max 448, min normal 2⁻⁶, min subnormal 2⁻⁹. */
export const E4M3: MiniFloatFormat = { name: 'e4m3', exponentBits: 4, mantissaBits: 3, bias: 7, minExponent: -6, max: 448 };
/** 1-5-2, bias 15, IEEE-like with infinities, max 57344, min normal 2⁻¹⁴. */
export const E5M2: MiniFloatFormat = { name: 'e5m2', exponentBits: 5, mantissaBits: 2, bias: 15, minExponent: -14, max: 57344 };
/** 1-2-1, bias 1, no infinity or NaN: 0, 0.5, 1, 1.5, 2, 3, 4, 6. */
export const E2M1: MiniFloatFormat = { name: 'e2m1', exponentBits: 2, mantissaBits: 1, bias: 1, minExponent: 0, max: 6 };

export type Fp8Format = 'e4m3' | 'e5m2';
export const FP8_FORMATS: Record<Fp8Format, MiniFloatFormat> = { e4m3: E4M3, e5m2: E5M2 };

/** ⌊log₂ a⌋ for a > 0, exact (Math.log2 can be off by one next to powers of two). */
export function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/**
 * `v` rounded to the format. `u` ∈ [0, 1) selects stochastic rounding (round up when the
 * fraction exceeds u... i.e. ⌊q + u⌋); without it, nearest-even.
 */
export function roundToFormat(v: number, f: MiniFloatFormat, u?: number): number {
  if (Number.isNaN(v)) return Number.NaN;
  const a = Math.abs(v);
  const sign = v < 0 || Object.is(v, -0) ? -1 : 1;
  if (a >= f.max) return sign * f.max;
  if (a === 0) return sign * 0;
  const e = Math.max(floorLog2(a), f.minExponent);
  const step = 2 ** (e - f.mantissaBits);
  const q = a / step; // exact: a power-of-two scaling
  let r: number;
  if (u !== undefined) r = Math.floor(q + u);
  else {
    const fl = Math.floor(q);
    const frac = q - fl;
    r = frac > 0.5 ? fl + 1 : frac < 0.5 ? fl : fl % 2 === 0 ? fl : fl + 1;
  }
  return sign * Math.min(r * step, f.max);
}

/** The value of an 8-bit (or 4-bit, for E2M1) code. */
export function decodeMiniFloat(code: number, f: MiniFloatFormat): number {
  const bits = 1 + f.exponentBits + f.mantissaBits;
  const sign = (code >> (bits - 1)) & 1 ? -1 : 1;
  const exp = (code >> f.mantissaBits) & ((1 << f.exponentBits) - 1);
  const mant = code & ((1 << f.mantissaBits) - 1);
  const expMax = (1 << f.exponentBits) - 1;
  if (f === E5M2 && exp === expMax) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  if (f === E4M3 && exp === expMax && mant === (1 << f.mantissaBits) - 1) return Number.NaN;
  if (exp === 0) return sign * mant * 2 ** (f.minExponent - f.mantissaBits);
  return sign * (1 + mant / (1 << f.mantissaBits)) * 2 ** (exp - f.bias);
}

/** The code of a representable value (round it with `roundToFormat` first). */
export function encodeMiniFloat(v: number, f: MiniFloatFormat): number {
  const bits = 1 + f.exponentBits + f.mantissaBits;
  const signBit = v < 0 || Object.is(v, -0) ? 1 << (bits - 1) : 0;
  if (Number.isNaN(v)) {
    if (f === E2M1) throw new Error('encodeMiniFloat: e2m1 has no NaN');
    return f === E4M3 ? 0x7f : 0x7e;
  }
  const a = Math.abs(v);
  if (a === 0) return signBit;
  const e = Math.max(floorLog2(a), f.minExponent);
  const mantScaled = a / 2 ** (e - f.mantissaBits); // in [2^m, 2^(m+1)) for normals
  if (!Number.isInteger(mantScaled)) throw new Error(`encodeMiniFloat: ${v} is not representable in ${f.name}`);
  const normal = mantScaled >= 1 << f.mantissaBits;
  const exp = normal ? e + f.bias : 0;
  const mant = normal ? mantScaled - (1 << f.mantissaBits) : mantScaled;
  return signBit | (exp << f.mantissaBits) | mant;
}

/**
 * A counter-based uniform in [0, 1) from (seed, index): the same 32-bit integer hash
 * (Wellons' lowbias32) in every kernel, so stochastic rounding agrees across backends.
 */
export function hashUniform(seed: number, index: number): number {
  let x = (index ^ Math.imul(seed | 0, 0x9e3779b9)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return (x >>> 8) / 16777216;
}
