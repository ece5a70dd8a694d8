/**
 * Access to tensor data inside kernels of CPU-memory backends (`cpu` and `kiln-native`,
 * which is a `MathBackendCPU` subclass): read an input's values and wrap new ones.
 */
import { hostArray, type tf } from '@kiln/tensor';

export interface CpuBackendLike {
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array | Int32Array | Uint8Array): tf.TensorInfo;
}

export function cpuBackend(backend: unknown): CpuBackendLike {
  return backend as CpuBackendLike;
}

/** The host array of `info` on a CPU-memory backend, for a kernel of that backend. */
function stored(backend: CpuBackendLike, info: tf.TensorInfo): ArrayLike<number> {
  const values = hostArray(info, backend);
  if (!values) throw new Error(`a CPU-memory kernel ran on a backend that keeps no host array for its input [${info.shape}] (${info.dtype})`);
  return values;
}

/**
 * The input's values as a Float32Array (copied when the backend stores another type). Read
 * in place: kiln-native counts an array returned by readSync as seen by outside code and then
 * never recycles it, and a kernel only reads its inputs.
 */
export function readF32(backend: CpuBackendLike, info: tf.TensorInfo | undefined): Float32Array | undefined {
  if (!info) return undefined;
  const v = stored(backend, info);
  return v instanceof Float32Array ? v : Float32Array.from(v);
}

export function readI32(backend: CpuBackendLike, info: tf.TensorInfo): Int32Array {
  const v = stored(backend, info);
  return v instanceof Int32Array ? v : Int32Array.from(v);
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
