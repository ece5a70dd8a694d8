/**
 * The one codec of the small floating-point formats of low-precision training, used by this
 * package's cast kernels and by @kiln/moe-core's recipes:
 * - FP8 E4M3 (OCP "E4M3FN"): bias 7, no infinities, one NaN pattern S.1111.111, max 448;
 * - FP8 E5M2 (OCP, IEEE-like): bias 15, ±inf at S.11111.00, NaN at S.11111.xx ≠ 0, max 57344;
 * - FP4 E2M1 (OCP MX): bias 1, no infinities or NaN, magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6;
 * - E8M0, the unsigned power-of-two scale of MX formats.
 * Decoding follows the OCP 8-bit floating point specification (and ml_dtypes). Casting rounds
 * to nearest, ties to even, straight from the input double (no double rounding), or
 * stochastically: ⌊q + u⌋ for a uniform u ∈ [0, 1). Out-of-range values saturate to ±max by
 * default, as Transformer Engine's quantizers (CUDA's __NV_SATFINITE conversions); with
 * `saturate: false` they overflow as the OCP non-saturating mode and ml_dtypes do (E4M3 → NaN,
 * E5M2 → ±inf; E2M1 has neither and always saturates). NaN stays NaN in every format: a
 * quantize–dequantize never hides one (E2M1 has no NaN code, so `encodeMiniFloat` refuses it).
 */

export type MiniFloatName = 'e4m3' | 'e5m2' | 'e2m1';

/** A sign-exponent-mantissa format. */
export interface MiniFloatFormat {
  name: MiniFloatName;
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  /** Exponent of the smallest normal number, 1 − bias. */
  minExponent: number;
  /** Largest finite magnitude. */
  max: number;
  /** Smallest positive normal, 2^(1 − bias). */
  minNormal: number;
  /** Smallest positive subnormal, 2^(1 − bias − mantissaBits). */
  minSubnormal: number;
  /** Whether the all-ones exponent with a zero mantissa is ±inf (E5M2). */
  infinities: boolean;
  /** Whether some code is NaN (E4M3: S.1111.111; E5M2: all-ones exponent, mantissa ≠ 0). */
  hasNaN: boolean;
  /** Number of codes, 2^(1 + exponentBits + mantissaBits). */
  codes: number;
}

function format(name: MiniFloatName, exponentBits: number, mantissaBits: number, bias: number, max: number, infinities: boolean, hasNaN: boolean): MiniFloatFormat {
  return {
    name,
    exponentBits,
    mantissaBits,
    bias,
    minExponent: 1 - bias,
    max,
    minNormal: 2 ** (1 - bias),
    minSubnormal: 2 ** (1 - bias - mantissaBits),
    infinities,
    hasNaN,
    codes: 2 ** (1 + exponentBits + mantissaBits),
  };
}

/** 1-4-3, bias 7, no infinity (S.1111.111 is NaN), max 448, min normal 2⁻⁶, min subnormal 2⁻⁹. */
export const E4M3: MiniFloatFormat = format('e4m3', 4, 3, 7, 448, false, true);
/** 1-5-2, bias 15, IEEE-like with infinities, max 57344, min normal 2⁻¹⁴, min subnormal 2⁻¹⁶. */
export const E5M2: MiniFloatFormat = format('e5m2', 5, 2, 15, 57344, true, true);
/** 1-2-1, bias 1, no infinity or NaN: 0, 0.5, 1, 1.5, 2, 3, 4, 6. */
export const E2M1: MiniFloatFormat = format('e2m1', 2, 1, 1, 6, false, false);

export const MINIFLOAT_FORMATS: Record<MiniFloatName, MiniFloatFormat> = { e4m3: E4M3, e5m2: E5M2, e2m1: E2M1 };

export type Fp8Format = 'e4m3' | 'e5m2';
export const FP8_FORMATS: Record<Fp8Format, MiniFloatFormat> = { e4m3: E4M3, e5m2: E5M2 };

