/**
 * Space-filling-curve codes, bit for bit as Pointcept's
 * `pointcept/models/utils/serialization` (z_order.py from OCNN, hilbert.py after
 * numpy-hilbert-curve / Skilling 2004), with the batch index in the high bits.
 *
 * Codes have up to 3·16 + bits(batch) ≤ 53 bits, so they are exact in a JS number. Inside, the
 * 3·depth-bit curve code is built as two 24-bit halves with 32-bit integer ops (bits 0..7 and
 * 8..15 of every coordinate), which keeps the hot loop free of floating-point bit tricks.
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

/** Validates the grid and the batch; returns the largest batch index (−1 if none). */
function checkInputs(gridCoord: Int32Array, depth: number, batch: Int32Array | undefined): number {
  if (!(gridCoord instanceof Int32Array)) throw new TypeError('serialization: gridCoord must be an Int32Array (N*3)');
  if (gridCoord.length % 3 !== 0) throw new Error(`serialization: gridCoord length ${gridCoord.length} is not a multiple of 3`);
  const limit = 2 ** depth;
  for (let i = 0; i < gridCoord.length; i++) {
    const v = gridCoord[i]!;
    // Pointcept silently drops the bits above `depth` (colliding codes); refuse instead.
    if (v < 0 || v >= limit) {
      throw new RangeError(
        `serialization: gridCoord[${Math.floor(i / 3)}][${i % 3}] = ${v} is outside [0, 2^${depth}); ` +
          'use serializationDepth(gridCoord) or a larger depth',
      );
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
  if (3 * depth + bitLength(maxBatch) > 53) {
    throw new RangeError(
      `serialization: 3·depth + bits(batch) = ${3 * depth} + ${bitLength(maxBatch)} exceeds 53 bits, so codes would not be exact`,
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

/**
 * Codes for every point. `code = batch · 2^(3·depth) + curve(x, y, z)` where, for z-order,
 * bit i of x goes to bit 3i+2, of y to 3i+1, of z to 3i; `-trans` orders swap x and y first.
 */
export function encodeSerialization(gridCoord: Int32Array, options: EncodeOptions): Float64Array {
  const { depth, order, batch } = options;
  checkOrder(order);
  checkDepth(depth);
  checkInputs(gridCoord, depth, batch);
  const n = gridCoord.length / 3;
  const out = new Float64Array(n);
  const trans = order === 'z-trans' || order === 'hilbert-trans';
  const hilbert = order === 'hilbert' || order === 'hilbert-trans';
  const ax = trans ? 1 : 0;
  const ay = trans ? 0 : 1;
  const batchScale = 2 ** (3 * depth);
  const xyz = new Int32Array(3);
  // Which half-word the top curve bits land in: for depth ≤ 8 everything fits in `lo`.
  for (let p = 0; p < n; p++) {
    let x = gridCoord[3 * p + ax]!;
    let y = gridCoord[3 * p + ay]!;
    let z = gridCoord[3 * p + 2]!;
    if (hilbert) {
      xyz[0] = x;
      xyz[1] = y;
      xyz[2] = z;
      skillingUndo(xyz, depth);
      x = xyz[0]!;
      y = xyz[1]!;
      z = xyz[2]!;
    }
    // Interleave (x highest within each triple), as z-order does.
    const lo = (SPREAD[x & 255]! << 2) | (SPREAD[y & 255]! << 1) | SPREAD[z & 255]!;
    const hi = (SPREAD[(x >>> 8) & 255]! << 2) | (SPREAD[(y >>> 8) & 255]! << 1) | SPREAD[(z >>> 8) & 255]!;
    let code: number;
    if (hilbert) {
      // Pointcept reads the interleaved transposed bits as a Gray code of the whole
      // 3·depth-bit string and converts it to binary (prefix XOR from the top bit).
      const hiBin = grayDecode24(hi);
      let loBin = grayDecode24(lo);
      if (hiBin & 1) loBin ^= 0xffffff; // parity of every higher bit flips the whole low half
      code = hiBin * TWO24 + loBin;
    } else {
      code = hi * TWO24 + lo;
    }
    out[p] = batch === undefined ? code : batch[p]! * batchScale + code;
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

/**
 * Decodes codes of order 'z' or 'hilbert' back to grid coordinates and the batch index
 * (Pointcept's `decode`). For '-trans' codes, decode with the plain order and swap x and y.
 */
export function decodeSerialization(
  code: Float64Array,
  options: { depth: number; order: 'z' | 'hilbert' },
): { gridCoord: Int32Array; batch: Int32Array } {
  const { depth, order } = options;
  checkDepth(depth);
  if (order !== 'z' && order !== 'hilbert') throw new Error(`decodeSerialization: order must be 'z' or 'hilbert', got '${order}'`);
  const n = code.length;
  const gridCoord = new Int32Array(3 * n);
  const batch = new Int32Array(n);
  const scale = 2 ** (3 * depth);
  const xyz = new Int32Array(3);
  for (let p = 0; p < n; p++) {
    const c = code[p]!;
    if (!Number.isInteger(c) || c < 0 || c > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`decodeSerialization: code[${p}] = ${c} is not a non-negative exact integer`);
    }
    const b = Math.floor(c / scale);
    const curve = c - b * scale;
    let hi = Math.floor(curve / TWO24);
    let lo = curve - hi * TWO24;
    if (order === 'hilbert') {
      // binary → Gray over the whole bit string: g = h ^ (h >> 1).
      const carry = hi & 1;
      hi = (hi ^ (hi >>> 1)) & 0xffffff;
      lo = (lo ^ (lo >>> 1) ^ (carry << 23)) & 0xffffff;
    }
    let x = compact(lo, 2) | (compact(hi, 2) << 8);
    let y = compact(lo, 1) | (compact(hi, 1) << 8);
    let z = compact(lo, 0) | (compact(hi, 0) << 8);
    if (order === 'hilbert') {
      xyz[0] = x;
      xyz[1] = y;
      xyz[2] = z;
      skillingRedo(xyz, depth);
      x = xyz[0]!;
      y = xyz[1]!;
      z = xyz[2]!;
    }
    gridCoord[3 * p] = x;
    gridCoord[3 * p + 1] = y;
    gridCoord[3 * p + 2] = z;
    batch[p] = b;
  }
  return { gridCoord, batch };
}
