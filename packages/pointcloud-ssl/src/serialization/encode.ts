/**
 * Space-filling-curve codes, bit for bit as Pointcept's
 * `pointcept/models/utils/serialization` (z_order.py from OCNN, hilbert.py after
 * numpy-hilbert-curve / Skilling 2004), with the batch index in the high bits.
 *
 * `encodeSerialization` returns codes as JS numbers, exact up to 53 bits (3·depth + bits of the
 * largest batch index); `encodeSerialization64` returns Pointcept's int64 codes as a
 * BigInt64Array for layouts beyond that. Inside, the 3·depth-bit curve code is built as two
 * 24-bit halves with 32-bit integer ops (bits 0..7 and 8..15 of every coordinate), which keeps
 * the hot loop free of floating-point bit tricks.
 *
 * Coordinates outside [0, 2^depth) behave as in Pointcept: only their low `depth` bits are
 * encoded (z_order.py masks each byte, hilbert.py keeps the last `num_bits` bits of the int64),
 * so such points collide with in-range ones. `strict: true` refuses them instead.
 */

export type SerializationOrder = 'z' | 'z-trans' | 'hilbert' | 'hilbert-trans';
export const SERIALIZATION_ORDERS: readonly SerializationOrder[] = ['z', 'z-trans', 'hilbert', 'hilbert-trans'];

/** The largest depth: Pointcept (after OCNN) limits the grid to 2^16 cells per axis. */
export const MAX_SERIALIZATION_DEPTH = 16;

export interface EncodeOptions {
  /** Bits per axis, 1..16: grid coordinates must lie in [0, 2^depth). */
  depth: number;
  order: SerializationOrder;
  /** Scene index per point (≥ 0), placed above the 3·depth curve bits. */
  batch?: Int32Array;
  /**
   * Throw on a coordinate outside [0, 2^depth) instead of encoding its low `depth` bits as
   * Pointcept does (default false: Pointcept's behaviour).
   */
  strict?: boolean;
}

const TWO24 = 16777216;

/** SPREAD[v] puts bit i of the byte v at bit 3i (the z-order interleave of one axis). */
const SPREAD = new Uint32Array(256);
for (let v = 0; v < 256; v++) {
  let s = 0;
  for (let i = 0; i < 8; i++) if (v & (1 << i)) s |= 1 << (3 * i);
  SPREAD[v] = s;
}

/** Number of bits needed to write v ≥ 0 (Python's int.bit_length). */
export function bitLength(v: number): number {
  let bits = 0;
  let x = Math.floor(v);
  while (x > 0) {
    bits++;
    x = Math.floor(x / 2);
  }
  return bits;
}

/**
 * PTv3's adaptive depth: bit_length(max(grid_coord) + 1), so every coordinate fits in
 * `depth` bits.
 */
export function serializationDepth(gridCoord: Int32Array): number {
  let max = 0;
  for (let i = 0; i < gridCoord.length; i++) if (gridCoord[i]! > max) max = gridCoord[i]!;
  return bitLength(max + 1);
}

function checkOrder(order: string): asserts order is SerializationOrder {
  if (!(SERIALIZATION_ORDERS as readonly string[]).includes(order)) {
    throw new Error(`serialization: unknown order '${order}' (expected one of ${SERIALIZATION_ORDERS.join(', ')})`);
  }
}

function checkDepth(depth: number): void {
  if (!Number.isInteger(depth) || depth < 1 || depth > MAX_SERIALIZATION_DEPTH) {
    throw new Error(`serialization: depth must be an integer in 1..${MAX_SERIALIZATION_DEPTH}, got ${depth}`);
  }
}

/**
 * Validates the grid and the batch; returns the largest batch index (−1 if none). `maxBits`
 * is the code width the caller can represent exactly (53 for JS numbers, 64 for BigInt64).
 */
function checkInputs(
  gridCoord: Int32Array,
  depth: number,
  batch: Int32Array | undefined,
  strict: boolean,
  maxBits: number,
): number {
  if (!(gridCoord instanceof Int32Array)) throw new TypeError('serialization: gridCoord must be an Int32Array (N*3)');
  if (gridCoord.length % 3 !== 0) throw new Error(`serialization: gridCoord length ${gridCoord.length} is not a multiple of 3`);
  if (strict) {
    const limit = 2 ** depth;
    for (let i = 0; i < gridCoord.length; i++) {
      const v = gridCoord[i]!;
      if (v < 0 || v >= limit) {
        throw new RangeError(
          `serialization: gridCoord[${Math.floor(i / 3)}][${i % 3}] = ${v} is outside [0, 2^${depth}); ` +
            'use serializationDepth(gridCoord) or a larger depth',
        );
      }
    }
  }
  if (batch === undefined) return -1;
  const n = gridCoord.length / 3;
  if (!(batch instanceof Int32Array)) throw new TypeError('serialization: batch must be an Int32Array (one scene index per point)');
  if (batch.length !== n) throw new Error(`serialization: batch has ${batch.length} entries for ${n} points`);
  let maxBatch = 0;
  for (let p = 0; p < n; p++) {
    const b = batch[p]!;
    if (b < 0) throw new RangeError(`serialization: batch[${p}] = ${b} is negative`);
    if (b > maxBatch) maxBatch = b;
  }
  if (maxBits === 53 && 3 * depth + bitLength(maxBatch) > 53) {
    throw new RangeError(
      `serialization: 3·depth + bits(batch) = ${3 * depth} + ${bitLength(maxBatch)} exceeds 53 bits, so codes would not be ` +
        'exact JS numbers; use encodeSerialization64 for int64 codes',
    );
  }
  return maxBatch;
}