/** A format by name (or the format itself). */
export function formatOf(f: MiniFloatName | MiniFloatFormat): MiniFloatFormat {
  if (typeof f !== 'string') return f;
  const fmt = MINIFLOAT_FORMATS[f];
  if (!fmt) throw new Error(`unknown format '${String(f)}'; use e4m3, e5m2 or e2m1`);
  return fmt;
}

/** ⌊log₂ a⌋ for finite a > 0, exact (Math.log2 can be off by one next to powers of two). */
export function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

// Exponent of a double read from its bits (little-endian high word): the fast path of the casts.
const F64 = new Float64Array(1);
const HI = new Uint32Array(F64.buffer, 4, 1);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function exponentOf(a: number): number {
  if (!littleEndian) return floorLog2(a);
  F64[0] = a;
  const ex = (HI[0]! >>> 20) & 0x7ff;
  return ex === 0 ? floorLog2(a) : ex - 1023;
}

// 2^k for integer k in [-1100, 1100], exact.
const POW2 = new Float64Array(2201);
for (let k = -1100; k <= 1100; k++) POW2[k + 1100] = 2 ** k;
const pow2 = (k: number): number => POW2[k + 1100]!;

/** Magnitude a > 0 rounded onto the format's grid (may exceed max; the caller handles overflow). */
function roundMagnitude(a: number, f: MiniFloatFormat, u: number | undefined): number {
  const e = a < f.minNormal ? f.minExponent : exponentOf(a);
  const quantum = pow2(e - f.mantissaBits);
  const q = a / quantum; // exact: a power-of-two scaling
  const fl = Math.floor(q);
  let m: number;
  if (u !== undefined) m = Math.floor(q + u);
  else {
    const frac = q - fl;
    m = frac > 0.5 ? fl + 1 : frac < 0.5 ? fl : fl % 2 === 0 ? fl : fl + 1;
  }
  return m * quantum;
}

/** The first magnitude that no longer rounds (to nearest even) to max: max + ulp(max)/2, or beyond. */
const overflowAt = new Map<MiniFloatFormat, { at: number; inclusive: boolean }>();
function overflowThreshold(f: MiniFloatFormat): { at: number; inclusive: boolean } {
  let t = overflowAt.get(f);
  if (!t) {
    const ulp = 2 ** (floorLog2(f.max) - f.mantissaBits);
    // max's last mantissa bit decides the tie: an odd max rounds the midpoint up (overflow).
    t = { at: f.max + ulp / 2, inclusive: (f.max / ulp) % 2 === 1 };
    overflowAt.set(f, t);
  }
  return t;
}

/** Options of a cast. */
export interface CastOptions {
  /**
   * Out-of-range values (and infinities) clamp to ±max (default true). false: the OCP
   * non-saturating conversion (ml_dtypes' astype): E4M3 overflows to NaN, E5M2 to ±inf.
   */
  saturate?: boolean;
  /** Stochastic rounding: a uniform number in [0, 1) per value; the result is ⌊q + u⌋. */
  random?: () => number;
}

function cast(x: number, f: MiniFloatFormat, saturate: boolean, u: number | undefined): number {
  if (Number.isNaN(x)) return Number.NaN;
  const sign = x < 0 || Object.is(x, -0) ? -1 : 1;
  const a = Math.abs(x);
  if (a === 0) return sign * 0;
  const overflow = () => (saturate || !f.hasNaN ? sign * f.max : f.infinities ? sign * Number.POSITIVE_INFINITY : Number.NaN);
  if (a === Number.POSITIVE_INFINITY) return overflow();
  if (u === undefined) {
    const t = overflowThreshold(f);
    if (a > t.at || (t.inclusive && a === t.at)) return overflow();
  } else if (a >= f.max) {
    return sign * f.max;
  }
  return sign * Math.min(roundMagnitude(a, f, u), f.max);
}

/** x rounded to the format, as a double; −0 stays −0 and NaN stays NaN. */
export function castToMiniFloat(x: number, format: MiniFloatName | MiniFloatFormat, options: CastOptions = {}): number {
  return cast(x, formatOf(format), options.saturate ?? true, options.random?.());
}

