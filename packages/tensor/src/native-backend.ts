/**
 * The `kiln-native` backend: tfjs-backend-cpu's `MathBackendCPU` (same tensor storage,
 * same typed arrays) with every `cpu` kernel registered for it and the hot ones replaced by
 * C++ from `@kiln/native` (native-backend-kernels.ts).
 *
 * `@kiln/native` is an optional peer dependency: it is loaded by a guarded dynamic import,
 * so `@kiln/tensor` installs and runs without it and `initBackend` reports why it is absent.
 */
import type { NativeAddon, NativeLoadResult } from '@kiln/native';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { type NativeKernelBackend, nativeKernelImpls, nativeOnlyKernels, withFallback } from './native-backend-kernels.js';
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
function canPool(addon: NativeAddon, env: Record<string, string | undefined>): boolean {
  if (env.KILN_NATIVE_POOL === 'off' || typeof addon.allocF32 !== 'function') return false;
  try {
    return addon.allocF32(1).length === 1;
  } catch {
    return false;
  }
}

export class NativeBackend extends MathBackendCPU implements NativeKernelBackend {
  readonly addon: NativeAddon;
  readonly poolOutputs: boolean;
  constructor(addon: NativeAddon, env: Record<string, string | undefined> = process.env) {
    super();
    this.addon = addon;
    this.poolOutputs = canPool(addon, env);
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
