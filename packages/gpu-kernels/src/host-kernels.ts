/**
 * Kernel maps for the CPU-memory backends. `kiln-native` is a `MathBackendCPU` subclass:
 * when @kiln/tensor registers it, it copies every `cpu` kernel — ours included — so our
 * `cpu` kernels (which call the addon when the backend carries one) serve both. Only when
 * this package loads after that copy was made do we register for `kiln-native` ourselves.
 */
import { type OpKernel, tf } from '@kiln/tensor';

export function hostKernels(kernel: OpKernel): Record<string, OpKernel> {
  return tf.findBackendFactory('kiln-native') ? { cpu: kernel, 'kiln-native': kernel } : { cpu: kernel };
}
