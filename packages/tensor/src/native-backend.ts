/**
 * The `kiln-native` backend: tfjs-backend-cpu's `MathBackendCPU` (same tensor storage,
 * same typed arrays) with every `cpu` kernel registered for it and the hot ones replaced by
 * C++ from `@kiln/native` (native-backend-kernels.ts).
 *
 * `@kiln/native` is an optional peer dependency: it is loaded by a guarded dynamic import,
 * so `@kiln/tensor` installs and runs without it and `initBackend` reports why it is absent.
 */
import type { NativeAddon, NativeLoadResult, PoolStats } from '@kiln/native';
import type { BackendValues, DataId, DataType } from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { type NativeKernelBackend, POOLED_MIN_ELEMENTS, nativeKernelImpls, nativeOnlyKernels, withFallback } from './native-backend-kernels.js';
import { OutputRecycler, type RecyclerStats } from './native-recycler.js';
import { tf } from './tf.js';

export const NATIVE_BACKEND_NAME = 'kiln-native';

/** What the loaded addon says about itself. */
export interface NativeBackendInfo {
  threads: number;
  gemmPath: string;
  blas: string;
  builtinKernel: string;
  simd: string;
}

/** Whether this addon can hand out pooled output arrays (an older build or a runtime that forbids them cannot). */
function canPool(addon: NativeAddon): boolean {
  if (typeof addon.allocF32 !== 'function') return false;
  try {
    return addon.allocF32(1).length === 1;
  } catch {
    return false;
  }
}

/** The output arrays' two layers of reuse, as `outputPoolStats()` reports them. */
export interface NativeOutputPoolStats {
  /** Arrays reused as soon as their tensor is disposed (native-recycler.ts); null when off. */
  recycler: RecyclerStats | null;
  /** Blocks reused after V8 collected their array (@kiln/native's allocF32); null when off. */
  native: PoolStats | null;
}

export class NativeBackend extends MathBackendCPU implements NativeKernelBackend {
  readonly addon: NativeAddon;
  private readonly recycler: OutputRecycler | undefined;
  private readonly allocate: (n: number) => Float32Array;
  /**
   * `KILN_NATIVE_POOL=off` in `env` makes every output a plain `new Float32Array` (no reuse
   * of either kind), as before the pool existed.
   */
  constructor(addon: NativeAddon, env: Record<string, string | undefined> = process.env) {
    super();
    this.addon = addon;
    const pooled = env.KILN_NATIVE_POOL !== 'off' && canPool(addon);
    this.allocate = pooled ? (n) => (n < POOLED_MIN_ELEMENTS ? new Float32Array(n) : addon.allocF32(n)) : (n) => new Float32Array(n);
    this.recycler = pooled ? new OutputRecycler(this.allocate) : undefined;
  }

  /**
   * A float32 array of n elements for a native kernel that writes every element (contents
   * undefined): over the memory of a disposed output of n's size class when one is free,
   * else new. Small arrays are recycled too: a fresh `new Float32Array(4096)` costs about as
   * much as the whole add that fills it, and its garbage makes V8 collect more often.
   */
  outputArray(n: number): Float32Array {
    return this.recycler ? this.recycler.take(n) : this.allocate(n);
  }

  /** How much output memory is being reused (see native-recycler.ts and native/src/pool.cc). */
  outputPoolStats(): NativeOutputPoolStats {
    return { recycler: this.recycler?.stats() ?? null, native: this.recycler ? this.addon.poolStats() : null };
  }

  // The recycler has to see every way an array enters or leaves the backend's storage.
  override write(values: BackendValues, shape: number[], dtype: DataType): DataId {
    const id = super.write(values, shape, dtype);
    this.recycler?.registered(values);
    return id;
  }

  override move(dataId: DataId, values: BackendValues, shape: number[], dtype: DataType, refCount: number): void {
    super.move(dataId, values, shape, dtype, refCount);
    this.recycler?.registered(values);
  }

  /**
   * What dataSync(), data(), bufferSync() and moves to another backend see. An output served
   * as a view of a longer recycled block goes out as a copy of exactly its elements (code
   * such as tfjs-core's `Tensor.bytes()` reads a typed array's whole `.buffer`), and the block
   * stays recyclable; any other array goes out as itself and is never recycled.
   */
  override readSync(dataId: DataId): BackendValues {
    // biome-ignore lint/plugin/noSyncRead: this is the backend's own readSync (host memory)
    const out = super.readSync(dataId);
    if (this.recycler) {
      if (this.recycler.isPartialView(out)) return this.copyOut(out as Float32Array);
      this.recycler.escaped(this.data.get(dataId)?.values);
      this.recycler.escaped(out);
    }
    return out;
  }

