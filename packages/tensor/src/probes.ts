/** Memory and timing probes for benchmarks and logs. */
import { tf } from './tf.js';

export interface MemorySnapshot {
  /** Tensors alive in the tfjs engine. */
  tensors: number;
  /** Bytes held by tfjs tensors on the active backend. */
  tensorBytes: number;
  /** Resident set size and JS heap of the process. */
  rss: number;
  heapUsed: number;
}

export function memorySnapshot(): MemorySnapshot {
  const m = tf.memory();
  const p = process.memoryUsage();
  return { tensors: m.numTensors, tensorBytes: m.numBytes, rss: p.rss, heapUsed: p.heapUsed };
}

/**
 * Runs `fn` and reports the peak bytes held by tfjs tensors while it ran, next to the
 * bytes held before (tfjs's own profiler tracks the peak).
 */
export async function measurePeakBytes<T>(fn: () => T | Promise<T>): Promise<{ result: T; peakBytes: number; startBytes: number }> {
  const startBytes = tf.memory().numBytes;
  let result!: T;
  const info = await tf.profile(async () => {
    result = await fn();
    return result as unknown as tf.TensorContainer;
  });
  return { result, peakBytes: info.peakBytes, startBytes };
}

export interface Timing {
  /** Median wall time of one run, milliseconds. */
  medianMs: number;
  minMs: number;
  runs: number;
}

/**
 * Times `fn` after `warmup` untimed runs. `fn` should read its result back (e.g. `await
 * t.data()`) so asynchronous backends are timed to completion.
 */
export async function timeIt(fn: () => unknown | Promise<unknown>, options: { warmup?: number; runs?: number } = {}): Promise<Timing> {
  const warmup = options.warmup ?? 1;
  const runs = Math.max(1, options.runs ?? 5);
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[Math.floor(times.length / 2)]!, minMs: times[0]!, runs };
}
