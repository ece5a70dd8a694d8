/**
 * Exact encode/decode of the small floating-point formats of low-precision training:
 * FP8 E4M3 (OCP "fn": no infinity, one NaN pattern, max 448), FP8 E5M2 (IEEE-like: ±inf and
 * NaN, max 57344), FP4 E2M1 (no inf/NaN, magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6), and the
 * E8M0 power-of-two scale of MX formats. Rounding is to nearest, ties to even, directly from
 * the input double (no double rounding); stochastic rounding is available for gradients.
 */

export type MinifloatName = 'e4m3' | 'e5m2' | 'e2m1';

/** A sign-exponent-mantissa format. */
export interface MinifloatFormat {
  name: MinifloatName;
  expBits: number;
  manBits: number;
  bias: number;
  /** Largest finite magnitude. */
  max: number;
  /** Smallest positive normal, 2^(1 − bias). */
  minNormal: number;
  /** Smallest positive subnormal, 2^(1 − bias − manBits). */
  minSubnormal: number;
  /** Whether the all-ones exponent encodes ±inf (mantissa 0) and NaN (E5M2). */
  ieeeSpecials: boolean;
  /** Whether some code is NaN (E4M3: S.1111.111; E5M2: exponent all ones, mantissa ≠ 0). */
  hasNaN: boolean;
  /** Number of codes, 2^(1 + expBits + manBits). */
  codes: number;
}

function makeFormat(name: MinifloatName, expBits: number, manBits: number, bias: number, max: number, ieeeSpecials: boolean, hasNaN: boolean): MinifloatFormat {
  return {
    name,
    expBits,
    manBits,
    bias,
    max,
    minNormal: 2 ** (1 - bias),
    minSubnormal: 2 ** (1 - bias - manBits),
    ieeeSpecials,
    hasNaN,
    codes: 2 ** (1 + expBits + manBits),
  };
}

export const E4M3: MinifloatFormat = makeFormat('e4m3', 4, 3, 7, 448, false, true);
export const E5M2: MinifloatFormat = makeFormat('e5m2', 5, 2, 15, 57344, true, true);
export const E2M1: MinifloatFormat = makeFormat('e2m1', 2, 1, 1, 6, false, false);

export const FORMATS: Record<MinifloatName, MinifloatFormat> = { e4m3: E4M3, e5m2: E5M2, e2m1: E2M1 };

export function formatOf(f: MinifloatName | MinifloatFormat): MinifloatFormat {
  if (typeof f !== 'string') return f;
  const fmt = FORMATS[f];
  if (!fmt) throw new Error(`unknown format '${String(f)}'; use e4m3, e5m2 or e2m1`);
  return fmt;
}

/** Value of a code (sign bit first). NaN codes decode to NaN, E5M2's infinities to ±Infinity. */
export function decodeMinifloat(code: number, format: MinifloatName | MinifloatFormat): number {
  const f = formatOf(format);
  if (!(Number.isInteger(code) && code >= 0 && code < f.codes)) throw new Error(`decode ${f.name}: code must be an integer in [0, ${f.codes}), got ${code}`);
  const signBit = f.codes >> 1;
  const sign = code & signBit ? -1 : 1;
  const mag = code & (signBit - 1);
  const exp = mag >> f.manBits;
  const man = mag & ((1 << f.manBits) - 1);
  const expMax = (1 << f.expBits) - 1;
  if (f.ieeeSpecials && exp === expMax) return man === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  if (!f.ieeeSpecials && f.hasNaN && exp === expMax && man === (1 << f.manBits) - 1) return Number.NaN;
  if (exp === 0) return sign * man * f.minSubnormal;
  return sign * (1 + man / (1 << f.manBits)) * 2 ** (exp - f.bias);
}

/** Options of a cast. */
export interface CastOptions {
  /**
   * Out-of-range values (and infinities) clamp to ±max, as CUDA's __NV_SATFINITE conversions
   * used by Transformer Engine. Without it E4M3 overflows to NaN and E5M2 to ±inf, as the
   * OCP non-saturating mode. Default true. E2M1 always saturates (it has no inf/NaN).
   */
  saturate?: boolean;
  /** Stochastic rounding: a uniform number in [0, 1) per value; rounds up with probability = fraction. */
  random?: () => number;
}