/**
 * Skilling's AxesToTranspose inverse-undo loop on three `depth`-bit axes, in place on
 * xyz[0..2] (Pointcept runs it over the bits MSB first and the axes in x, y, z order).
 */
function skillingUndo(xyz: Int32Array, depth: number): void {
  for (let q = 1 << (depth - 1); q > 1; q >>>= 1) {
    const p = q - 1;
    for (let i = 0; i < 3; i++) {
      if (xyz[i]! & q) {
        xyz[0] = xyz[0]! ^ p; // invert the low bits of axis 0
      } else {
        const t = (xyz[0]! ^ xyz[i]!) & p; // exchange the low bits of axis 0 and axis i
        xyz[0] = xyz[0]! ^ t;
        xyz[i] = xyz[i]! ^ t;
      }
    }
  }
}

/** Inverse Gray code (prefix XOR from the top) of a 24-bit value. */
function grayDecode24(g: number): number {
  let x = g;
  x ^= x >>> 1;
  x ^= x >>> 2;
  x ^= x >>> 4;
  x ^= x >>> 8;
  x ^= x >>> 16;
  return x & 0xffffff;
}

/** The curve code (< 2^48) of every point, before the batch index is added. */
function curveCodes(gridCoord: Int32Array, depth: number, order: SerializationOrder): Float64Array {
  const n = gridCoord.length / 3;
  const out = new Float64Array(n);
  const trans = order === 'z-trans' || order === 'hilbert-trans';
  const hilbert = order === 'hilbert' || order === 'hilbert-trans';
  const ax = trans ? 1 : 0;
  const ay = trans ? 0 : 1;
  // Pointcept keeps the low `depth` bits of each (two's-complement) coordinate.
  const mask = (1 << depth) - 1;
  const xyz = new Int32Array(3);
  for (let p = 0; p < n; p++) {
    let x = gridCoord[3 * p + ax]! & mask;
    let y = gridCoord[3 * p + ay]! & mask;
    let z = gridCoord[3 * p + 2]! & mask;
    if (hilbert) {
      xyz[0] = x;
      xyz[1] = y;
      xyz[2] = z;
      skillingUndo(xyz, depth);
      x = xyz[0]!;
      y = xyz[1]!;
      z = xyz[2]!;
    }
    // Interleave (x highest within each triple), as z-order does; for depth ≤ 8 `hi` is 0.
    const lo = (SPREAD[x & 255]! << 2) | (SPREAD[y & 255]! << 1) | SPREAD[z & 255]!;
    const hi = (SPREAD[(x >>> 8) & 255]! << 2) | (SPREAD[(y >>> 8) & 255]! << 1) | SPREAD[(z >>> 8) & 255]!;
    if (hilbert) {
      // Pointcept reads the interleaved transposed bits as a Gray code of the whole
      // 3·depth-bit string and converts it to binary (prefix XOR from the top bit).
      const hiBin = grayDecode24(hi);
      let loBin = grayDecode24(lo);
      if (hiBin & 1) loBin ^= 0xffffff; // parity of every higher bit flips the whole low half
      out[p] = hiBin * TWO24 + loBin;
    } else {
      out[p] = hi * TWO24 + lo;
    }
  }
  return out;
}

/**
 * Codes for every point, as exact JS numbers. `code = batch · 2^(3·depth) + curve(x, y, z)`
 * where, for z-order, bit i of x goes to bit 3i+2, of y to 3i+1, of z to 3i; `-trans` orders
 * swap x and y first. Throws when the codes would need more than 53 bits.
 */
export function encodeSerialization(gridCoord: Int32Array, options: EncodeOptions): Float64Array {
  const { depth, order, batch } = options;
  checkOrder(order);
  checkDepth(depth);
  checkInputs(gridCoord, depth, batch, options.strict ?? false, 53);
  const out = curveCodes(gridCoord, depth, order);
  if (batch !== undefined) {
    const batchScale = 2 ** (3 * depth);
    for (let p = 0; p < out.length; p++) out[p] = batch[p]! * batchScale + out[p]!;
  }
  return out;
}

/**
 * Pointcept's int64 codes, `batch << 3·depth | curve`, for any batch index (wrapping at 64
 * bits as torch's int64 shift does). Same options and curve as `encodeSerialization`.
 */
