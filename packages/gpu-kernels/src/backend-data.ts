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

/** The input's values as a Float32Array (copied when the backend stores another type). */
export function readF32(backend: CpuBackendLike, info: tf.TensorInfo | undefined): Float32Array | undefined {
  if (!info) return undefined;
  const v = backend.readSync(info.dataId);
  return v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>);
}

export function readI32(backend: CpuBackendLike, info: tf.TensorInfo): Int32Array {
  const v = backend.readSync(info.dataId);
  return v instanceof Int32Array ? v : Int32Array.from(v as ArrayLike<number>);
}

export function inputInfo(inputs: tf.NamedTensorInfoMap, name: string): tf.TensorInfo | undefined {
  return inputs[name] as tf.TensorInfo | undefined;
}
