/**
 * The C++ kernels of this package, compiled into @kiln/native's addon from
 * native/src/ops/gk_*.cc. The `kiln-native` backend carries its addon (`backend.addon`);
 * a kernel running there calls these functions, and falls back to the TypeScript kernel
 * when the addon predates them. Every array is caller-allocated (native/OPS.md).
 */

type F32 = Float32Array;
type I32 = Int32Array;

export interface GpuKernelsAddon {
  selectiveScanForward(
    u: F32, delta: F32, A: F32, B: F32, C: F32, D: F32, z: F32, deltaBias: F32, initialState: F32,
    out: F32, lastState: F32, batch: number, dim: number, dstate: number, length: number, deltaSoftplus: boolean, chunk: number,
  ): void;
  selectiveScanBackward(
    u: F32, delta: F32, A: F32, B: F32, C: F32, D: F32, z: F32, deltaBias: F32, initialState: F32, dout: F32, dLast: F32,
    du: F32, ddelta: F32, dA: F32, dB: F32, dC: F32, dD: F32, dz: F32, ddeltaBias: F32, dInitialState: F32,
    batch: number, dim: number, dstate: number, length: number, deltaSoftplus: boolean, chunk: number,
  ): void;
  groupedMatMul(x: F32, w: F32, out: F32, groupSizes: I32, mode: number, K: number, N: number): void;
  moeGatherRows(x: F32, indices: I32, out: F32, H: number): void;
  moeScatterRows(x: F32, indices: I32, weights: F32, out: F32, H: number): void;
  swiglu(h: F32, out: F32, F: number): void;
  swigluGrad(h: F32, dy: F32, out: F32, F: number): void;
  topkRouter(
    logits: F32, expertBias: F32, probs: F32, indices: I32, E: number, k: number, scoreFunction: number,
    usePreSoftmax: boolean, numGroups: number, groupTopk: number, scalingFactor: number,
  ): void;
  castFp8(x: F32, out: F32, scale: number, format: number, stochastic: boolean, seed: number): void;
  causalConv1dForward(x: F32, weight: F32, bias: F32, out: F32, rows: number, L: number, C: number, K: number, silu: boolean): void;
  causalConv1dBackward(
    x: F32, weight: F32, bias: F32, dy: F32, dx: F32, dweight: F32, dbias: F32, rows: number, L: number, C: number, K: number, silu: boolean,
  ): void;
  siluForward(x: F32, out: F32): void;
  siluBackward(x: F32, dy: F32, dx: F32): void;
  siluGateForward(x: F32, z: F32, out: F32): void;
  siluGateBackward(x: F32, z: F32, dy: F32, dx: F32, dz: F32): void;
  layerNormForward(x: F32, gamma: F32, beta: F32, out: F32, C: number, eps: number): void;
  layerNormBackward(x: F32, gamma: F32, dy: F32, dx: F32, dgamma: F32, dbeta: F32, C: number, eps: number): void;
  selectiveScanChannelsLastForward(u: F32, delta: F32, A: F32, B: F32, C: F32, D: F32, deltaBias: F32, y: F32, rows: number, L: number, dim: number, dstate: number, deltaSoftplus: boolean): void;
  selectiveScanChannelsLastBackward(
    u: F32, delta: F32, A: F32, B: F32, C: F32, D: F32, deltaBias: F32, dy: F32,
    du: F32, ddelta: F32, dA: F32, dB: F32, dC: F32, dD: F32, ddeltaBias: F32, rows: number, L: number, dim: number, dstate: number, deltaSoftplus: boolean,
  ): void;
  emaUpdate(average: F32, value: F32, out: F32, momentum: number): void;
  sliceColumns(x: F32, out: F32, begin: number, W: number): void;
  sliceColumnsBackward(dy: F32, dx: F32, begin: number, W: number): void;
  permuteRows(x: F32, index: I32, out: F32, C: number): void;
  segmentPool(x: F32, sorted: I32, ptr: I32, out: F32, C: number, mean: boolean): void;
  segmentBroadcast(x: F32, segment: I32, ptr: I32, out: F32, C: number, mean: boolean): void;
}

const EMPTY = new Float32Array(0);
export { EMPTY as EMPTY_F32 };

/** This package's native functions if `backend` is `kiln-native` with an addon that has `name`. */
export function nativeOps<K extends keyof GpuKernelsAddon>(backend: unknown, name: K): Pick<GpuKernelsAddon, K> | undefined {
  if (process.env.KILN_GPU_KERNELS_NATIVE === 'off') return undefined;
  const addon = (backend as { addon?: Record<string, unknown> } | undefined)?.addon;
  return addon && typeof addon[name] === 'function' ? (addon as unknown as Pick<GpuKernelsAddon, K>) : undefined;
}