/** floor(log2(a)) exactly, for finite a > 0. */
export function exactLog2Floor(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

// Exponent of a double read from its bits (little-endian high word), the fast path of the casts.
const F64 = new Float64Array(1);
const HI = new Uint32Array(F64.buffer, 4, 1);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function floorLog2(a: number): number {
  if (!littleEndian) return exactLog2Floor(a);
  F64[0] = a;
  const ex = (HI[0]! >>> 20) & 0x7ff;
  return ex === 0 ? exactLog2Floor(a) : ex - 1023;
}

// 2^k for integer k in [-1100, 1100], exact.
const POW2 = new Float64Array(2201);
for (let k = -1100; k <= 1100; k++) POW2[k + 1100] = 2 ** k;
const pow2 = (k: number): number => POW2[k + 1100]!;

/** Magnitude rounded onto the format's grid (may exceed max; overflow is handled by the caller). */
function roundMagnitude(a: number, f: MinifloatFormat, random?: () => number): number {
  const e = a < f.minNormal ? 1 - f.bias : floorLog2(a);
  const quantum = pow2(e - f.manBits);
  const q = a / quantum;
  const fl = Math.floor(q);
  const frac = q - fl;
  let m: number;
  if (random) m = random() < frac ? fl + 1 : fl;
  else if (frac > 0.5) m = fl + 1;
  else if (frac < 0.5) m = fl;
  else m = fl % 2 === 0 ? fl : fl + 1;
  return m * quantum;
}

/** The first magnitude that no longer rounds (to nearest even) to max: max + ulp(max)/2, or beyond. */
function computeOverflowThreshold(f: MinifloatFormat): { at: number; inclusive: boolean } {
  const ulp = 2 ** (exactLog2Floor(f.max) - f.manBits);
  // max's last mantissa bit decides the tie: an odd max rounds the midpoint up (overflow).
  const maxMantissaOdd = (f.max / ulp) % 2 === 1;
  return { at: f.max + ulp / 2, inclusive: maxMantissaOdd };
}

const thresholds = new Map<MinifloatFormat, { at: number; inclusive: boolean }>();
function overflowThreshold(f: MinifloatFormat): { at: number; inclusive: boolean } {
  let t = thresholds.get(f);
  if (!t) {
    t = computeOverflowThreshold(f);
    thresholds.set(f, t);
  }
  return t;
}

/**
 * x rounded to the format (round to nearest even, or stochastically), as a double.
 * NaN stays NaN (E2M1: NaN → 0, as TE's reference cast); −0 stays −0.
 */
export function castToMinifloat(x: number, format: MinifloatName | MinifloatFormat, options: CastOptions = {}): number {
  const f = formatOf(format);
  const saturate = options.saturate ?? true;
  if (Number.isNaN(x)) return f.hasNaN ? Number.NaN : 0;
  const sign = x < 0 || Object.is(x, -0) ? -1 : 1;
  const a = Math.abs(x);
  if (a === 0) return sign * 0;
  if (a === Number.POSITIVE_INFINITY) {
    if (saturate || !f.hasNaN) return sign * f.max;
    return f.ieeeSpecials ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  }
  if (!options.random) {
    const t = overflowThreshold(f);
    if (a > t.at || (t.inclusive && a === t.at)) {
      if (saturate || !f.hasNaN) return sign * f.max;
      return f.ieeeSpecials ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    }
  } else if (a >= f.max) {
    return sign * f.max;
  }
  const r = roundMagnitude(a, f, options.random);
  return sign * Math.min(r, f.max);
}

/** The code of x after the cast (sign bit first); NaN encodes as sign|all-ones. */
export function encodeMinifloat(x: number, format: MinifloatName | MinifloatFormat, options: CastOptions = {}): number {
  const f = formatOf(format);
  const v = castToMinifloat(x, f, options);
  const signBit = f.codes >> 1;
  if (Number.isNaN(v)) return (x < 0 ? signBit : 0) | (signBit - 1);
  const s = v < 0 || Object.is(v, -0) ? signBit : 0;
  const a = Math.abs(v);
  if (a === Number.POSITIVE_INFINITY) return s | (((1 << f.expBits) - 1) << f.manBits);
  if (a < f.minNormal) return s | Math.round(a / f.minSubnormal);
  const e = exactLog2Floor(a);
  const man = Math.round((a / 2 ** e - 1) * (1 << f.manBits));
  return s | ((e + f.bias) << f.manBits) | man;
}

/** Every code of a format with its value, in code order. */
export function enumerateMinifloat(format: MinifloatName | MinifloatFormat): { code: number; value: number }[] {
  const f = formatOf(format);
  return Array.from({ length: f.codes }, (_, code) => ({ code, value: decodeMinifloat(code, f) }));
}

/** Cast every element of an array (fp32 in, fp32 out). */
export function castArray(values: ArrayLike<number>, format: MinifloatName | MinifloatFormat, options: CastOptions = {}): Float32Array {
  const f = formatOf(format);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = castToMinifloat(values[i]!, f, options);
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
  let e = exactLog2Floor(x);
  if (2 ** e < x) e++;
  return Math.min(254, Math.max(0, e + 127));
}
