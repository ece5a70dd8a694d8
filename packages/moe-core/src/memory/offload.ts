import { tf } from '@kiln/tensor';

/** A tensor's values parked in host memory (a typed array owned by JS, not by the backend). */
export interface HostTensor {
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

/**
 * Moves tensors off the compute backend into host typed arrays and back, counting bytes, as
 * Megatron's activation offloading does between GPU and CPU memory. On tfjs's CPU backends
 * the "device" is the backend's own buffer pool: offloading frees that buffer (the backend
 * no longer counts it) and the host copy lives on the JS heap until reloaded.
 */
export class ActivationOffloader {
  /** Bytes currently parked on the host. */
  hostBytes = 0;
  /** Most bytes parked at once. */
  peakHostBytes = 0;
  /** Bytes moved each way since construction. */
  offloadedBytes = 0;
  reloadedBytes = 0;

  /** Copies `t` to the host; the caller may dispose `t` afterwards. */
  offload(t: tf.Tensor): HostTensor {
    if (t.dtype !== 'float32' && t.dtype !== 'int32') throw new Error(`offload: dtype ${t.dtype} is not supported (float32, int32)`);
    const values = t.dataSync();
    // dataSync may return the backend's own buffer; copy so the backend can free it
    const data = t.dtype === 'float32' ? Float32Array.from(values as Float32Array) : Int32Array.from(values as Int32Array);
    const bytes = data.byteLength;
    this.hostBytes += bytes;
    this.offloadedBytes += bytes;
    this.peakHostBytes = Math.max(this.peakHostBytes, this.hostBytes);
    return { shape: [...t.shape], dtype: t.dtype, data };
  }

  /** Builds a backend tensor from a host copy and releases the host bytes. */
  reload(h: HostTensor): tf.Tensor {
    const t = tf.tensor(h.data, h.shape, h.dtype);
    this.hostBytes -= h.data.byteLength;
    this.reloadedBytes += h.data.byteLength;
    return t;
  }
}
