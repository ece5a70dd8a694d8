import { createRng } from '@kiln/tensor';
import { describe, expect, it } from 'vitest';
import { offsetToBatchIndex } from '../data/point-cloud.js';
import { SERIALIZATION_ORDERS, encodeSerialization } from './encode.js';
import { computeGridCoord, pooledBatch, serializeBatch, serializedPool, sortCodes } from './serialize.js';
import { argsortCodes } from './sort.js';

function randomGrid(n: number, side: number, seed: number): Int32Array {
  const rng = createRng(seed);
  const g = new Int32Array(3 * n);
  for (let i = 0; i < g.length; i++) g[i] = rng.int(0, side);
  return g;
}

describe('argsortCodes', () => {
  it('sorts exact 53-bit integers and keeps ties in input order', () => {
    const rng = createRng(5);
    const keys = new Float64Array(3000);
    for (let i = 0; i < keys.length; i++) {
      // a few huge duplicates, many distinct values across the full 53-bit range
      keys[i] = i % 10 === 0 ? 2 ** 52 + 7 : Math.floor(rng.next() * 2 ** 21) * 2 ** 32 + rng.nextUint32();
    }
    const order = argsortCodes(keys);
    const expected = Array.from(keys.keys()).sort((a, b) => keys[a]! - keys[b]! || a - b);
    expect(Array.from(order)).toEqual(expected);
    expect(() => argsortCodes(Float64Array.of(1.5))).toThrow(/key\[0\] = 1.5/);
  });
});

describe('serializeBatch', () => {
  it('orders scenes by batch, points by code, and inverts exactly', () => {
    const offset = Int32Array.of(200, 350, 600);
    const g = randomGrid(600, 64, 1);
    const s = serializeBatch(g, { offset, orders: SERIALIZATION_ORDERS });
    expect(s.depth).toBe(7); // PTv3: bit_length(max + 1) = bit_length(64)
    const batch = offsetToBatchIndex(offset);
    for (let k = 0; k < 4; k++) {
      const code = s.code[k]!;
      const order = s.order[k]!;
      const inverse = s.inverse[k]!;
      for (let i = 1; i < order.length; i++) {
        expect(code[order[i]!]!).toBeGreaterThanOrEqual(code[order[i - 1]!]!);
        expect(batch[order[i]!]!).toBeGreaterThanOrEqual(batch[order[i - 1]!]!); // scenes stay contiguous, in order
      }
      // scene boundaries in the sequence sit exactly at offset
      expect(batch[order[199]!]).toBe(0);
      expect(batch[order[200]!]).toBe(1);
      expect(batch[order[350]!]).toBe(2);
      // round trip: order[inverse[p]] = p and inverse[order[i]] = i
      for (let p = 0; p < 600; p++) expect(order[inverse[p]!]).toBe(p);
      for (let i = 0; i < 600; i++) expect(inverse[order[i]!]).toBe(i);
      // gathering by order then by inverse restores the input
      const sorted = Float64Array.from(order, (p) => code[p]!);
      const restored = Float64Array.from(inverse, (i) => sorted[i]!);
      expect(Array.from(restored)).toEqual(Array.from(code));
    }
  });

  it('breaks ties (points in the same voxel) by input index', () => {
    const g = Int32Array.from([3, 3, 3, 0, 0, 0, 3, 3, 3, 1, 0, 0, 3, 3, 3]);
    const { order } = sortCodes(encodeSerialization(g, { depth: 2, order: 'z' }));
    expect(Array.from(order)).toEqual([1, 3, 0, 2, 4]);
  });

  it('shuffles orders reproducibly with a seeded rng', () => {
    const g = randomGrid(50, 16, 2);
    const a = serializeBatch(g, { orders: SERIALIZATION_ORDERS, shuffleOrders: true, rng: createRng(9) });
    const b = serializeBatch(g, { orders: SERIALIZATION_ORDERS, shuffleOrders: true, rng: createRng(9) });
    expect(a.orders).toEqual(b.orders);
    expect([...a.orders].sort()).toEqual([...SERIALIZATION_ORDERS].sort());
    const k = a.orders.indexOf('hilbert');
    expect(Array.from(a.code[k]!)).toEqual(Array.from(encodeSerialization(g, { depth: a.depth, order: 'hilbert' })));
  });

  it('computes per-scene grid coordinates from the scene minimum', () => {
    const coord = Float32Array.of(1, 1, 1, 1.25, 1.05, 1.5, -3, -3, -3, -2.75, -3, -2);
    const g = computeGridCoord(coord, Int32Array.of(2, 4), 0.1);
    expect(Array.from(g)).toEqual([0, 0, 0, 2, 0, 5, 0, 0, 0, 2, 0, 10]);
  });
});

describe('serializedPool', () => {
  it('merges points whose codes agree above 3·log2(stride) bits', () => {
    const offset = Int32Array.of(300, 500);
    const g = randomGrid(500, 32, 3);
    const batch = offsetToBatchIndex(offset);
    const s = serializeBatch(g, { offset, orders: ['z', 'hilbert'] });
    const pool = serializedPool(g, s, 4);
    expect(pool.poolingDepth).toBe(2);
    expect(pool.serialization.depth).toBe(s.depth - 2);
    const m = pool.head.length;
    // clusters = distinct (batch, grid >> 2) cells
    const cells = new Set<string>();
    for (let p = 0; p < 500; p++) cells.add(`${batch[p]},${g[3 * p]! >> 2},${g[3 * p + 1]! >> 2},${g[3 * p + 2]! >> 2}`);
    expect(m).toBe(cells.size);
    let total = 0;
    for (let c = 0; c < m; c++) total += pool.counts[c]!;
    expect(total).toBe(500);
    const pb = pooledBatch(batch, pool);
    for (let p = 0; p < 500; p++) {
      const c = pool.cluster[p]!;
      expect(pb[c]).toBe(batch[p]);
      for (let k = 0; k < 3; k++) expect(pool.gridCoord[3 * c + k]).toBe(g[3 * p + k]! >> 2);
    }
    // cluster ids ascend with the first order's code (torch.unique(sorted=True))
    const z = pool.serialization.code[0]!;
    for (let c = 1; c < m; c++) expect(z[c]!).toBeGreaterThan(z[c - 1]!);
    // pooled codes equal encoding the pooled grid directly, for every order
    const again = encodeSerialization(pool.gridCoord, { depth: s.depth - 2, order: 'hilbert', batch: pb });
    expect(Array.from(pool.serialization.code[1]!)).toEqual(Array.from(again));
    // indices/ptr group the fine points of each cluster
    for (let c = 0; c < m; c++) {
      for (let j = pool.ptr[c]!; j < pool.ptr[c + 1]!; j++) expect(pool.cluster[pool.indices[j]!]).toBe(c);
      expect(pool.head[c]).toBe(pool.indices[pool.ptr[c]!]);
    }
    expect(() => serializedPool(g, s, 3)).toThrow(/power of two/);
  });
});
