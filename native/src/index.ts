/**
 * Loads the `@kiln/native` addon built by node-gyp at install (scripts/install.mjs).
 * `loadNative()` never throws: when the addon is missing or broken it says why, so that
 * `@kiln/tensor`'s `initBackend` can fall back to `cpu` and report the reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type GemmPathName = 'blas' | 'builtin' | 'portable';

/** What the addon reports about its build and current settings. */
export interface NativeInfo {
  /** Threads in the pool, the calling thread included. */
  threads: number;
  gemmPath: GemmPathName;
  /** OpenBLAS's build configuration and core type, or `none`. */
  blas: string;
  blasLinked: boolean;
  /** Threads OpenBLAS uses (follows the pool size); 0 without BLAS. */
  blasThreads: number;
  /** The built-in GEMM micro-kernel, e.g. `avx512 12x32`. */
  builtinKernel: string;
  /** The SIMD level compiled in: `avx512`, `avx2`, `neon` or `none` (portable build). */
  simd: string;
}

export type UnaryOpName =
  | 'abs'
  | 'neg'
  | 'exp'
  | 'expm1'
  | 'log'
  | 'log1p'
  | 'sqrt'
  | 'rsqrt'
  | 'square'
  | 'reciprocal'
  | 'relu'
  | 'relu6'
  | 'sigmoid'
  | 'tanh'
  | 'elu'
  | 'selu'
  | 'softplus'
  | 'step'
  | 'leakyrelu'
  | 'sign'
  | 'sin'
  | 'cos'
  | 'floor'
  | 'ceil'
  | 'round';
export type BinaryOpName = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min' | 'squaredDifference' | 'pow' | 'eluGrad';
export type ReduceOpName = 'sum' | 'max' | 'min' | 'mean' | 'prod';

/** The output-buffer pool's counters (src/pool.cc). */
export interface PoolStats {
  /** Bytes on the free lists, ready for reuse. */
  cachedBytes: number;
  /** Bytes in arrays handed out and not yet collected by V8. */
  liveBytes: number;
  limitBytes: number;
  /** allocF32 calls served from the free lists / from the system. */
  hits: number;
  misses: number;
  /** Blocks returned to the free lists / freed because the cache was full. */
  recycled: number;
  released: number;
}

/** The core functions of the addon. Every array is caller-allocated; nothing is copied. */
export interface NativeAddon {
  info(): NativeInfo;
  /** Resizes the pool (and OpenBLAS's threads); returns the new size. */
  setNumThreads(n: number): number;
  /** Selects the GEMM path; throws when asked for `blas` in a build without BLAS. */
  setGemmPath(path: GemmPathName): GemmPathName;
  /** out[batch, m, n] = op(a)[batch, m, k] · op(b)[batch, k, n]; a batch of 1 broadcasts. */
  matmul(
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    batchA: number,
    batchB: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
  ): void;
  /** out = activation(out + bias) in place, bias broadcast along the last axis (length n or empty). */
  biasActivation(out: Float32Array, bias: Float32Array | null, n: number, activation: string, alpha: number): void;
  /** out = op(x) (alpha: leakyrelu slope / step value). */
  unary(op: UnaryOpName, x: Float32Array, out: Float32Array, alpha: number): void;
  /**
   * out = a op b with numpy broadcasting: aStrides/bStrides are element strides over the
   * output shape (0 on broadcast axes).
   */
  binary(
    op: BinaryOpName,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    outShape: Int32Array,
    aStrides: Int32Array,
    bStrides: Int32Array,
  ): void;
  /** Reduces x viewed as [outer, reduce, inner] over the middle axis into out[outer, inner]. */
  reduce(op: ReduceOpName, x: Float32Array, out: Float32Array, outer: number, reduce: number, inner: number): void;
  /** Softmax over the last axis of x viewed as [rows, cols]. */
  softmax(x: Float32Array, out: Float32Array, rows: number, cols: number): void;
  /** out = transpose(x, perm) for 4-byte elements (float32/int32). */
  transpose(x: Float32Array | Int32Array, out: Float32Array | Int32Array, shape: Int32Array, perm: Int32Array): void;
  /**
   * x: [batch, outer, dim, slice], indices: [batch, count] → out: [batch, outer, count, slice].
   * Throws a RangeError naming the first index outside [0, dim).
   */
  gather(
    x: Float32Array | Int32Array,
    indices: Int32Array,
    out: Float32Array | Int32Array,
    batch: number,
    outer: number,
    dim: number,
    slice: number,
    count: number,
  ): void;
  /** out[numSegments, inner] (zeroed here) += x[ids.length, inner] by ids; ids outside range are skipped. */
  unsortedSegmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, numSegments: number, inner: number): void;
  /** NHWC conv2d; geometry: see Conv2DGeometry in @kiln/tensor's native backend. */
  conv2d(x: Float32Array, filter: Float32Array, out: Float32Array, geometry: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
  /**
   * A Float32Array of n (≥ 1) elements over recycled, uninitialized memory (src/pool.cc):
   * its block is reused only after V8 has collected the array, so it is as safe to hand out
   * as a `new Float32Array(n)`, but its contents are garbage until written.
   */
  allocF32(n: number): Float32Array;
  /** Bytes cached for reuse / handed out and not yet collected, and hit/miss counters. */
  poolStats(): PoolStats;
  /** Most bytes kept cached for reuse (default 1 GiB; 0 turns recycling off); frees the excess. */
  setPoolLimit(bytes: number): number;
  /** Frees every cached block; returns the bytes freed. */
  trimPool(): number;
  /**
   * One fused Adam step, as tfjs-core's AdamOptimizer computes it (hyper-parameters rounded
   * to float32): outM = m·β1 + g·(1−β1), outV = v·β2 + g²·(1−β2),
   * outValue = value − lr · (outM/c1) / (sqrt(outV/c2) + ε), c = 1 − β^t. Outputs may be
   * the input arrays (in place).
   */
  adamUpdate(
    value: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    outValue: Float32Array,
    outM: Float32Array,
    outV: Float32Array,
    learningRate: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    oneMinusAccBeta1: number,
    oneMinusAccBeta2: number,
  ): void;
  /** Functions registered by op files in native/src/ops/ (OPS.md). */
  [name: string]: unknown;
}

