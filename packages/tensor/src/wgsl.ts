/**
 * Running hand-written WGSL on tfjs-backend-webgpu's own buffers, so packages can give a
 * `defineOp` op a WebGPU kernel without importing tfjs packages themselves.
 *
 * `userCode` follows tfjs-backend-webgpu's program conventions: it defines
 * `fn main(index : i32)`, reads inputs with `get<Name>ByOutputIndex(index)` or from the
 * storage arrays named after `inputs` (`X`, `Z`, ...), writes `setOutputAtIndex(index, v)`,
 * and sees `uniforms.size` (the output's element count) plus any custom `uniforms`.
 */
import type { tf } from './tf.js';
import { webGpuModule } from './webgpu.js';

export interface WgslProgram {
  /** Cache key of the compiled pipeline: the same key must mean the same code. */
  key: string;
  /** Input names, in the order of the `inputs` passed to `runWgsl`. */
  variableNames: string[];
  outputShape: number[];
  userCode: string;
  /** Extra uniforms as WGSL declarations, e.g. `'alpha : f32, n : i32,'`. */
  uniforms?: string;
  uniformValues?: { type: 'float32' | 'int32' | 'uint32'; data: number[] }[];
  /** Threads per workgroup along x (default 64); one thread per output element. */
  workgroupSize?: number;
  /** Output dtype (default float32). */
  dtype?: 'float32' | 'int32';
  /**
   * When false, threads are not one per output element: `dispatchThreads` threads run and
   * `index` counts them (for kernels that loop, e.g. a scan over time per channel).
   */
  dispatchThreads?: number;
}

interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: string, uniforms?: object[]): tf.TensorInfo;
}

/** Runs a WGSL program on the webgpu backend; returns the output's TensorInfo. */
export function runWgsl(backend: unknown, program: WgslProgram, inputs: tf.TensorInfo[]): tf.TensorInfo {
  const util = webGpuModule()?.webgpu_util;
  if (!util) throw new Error('runWgsl: the webgpu backend is not loaded (call initBackend first)');
  const workgroupSize: [number, number, number] = [program.workgroupSize ?? 64, 1, 1];
  const threadShape = program.dispatchThreads === undefined ? program.outputShape : [program.dispatchThreads];
  const dispatchLayout = util.flatDispatchLayout(threadShape);
  const compiled = {
    variableNames: program.variableNames,
    outputShape: program.outputShape,
    shaderKey: `kiln_${program.key}`,
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, threadShape, workgroupSize),
    workgroupSize,
    size: true,
    uniforms: program.uniforms,
    getUserCode: () => program.userCode,
  };
  return (backend as WebGpuBackendLike).runWebGPUProgram(compiled, inputs, program.dtype ?? 'float32', program.uniformValues);
}