/**
 * `v` rounded to the format, saturating: nearest-even, or ⌊q + u⌋ with `u` ∈ [0, 1) given
 * (stochastic rounding with a caller-supplied uniform, as the kernels draw with `hashUniform`).
 */
export function roundToFormat(v: number, f: MiniFloatFormat, u?: number): number {
  return cast(v, f, true, u);
}

/** The value of a code (sign bit first). NaN codes decode to NaN, E5M2's infinities to ±Infinity. */
export function decodeMiniFloat(code: number, format: MiniFloatName | MiniFloatFormat): number {
  const f = formatOf(format);
  if (!(Number.isInteger(code) && code >= 0 && code < f.codes)) throw new Error(`decode ${f.name}: code must be an integer in [0, ${f.codes}), got ${code}`);
  const signBit = f.codes >> 1;
  const sign = code & signBit ? -1 : 1;
  const mag = code & (signBit - 1);
  const exp = mag >> f.mantissaBits;
  const man = mag & ((1 << f.mantissaBits) - 1);
  const expMax = (1 << f.exponentBits) - 1;
  if (f.infinities && exp === expMax) return man === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  if (!f.infinities && f.hasNaN && exp === expMax && man === (1 << f.mantissaBits) - 1) return Number.NaN;
  if (exp === 0) return sign * man * f.minSubnormal;
  return sign * (1 + man / (1 << f.mantissaBits)) * 2 ** (exp - f.bias);
}

/** The code of x after the cast (sign bit first); NaN encodes as sign | all ones (not in E2M1). */
export function encodeMiniFloat(x: number, format: MiniFloatName | MiniFloatFormat, options: CastOptions = {}): number {
  const f = formatOf(format);
  const v = castToMiniFloat(x, f, options);
  const signBit = f.codes >> 1;
  if (Number.isNaN(v)) {
    if (!f.hasNaN) throw new Error(`encode ${f.name}: the format has no NaN`);
    return (x < 0 ? signBit : 0) | (signBit - 1);
  }
  const s = v < 0 || Object.is(v, -0) ? signBit : 0;
  const a = Math.abs(v);
  if (a === Number.POSITIVE_INFINITY) return s | (((1 << f.exponentBits) - 1) << f.mantissaBits);
  if (a < f.minNormal) return s | Math.round(a / f.minSubnormal);
  const e = floorLog2(a);
  const man = Math.round((a / 2 ** e - 1) * (1 << f.mantissaBits));
  return s | ((e + f.bias) << f.mantissaBits) | man;
}

/** Every code of a format with its value, in code order. */
export function enumerateMiniFloat(format: MiniFloatName | MiniFloatFormat): { code: number; value: number }[] {
  const f = formatOf(format);
  return Array.from({ length: f.codes }, (_, code) => ({ code, value: decodeMiniFloat(code, f) }));
}

/** Cast every element of an array (fp32 in, fp32 out). */
export function castArray(values: ArrayLike<number>, format: MiniFloatName | MiniFloatFormat, options: CastOptions = {}): Float32Array {
  const f = formatOf(format);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = castToMiniFloat(values[i]!, f, options);
  return out;
}

// ---- E8M0: the unsigned power-of-two scale of MX formats -------------------------------

/** Value of an E8M0 code: 2^(code − 127); 0xFF is NaN. */
export function decodeE8M0(code: number): number {
  if (!(Number.isInteger(code) && code >= 0 && code <= 255)) throw new Error(`decodeE8M0: code must be an integer in [0, 255], got ${code}`);
  return code === 255 ? Number.NaN : 2 ** (code - 127);
}

/**
 * E8M0 code of the smallest power of two ≥ x (rounding up, as Transformer Engine's
 * float_to_e8m0 does for MX scales so that no element overflows), clamped to [2^−127, 2^127].
 */
export function encodeE8M0Ceil(x: number): number {
  if (Number.isNaN(x)) return 255;
  if (!(x > 0)) return 0;
  if (x === Number.POSITIVE_INFINITY) return 254;
  let e = floorLog2(x);
  if (2 ** e < x) e++;
  return Math.min(254, Math.max(0, e + 127));
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
