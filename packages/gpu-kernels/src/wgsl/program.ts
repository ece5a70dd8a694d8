/**
 * A thin layer over @kiln/tensor's `runWgsl` for this package's kernels: one thread per
 * work item (not per output element), integer and float uniforms by name, and disposal of
 * intermediate buffers.
 */
import { runWgsl, type tf } from '@kiln/tensor';

export interface Program {
  /** Pipeline cache key: the same key must mean the same WGSL. */
  key: string;
  /** Input arrays, bound as storage buffers under these names (at most 7 per program). */
  inputs: [string, tf.TensorInfo][];
  outShape: number[];
  /** Work items; `index` in `body` runs over [0, threads). */
  threads: number;
  /** WGSL statements of `main(index : i32)`; read `uniforms.<name>`, write `result[i]`. */
  body: string;
  /** Helper functions and constants placed before `main`. */
  prelude?: string;
  ints?: Record<string, number>;
  floats?: Record<string, number>;
  dtype?: 'float32' | 'int32';
}

interface WebGpuBackendLike {
  disposeData(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: string, values: Float32Array | Int32Array): tf.TensorInfo;
}

export function runProgram(backend: unknown, p: Program): tf.TensorInfo {
  const ints = { threads: p.threads, ...p.ints };
  const floats = p.floats ?? {};
  const uniforms =
    Object.keys(ints)
      .map((n) => `${n} : i32, `)
      .join('') +
    Object.keys(floats)
      .map((n) => `${n} : f32, `)
      .join('');
  const uniformValues = [
    ...Object.values(ints).map((v) => ({ type: 'int32' as const, data: [v] })),
    ...Object.values(floats).map((v) => ({ type: 'float32' as const, data: [v] })),
  ];
  const userCode = `
${p.prelude ?? ''}
fn main(index : i32) {
  if (index >= uniforms.threads) { return; }
${p.body}
}`;
  return runWgsl(
    backend,
    {
      key: `gk_${p.key}`,
      variableNames: p.inputs.map(([n]) => n),
      outputShape: p.outShape,
      userCode,
      uniforms,
      uniformValues,
      dispatchThreads: Math.max(1, p.threads),
      dtype: p.dtype ?? 'float32',
    },
    p.inputs.map(([, info]) => info),
  );
}

export function dispose(backend: unknown, ...infos: (tf.TensorInfo | undefined)[]): void {
  for (const i of infos) if (i) (backend as WebGpuBackendLike).disposeData(i.dataId);
}

/** Uploads host values as a tensor on the webgpu backend (small index tables). */
export function upload(backend: unknown, shape: number[], dtype: 'float32' | 'int32', values: Float32Array | Int32Array): tf.TensorInfo {
  return (backend as WebGpuBackendLike).makeTensorInfo(shape, dtype, values);
}

/** Shared WGSL: mamba's softplus, sigmoid. */
export const WGSL_MATH = `
fn gk_softplus(x : f32) -> f32 { return select(log(1.0 + exp(x)), x, x > 20.0); }
fn gk_sigmoid(x : f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
`;
