/**
 * Access to tensor data inside kernels of CPU-memory backends (`cpu` and `kiln-native`,
 * which is a `MathBackendCPU` subclass): read an input's values and wrap new ones.
 */
import type { tf } from '@kiln/tensor';

export interface CpuBackendLike {
  readSync(dataId: object): ArrayLike<number> & { length: number };
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array | Int32Array | Uint8Array): tf.TensorInfo;
}

export function cpuBackend(backend: unknown): CpuBackendLike {
  return backend as CpuBackendLike;
}

/** The array a CPU-memory backend stores for `info`, read in place (not through readSync). */
function stored(backend: CpuBackendLike, info: tf.TensorInfo): unknown {
  return (backend as { data?: { get(id: object): { values?: unknown } | undefined } }).data?.get(info.dataId)?.values;
}

/**
 * The input's values as a Float32Array (copied when the backend stores another type). Read
 * in place: kiln-native counts an array returned by readSync as seen by outside code and then
 * never recycles it, and a kernel only reads its inputs.
 */
export function readF32(backend: CpuBackendLike, info: tf.TensorInfo | undefined): Float32Array | undefined {
  if (!info) return undefined;
  const direct = stored(backend, info);
  if (direct instanceof Float32Array) return direct;
  const v = backend.readSync(info.dataId);
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

export function readI32(backend: CpuBackendLike, info: tf.TensorInfo): Int32Array {
  const direct = stored(backend, info);
  if (direct instanceof Int32Array) return direct;
  const v = backend.readSync(info.dataId);
  return v instanceof Int32Array ? v : Int32Array.from(v as ArrayLike<number>);
}

export function inputInfo(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo | undefined {
  return inputs[name] as tf.TensorInfo | undefined;
}

/**
 * An output array for a native kernel that writes every element: kiln-native's `outputArray`
 * (recycled when large, contents undefined — fresh 64–128 MB arrays cost their page faults on
 * every MoE step), otherwise a new zeroed array.
 */
export function nativeOutput(backend: unknown, n: number): Float32Array {
  const pool = backend as { outputArray?: (n: number) => Float32Array };
  return typeof pool.outputArray === 'function' ? pool.outputArray(n) : new Float32Array(n);
}