  /** A copy of `values` over a buffer of its own exact length (never recycled: not taken from the recycler). */
  private copyOut(values: Float32Array): Float32Array {
    const copy = this.allocate(values.length);
    copy.set(values);
    return copy;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.recycler && this.data.has(dataId) ? this.data.get(dataId)?.values : undefined;
    const result = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) this.recycler?.released(values);
    return result;
  }

  override dispose(): void {
    this.recycler?.clear();
    super.dispose();
  }

  /** Thread count, SIMD level and GEMM path of the addon behind this backend. */
  nativeInfo(): NativeBackendInfo {
    return this.addon.info();
  }
}

let registered: { ok: true; detail: string } | { ok: false; reason: string } | undefined;

/** The kernels that `kiln-native` runs natively (the rest are the `cpu` kernels). */
export function nativeKernelNames(): string[] {
  return Object.keys(nativeKernelImpls);
}

function registerKernels(): void {
  const cpuKernels = tf.getKernelsForBackend('cpu');
  for (const config of cpuKernels) {
    const impl = nativeKernelImpls[config.kernelName];
    tf.registerKernel({
      ...config,
      backendName: NATIVE_BACKEND_NAME,
      kernelFunc: impl ? withFallback(impl, config.kernelFunc) : config.kernelFunc,
    });
  }
  for (const [kernelName, impl] of Object.entries(nativeOnlyKernels)) {
    tf.registerKernel({
      kernelName,
      backendName: NATIVE_BACKEND_NAME,
      kernelFunc: withFallback(impl, () => {
        throw new Error(`${kernelName}: kiln-native takes float32 inputs of equal sizes only`);
      }),
    });
  }
}

async function importNative(): Promise<NativeLoadResult> {
  let mod: { loadNative(): NativeLoadResult };
  try {
    // A variable specifier keeps bundlers from resolving the optional peer at build time.
    const specifier: string = '@kiln/native';
    mod = (await import(specifier)) as typeof mod;
  } catch (err) {
    const code = (err as { code?: string }).code;
    const message = (err as Error).message.split('\n')[0] ?? '';
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    return {
      ok: false,
      reason: !missing
        ? `@kiln/native failed to load: ${message}`
        : /['"]@kiln\/native['"]/.test(message)
          ? '@kiln/native is not installed (optional peer of @kiln/tensor)'
          : `@kiln/native is installed but its JavaScript is not built (${message}; run its build script)`,
    };
  }
  return mod.loadNative();
}

function describe(info: NativeBackendInfo): string {
  const gemm =
    info.gemmPath === 'blas'
      ? `GEMM OpenBLAS${/\(core (\w+)\)/.exec(info.blas)?.[1] ? ` ${/\(core (\w+)\)/.exec(info.blas)?.[1]}` : ''}`
      : `GEMM ${info.gemmPath} (${info.builtinKernel})`;
  return `@kiln/native: ${info.threads} threads, ${info.simd}, ${gemm}`;
}

/**
 * Loads `@kiln/native` and registers the `kiln-native` backend with tfjs (once).
 * Resolves to why it cannot, instead of throwing: a missing or unbuilt addon is normal.
 */
export async function registerNativeBackend(
  env: Record<string, string | undefined> = process.env,
): Promise<{ ok: true; detail: string } | { ok: false; reason: string }> {
  if (env.KILN_NATIVE === 'off') return { ok: false, reason: 'disabled by KILN_NATIVE=off' };
  if (registered) return registered;
  const loaded = await importNative();
  if (!loaded.ok) {
    registered = { ok: false, reason: loaded.reason };
    return registered;
  }
  const addon = loaded.addon;
  registerKernels();
  // Priority 2: above cpu (1), below webgpu/tensorflow, for code that calls tf.ready() itself.
  tf.registerBackend(NATIVE_BACKEND_NAME, () => new NativeBackend(addon, env), 2);
  registered = { ok: true, detail: describe(loaded.info) };
  return registered;
}
