/**
 * One consistent call for every function the addon exports, with random shapes: the fuzz
 * test (fuzz.test.ts) starts from these calls and breaks them, the thread test
 * (threads.test.ts) runs them at many pool sizes. A test checks that every export has a
 * case here, so a new kernel is fuzzed from the day it lands. Not exported from the package.
 *
 * 'small' calls have dimensions from 0 (empty) to a handful; 'large' ones are big enough
 * that every parallel_for in the kernel splits its range over the pool.
 */
import type { TestRandom } from './test-support.js';

export type CaseSize = 'small' | 'large';

export interface KernelCall {
  args: unknown[];
  /** Positions in `args` of the arrays the kernel writes. */
  outputs: number[];
}

export interface KernelCase {
  /** The export's name. */
  name: string;
  make(r: TestRandom, size: CaseSize): KernelCall;
  /** Changes process-wide settings (pool size, GEMM path, cache): not a kernel to compare. */
  control?: boolean;
  /**
   * Largest relative difference allowed between pool sizes: 0 for kernels whose elements
   * never depend on how the work is split; rounding-level for sums split into partials.
   */
  threadTolerance?: number;
}

export const UNARY_OPS = [
  'abs', 'neg', 'exp', 'expm1', 'log', 'log1p', 'sqrt', 'rsqrt', 'square', 'reciprocal', 'relu', 'relu6', 'sigmoid',
  'tanh', 'elu', 'selu', 'softplus', 'step', 'leakyrelu',
] as const;
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'max', 'min', 'squaredDifference', 'pow'] as const;
export const REDUCE_OPS = ['sum', 'mean', 'max', 'min', 'prod'] as const;

const f32 = (r: TestRandom, n: number, low = -1, high = 1) => r.floats(n, low, high);
const zeros = (n: number) => new Float32Array(n);
const EMPTY = new Float32Array(0);

/** A dimension: 0 to `max` for small calls (0 = empty), or the given large value. */
function dim(r: TestRandom, size: CaseSize, max: number, large: number): number {
  return size === 'small' ? r.int(0, max + 1) : large;
}

function positiveDim(r: TestRandom, size: CaseSize, max: number, large: number): number {
  return size === 'small' ? r.int(1, max + 1) : large;
}

/** Row-major strides of `shape`, 0 on axes where `shape` is 1 and the output is not. */
function broadcastStrides(shape: number[], outShape: number[]): Int32Array {
  const strides = new Int32Array(outShape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = shape[d] === 1 && outShape[d] !== 1 ? 0 : s;
    s *= shape[d]!;
  }
  return strides;
}

