/**
 * WebGPU in Node: Dawn from the `webgpu` package provides `navigator.gpu`, then
 * tfjs-backend-webgpu runs on the adapter it finds. In a browser `navigator.gpu` is used
 * as it is.
 */
import { tf } from './tf.js';

/** What the adapter says about itself, and whether it is a software rasterizer. */
export interface WebGpuAdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  software: boolean;
}

interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  info?: { vendor?: string; architecture?: string; description?: string; device?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  features: { has(name: string): boolean };
  limits: Record<string, number>;
  requestDevice(descriptor: object): Promise<unknown>;
}

type WebGpuModule = typeof import('@tensorflow/tfjs-backend-webgpu');
let loadedModule: WebGpuModule | undefined;

/** tfjs-backend-webgpu once `registerWebGpuBackend` has loaded it (for WGSL helpers). */
export function webGpuModule(): WebGpuModule | undefined {
  return loadedModule;
}

let probe: Promise<{ adapter: AdapterLike; summary: WebGpuAdapterSummary } | { reason: string }> | undefined;

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe|software/i;

async function findGpu(): Promise<GpuLike | { reason: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (nav?.gpu) return nav.gpu;
  let dawn: { create(flags: string[]): GpuLike; globals: object };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (err) {
    return { reason: `the optional peer 'webgpu' (Dawn) is not installed or could not be loaded; npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0 (${(err as Error).message.split('\n')[0]})` };
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  // Node 20 has no global navigator; tfjs-backend-webgpu looks for navigator.gpu.
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return gpu;
}

/** Looks for a WebGPU adapter once per process; the answer is cached. */
export function probeWebGpu(): Promise<{ adapter: AdapterLike; summary: WebGpuAdapterSummary } | { reason: string }> {
  probe ??= (async () => {
    const gpu = await findGpu();
    if ('reason' in gpu) return gpu;
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { reason: 'navigator.gpu.requestAdapter() found no adapter (no Vulkan/Metal/D3D12 driver)' };
    const info = adapter.info ?? {};
    const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
    const summary: WebGpuAdapterSummary = {
      vendor: info.vendor ?? 'unknown',
      architecture: info.architecture ?? 'unknown',
      description: info.description ?? '',
      software: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || SOFTWARE_ADAPTER.test(text),
    };
    return { adapter, summary };
  })();
  return probe;
}

/**
 * Makes tfjs's `webgpu` backend available on the probed adapter. tfjs-backend-webgpu
 * registers itself on import when `navigator.gpu` exists, which `probeWebGpu` ensures.
 */
export async function registerWebGpuBackend(): Promise<{ summary: WebGpuAdapterSummary } | { reason: string }> {
  const found = await probeWebGpu();
  if ('reason' in found) return found;
  try {
    loadedModule = await import('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    return { reason: `the optional peer '@tensorflow/tfjs-backend-webgpu' is not installed; npm install @tensorflow/tfjs-backend-webgpu@4.22.0 (${(err as Error).message.split('\n')[0]})` };
  }
  if (!tf.findBackendFactory('webgpu')) {
    return { reason: 'tfjs-backend-webgpu did not register a backend although navigator.gpu exists' };
  }
  replaceBackendFactory(loadedModule);
  return { summary: found.summary };
}

/** The limits tfjs-backend-webgpu's own factory asks the adapter for, and the one it leaves out. */
const REQUIRED_LIMITS = [
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
  // Without it a device gets WebGPU's default of 8 storage buffers per shader stage, and a
  // program with more bindings (tfjs's AddN of 8 tensors, a kernel with 8 inputs) fails
  // validation and leaves its output unwritten. Adapters offer 16 or more.
  'maxStorageBuffersPerShaderStage',
] as const;

let factoryReplaced = false;

/**
 * Registers the `webgpu` backend's factory again, as tfjs-backend-webgpu's own does it but
 * asking for the adapter's storage-buffer limit too. Only before the backend is first made.
 */
function replaceBackendFactory(module: WebGpuModule): void {
  if (factoryReplaced || (tf.engine() as unknown as { registry: Record<string, unknown> }).registry.webgpu) return;
  factoryReplaced = true;
  tf.removeBackend('webgpu');
  tf.registerBackend(
    'webgpu',
    async () => {
      const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
      const adapter = await nav!.gpu!.requestAdapter({ powerPreference: tf.env().get('WEBGPU_USE_LOW_POWER_GPU') ? 'low-power' : 'high-performance' });
      if (!adapter) throw new Error('navigator.gpu.requestAdapter() found no adapter');
      const requiredFeatures = ['timestamp-query', 'bgra8unorm-storage'].filter((f) => adapter.features.has(f));
      const requiredLimits = Object.fromEntries(REQUIRED_LIMITS.map((name) => [name, adapter.limits[name]]));
      const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
      return new module.WebGPUBackend(device as ConstructorParameters<WebGpuModule['WebGPUBackend']>[0], adapter.info as ConstructorParameters<WebGpuModule['WebGPUBackend']>[1]);
    },
    3,
  );
}