export type NativeLoadResult = { ok: true; addon: NativeAddon; info: NativeInfo; path: string } | { ok: false; reason: string };

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where the built addon lives (whether or not it exists). `KILN_NATIVE_ADDON` names another
 * build of it instead: the sanitizer build (scripts/sanitize.mjs) runs the tests this way.
 */
export const addonPath = process.env.KILN_NATIVE_ADDON
  ? path.resolve(process.env.KILN_NATIVE_ADDON)
  : path.join(packageRoot, 'build', 'Release', 'kiln_native.node');

let cached: NativeLoadResult | undefined;

/**
 * Why the install-time build did not produce the addon, from `<root>/build/kiln-build.json`
 * (written by scripts/install.mjs). Exported for tests.
 */
export function explainMissingAddon(root: string = packageRoot): string {
  const status = path.join(root, 'build', 'kiln-build.json');
  if (existsSync(status)) {
    try {
      const parsed = JSON.parse(readFileSync(status, 'utf8')) as { ok?: boolean; reason?: string };
      if (parsed.ok === false && parsed.reason) return `the @kiln/native build failed at install: ${parsed.reason}`;
    } catch {
      // fall through to the generic reason
    }
  }
  return `@kiln/native's addon is not built (${path.join(root, 'build', 'Release', 'kiln_native.node')} is missing; run \`pnpm --filter @kiln/native build:native\` to see why)`;
}

/**
 * Debian's OpenBLAS 0.3.21 does not recognize AVX-512 CPUs newer than it and falls back to
 * its Prescott (SSE3) kernels, 5× slower; its SkylakeX kernels run on any CPU with
 * AVX-512 F/BW/DQ/VL. OpenBLAS reads the variable when the library loads, so it has to be
 * set before the addon is required. A value the user set is kept.
 */
function chooseOpenBlasCore(env: NodeJS.ProcessEnv): void {
  if (env.OPENBLAS_CORETYPE || process.platform !== 'linux' || process.arch !== 'x64') return;
  try {
    const flagsLine = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    const flags = new Set(flagsLine?.split(':')[1]?.trim().split(/\s+/) ?? []);
    if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) env.OPENBLAS_CORETYPE = 'SkylakeX';
  } catch {
    // no /proc: leave OpenBLAS's own detection alone
  }
}

/**
 * Loads the addon once. `KILN_NATIVE=off` pretends it is missing (to test fallbacks).
 * `KILN_GEMM` and `KILN_NUM_THREADS` are read by the addon when it loads.
 */
export function loadNative(env: NodeJS.ProcessEnv = process.env): NativeLoadResult {
  if (env.KILN_NATIVE === 'off') return { ok: false, reason: 'disabled by KILN_NATIVE=off' };
  if (cached) return cached;
  if (!existsSync(addonPath)) {
    cached = { ok: false, reason: explainMissingAddon() };
    return cached;
  }
  chooseOpenBlasCore(process.env);
  try {
    const require = createRequire(import.meta.url);
    const addon = require(addonPath) as NativeAddon;
    cached = { ok: true, addon, info: addon.info(), path: addonPath };
  } catch (err) {
    cached = { ok: false, reason: `${addonPath} failed to load: ${(err as Error).message.split('\n')[0]}` };
  }
  return cached;
}

/** One line describing the loaded addon, e.g. `2 threads, avx512, GEMM blas (OpenBLAS ... SkylakeX)`. */
export function describeNative(info: NativeInfo): string {
  const gemm = info.gemmPath === 'blas' ? `blas: ${info.blas.replace(/^OpenBLAS (\S+).*\(core (\w+)\)$/, 'OpenBLAS $1, $2')}` : `${info.gemmPath} ${info.builtinKernel}`;
  return `${info.threads} threads, ${info.simd}, GEMM ${gemm}`;
}
