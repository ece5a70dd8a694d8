/**
 * The selective scan of `@kiln/gpu-kernels` (chunked parallel scans as cpu, kiln-native C++,
 * WGSL and CUDA kernels, each with its backward) behind this package's scan signature.
 * `useKernelScan()` makes every model block use it; `setSelectiveScan(null)` goes back to the
 * tf-ops reference.
 */
import { selectiveScan as kernelSelectiveScan } from '@kiln/gpu-kernels';
import { type SelectiveScanArgs, type SelectiveScanResult, setSelectiveScan } from './scan.js';

export function kernelScan(args: SelectiveScanArgs): SelectiveScanResult {
  const { u, delta, A, B, C, D, z, deltaBias, initialState } = args;
  const common = { u, delta, A, B, C, deltaSoftplus: Boolean(args.deltaSoftplus), ...(D ? { D } : {}), ...(z ? { z } : {}), ...(deltaBias ? { deltaBias } : {}), ...(initialState ? { initialState } : {}) };
  if (args.returnLastState) {
    const r = kernelSelectiveScan({ ...common, returnLastState: true });
    return { y: r.out, lastState: r.lastState };
  }
  return { y: kernelSelectiveScan({ ...common, returnLastState: false }) };
}

/** Routes every model block's scan through `@kiln/gpu-kernels`. */
export function useKernelScan(): void {
  setSelectiveScan(kernelScan, 'gpu-kernels');
}
