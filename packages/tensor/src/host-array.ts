/**
 * In-place access to the arrays of the CPU-memory backends (`cpu`, `kiln-native`), whose
 * tensors live in host memory: reading one is no device transfer, so host-side code (a
 * kernel, a plan built from a routing map) may do it synchronously. On a GPU backend there
 * is no such array: such code must take its input from the host another way.
 */
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { tf } from './tf.js';

/** Whether `backend` (default: the active one) keeps tensors in host memory. */
export function isHostMemoryBackend(backend: unknown = tf.backend()): boolean {
  return backend instanceof MathBackendCPU;
}

/**
 * The array a CPU-memory backend stores for a tensor (or a kernel's TensorInfo), read in
 * place and not copied: do not write it or keep it past the tensor's life. `undefined` on
 * a GPU backend, and for strings or complex values.
 */
export function hostArray(t: { dataId: object }, backend: unknown = tf.backend()): Float32Array | Int32Array | Uint8Array | undefined {
  if (!isHostMemoryBackend(backend)) return undefined;
  const values = (backend as MathBackendCPU).data.get(t.dataId)?.values;
  return values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array ? values : undefined;
}