function permutation(r: TestRandom, n: number): number[] {
  const p = [...Array(n).keys()];
  for (let i = n - 1; i > 0; i--) {
    const j = r.int(0, i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/** Geometry of a random NHWC convolution whose output size follows from its input. */
function convGeometry(r: TestRandom, size: CaseSize): Int32Array {
  const small = size === 'small';
  const batch = small ? r.int(0, 3) : 2;
  const inH = small ? r.int(1, 7) : 12;
  const inW = small ? r.int(1, 7) : 11;
  const inC = small ? r.int(0, 5) : 32;
  const outC = small ? r.int(0, 4) : 16;
  const [fH, fW] = small ? [r.int(1, 4), r.int(1, 4)] : [3, 3];
  const [sH, sW] = small ? [r.int(1, 3), r.int(1, 3)] : [1, 2];
  const [dH, dW] = small ? [r.int(1, 3), r.int(1, 3)] : [2, 1];
  const [pT, pL] = small ? [r.int(0, 2), r.int(0, 2)] : [1, 1];
  const out = (n: number, f: number, s: number, d: number, p: number) => Math.max(0, Math.floor((n + 2 * p - d * (f - 1) - 1) / s) + 1);
  return Int32Array.of(batch, inH, inW, inC, out(inH, fH, sH, dH, pT), out(inW, fW, sW, dW, pL), outC, fH, fW, sH, sW, dH, dW, pT, pL);
}

function convSizes(g: Int32Array): { x: number; filter: number; y: number } {
  const [batch, inH, inW, inC, outH, outW, outC, fH, fW] = Array.from(g);
  return { x: batch! * inH! * inW! * inC!, filter: fH! * fW! * inC! * outC!, y: batch! * outH! * outW! * outC! };
}

/** Selective-scan shapes and inputs, optional ones present or empty at random. */
function scanInputs(r: TestRandom, size: CaseSize) {
  const [b, d, n, l] = size === 'small' ? [r.int(1, 3), r.int(1, 4), r.int(1, 5), r.int(1, 9)] : [2, 8, 16, 300];
  const chunk = size === 'small' ? r.int(1, 12) : 64;
  const bdl = b * d * l;
  const opt = (len: number, low = -1, high = 1) => (r.next() < 0.5 ? f32(r, len, low, high) : EMPTY);
  const inputs = [
    f32(r, bdl), // u
    f32(r, bdl, -0.5, 0.5), // delta
    f32(r, d * n, -1, -0.1), // A (negative: a decaying state)
    f32(r, b * n * l), // B
    f32(r, b * n * l), // C
    opt(d), // D
    opt(bdl), // z
    opt(d), // deltaBias
    opt(b * d * n), // initialState
  ];
  return { b, d, n, l, chunk, bdl, inputs, softplus: r.next() < 0.5 };
}

export const KERNEL_CASES: KernelCase[] = [
  { name: 'info', control: true, make: () => ({ args: [], outputs: [] }) },
  { name: 'setNumThreads', control: true, make: (r) => ({ args: [r.int(1, 5)], outputs: [] }) },
  { name: 'setGemmPath', control: true, make: (r) => ({ args: [r.pick(['auto', 'builtin'])], outputs: [] }) },
  { name: 'poolStats', control: true, make: () => ({ args: [], outputs: [] }) },
  { name: 'setPoolLimit', control: true, make: (r) => ({ args: [r.pick([0, 4096, 2 ** 30])], outputs: [] }) },
  { name: 'trimPool', control: true, make: () => ({ args: [], outputs: [] }) },
  { name: 'allocF32', control: true, make: (r) => ({ args: [r.int(1, 100)], outputs: [] }) },
  {
    name: 'matmul',
    threadTolerance: 1e-5,
    make(r, size) {
      const batch = size === 'small' ? r.int(1, 4) : r.pick([1, 6]);
      const [m, n, k] = size === 'small' ? [r.int(0, 9), r.int(0, 9), r.int(0, 9)] : batch > 1 ? [24, 20, 28] : [130, 96, 70];
      const ba = r.next() < 0.5 ? batch : 1;
      const bb = ba === 1 ? batch : r.pick([1, batch]);
      const out = Math.max(ba, bb);
      return {
        args: [f32(r, ba * m * k), f32(r, bb * k * n), zeros(out * m * n), ba, bb, m, n, k, r.next() < 0.5, r.next() < 0.5],
        outputs: [2],
      };
    },
  },
  {
    name: 'reduce',
    threadTolerance: 1e-6,
    make(r, size) {
      const op = r.pick(REDUCE_OPS);
      // Large: one long row split across the pool, many short rows, or the strided layout.
      const [outer, n, inner] =
        size === 'small'
          ? [r.int(0, 5), r.int(1, 6), r.int(0, 5)]
          : r.pick([
              [1, 5 * 32768 + 77, 1],
              [3, 3 * 32768 + 5, 1],
              [500, 70, 1],
              [3, 17, 3000],
            ]);
      // prod over long rows: values near 1 so the product stays finite.
      const x = op === 'prod' ? f32(r, outer * n * inner, 0.9999, 1.0001) : f32(r, outer * n * inner);
      return { args: [op, x, zeros(outer * inner), outer, n, inner], outputs: [2] };
    },
  },
  {
    name: 'softmax',
    make(r, size) {
      const rows = dim(r, size, 5, 4000);
      const cols = positiveDim(r, size, 7, 33);
      return { args: [f32(r, rows * cols, -5, 5), zeros(rows * cols), rows, cols], outputs: [1] };
    },
  },
  {
    name: 'unary',
    make(r, size) {
      const n = dim(r, size, 20, 100_003);
      return { args: [r.pick(UNARY_OPS), f32(r, n, -3, 3), zeros(n), r.next()], outputs: [2] };
    },
  },
  {
    name: 'binary',
    make(r, size) {
      const outShape =
        size === 'small'
          ? Array.from({ length: r.int(0, 5) }, () => r.int(0, 4))
          : r.pick([
              [1, 100_003],
              [400, 300],
              [7, 50, 301],
            ]);
      const thin = (s: number[]) => s.map((d) => (r.next() < 0.3 ? 1 : d));
      const aShape = thin(outShape);
      const bShape = thin(outShape);
      const total = outShape.reduce((a, b) => a * b, 1);
      const len = (s: number[]) => (total === 0 ? 0 : s.reduce((a, b) => a * b, 1));
      return {
        args: [
          r.pick(BINARY_OPS),
          f32(r, len(aShape), 0.1, 2),
          f32(r, len(bShape), -2, 2),
          zeros(total),
          Int32Array.from(outShape),
          broadcastStrides(aShape, outShape),
          broadcastStrides(bShape, outShape),
        ],
        outputs: [3],
      };
    },
  },
  {
    name: 'biasActivation',
    make(r, size) {
      const n = positiveDim(r, size, 6, 300);
      const rows = dim(r, size, 5, 400);
      const act = r.pick(['linear', 'relu', 'leakyrelu', 'sigmoid', 'elu']);
      return { args: [f32(r, rows * n), r.next() < 0.5 ? null : f32(r, n), n, act, 0.2], outputs: [0] };
    },
  },
  {
    name: 'transpose',
    make(r, size) {
      const shape =
        size === 'small'
          ? Array.from({ length: r.int(0, 5) }, () => r.int(0, 4))
          : r.pick([
              [500, 300],
              [6, 200, 300],
              [20, 30, 40, 5],
            ]);
      const perm = permutation(r, shape.length);
      const total = shape.reduce((a, b) => a * b, 1);
      const ints = r.next() < 0.5;
      const x = ints ? r.ints(total, -1000, 1000) : f32(r, total);
      return { args: [x, ints ? new Int32Array(total) : zeros(total), Int32Array.from(shape), Int32Array.from(perm)], outputs: [1] };
    },
  },
  {
    name: 'gather',
    make(r, size) {
      const batch = positiveDim(r, size, 2, 2);
      const outer = dim(r, size, 3, 60);
      const d = positiveDim(r, size, 5, 50);
      const slice = dim(r, size, 4, 64);
      const count = dim(r, size, 5, 40);
      return {
        args: [f32(r, batch * outer * d * slice), r.ints(batch * count, 0, d), zeros(batch * outer * count * slice), batch, outer, d, slice, count],
        outputs: [2],
      };
    },
  },
  {
    name: 'unsortedSegmentSum',
    make(r, size) {
      const n = dim(r, size, 6, 200);
      const inner = dim(r, size, 5, 2000);
      const segments = dim(r, size, 4, 30);
      // ids outside [0, segments) are dropped, as tfjs does
      return { args: [f32(r, n * inner), r.ints(n, -1, segments + 1), zeros(segments * inner), segments, inner], outputs: [2] };
    },
  },
  ...(['conv2d', 'conv2dBackpropInput', 'conv2dBackpropFilter'] as const).map(
    (name): KernelCase => ({
      name,
      threadTolerance: 1e-5,
      make(r, size) {
        const g = convGeometry(r, size);
        const s = convSizes(g);
        if (name === 'conv2d') return { args: [f32(r, s.x), f32(r, s.filter), zeros(s.y), g], outputs: [2] };
        if (name === 'conv2dBackpropInput') return { args: [f32(r, s.y), f32(r, s.filter), zeros(s.x), g], outputs: [2] };
        return { args: [f32(r, s.x), f32(r, s.y), zeros(s.filter), g], outputs: [2] };
      },
    }),
  ),
  {
    name: 'adamUpdate',
    make(r, size) {
      const n = dim(r, size, 9, 100_003);
      const inPlace = r.next() < 0.3;
      const [w, g, m] = [f32(r, n), f32(r, n), f32(r, n)];
      const v = f32(r, n, 0, 1);
      const outs = inPlace ? [w, m, v] : [zeros(n), zeros(n), zeros(n)];
      return { args: [w, g, m, v, ...outs, 1e-3, 0.9, 0.999, 1e-7, 0.19, 0.002], outputs: inPlace ? [0, 2, 3] : [4, 5, 6] };
    },
  },
  {
    name: 'groupedMatMul',
    threadTolerance: 1e-5,
    make(r, size) {
      const G = size === 'small' ? r.int(0, 5) : 40;
      const sizes = size === 'small' ? r.ints(G, 0, 5) : r.ints(G, 0, 17);
      const M = sizes.reduce((a, b) => a + b, 0);
      const mode = r.int(0, 3);
      const [K, N] = size === 'small' ? [r.int(1, 5), r.int(1, 5)] : [16, 24];
      const [x, w, out] = mode === 0 ? [M * K, G * K * N, M * N] : mode === 1 ? [M * N, G * K * N, M * K] : [M * K, M * N, G * K * N];
      return { args: [f32(r, x), f32(r, w), zeros(out), sizes, mode, K, N], outputs: [2] };
    },
  },
  {
    name: 'moeGatherRows',
    make(r, size) {
      const T = positiveDim(r, size, 5, 300);
      const H = positiveDim(r, size, 4, 256);
      const R = dim(r, size, 6, 500);
      return { args: [f32(r, T * H), r.ints(R, 0, T), zeros(R * H), H], outputs: [2] };
    },
  },
  {
    name: 'moeScatterRows',
    make(r, size) {
      const T = positiveDim(r, size, 5, 300);
      const H = positiveDim(r, size, 4, 256);
      const R = dim(r, size, 6, 500);
      const weights = r.next() < 0.5 ? f32(r, R) : EMPTY;
      return { args: [f32(r, R * H), r.ints(R, 0, T), weights, zeros(T * H), H], outputs: [3] };
    },
  },
  {
    name: 'swiglu',
    make(r, size) {
      const R = dim(r, size, 5, 600);
      const F = positiveDim(r, size, 6, 200);
      return { args: [f32(r, R * 2 * F, -4, 4), zeros(R * F), F], outputs: [1] };
    },
  },
  {
    name: 'swigluGrad',
    make(r, size) {
      const R = dim(r, size, 5, 600);
      const F = positiveDim(r, size, 6, 200);
      return { args: [f32(r, R * 2 * F, -4, 4), f32(r, R * F), zeros(R * 2 * F), F], outputs: [2] };
    },
  },
  {
    name: 'topkRouter',
    make(r, size) {
      const T = dim(r, size, 5, 2000);
      // Group-limited routing needs groups of equal size holding k / groupTopk experts each.
      const grouped = r.next() < 0.5;
      const G = grouped ? r.pick([1, 2, 4]) : 0;
      const per = positiveDim(r, size, 3, 4);
      const E = grouped ? G * per : positiveDim(r, size, 8, 16);
      const groupTopk = grouped ? r.int(1, G + 1) : 0;
      const k = grouped ? groupTopk * r.int(1, per + 1) : r.int(1, E + 1);
      const scoreFn = r.int(0, 3);
      const bias = r.next() < 0.5 ? f32(r, E) : EMPTY;
      return {
        args: [f32(r, T * E, -3, 3), bias, zeros(T * E), new Int32Array(T * k), E, k, scoreFn, r.next() < 0.5, G, groupTopk, r.pick([0, 2.5])],
        outputs: [2, 3],
      };
    },
  },
  {
    name: 'castFp8',
    make(r, size) {
      const n = dim(r, size, 20, 100_003);
      return { args: [f32(r, n, -600, 600), zeros(n), r.pick([1, 0.5, 3]), r.int(0, 2), r.next() < 0.5, r.int(0, 2 ** 31)], outputs: [1] };
    },
  },
  {
    name: 'selectiveScanForward',
    make(r, size) {
      const s = scanInputs(r, size);
      return {
        args: [...s.inputs, zeros(s.bdl), zeros(s.b * s.d * s.n), s.b, s.d, s.n, s.l, s.softplus, s.chunk],
        outputs: [9, 10],
      };
    },
  },
  {
    name: 'selectiveScanBackward',
    make(r, size) {
      const s = scanInputs(r, size);
      const bdn = s.b * s.d * s.n;
      const grads = [s.bdl, s.bdl, s.d * s.n, s.b * s.n * s.l, s.b * s.n * s.l, s.d, s.bdl, s.d, bdn].map(zeros);
      return {
        args: [...s.inputs, f32(r, s.bdl), r.next() < 0.5 ? f32(r, bdn) : EMPTY, ...grads, s.b, s.d, s.n, s.l, s.softplus, s.chunk],
        outputs: [11, 12, 13, 14, 15, 16, 17, 18, 19],
      };
    },
  },
];