export function encodeSerialization64(gridCoord: Int32Array, options: EncodeOptions): BigInt64Array {
  const { depth, order, batch } = options;
  checkOrder(order);
  checkDepth(depth);
  checkInputs(gridCoord, depth, batch, options.strict ?? false, 64);
  const curve = curveCodes(gridCoord, depth, order);
  const out = new BigInt64Array(curve.length);
  const shift = BigInt(3 * depth);
  for (let p = 0; p < curve.length; p++) {
    const c = BigInt(curve[p]!);
    out[p] = batch === undefined ? c : BigInt.asIntN(64, (BigInt(batch[p]!) << shift) | c);
  }
  return out;
}

/** Inverse of z-order interleave for one 24-bit half: the byte of each axis. */
function compact(v: number, shift: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) if ((v >>> (3 * i + shift)) & 1) r |= 1 << i;
  return r;
}

/** Skilling's TransposeToAxes undo loop (inverse of skillingUndo). */
function skillingRedo(xyz: Int32Array, depth: number): void {
  const n = 2 << (depth - 1);
  for (let q = 2; q !== n; q <<= 1) {
    const p = q - 1;
    for (let i = 2; i >= 0; i--) {
      if (xyz[i]! & q) {
        xyz[0] = xyz[0]! ^ p;
      } else {
        const t = (xyz[0]! ^ xyz[i]!) & p;
        xyz[0] = xyz[0]! ^ t;
        xyz[i] = xyz[i]! ^ t;
      }
    }
  }
}

/** Grid coordinates of one curve code (< 2^(3·depth)), written to xyz[0..2]. */
function decodeCurve(curve: number, depth: number, hilbert: boolean, xyz: Int32Array): void {
  let hi = Math.floor(curve / TWO24);
  let lo = curve - hi * TWO24;
  if (hilbert) {
    // binary → Gray over the whole bit string: g = h ^ (h >> 1).
    const carry = hi & 1;
    hi = (hi ^ (hi >>> 1)) & 0xffffff;
    lo = (lo ^ (lo >>> 1) ^ (carry << 23)) & 0xffffff;
  }
  xyz[0] = compact(lo, 2) | (compact(hi, 2) << 8);
  xyz[1] = compact(lo, 1) | (compact(hi, 1) << 8);
  xyz[2] = compact(lo, 0) | (compact(hi, 0) << 8);
  if (hilbert) skillingRedo(xyz, depth);
}

function checkDecodeOptions(name: string, options: { depth: number; order: string }): boolean {
  checkDepth(options.depth);
  if (options.order !== 'z' && options.order !== 'hilbert') {
    throw new Error(`${name}: order must be 'z' or 'hilbert', got '${options.order}'`);
  }
  return options.order === 'hilbert';
}

/**
 * Decodes codes of order 'z' or 'hilbert' back to grid coordinates and the batch index
 * (Pointcept's `decode`). For '-trans' codes, decode with the plain order and swap x and y.
 */
export function decodeSerialization(
  code: Float64Array,
  options: { depth: number; order: 'z' | 'hilbert' },
): { gridCoord: Int32Array; batch: Int32Array } {
  const hilbert = checkDecodeOptions('decodeSerialization', options);
  const n = code.length;
  const gridCoord = new Int32Array(3 * n);
  const batch = new Int32Array(n);
  const scale = 2 ** (3 * options.depth);
  const xyz = new Int32Array(3);
  for (let p = 0; p < n; p++) {
    const c = code[p]!;
    if (!Number.isInteger(c) || c < 0 || c > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`decodeSerialization: code[${p}] = ${c} is not a non-negative exact integer`);
    }
    const b = Math.floor(c / scale);
    decodeCurve(c - b * scale, options.depth, hilbert, xyz);
    gridCoord.set(xyz, 3 * p);
    batch[p] = b;
  }
  return { gridCoord, batch };
}

/**
 * Decodes Pointcept's int64 codes: `batch = code >> 3·depth` (arithmetic, as torch's) and the
 * grid coordinates from the low 3·depth bits.
 */
export function decodeSerialization64(
  code: BigInt64Array,
  options: { depth: number; order: 'z' | 'hilbert' },
): { gridCoord: Int32Array; batch: BigInt64Array } {
  const hilbert = checkDecodeOptions('decodeSerialization64', options);
  const n = code.length;
  const gridCoord = new Int32Array(3 * n);
  const batch = new BigInt64Array(n);
  const shift = BigInt(3 * options.depth);
  const curveMask = (1n << shift) - 1n;
  const xyz = new Int32Array(3);
  for (let p = 0; p < n; p++) {
    const c = code[p]!;
    batch[p] = c >> shift;
    decodeCurve(Number(c & curveMask), options.depth, hilbert, xyz);
    gridCoord.set(xyz, 3 * p);
  }
  return { gridCoord, batch };
}
