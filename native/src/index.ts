/**
 * Loads the `@kiln/native` addon: the one node-gyp built from source at install
 * (build/Release, scripts/install.mjs) when there is one, else the best prebuilt binary for
 * this platform and CPU that the package carries (prebuilds/, scripts/prebuild.mjs).
 * `loadNative()` never throws: when the addon is missing or broken it says why, so that
 * `@kiln/tensor`'s `initBackend` can fall back to `cpu` and report the reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** `auto`: per shape, whichever of OpenBLAS and the built-in GEMM measured faster. */
export type GemmPathName = 'auto' | 'blas' | 'builtin';
/** The built-in GEMM's micro-kernels, best first. */
export type GemmKernelName = 'avx512' | 'avx2' | 'portable';

/** What the `auto` GEMM path measured for one shape (`gemmChoices()`). */
export interface GemmChoice {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  kernel: GemmKernelName;
  /** Best time of each side so far; null before its first timed run. */
  builtinSeconds: number | null;
  blasSeconds: number | null;
  builtinRuns: number;
  blasRuns: number;
  choice: 'builtin' | 'blas' | 'measuring';
}

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
  /** The built-in GEMM's micro-kernel in use (chosen at load from what the CPU supports). */
  gemmKernel: GemmKernelName;
  /** Its full name, e.g. `avx512 12x32`. */
  builtinKernel: string;
  /** The micro-kernels this CPU and build support, best first. */
  gemmKernels: GemmKernelName[];
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
  /** allocF32 calls answered with V8-owned memory because limitBytes were handed out already. */
  unpooled: number;
}

