import { createRng, tf } from '@kiln/tensor';
import { beforeAll, describe, expect, it } from 'vitest';
import { hostBackends, hostInt, hostNormal, kernelVsReference } from '../test-utils.js';
import { permuteRows, permuteRowsOp, segmentBroadcast, segmentBroadcastOp, segmentPool, segmentPoolOp } from './rows.js';

const backends = await hostBackends();

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/**
 * A padded sequence layout like a serialized backbone's: scenes of the given sizes, each in a
 * random order, in rows of `length` slots; padding slots hold m (out of range).
 */
function layout(sizes: number[], length: number, seed: number): { index: Int32Array; inverse: Int32Array; m: number } {
  const rng = createRng(seed);
  const m = sizes.reduce((a, b) => a + b, 0);
  const index = new Int32Array(sizes.length * length).fill(m);
  const inverse = new Int32Array(m);
  let start = 0;
  sizes.forEach((size, r) => {
    const order = rng.permutation(size);
    for (let j = 0; j < size; j++) {
      index[r * length + j] = start + order[j]!;
      inverse[start + order[j]!] = r * length + j;
    }
    start += size;
  });
  return { index, inverse, m };
}

/** A random segmentation of n points into S non-empty segments (sizes ragged). */
function segmentation(n: number, S: number, seed: number): { segment: Int32Array; sorted: Int32Array; ptr: Int32Array } {
  const rng = createRng(seed);
  const segment = new Int32Array(n);
  const order = rng.permutation(n);
  for (let j = 0; j < n; j++) segment[order[j]!] = j < S ? j : Math.floor(rng.next() * S);
  const counts = new Int32Array(S);
  for (const s of segment) counts[s]!++;
  const ptr = new Int32Array(S + 1);
  for (let s = 0; s < S; s++) ptr[s + 1] = ptr[s]! + counts[s]!;
  const fill = ptr.slice(0, S);
  const sorted = new Int32Array(n);
  for (let p = 0; p < n; p++) sorted[fill[segment[p]!]!++] = p;
  return { segment, sorted, ptr };
}

describe('permuteRows', () => {
  it('gathers rows, zero-fills padding slots, and its gradient is the inverse gather', () => {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const index = tf.tensor1d([2, 3, 0, -1, 1], 'int32');
    const inverse = tf.tensor1d([2, 4, 0], 'int32');
    expect(Array.from(permuteRows(x, index, inverse).dataSync())).toEqual([5, 6, 0, 0, 1, 2, 0, 0, 3, 4]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(permuteRows(v, index, inverse), tf.range(0, 10).reshape([5, 2]))))(x);
    expect(Array.from(g.dataSync())).toEqual([4, 5, 8, 9, 0, 1]);
  });

  // scenes of 1 point, ragged scenes, one long row with padding, C = 1
  const cases: Array<[number[], number, number]> = [
    [[1], 1, 3],
    [[1, 1, 1], 32, 4],
    [[5, 17, 2], 32, 8],
    [[45], 64, 1],
  ];
  for (const backend of backends) {
    for (const [sizes, length, C] of cases) {
      it(`${backend}: kernel = reference, forward and gradient, scenes [${sizes}] in rows of ${length}, C ${C}`, async () => {
        const { index, inverse, m } = layout(sizes, length, 7);
        // into the sequence and back out again, as a backbone does
        const err = await kernelVsReference(backend, { x: hostNormal([m, C], 1), index: hostInt(index), inverse: hostInt(inverse) }, ['x'], (t, reference) => {
          const f = reference ? permuteRowsOp.reference : permuteRowsOp;
          const seq = f({ x: t.x!, index: t.index!, inverse: t.inverse! });
          return [seq, f({ x: tf.mul(seq, 2), index: t.inverse!, inverse: t.index! })];
        });
        expect(err).toBeLessThan(1e-6);
      });
    }
  }

  it('rejects an index that selects a row twice or an inverse that disagrees', () => {
    const x = tf.zeros([2, 1]);
    expect(() => permuteRows(x, tf.tensor1d([0, 0], 'int32'), tf.tensor1d([0, 1], 'int32')).dataSync()).toThrow(/index\[1\] = 0 but inverse\[0\] = 0/);
    expect(() => permuteRows(x, tf.tensor1d([0], 'int32'), tf.tensor1d([0, 0], 'int32')).dataSync()).toThrow(/inverse\[1\] = 0 but index\[0\] = 0/);
    expect(() => permuteRows(x, tf.tensor1d([0], 'int32'), tf.tensor1d([0], 'int32'))).toThrow(/'inverse' \[1\] must have 2 entries/);
    expect(() => permuteRows(x, tf.tensor1d([0]), tf.tensor1d([0, 1], 'int32'))).toThrow(/'index' must be int32/);
  });
});

