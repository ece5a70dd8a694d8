/**
 * The addon under more threads than this machine has cores. How a kernel splits its work
 * depends on the pool size (a reduction over a few long rows splits each row into chunks
 * only when there are fewer rows than threads, for instance), so a test that runs at the
 * default size checks one split path and misses the others. Here every kernel runs at pool
 * sizes from 1 to 16 whatever the core count: reductions against a float64 reference, and
 * every kernel (kernel-cases.ts) against its own single-thread result.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { KERNEL_CASES, REDUCE_OPS } from './kernel-cases.js';
import { maxRelError, requireAddon, TestRandom, withThreads } from './test-support.js';

const addon = requireAddon();
const initialThreads = addon.info().threads;
/** Pool sizes, several above any CI machine's core count. */
const POOL_SIZES = [1, 2, 3, 4, 5, 8, 16];
/** The reduce kernel's grain (reduce.cc kGrain): rows at least this long split across threads. */
const GRAIN = 1 << 15;

afterAll(() => {
  addon.setNumThreads(initialThreads);
});

type ReduceOp = (typeof REDUCE_OPS)[number];

/** reduce over the middle axis of [outer, n, inner], in float64, NaN propagating through max/min. */
function referenceReduce(op: ReduceOp, x: Float32Array, outer: number, n: number, inner: number): Float64Array {
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < inner; j++) {
      let acc = op === 'prod' ? 1 : op === 'max' ? -Infinity : op === 'min' ? Infinity : 0;
      for (let r = 0; r < n; r++) {
        const v = x[(o * n + r) * inner + j]!;
        if (op === 'sum' || op === 'mean') acc += v;
        else if (op === 'prod') acc *= v;
        else if (Number.isNaN(v) || Number.isNaN(acc)) acc = Number.NaN;
        else acc = op === 'max' ? Math.max(acc, v) : Math.min(acc, v);
      }
      out[o * inner + j] = op === 'mean' ? acc / n : acc;
    }
  }
  return out;
}

/**
 * Values whose reduction depends on the tail of each row: for sum and mean the last 100
 * elements are large, the maximum and minimum sit in the last element, and the product's
 * only factors other than one are there too. A kernel that drops a row's last chunk gets
 * all of these wrong.
 */
function tailHeavy(op: ReduceOp, r: TestRandom, outer: number, n: number): Float32Array {
  const x = op === 'prod' ? new Float32Array(outer * n).fill(1) : r.floats(outer * n);
  for (let o = 0; o < outer; o++) {
    const end = (o + 1) * n;
    if (op === 'prod') {
      x[end - 1] = 2 + o;
      x[end - 2] = 0.5;
      x[end - 3] = 3;
    } else if (op === 'max') x[end - 1] = 10 + o;
    else if (op === 'min') x[end - 1] = -10 - o;
    else for (let i = end - 100; i < end; i++) x[i]! += 50;
  }
  return x;
}

describe('pool sizes above the core count', () => {
  it('are honoured, for the pool and for OpenBLAS', () => {
    for (const n of POOL_SIZES) {
      expect(addon.setNumThreads(n)).toBe(n);
      expect(addon.info().threads).toBe(n);
      if (addon.info().blasLinked) expect(addon.info().blasThreads).toBe(n);
    }
    addon.setNumThreads(initialThreads);
  });
});

describe('reduce at every pool size, against a float64 reference', () => {
  // Few long rows (each split into ceil(n / grain) chunks when rows < threads), many short
  // rows (one row per task), and the strided layout (inner > 1).
  const shapes: [number, number, number][] = [
    [1, 5 * GRAIN + 77, 1],
    [2, 3 * GRAIN, 1],
    [3, 2 * GRAIN + 1, 1],
    [1, GRAIN + 1, 1],
    [300, 200, 1],
    [3, 40, 700],
  ];
  for (const threads of POOL_SIZES) {
    it(`${threads} thread(s)`, () => {
      const r = new TestRandom(threads);
      withThreads(addon, threads, () => {
        for (const [outer, n, inner] of shapes) {
          for (const op of REDUCE_OPS) {
            const x = inner === 1 ? tailHeavy(op, r, outer, n) : r.floats(outer * n * inner);
            const out = new Float32Array(outer * inner).fill(Number.NaN);
            addon.reduce(op, x, out, outer, n, inner);
            const want = referenceReduce(op, x, outer, n, inner);
            expect(maxRelError(out, want), `${op} over [${outer}, ${n}, ${inner}]`).toBeLessThan(2e-6);
          }
        }
      });
    });
  }

  it('propagates a NaN from the last chunk of a split row through max and min', () => {
    for (const threads of [2, 4, 16]) {
      withThreads(addon, threads, () => {
        const n = 4 * GRAIN + 9;
        const x = new TestRandom(5).floats(n);
        x[n - 1] = Number.NaN;
        for (const op of ['max', 'min', 'sum'] as const) {
          const out = new Float32Array(1);
          addon.reduce(op, x, out, 1, n, 1);
          expect(out[0], `${op} at ${threads} threads`).toBeNaN();
        }
      });
    }
  });
});

describe('softmax at every pool size', () => {
  it('matches a float64 reference', () => {
    const [rows, cols] = [3000, 45];
    const x = new TestRandom(9).floats(rows * cols, -8, 8);
    const want = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) {
      const row = Array.from(x.subarray(i * cols, (i + 1) * cols));
      const m = Math.max(...row);
      const e = row.map((v) => Math.exp(v - m));
      const s = e.reduce((a, b) => a + b, 0);
      e.forEach((v, j) => {
        want[i * cols + j] = v / s;
      });
    }
    for (const threads of POOL_SIZES) {
      const out = new Float32Array(rows * cols);
      withThreads(addon, threads, () => addon.softmax(x, out, rows, cols));
      expect(maxRelError(out, want), `${threads} threads`).toBeLessThan(1e-6);
    }
  });
});

/** The first index where two arrays of 4-byte elements differ bit for bit, or -1. */
function firstDifference(a: Float32Array | Int32Array, b: Float32Array | Int32Array): number {
  if (a.length !== b.length) return 0;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

describe('every kernel gives its single-thread result at every pool size', () => {
  const kernels = KERNEL_CASES.filter((c) => !c.control);
  const fn = (name: string) => (addon as unknown as Record<string, (...args: unknown[]) => void>)[name]!;

  for (const kase of kernels) {
    it(kase.name, () => {
      // Each seed draws one large call (several shapes per kernel over the seeds).
      for (let seed = 1; seed <= 3; seed++) {
        const outputs = (threads: number) =>
          withThreads(addon, threads, () => {
            const call = kase.make(new TestRandom(seed), 'large');
            fn(kase.name)(...call.args);
            return call.outputs.map((i) => ({ position: i, values: (call.args[i] as Float32Array | Int32Array).slice() }));
          });
        const one = outputs(1);
        expect(one.some((o) => o.values.length > 0), `${kase.name} seed ${seed} writes something`).toBe(true);
        for (const threads of POOL_SIZES.slice(1)) {
          outputs(threads).forEach((got, k) => {
            const want = one[k]!.values;
            const what = `${kase.name} seed ${seed}, argument ${got.position}, ${threads} threads`;
            if (kase.threadTolerance) expect(maxRelError(got.values, want), what).toBeLessThanOrEqual(kase.threadTolerance);
            else expect(firstDifference(got.values, want), `${what}: first element that differs`).toBe(-1);
          });
        }
      }
    });
  }
});
