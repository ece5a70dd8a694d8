import { describe, expect, it } from 'vitest';
import {
  SERIALIZATION_ORDERS,
  bitLength,
  decodeSerialization,
  decodeSerialization64,
  encodeSerialization,
  encodeSerialization64,
  serializationDepth,
} from './encode.js';
import {
  POINTCEPT_CODES,
  POINTCEPT_EDGE_CODES,
  POINTCEPT_RANDOM_BATCH,
  POINTCEPT_SMALL_BATCH,
  POINTCEPT_SMALL_POINTS,
} from './pointcept-fixtures.test-data.js';

const grid = (pts: number[][]): Int32Array => Int32Array.from(pts.flat());

/**
 * An independent Hilbert index: Skilling's two C routines transcribed literally on a
 * transposed array (AxestoTranspose with its Gray-encode and excess-undo steps), then the
 * transposed bits read out MSB first, axis 0 first. Uses BigInt so no bit tricks are shared
 * with the implementation under test.
 */
function skillingHilbert(x: number, y: number, z: number, b: number): number {
  const X = [BigInt(x), BigInt(y), BigInt(z)];
  const n = 3;
  const M = 1n << BigInt(b - 1);
  for (let Q = M; Q > 1n; Q >>= 1n) {
    const P = Q - 1n;
    for (let i = 0; i < n; i++) {
      if (X[i]! & Q) X[0] = X[0]! ^ P;
      else {
        const t = (X[0]! ^ X[i]!) & P;
        X[0] = X[0]! ^ t;
        X[i] = X[i]! ^ t;
      }
    }
  }
  for (let i = 1; i < n; i++) X[i] = X[i]! ^ X[i - 1]!;
  let t = 0n;
  for (let Q = M; Q > 1n; Q >>= 1n) if (X[n - 1]! & Q) t ^= Q - 1n;
  for (let i = 0; i < n; i++) X[i] = X[i]! ^ t;
  let h = 0n;
  for (let bit = b - 1; bit >= 0; bit--) {
    for (let i = 0; i < n; i++) h = (h << 1n) | ((X[i]! >> BigInt(bit)) & 1n);
  }
  return Number(h);
}

/** z-order straight from the bit definition: bit i of x → 3i+2, of y → 3i+1, of z → 3i. */
function zByDefinition(x: number, y: number, z: number, depth: number): number {
  let code = 0;
  for (let i = 0; i < depth; i++) {
    code += ((x >> i) & 1) * 2 ** (3 * i + 2) + ((y >> i) & 1) * 2 ** (3 * i + 1) + ((z >> i) & 1) * 2 ** (3 * i);
  }
  return code;
}