describe('segmentPool / segmentBroadcast', () => {
  it('sum or average each segment, and broadcast back', () => {
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const seg = { segment: tf.tensor1d([1, 0, 1], 'int32'), sorted: tf.tensor1d([1, 0, 2], 'int32'), ptr: tf.tensor1d([0, 1, 3], 'int32') };
    expect(Array.from(segmentPool(x, seg).dataSync())).toEqual([3, 4, 6, 8]);
    expect(Array.from(segmentPool(x, seg, true).dataSync())).toEqual([3, 4, 3, 4]);
    expect(Array.from(segmentBroadcast(tf.tensor2d([1, 2, 4, 6], [2, 2]), seg).dataSync())).toEqual([4, 6, 1, 2, 4, 6]);
    expect(Array.from(segmentBroadcast(tf.tensor2d([1, 2, 4, 6], [2, 2]), seg, true).dataSync())).toEqual([2, 3, 1, 2, 2, 3]);
  });

  // points, segments, C: one point, all in one segment, singletons, ragged
  const cases: Array<[number, number, number]> = [
    [1, 1, 3],
    [9, 1, 2],
    [6, 6, 4],
    [200, 37, 8],
  ];
  for (const backend of backends) {
    for (const [n, S, C] of cases) {
      for (const mean of [false, true]) {
        it(`${backend}: kernels = references, forward and gradient, ${n} points in ${S} segments, C ${C}${mean ? ', mean' : ''}`, async () => {
          const { segment, sorted, ptr } = segmentation(n, S, n + S);
          const idx = { segment: hostInt(segment), sorted: hostInt(sorted), ptr: hostInt(ptr) };
          const pool = await kernelVsReference(backend, { x: hostNormal([n, C], 1), ...idx }, ['x'], (t, reference) =>
            (reference ? segmentPoolOp.reference : segmentPoolOp)(t, { mean }),
          );
          expect(pool).toBeLessThan(1e-6);
          const unpool = await kernelVsReference(backend, { x: hostNormal([S, C], 2), ...idx }, ['x'], (t, reference) =>
            (reference ? segmentBroadcastOp.reference : segmentBroadcastOp)(t, { mean }),
          );
          expect(unpool).toBeLessThan(1e-6);
        });
      }
    }
  }

  it('rejects inconsistent segmentations naming the entry', () => {
    const x = tf.zeros([3, 1]);
    const good = { segment: tf.tensor1d([1, 0, 1], 'int32'), sorted: tf.tensor1d([1, 0, 2], 'int32'), ptr: tf.tensor1d([0, 1, 3], 'int32') };
    expect(() => segmentPool(x, { ...good, ptr: tf.tensor1d([0, 0, 3], 'int32') }).dataSync()).toThrow(/segmentPool: segment 0 is empty/);
    expect(() => segmentPool(x, { ...good, sorted: tf.tensor1d([0, 1, 2], 'int32') }).dataSync()).toThrow(/sorted\[0\] = 0 is listed under segment 0 but segment\[0\] = 1/);
    expect(() => segmentBroadcast(x, good)).toThrow(/segmentBroadcast: 'x' \[3, 1\] must have 2 rows \(one per segment\)/);
  });
});
