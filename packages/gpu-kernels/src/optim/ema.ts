/**
 * `emaUpdate`: momentum·average + (1 − momentum)·value in one kernel — an EMA teacher's
 * weight update (DINO / Sonata / BYOL), one op per weight instead of two multiplies and an
 * add. Any shape; both inputs have the same shape.
 */
import { defineOp, type Op, type OpKernel, tf } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { nativeOps } from '../native.js';

type Tensor = tf.Tensor;
export type EmaAttrs = { momentum: number };

const emaCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const info = inputInfo(inputs, 'average')!;
  const avg = readF32(b, info)!;
  const val = readF32(b, inputInfo(inputs, 'value'))!;
  const { momentum } = attrs as unknown as EmaAttrs;
  const out = nativeOutput(backend, avg.length);
  const native = nativeOps(backend, 'emaUpdate');
  if (native) native.emaUpdate(avg, val, out, momentum);
  else {
    const m = Math.fround(momentum);
    const rest = Math.fround(1 - momentum);
    for (let i = 0; i < avg.length; i++) out[i] = Math.fround(avg[i]! * m) + Math.fround(val[i]! * rest);
  }
  return b.makeTensorInfo([...info.shape], 'float32', out);
};

export const emaUpdateOp: Op<'average' | 'value', EmaAttrs, Tensor> = defineOp<'average' | 'value', EmaAttrs, Tensor>({
  name: 'emaUpdate',
  inputs: ['average', 'value'] as const,
  validate: ({ average, value }, { momentum }) => {
    const a = requireTensor('emaUpdate', 'average', average);
    const v = requireTensor('emaUpdate', 'value', value);
    requireFloat('emaUpdate', 'average', a);
    requireFloat('emaUpdate', 'value', v);
    if (a.shape.join() !== v.shape.join()) throw new Error(`emaUpdate: 'value' ${fmtShape(v.shape)} must have the shape of 'average' ${fmtShape(a.shape)}`);
    if (typeof momentum !== 'number' || !Number.isFinite(momentum)) throw new Error(`emaUpdate: 'momentum' must be a finite number, got ${String(momentum)}`);
  },
  reference: ({ average, value }, { momentum }) => tf.tidy(() => tf.add(tf.mul(average!, momentum), tf.mul(value!, 1 - momentum))),
  kernels: hostKernels(emaCpu),
  gradient: ({ dy, attrs }) => ({ average: tf.mul(dy[0]!, attrs.momentum), value: tf.mul(dy[0]!, 1 - attrs.momentum) }),
});

/** momentum·average + (1 − momentum)·value (differentiable in both). */
export function emaUpdate(average: Tensor, value: Tensor, momentum: number): Tensor {
  return emaUpdateOp({ average, value }, { momentum });
}
