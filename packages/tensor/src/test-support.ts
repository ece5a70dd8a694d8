/** Helpers shared by this package's tests (not exported from the package). */
import { probeWebGpu } from './webgpu.js';

/**
 * Whether tests that need a WebGPU adapter can run here; prints the reason once when not,
 * so a skipped GPU test is visible in the log.
 */
export async function webGpuAvailable(): Promise<boolean> {
  const found = await probeWebGpu();
  if ('reason' in found) {
    console.log(`[skip] WebGPU tests skipped: ${found.reason}`);
    return false;
  }
  return true;
}