/** The core functions of the addon. Every array is caller-allocated; nothing is copied. */
export interface NativeAddon {
  info(): NativeInfo;
  /** Resizes the pool (and OpenBLAS's threads); returns the new size. */
  setNumThreads(n: number): number;
  /** Selects the GEMM path; throws when asked for `blas` or `auto` in a build without BLAS. */
  setGemmPath(path: GemmPathName): GemmPathName;
  /** Selects the built-in GEMM's micro-kernel; throws when the CPU lacks it. */
  setGemmKernel(kernel: GemmKernelName): GemmKernelName;
  /** The `auto` path's measurements and decisions, one entry per shape seen. */
  gemmChoices(): GemmChoice[];
  /**
   * out[batch, m, n] = alpha · op(a)[batch, m, k] · op(b)[batch, k, n] + beta · out (alpha 1
   * and beta 0 by default; with beta 0 out's old contents are ignored); a batch of 1 broadcasts.
   */
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
    alpha?: number,
    beta?: number,
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
  /**
   * inputs[i] viewed as [outer, widths[i]] → out [outer, Σ widths]: row r of out is the
   * inputs' rows r side by side. All Float32Array, or all Int32Array.
   */
  concat(inputs: (Float32Array | Int32Array)[], out: Float32Array | Int32Array, outer: number, widths: Int32Array): void;
  /** out[numSegments, inner] (zeroed here) += x[ids.length, inner] by ids; ids outside range are skipped. */
  unsortedSegmentSum(x: Float32Array, ids: Int32Array, out: Float32Array, numSegments: number, inner: number): void;
  /** NHWC conv2d; geometry: see Conv2DGeometry in @kiln/tensor's native backend. */
  conv2d(x: Float32Array, filter: Float32Array, out: Float32Array, geometry: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
  /**
   * A Float32Array of n (≥ 1) elements over recycled, uninitialized memory (src/pool.cc):
   * its block is reused only after V8 has collected the array and Node has run its
   * finalizer (at the next event-loop turn), so it is as safe to hand out as a
   * `new Float32Array(n)`, but its contents are garbage until written.
   */
  allocF32(n: number): Float32Array;
  /** Bytes cached for reuse / handed out and not yet collected, and hit/miss counters. */
  poolStats(): PoolStats;
  /**
   * Most bytes kept cached for reuse, and most handed out from the pool at a time (default
   * 1 GiB; 0 turns the pool off); frees the cached excess.
   */
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

export type NativeLoadResult =
  | {
      ok: true;
      addon: NativeAddon;
      info: NativeInfo;
      /** The binary that was loaded. */
      path: string;
      /** `build`: compiled at install from source; `prebuilt`: shipped in the package. */
      source: 'build' | 'prebuilt';
    }
  | { ok: false; reason: string };

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Where the built addon lives (whether or not it exists). `KILN_NATIVE_ADDON` names another
 * build of it instead: the sanitizer build (scripts/sanitize.mjs) runs the tests this way.
 */
export const addonPath = process.env.KILN_NATIVE_ADDON
  ? path.resolve(process.env.KILN_NATIVE_ADDON)
  : path.join(packageRoot, 'build', 'Release', 'kiln_native.node');

/**
 * The CPU feature flags (x86-64 Linux, from /proc/cpuinfo) each prebuilt level needs: the
 * x86-64 micro-architecture levels its -march targets (scripts/prebuild.mjs).
 */
const X86_64_V3 = ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'movbe', 'xsave'];
export const PREBUILT_LEVELS: { level: string; flags: string[] }[] = [
  { level: 'v4', flags: [...X86_64_V3, 'avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'] },
  { level: 'v3', flags: X86_64_V3 },
];

function cpuFlags(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('flags'));
    return new Set(line?.split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

/**
 * The prebuilt binaries in `root`/prebuilds that this machine can run, best first:
 * `kiln_native.<level>.node` for the levels the CPU supports, then a plain
 * `kiln_native.node` (for platforms with a single build). Exported for tests.
 */
export function prebuiltCandidates(root: string = packageRoot, flags: Set<string> = cpuFlags()): string[] {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const levels = process.platform === 'linux' && process.arch === 'x64' ? PREBUILT_LEVELS.filter((l) => l.flags.every((f) => flags.has(f))) : [];
  return [...levels.map((l) => path.join(dir, `kiln_native.${l.level}.node`)), path.join(dir, 'kiln_native.node')].filter((f) => existsSync(f));
}

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
  return `@kiln/native's addon is not built (${path.join(root, 'build', 'Release', 'kiln_native.node')} is missing and no prebuilt binary fits this machine; run \`pnpm --filter @kiln/native build:native\` to see why)`;
}

/**
 * Debian's OpenBLAS 0.3.21 does not recognize AVX-512 CPUs newer than it and falls back to
 * its Prescott (SSE3) kernels, 5× slower; its SkylakeX kernels run on any CPU with
 * AVX-512 F/BW/DQ/VL. OpenBLAS reads the variable when the library loads, so it has to be
 * set before the addon is required. A value the user set is kept.
 */
function chooseOpenBlasCore(env: NodeJS.ProcessEnv): void {
  if (env.OPENBLAS_CORETYPE || process.platform !== 'linux' || process.arch !== 'x64') return;
  const flags = cpuFlags();
  if (['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) env.OPENBLAS_CORETYPE = 'SkylakeX';
}

/**
 * Loads the addon once. `KILN_NATIVE=off` pretends it is missing (to test fallbacks).
 * `KILN_GEMM`, `KILN_GEMM_KERNEL` and `KILN_NUM_THREADS` are read by the addon when it loads.
 */
export function loadNative(env: NodeJS.ProcessEnv = process.env): NativeLoadResult {
  if (env.KILN_NATIVE === 'off') return { ok: false, reason: 'disabled by KILN_NATIVE=off' };
  if (cached) return cached;
  const candidates: { file: string; source: 'build' | 'prebuilt' }[] = [
    ...(existsSync(addonPath) ? [{ file: addonPath, source: 'build' as const }] : []),
    // A build named by KILN_NATIVE_ADDON (the sanitizer's) is the only candidate: falling
    // back to a prebuilt binary would test something else.
    ...(process.env.KILN_NATIVE_ADDON ? [] : prebuiltCandidates().map((file) => ({ file, source: 'prebuilt' as const }))),
  ];
  if (candidates.length === 0) {
    cached = { ok: false, reason: explainMissingAddon() };
    return cached;
  }
  chooseOpenBlasCore(process.env);
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const { file, source } of candidates) {
    try {
      const addon = require(file) as NativeAddon;
      cached = { ok: true, addon, info: addon.info(), path: file, source };
      return cached;
    } catch (err) {
      failures.push(`${file} failed to load: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  cached = { ok: false, reason: failures.join('; ') };
  return cached;
}

/** One line describing the loaded addon, e.g. `2 threads, avx512, GEMM auto (avx512 12x32 / OpenBLAS 0.3.21, Haswell)`. */
export function describeNative(info: NativeInfo): string {
  const blas = info.blas.replace(/^OpenBLAS (\S+).*\(core (\w+)\)$/, 'OpenBLAS $1, $2');
  const gemm = info.gemmPath === 'blas' ? blas : info.gemmPath === 'auto' ? `${info.builtinKernel} / ${blas}` : info.builtinKernel;
  return `${info.threads} threads, ${info.simd}, GEMM ${info.gemmPath} (${gemm})`;
}
