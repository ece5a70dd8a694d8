/**
 * GEMM (src/gemm*.cc) against a float64 reference: every path (OpenBLAS, the built-in GEMM,
 * the per-shape `auto` choice between them) and every micro-kernel this CPU supports, on
 * edge shapes (1×1, primes, k = 1 and 0, sizes that are not multiples of any block, several
 * K and column blocks, shapes big enough to be split across threads), all four transposes,
 * alpha/beta, and batches.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { addonPath, type GemmKernelName, type GemmPathName, loadNative, type NativeAddon } from './index.js';

const loaded = loadNative();
if (!loaded.ok) throw new Error(`@kiln/native tests need the built addon: ${loaded.reason}`);
const addon: NativeAddon = loaded.addon;
const initial = loaded.info;

afterEach(() => {
  addon.setGemmPath(initial.gemmPath);
  addon.setGemmKernel(initial.gemmKernel);
});

/** Small deterministic generator so failures reproduce. */
function randomArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/** alpha·op(A)·op(B) + beta·C in double precision, A and B row-major as stored. */
function referenceMatmul(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
  alpha = 1,
  beta = 0,
  c?: Float32Array,
) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a[p * m + i]! : a[i * k + p]!) * (tb ? b[j * k + p]! : b[p * n + j]!);
      out[i * n + j] = alpha * s + (beta === 0 ? 0 : beta * c![i * n + j]!);
    }
  return out;
}

/** Largest error relative to 1 + |want|, scaled by sqrt(k) (float32 sums of k terms). */
function maxError(got: Float32Array, want: Float64Array, k: number): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return e / Math.sqrt(Math.max(k, 1));
}

const TOLERANCE = 2e-6;

// [m, n, k]: the kernels are 12×32 (AVX-512), 6×16 (AVX2), 4×16 (portable); K blocks are
// 256 deep, M blocks up to 192 rows; products of 2^19 multiply-adds and more are threaded.
const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 5],
  [13, 1, 29],
  [7, 9, 0],
  [200, 33, 1],
  [33, 65, 17],
  [12, 32, 256],
  [50, 70, 513],
  [131, 3, 260],
  [97, 101, 103],
  [389, 67, 300],
  [61, 130, 1031],
];

const paths: GemmPathName[] = initial.blasLinked ? ['blas', 'builtin'] : ['builtin'];

describe('GEMM', () => {
  for (const path of paths)
    for (const kernel of path === 'blas' ? [initial.gemmKernel] : initial.gemmKernels) {
      it(`${path === 'blas' ? 'OpenBLAS' : `built-in ${kernel}`} matches a float64 reference on edge shapes and every transpose`, () => {
        addon.setGemmPath(path);
        addon.setGemmKernel(kernel);
        let seed = 1;
        for (const [m, n, k] of shapes)
          for (const ta of [false, true])
            for (const tb of [false, true]) {
              const a = randomArray(m * k, seed++);
              const b = randomArray(k * n, seed++);
              const out = new Float32Array(m * n).fill(Number.NaN); // beta = 0 must overwrite NaN
              addon.matmul(a, b, out, 1, 1, m, n, k, ta, tb);
              expect(maxError(out, referenceMatmul(a, b, m, n, k, ta, tb), k), `${m}x${n}x${k} ${ta} ${tb}`).toBeLessThan(TOLERANCE);
            }
      });
    }

  for (const kernel of initial.gemmKernels) {
    it(`built-in ${kernel}: a B wider than one packed column block, and alpha/beta`, () => {
      addon.setGemmPath('builtin');
      addon.setGemmKernel(kernel);
      // 4M packed floats per column block: k = 300 splits n = 14000 in two.
      const [m, n, k] = [5, 14000, 300];
      for (const tb of [false, true]) {
        const a = randomArray(m * k, 40);
        const b = randomArray(k * n, 41);
        const out = new Float32Array(m * n);
        addon.matmul(a, b, out, 1, 1, m, n, k, false, tb);
        expect(maxError(out, referenceMatmul(a, b, m, n, k, false, tb), k), `transB ${tb}`).toBeLessThan(TOLERANCE);
      }
      for (const [alpha, beta] of [
        [2, 0.5],
        [-1, 1],
        [0.5, 0],
        [0, 3],
      ] as const) {
        const [mm, nn, kk] = [70, 45, 300];
        const a = randomArray(mm * kk, 50);
        const b = randomArray(kk * nn, 51);
        const c = randomArray(mm * nn, 52);
        const out = c.slice();
        addon.matmul(a, b, out, 1, 1, mm, nn, kk, true, false, alpha, beta);
        expect(maxError(out, referenceMatmul(a, b, mm, nn, kk, true, false, alpha, beta, c), kk), `alpha ${alpha} beta ${beta}`).toBeLessThan(
          TOLERANCE,
        );
      }
    });
  }

  it('broadcasts a batch of 1 and runs batches of small products in parallel, on every kernel', () => {
    const [batch, m, n, k] = [5, 6, 7, 8];
    const a = randomArray(batch * m * k, 11);
    const b = randomArray(k * n, 12);
    addon.setGemmPath('builtin');
    for (const kernel of initial.gemmKernels) {
      addon.setGemmKernel(kernel);
      const out = new Float32Array(batch * m * n);
      addon.matmul(a, b, out, batch, 1, m, n, k, false, false);
      for (let i = 0; i < batch; i++) {
        const want = referenceMatmul(a.subarray(i * m * k, (i + 1) * m * k), b, m, n, k, false, false);
        expect(maxError(out.subarray(i * m * n, (i + 1) * m * n), want, k), kernel).toBeLessThan(TOLERANCE);
      }
    }
  });

  it('rejects wrong sizes, unknown paths and kernels with errors naming the argument', () => {
    expect(() => addon.matmul(new Float32Array(3), new Float32Array(4), new Float32Array(4), 1, 1, 2, 2, 2, false, false)).toThrow(
      /matmul: a has 3 elements, expected 4/,
    );
    expect(() => addon.setGemmPath('fast' as GemmPathName)).toThrow(/setGemmPath: path must be/);
    expect(() => addon.setGemmKernel('sse' as GemmKernelName)).toThrow(/setGemmKernel: kernel must be/);
    expect(() => addon.matmul(new Float32Array(4), new Float32Array(4), new Float32Array(8), 2, 3, 2, 2, 1, false, false)).toThrow(
      /do not broadcast/,
    );
    if (!initial.blasLinked) expect(() => addon.setGemmPath('auto')).toThrow(/not linked with a BLAS/);
  });

  it('uses the best micro-kernel the CPU has, chosen at run time', () => {
    const flags = readFileSync('/proc/cpuinfo', 'utf8');
    const has = (f: string) => new RegExp(`\\b${f}\\b`).test(flags);
    const expected: GemmKernelName[] = [];
    if (process.arch === 'x64' && ['avx512f', 'avx512dq', 'avx512bw', 'avx512vl', 'avx2', 'fma'].every(has)) expected.push('avx512');
    if (process.arch === 'x64' && has('avx2') && has('fma')) expected.push('avx2');
    expected.push('portable');
    expect(initial.gemmKernels).toEqual(expected);
    expect(initial.gemmKernel).toBe(expected[0]);
  });

  it('setNumThreads resizes the pool and results do not depend on it', () => {
    const before = addon.info().threads;
    const a = randomArray(300 * 90, 5);
    const b = randomArray(90 * 80, 6);
    const one = new Float32Array(300 * 80);
    const many = new Float32Array(300 * 80);
    try {
      addon.setGemmPath('builtin');
      expect(addon.setNumThreads(1)).toBe(1);
      addon.matmul(a, b, one, 1, 1, 300, 80, 90, false, false);
      expect(addon.setNumThreads(4)).toBe(4);
      addon.matmul(a, b, many, 1, 1, 300, 80, 90, false, false);
    } finally {
      addon.setNumThreads(before);
    }
    expect(many).toEqual(one);
  });
});

