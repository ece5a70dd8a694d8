import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { addonPath, describeNative, explainMissingAddon, loadNative, type GemmPathName, type NativeAddon } from './index.js';

const loaded = loadNative();
if (!loaded.ok) throw new Error(`@kiln/native tests need the built addon: ${loaded.reason}`);
const addon: NativeAddon = loaded.addon;

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

/** op(A)·op(B) in double precision, A and B row-major as stored. */
function referenceMatmul(a: Float32Array, b: Float32Array, m: number, n: number, k: number, ta: boolean, tb: boolean) {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += (ta ? a[p * m + i]! : a[i * k + p]!) * (tb ? b[j * k + p]! : b[p * n + j]!);
      out[i * n + j] = s;
    }
  return out;
}

function maxError(got: Float32Array, want: Float64Array): number {
  let e = 0;
  for (let i = 0; i < want.length; i++) e = Math.max(e, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
  return e;
}

const shapes: [number, number, number][] = [
  [1, 1, 1],
  [1, 37, 5],
  [13, 1, 29],
  [7, 9, 0],
  [33, 65, 17],
  [12, 32, 384],
  [50, 70, 400], // K spans two KC blocks
  [130, 3, 260],
];
const paths: GemmPathName[] = loaded.info.blasLinked ? ['blas', 'builtin', 'portable'] : ['builtin', 'portable'];

describe('GEMM', () => {
  for (const path of paths) {
    it(`${path} path matches a float64 reference on odd shapes and transposes`, () => {
      addon.setGemmPath(path);
      try {
        let seed = 1;
        for (const [m, n, k] of shapes)
          for (const ta of [false, true])
            for (const tb of [false, true]) {
              const a = randomArray(m * k, seed++);
              const b = randomArray(k * n, seed++);
              const out = new Float32Array(m * n).fill(Number.NaN); // beta = 0 must overwrite NaN
              addon.matmul(a, b, out, 1, 1, m, n, k, ta, tb);
              expect(maxError(out, referenceMatmul(a, b, m, n, k, ta, tb)), `${m}x${n}x${k} ${ta} ${tb}`).toBeLessThan(1e-5);
            }
      } finally {
        addon.setGemmPath(loaded.info.gemmPath);
      }
    });
  }

  it('broadcasts a batch of 1 and runs batches in parallel', () => {
    const [batch, m, n, k] = [5, 6, 7, 8];
    const a = randomArray(batch * m * k, 11);
    const b = randomArray(k * n, 12);
    const out = new Float32Array(batch * m * n);
    addon.matmul(a, b, out, batch, 1, m, n, k, false, false);
    for (let i = 0; i < batch; i++) {
      const want = referenceMatmul(a.subarray(i * m * k, (i + 1) * m * k), b, m, n, k, false, false);
      expect(maxError(out.subarray(i * m * n, (i + 1) * m * n), want)).toBeLessThan(1e-5);
    }
  });

  it('rejects wrong sizes and unknown paths with errors naming the argument', () => {
    expect(() => addon.matmul(new Float32Array(3), new Float32Array(4), new Float32Array(4), 1, 1, 2, 2, 2, false, false)).toThrow(
      /matmul: a has 3 elements, expected 4/,
    );
    expect(() => addon.setGemmPath('fast' as GemmPathName)).toThrow(/setGemmPath/);
    expect(() => addon.matmul(new Float32Array(4), new Float32Array(4), new Float32Array(8), 2, 3, 2, 2, 1, false, false)).toThrow(
      /do not broadcast/,
    );
  });

  it('is fast: 512² on the default path beats 5 GFLOP/s (the cpu backend does ~0.5)', () => {
    const n = 512;
    const a = randomArray(n * n, 3);
    const b = randomArray(n * n, 4);
    const out = new Float32Array(n * n);
    addon.matmul(a, b, out, 1, 1, n, n, n, false, false);
    const t0 = performance.now();
    for (let r = 0; r < 3; r++) addon.matmul(a, b, out, 1, 1, n, n, n, false, false);
    const gflops = (3 * 2 * n ** 3) / ((performance.now() - t0) / 1000) / 1e9;
    expect(gflops).toBeGreaterThan(5);
  });
});

/** Runs a snippet in a fresh Node process (environment variables are read when the addon loads). */
function inChild(env: Record<string, string>, code: string): unknown {
  const script = `const a = require(${JSON.stringify(addonPath)}); ${code}`;
  const out = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return JSON.parse(out);
}

describe('environment overrides', () => {
  it('KILN_GEMM=builtin forces the built-in GEMM, which still computes correctly', () => {
    const result = inChild(
      { KILN_GEMM: 'builtin' },
      `const n = 67, A = new Float32Array(n * n).map((_, i) => (i % 7) - 3), C = new Float32Array(n * n);
       a.matmul(A, A, C, 1, 1, n, n, n, false, true);
       let err = 0;
       for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { let s = 0; for (let p = 0; p < n; p++) s += A[i*n+p] * A[j*n+p]; err = Math.max(err, Math.abs(s - C[i*n+j])); }
       console.log(JSON.stringify({ path: a.info().gemmPath, err }));`,
    ) as { path: string; err: number };
    expect(result.path).toBe('builtin');
    expect(result.err).toBe(0); // small integers: exact in float32
  });

  it('KILN_NUM_THREADS sizes the pool', () => {
    expect(inChild({ KILN_NUM_THREADS: '3' }, 'console.log(JSON.stringify(a.info().threads))')).toBe(3);
    if (loaded.info.blasLinked) {
      expect(inChild({ KILN_NUM_THREADS: '1' }, 'console.log(JSON.stringify(a.info().blasThreads))')).toBe(1);
    }
  });

  it('setNumThreads resizes the pool and results do not depend on it', () => {
    const before = addon.info().threads;
    const a = randomArray(100 * 90, 5);
    const b = randomArray(90 * 80, 6);
    const one = new Float32Array(100 * 80);
    const many = new Float32Array(100 * 80);
    try {
      addon.setGemmPath('builtin');
      expect(addon.setNumThreads(1)).toBe(1);
      addon.matmul(a, b, one, 1, 1, 100, 80, 90, false, false);
      expect(addon.setNumThreads(4)).toBe(4);
      addon.matmul(a, b, many, 1, 1, 100, 80, 90, false, false);
    } finally {
      addon.setNumThreads(before);
      addon.setGemmPath(loaded.info.gemmPath);
    }
    expect(many).toEqual(one);
  });
});

describe('loader', () => {
  it('reports why when disabled, and describes a loaded addon', () => {
    expect(loadNative({ KILN_NATIVE: 'off' })).toEqual({ ok: false, reason: 'disabled by KILN_NATIVE=off' });
    expect(describeNative(loaded.info)).toMatch(/threads, \w+, GEMM/);
  });

  it('explains a missing addon with the recorded build failure', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-native-'));
    try {
      expect(explainMissingAddon(dir)).toMatch(/addon is not built .*kiln_native\.node is missing/);
      mkdirSync(path.join(dir, 'build'));
      writeFileSync(path.join(dir, 'build', 'kiln-build.json'), JSON.stringify({ ok: false, reason: 'node-gyp rebuild exited with 1: g++: not found' }));
      expect(explainMissingAddon(dir)).toBe('the @kiln/native build failed at install: node-gyp rebuild exited with 1: g++: not found');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a failing build never fails the install, and records why', () => {
    const pkg = path.resolve(path.dirname(addonPath), '..', '..');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-native-build-'));
    try {
      cpSync(path.join(pkg, 'scripts'), path.join(dir, 'scripts'), { recursive: true });
      cpSync(path.join(pkg, 'binding.gyp'), path.join(dir, 'binding.gyp'));
      symlinkSync(path.join(pkg, 'node_modules'), path.join(dir, 'node_modules'));
      mkdirSync(path.join(dir, 'src', 'ops'), { recursive: true });
      writeFileSync(path.join(dir, 'src', 'addon.cc'), '#error deliberately broken\n');
      // execFileSync throws on a non-zero exit: the install must exit 0.
      execFileSync(process.execPath, [path.join(dir, 'scripts', 'install.mjs')], { cwd: dir, stdio: 'pipe' });
      const status = JSON.parse(readFileSync(path.join(dir, 'build', 'kiln-build.json'), 'utf8'));
      expect(status.ok).toBe(false);
      expect(status.reason).toMatch(/node-gyp rebuild exited with/);
      expect(explainMissingAddon(dir)).toMatch(/^the @kiln\/native build failed at install: node-gyp rebuild exited/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('selects OpenBLAS SkylakeX kernels on AVX-512 machines when OPENBLAS_CORETYPE was unset', () => {
    const flags = execFileSync('cat', ['/proc/cpuinfo'], { encoding: 'utf8' });
    const avx512 = ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => new RegExp(`\\b${f}\\b`).test(flags));
    if (!loaded.info.blasLinked || !avx512) return;
    expect(process.env.OPENBLAS_CORETYPE).toBeTruthy();
    if (process.env.OPENBLAS_CORETYPE === 'SkylakeX') expect(loaded.info.blas).toMatch(/core SkylakeX/);
  });
});
