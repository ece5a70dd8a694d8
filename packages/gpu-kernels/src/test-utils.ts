/** Helpers shared by this package's tests (not exported from the package). */
import { probeWebGpu, type tf } from '@kiln/tensor';

type Tensor = tf.Tensor;

/** Whether a WebGPU adapter exists; prints why not once, so skipped tests show in the log. */
export async function webGpuAvailable(): Promise<boolean> {
  const found = await probeWebGpu();
  if ('reason' in found) {
    console.log(`[skip] WebGPU tests skipped: ${found.reason}`);
    return false;
  }
  return true;
}

/** max |a − b| / (1 + max |b|): a scale-aware error that works on every backend (async read). */
export async function relErr(a: Tensor, b: Tensor): Promise<number> {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shapes differ: [${a.shape}] vs [${b.shape}]`);
  const [x, y] = await Promise.all([a.data(), b.data()]);
  let m = 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) {
    m = Math.max(m, Math.abs(Number(x[i]) - Number(y[i])));
    s = Math.max(s, Math.abs(Number(y[i])));
  }
  return m / (1 + s);
}