describe('encodeSerialization', () => {
  it('z-order known values by hand', () => {
    // (5, 3, 6) = x 101, y 011, z 110 → x bits 0,2 → code bits 2,8; y bits 0,1 → 1,4;
    // z bits 1,2 → 3,6: 4 + 256 + 2 + 16 + 8 + 64 = 350.
    const codes = encodeSerialization(grid([[5, 3, 6], [1, 0, 0], [0, 1, 0], [0, 0, 1]]), { depth: 3, order: 'z' });
    expect(Array.from(codes)).toEqual([350, 4, 2, 1]);
    // z-trans swaps x and y: (3, 5, 6) → 2 + 8·... computed the same way = 238.
    const t = encodeSerialization(grid([[5, 3, 6]]), { depth: 3, order: 'z-trans' });
    expect(t[0]).toBe(zByDefinition(3, 5, 6, 3));
    expect(t[0]).toBe(238);
  });

  it('batch index goes above 3·depth bits', () => {
    const codes = encodeSerialization(grid([[5, 3, 6], [5, 3, 6]]), { depth: 3, order: 'z', batch: Int32Array.of(0, 2) });
    expect(Array.from(codes)).toEqual([350, 2 * 512 + 350]);
  });

  it('matches Pointcept code for code (fixtures printed by its encode())', () => {
    const small = grid(POINTCEPT_SMALL_POINTS);
    for (const order of SERIALIZATION_ORDERS) {
      expect(Array.from(encodeSerialization(small, { depth: 3, order })), order).toEqual(POINTCEPT_CODES[`${order}/3`]);
      const b = Int32Array.from(POINTCEPT_SMALL_BATCH);
      expect(Array.from(encodeSerialization(small, { depth: 3, order, batch: b })), order).toEqual(
        POINTCEPT_CODES[`${order}/3/batch`],
      );
    }
    for (const depth of [5, 9, 12, 16]) {
      const pts = grid(POINTCEPT_CODES[`pts/${depth}`] as number[][]);
      const b = Int32Array.from(POINTCEPT_RANDOM_BATCH);
      for (const order of SERIALIZATION_ORDERS) {
        expect(Array.from(encodeSerialization(pts, { depth, order, batch: b })), `${order} depth ${depth}`).toEqual(
          POINTCEPT_CODES[`${order}/${depth}/batch`],
        );
      }
    }
  });

  it('z-order equals the bit definition on random points at every depth', () => {
    let s = 7;
    const rnd = (m: number) => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % m;
    };
    for (let depth = 1; depth <= 16; depth++) {
      const pts: number[][] = [];
      for (let i = 0; i < 50; i++) pts.push([rnd(2 ** depth), rnd(2 ** depth), rnd(2 ** depth)]);
      const codes = encodeSerialization(grid(pts), { depth, order: 'z' });
      pts.forEach(([x, y, z], i) => {
        expect(codes[i]).toBe(zByDefinition(x!, y!, z!, depth));
      });
      const hil = encodeSerialization(grid(pts), { depth, order: 'hilbert' });
      pts.forEach(([x, y, z], i) => {
        expect(hil[i]).toBe(skillingHilbert(x!, y!, z!, depth));
      });
    }
  });

  it('hilbert equals an independent Skilling implementation on every cell of small grids, and is a Hilbert path', () => {
    for (const depth of [1, 2, 3, 4]) {
      const side = 2 ** depth;
      const pts: number[][] = [];
      for (let x = 0; x < side; x++) for (let y = 0; y < side; y++) for (let z = 0; z < side; z++) pts.push([x, y, z]);
      const codes = encodeSerialization(grid(pts), { depth, order: 'hilbert' });
      const byCode: number[][] = new Array(pts.length);
      pts.forEach(([x, y, z], i) => {
        expect(codes[i]).toBe(skillingHilbert(x!, y!, z!, depth));
        byCode[codes[i]!] = pts[i]!;
      });
      // A bijection onto 0..8^depth−1 whose consecutive cells are face neighbours.
      for (let c = 1; c < byCode.length; c++) {
        const a = byCode[c - 1]!;
        const b = byCode[c]!;
        expect(Math.abs(a[0]! - b[0]!) + Math.abs(a[1]! - b[1]!) + Math.abs(a[2]! - b[2]!)).toBe(1);
      }
    }
  });

  it('codes are unique per voxel and decode back', () => {
    const depth = 5;
    const pts: number[][] = [];
    for (let x = 0; x < 32; x += 3) for (let y = 0; y < 32; y += 5) for (let z = 0; z < 32; z += 2) pts.push([x, y, z]);
    const g = grid(pts);
    const batch = Int32Array.from(pts, (_, i) => i % 3);
    for (const order of SERIALIZATION_ORDERS) {
      const codes = encodeSerialization(g, { depth, order, batch });
      expect(new Set(codes).size).toBe(pts.length);
      if (order === 'z' || order === 'hilbert') {
        const back = decodeSerialization(codes, { depth, order });
        expect(Array.from(back.gridCoord)).toEqual(Array.from(g));
        expect(Array.from(back.batch)).toEqual(Array.from(batch));
      }
    }
    // Depth 16 with a large batch still decodes exactly.
    const big = grid([[65535, 0, 40000], [1, 65535, 2]]);
    const b = Int32Array.of(31, 17);
    const codes = encodeSerialization(big, { depth: 16, order: 'hilbert', batch: b });
    const back = decodeSerialization(codes, { depth: 16, order: 'hilbert' });
    expect(Array.from(back.gridCoord)).toEqual(Array.from(big));
    expect(Array.from(back.batch)).toEqual([31, 17]);
  });

  it('locality: consecutive points in code order are close in space on average', () => {
    const depth = 5;
    const pts: number[][] = [];
    for (let x = 0; x < 32; x++) for (let y = 0; y < 32; y++) for (let z = 0; z < 8; z++) pts.push([x, y, z]);
    const g = grid(pts);
    const meanStep = (codes: Float64Array | null): number => {
      const idx = pts.map((_, i) => i);
      if (codes) idx.sort((a, b) => codes[a]! - codes[b]!);
      else {
        // a random order as the baseline
        let s = 3;
        for (let i = idx.length - 1; i > 0; i--) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          const j = s % (i + 1);
          [idx[i], idx[j]] = [idx[j]!, idx[i]!];
        }
      }
      let sum = 0;
      for (let i = 1; i < idx.length; i++) {
        const a = pts[idx[i - 1]!]!;
        const b = pts[idx[i]!]!;
        sum += Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!, a[2]! - b[2]!);
      }
      return sum / (idx.length - 1);
    };
    const random = meanStep(null);
    for (const order of SERIALIZATION_ORDERS) {
      const step = meanStep(encodeSerialization(g, { depth, order }));
      expect(step, order).toBeLessThan(2);
      expect(step, order).toBeLessThan(random / 5);
    }
    // Hilbert steps are unit inside full cubes; the 32×32×8 slab forces a few longer jumps.
    expect(meanStep(encodeSerialization(g, { depth, order: 'hilbert' }))).toBeLessThan(1.1);
  });

  it('rejects bad depth, coordinates, batch and order', () => {
    const g = grid([[1, 2, 3]]);
    expect(() => encodeSerialization(g, { depth: 17, order: 'z' })).toThrow(/depth/);
    expect(() => encodeSerialization(g, { depth: 1, order: 'z', strict: true })).toThrow(
      /gridCoord\[0\]\[1\] = 2 is outside \[0, 2\^1\)/,
    );
    expect(() => encodeSerialization(grid([[-1, 0, 0]]), { depth: 4, order: 'z', strict: true })).toThrow(/-1/);
    expect(() => encodeSerialization(g, { depth: 16, order: 'z', batch: Int32Array.of(64) })).toThrow(
      /53 bits.*encodeSerialization64/,
    );
    expect(() => encodeSerialization(g, { depth: 4, order: 'z', batch: Int32Array.of(-1) })).toThrow(/batch\[0\] = -1/);
    expect(() => encodeSerialization(g, { depth: 16, order: 'z', batch: Int32Array.of(31) })).not.toThrow();
    expect(() => encodeSerialization(g, { depth: 4, order: 'z', batch: Int32Array.of(0, 1) })).toThrow(/2 entries for 1 points/);
    expect(() => encodeSerialization(g, { depth: 4, order: 'peano' as never })).toThrow(/unknown order 'peano'/);
  });

  it("keeps the low depth bits of out-of-range coordinates, as Pointcept's encode", () => {
    const pts = grid(POINTCEPT_EDGE_CODES['oor/pts'] as number[][]);
    for (const depth of [1, 3, 8, 9, 12, 16]) {
      for (const order of SERIALIZATION_ORDERS) {
        const want = POINTCEPT_EDGE_CODES[`oor/${order}/${depth}`] as number[];
        expect(Array.from(encodeSerialization(pts, { depth, order })), `${order} depth ${depth}`).toEqual(want);
        expect(Array.from(encodeSerialization64(pts, { depth, order }), Number), `${order} depth ${depth} (64)`).toEqual(want);
      }
    }
  });

  it('gives int64 codes beyond 53 bits bit for bit as Pointcept, and decodes them', () => {
    const pts = grid(POINTCEPT_EDGE_CODES['big/pts'] as number[][]);
    const batch = Int32Array.from(POINTCEPT_EDGE_CODES['big/batch'] as number[]);
    for (const depth of [14, 16]) {
      for (const order of SERIALIZATION_ORDERS) {
        const codes = encodeSerialization64(pts, { depth, order, batch });
        expect(Array.from(codes, String), `${order} depth ${depth}`).toEqual(POINTCEPT_EDGE_CODES[`big/${order}/${depth}`]);
        if (order === 'z' || order === 'hilbert') {
          const back = decodeSerialization64(codes, { depth, order });
          const masked = Array.from(pts, (v) => v & ((1 << depth) - 1));
          expect(Array.from(back.gridCoord)).toEqual(masked);
          // int64 wraps: a batch index with bit 63 − 3·depth set comes back negative (torch's >>).
          const room = 2 ** (63 - 3 * depth);
          expect(Array.from(back.batch, Number)).toEqual(Array.from(batch, (b) => (b < room ? b : b - 2 * room)));
        }
      }
    }
    expect(() => decodeSerialization64(BigInt64Array.of(0n), { depth: 4, order: 'z-trans' as never })).toThrow(/order must be/);
  });

  it('adaptive depth is bit_length(max + 1)', () => {
    expect(bitLength(0)).toBe(0);
    expect(bitLength(8)).toBe(4);
    expect(serializationDepth(grid([[0, 7, 3]]))).toBe(4);
    expect(serializationDepth(grid([[0, 6, 3]]))).toBe(3);
  });
});
