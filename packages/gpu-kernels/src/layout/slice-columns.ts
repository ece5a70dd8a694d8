/**
 * `sliceColumns`: columns [begin, begin + size) of a matrix x [rows, C], as one strided copy;
 * its gradient (`sliceColumnsBackward`) writes dy into those columns of a zero matrix. A
 * model that splits a projection's output (mamba's x_proj into Δ, B and C) or a weight into
 * column blocks needs this; tfjs's `slice` on the CPU backends walks a non-contiguous slice
 * element by element through index arithmetic (≈ 1 µs per element).
 */
import { defineOp, type Op, type OpKernel, tf } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireRank, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { nativeOps } from '../native.js';

type Tensor = tf.Tensor;
export type SliceColumnsAttrs = { begin: number; size: number };

function checkRange(op: string, x: Tensor, attrs: SliceColumnsAttrs, C: number): void {
  const { begin, size } = attrs;
  if (!Number.isInteger(begin) || !Number.isInteger(size) || begin < 0 || size < 1 || begin + size > C) {
    throw new Error(`${op}: columns begin=${begin}, size=${size} must be integers with 0 ≤ begin, size ≥ 1, begin + size ≤ ${C} (x ${fmtShape(x.shape)})`);
  }
}

const sliceCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const info = inputInfo(inputs, 'x')!;
  const [R, C] = info.shape as [number, number];
  const { begin, size } = attrs as unknown as SliceColumnsAttrs;
  const x = readF32(b, info)!;
  const out = nativeOutput(backend, R * size);
  const native = R > 0 ? nativeOps(backend, 'sliceColumns') : undefined;
  if (native) native.sliceColumns(x, out, begin, size);
  else for (let r = 0; r < R; r++) out.set(x.subarray(r * C + begin, r * C + begin + size), r * size);
  return b.makeTensorInfo([R, size], 'float32', out);
};

const sliceBackwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const info = inputInfo(inputs, 'dy')!;
  const R = info.shape[0]!;
  const { begin, size, columns } = attrs as unknown as SliceColumnsAttrs & { columns: number };
  const dy = readF32(b, info)!;
  const dx = nativeOutput(backend, R * columns);
  const native = R > 0 ? nativeOps(backend, 'sliceColumnsBackward') : undefined;
  if (native) native.sliceColumnsBackward(dy, dx, begin, size);
  else {
    dx.fill(0);
    for (let r = 0; r < R; r++) dx.set(dy.subarray(r * size, (r + 1) * size), r * columns + begin);
  }
  return b.makeTensorInfo([R, columns], 'float32', dx);
};

/** dy [rows, size] → dx [rows, columns]: dy in columns [begin, begin + size), zeros elsewhere. */
export const sliceColumnsBackwardOp: Op<'dy', SliceColumnsAttrs & { columns: number }, Tensor> = defineOp<'dy', SliceColumnsAttrs & { columns: number }, Tensor>({
  name: 'sliceColumnsBackward',
  inputs: ['dy'] as const,
  nonDifferentiable: ['dy'],
  validate: ({ dy }, attrs) => {
    const t = requireTensor('sliceColumnsBackward', 'dy', dy);
    requireRank('sliceColumnsBackward', 'dy', t, 2, 'rows, size');
    requireFloat('sliceColumnsBackward', 'dy', t);
    if (t.shape[1] !== attrs.size) throw new Error(`sliceColumnsBackward: 'dy' ${fmtShape(t.shape)} must have size=${attrs.size} columns`);
    checkRange('sliceColumnsBackward', t, attrs, attrs.columns);
  },
  reference: ({ dy }, { begin, size, columns }) => tf.pad(dy!, [[0, 0], [begin, columns - begin - size]]),
  kernels: hostKernels(sliceBackwardCpu),
});

export const sliceColumnsOp: Op<'x', SliceColumnsAttrs, Tensor> = defineOp<'x', SliceColumnsAttrs, Tensor>({
  name: 'sliceColumns',
  inputs: ['x'] as const,
  validate: ({ x }, attrs) => {
    const t = requireTensor('sliceColumns', 'x', x);
    requireRank('sliceColumns', 'x', t, 2, 'rows, C');
    requireFloat('sliceColumns', 'x', t);
    checkRange('sliceColumns', t, attrs, t.shape[1]!);
  },
  reference: ({ x }, { begin, size }) => tf.slice(x!, [0, begin], [-1, size]),
  kernels: hostKernels(sliceCpu),
  gradient: ({ inputs, dy, attrs }) => ({ x: sliceColumnsBackwardOp({ dy: dy[0]! }, { ...attrs, columns: inputs.x!.shape[1]! }) }),
});

/** x [rows, C] → x[:, begin .. begin + size), differentiable. */
export function sliceColumns(x: Tensor, begin: number, size: number): Tensor {
  return sliceColumnsOp({ x }, { begin, size });
}