describe.runIf(initial.blasLinked)('auto path (OpenBLAS linked)', () => {
  it('is the default, times each new shape on both sides, then keeps the faster one', () => {
    expect(initial.gemmPath).toBe('auto');
    addon.setGemmPath('auto');
    addon.setNumThreads(addon.info().threads); // forgets earlier decisions
    expect(addon.gemmChoices()).toEqual([]);
    const [m, n, k] = [96, 80, 72];
    const a = randomArray(m * k, 60);
    const b = randomArray(n * k, 61);
    const want = referenceMatmul(a, b, m, n, k, false, true);
    for (let call = 0; call < 8; call++) {
      const out = new Float32Array(m * n).fill(Number.NaN);
      addon.matmul(a, b, out, 1, 1, m, n, k, false, true);
      expect(maxError(out, want, k), `call ${call}`).toBeLessThan(TOLERANCE);
      const [entry] = addon.gemmChoices();
      expect(entry).toMatchObject({ m, n, k, transA: false, transB: true, kernel: initial.gemmKernel });
      // Built-in first, then alternating, three timed runs each.
      const runs = Math.min(call + 1, 6);
      expect(entry!.builtinRuns).toBe(Math.ceil(runs / 2));
      expect(entry!.blasRuns).toBe(Math.floor(runs / 2));
      if (call < 5) expect(entry!.choice).toBe('measuring');
    }
    const [entry] = addon.gemmChoices();
    // OpenBLAS must be at least 10% faster to be chosen.
    expect(entry!.choice).toBe(entry!.blasSeconds! < 0.9 * entry!.builtinSeconds! ? 'blas' : 'builtin');
    // Tiny products are never timed: they stay on the built-in kernel.
    addon.matmul(randomArray(4, 1), randomArray(4, 2), new Float32Array(4), 1, 1, 2, 2, 2, false, false);
    expect(addon.gemmChoices()).toHaveLength(1);
  });
});

/** Runs a snippet in a fresh Node process (environment variables are read when the addon loads). */
function inChild(env: Record<string, string>, code: string): unknown {
  const script = `const a = require(${JSON.stringify(addonPath)}); ${code}`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(out);
}

describe('environment overrides', () => {
  it('KILN_GEMM=builtin and KILN_GEMM_KERNEL select the path and kernel at load', () => {
    const kernel = initial.gemmKernels.includes('avx2') ? 'avx2' : 'portable';
    const result = inChild(
      { KILN_GEMM: 'builtin', KILN_GEMM_KERNEL: kernel },
      `const n = 67, A = new Float32Array(n * n).map((_, i) => (i % 7) - 3), C = new Float32Array(n * n);
       a.matmul(A, A, C, 1, 1, n, n, n, false, true);
       let err = 0;
       for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { let s = 0; for (let p = 0; p < n; p++) s += A[i*n+p] * A[j*n+p]; err = Math.max(err, Math.abs(s - C[i*n+j])); }
       const info = a.info();
       console.log(JSON.stringify({ path: info.gemmPath, kernel: info.gemmKernel, err }));`,
    ) as { path: string; kernel: string; err: number };
    expect(result).toEqual({ path: 'builtin', kernel, err: 0 }); // small integers: exact in float32
  });
});
