/**
 * The kernels `kiln-native` runs in C++ (through @kiln/native) instead of JavaScript. Each
 * override reads its inputs' typed arrays in place, lets the addon write a freshly
 * allocated output array, and hands anything it does not cover (other dtypes, NCHW,
 * empty tensors, broadcasts the addon does not take) to the `cpu` kernel it replaces,
 * so every input the `cpu` backend accepts is still accepted, with the same errors.
 */
import type { NativeAddon } from '@kiln/native';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { tf } from './tf.js';

const { backend_util, util } = tf;

/** The kiln-native backend as its kernels see it. */
export interface NativeKernelBackend extends MathBackendCPU {
  readonly addon: NativeAddon;
  /** A float32 output array of n elements to overwrite whole (see NativeBackend.outputArray). */
  outputArray(n: number): Float32Array;
}

type Inputs = Record<string, TensorInfo | undefined>;
type Fallback = KernelFunc;
/** Returns the result, or `undefined` to let the cpu kernel handle this call. */
type NativeImpl = (
  inputs: Inputs,
  backend: NativeKernelBackend,
  attrs: NamedAttrMap,
) => TensorInfo | TensorInfo[] | undefined;

/** The typed array behind a tensor when it is float32 (or int32 for layout ops). */
function f32(backend: NativeKernelBackend, t: TensorInfo | undefined): Float32Array | undefined {
  if (t?.dtype !== 'float32') return undefined;
  const values = backend.data.get(t.dataId)?.values;
  return values instanceof Float32Array ? values : undefined;
}

function word(backend: NativeKernelBackend, t: TensorInfo | undefined): Float32Array | Int32Array | undefined {
  if (!t || (t.dtype !== 'float32' && t.dtype !== 'int32')) return undefined;
  const values = backend.data.get(t.dataId)?.values;
  return values instanceof Float32Array || values instanceof Int32Array ? values : undefined;
}

function i32(backend: NativeKernelBackend, t: TensorInfo | undefined): Int32Array | undefined {
  if (t?.dtype !== 'int32') return undefined;
  const values = backend.data.get(t.dataId)?.values;
  return values instanceof Int32Array ? values : undefined;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Below this many elements a new output array is a plain `new Float32Array` rather than one
 * from the addon's allocF32 pool (whose V8 round trip costs more than it saves on small
 * arrays); either kind is then recycled by the backend (native-recycler.ts).
 */
export const POOLED_MIN_ELEMENTS = 16384;

/**
 * Shape and stride arguments for the addon, written into reusable arrays (one per argument
 * slot and length) instead of a new Int32Array per call: the addon reads them synchronously,
 * and three `Int32Array.from` calls cost more than a small add itself.
 */
const intScratch: Int32Array[][] = [[], [], []];
function ints(values: readonly number[], slot: 0 | 1 | 2 = 0): Int32Array {
  const byLength = intScratch[slot]!;
  const n = values.length;
  let out = byLength[n];
  if (!out) {
    out = new Int32Array(n);
    byLength[n] = out;
  }
  for (let i = 0; i < n; i++) out[i] = values[i]!;
  return out;
}


function output(backend: NativeKernelBackend, shape: number[], values: Float32Array | Int32Array): TensorInfo {
  return backend.makeTensorInfo(shape, values instanceof Int32Array ? 'int32' : 'float32', values);
}

// ---- matmul

/** Batch sizes of a and b as the addon takes them (equal, or one of them 1), else undefined. */
function matmulBatches(a: TensorInfo, b: TensorInfo): { batchA: number; batchB: number; outBatch: number[] } | undefined {
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  let outBatch: number[];
  try {
    outBatch = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return undefined; // the cpu kernel throws the proper error
  }
  const batchA = size(outerA);
  const batchB = size(outerB);
  if (batchA !== batchB && batchA !== 1 && batchB !== 1) return undefined;
  if (batchA === batchB && outerA.join() !== outerB.join() && outerA.length > 0 && outerB.length > 0) return undefined;
  return { batchA, batchB, outBatch };
}

function nativeMatMul(a: TensorInfo, b: TensorInfo, ta: boolean, tb: boolean, backend: NativeKernelBackend) {
  const av = f32(backend, a);
  const bv = f32(backend, b);
  if (!av || !bv || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = ta ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const k = ta ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const kb = tb ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const n = tb ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (k !== kb) return undefined;
  const batches = matmulBatches(a, b);
  if (!batches) return undefined;
  const outShape = [...batches.outBatch, m, n];
  const out = backend.outputArray(size(outShape));
  if (out.length > 0) backend.addon.matmul(av, bv, out, batches.batchA, batches.batchB, m, n, k, ta, tb);
  return { out, outShape, n };
}

const batchMatMul: NativeImpl = ({ a, b }, backend, attrs) => {
  if (!a || !b) return undefined;
  const r = nativeMatMul(a, b, Boolean(attrs.transposeA), Boolean(attrs.transposeB), backend);
  return r && output(backend, r.outShape, r.out);
};

const FUSED_ACTIVATIONS = new Set(['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu']);

/** True when bias broadcasts only along the last axis of an [..., n] output. */
function isRowBias(bias: TensorInfo, n: number, outRank: number): boolean {
  if (bias.shape.length > outRank) return false;
  return bias.shape.every((d, i) => (i === bias.shape.length - 1 ? d === n : d === 1)) || (bias.shape.length === 0 && n === 1);
}

const fusedMatMul: NativeImpl = ({ a, b, bias }, backend, attrs) => {
  const activation = (attrs.activation as string | undefined) ?? 'linear';
  if (!a || !b || !FUSED_ACTIVATIONS.has(activation)) return undefined;
  const biasValues = bias ? f32(backend, bias) : null;
  if (bias && !biasValues) return undefined;
  const ta = Boolean(attrs.transposeA);
  const tb = Boolean(attrs.transposeB);
  // Check the bias before doing the product, so a fallback never computes it twice.
  const ra = a.shape.length;
  const rb = b.shape.length;
  const n = tb ? b.shape[rb - 2] : b.shape[rb - 1];
  if (n === undefined || (bias && !isRowBias(bias, n, Math.max(ra, rb)))) return undefined;
  const r = nativeMatMul(a, b, ta, tb, backend);
  if (!r) return undefined;
  if (r.out.length > 0 && (biasValues || activation !== 'linear')) {
    const alpha = activation === 'leakyrelu' ? Number(attrs.leakyreluAlpha ?? 0.2) : 0;
    backend.addon.biasActivation(r.out, biasValues ?? null, r.n, activation, alpha);
  }
  return output(backend, r.outShape, r.out);
};

// ---- convolution

type Conv2DInfo = ReturnType<typeof backend_util.computeConv2DInfo>;

/** The geometry vector of the addon's conv functions (see native/src/conv.cc). */
function geometry(c: Conv2DInfo): Int32Array {
  return ints([
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.outHeight,
    c.outWidth,
    c.outChannels,
    c.filterHeight,
    c.filterWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    c.padInfo.top,
    c.padInfo.left,
  ]);
}

type ConvAttrs = {
  strides: [number, number] | number;
  pad: Parameters<typeof backend_util.computeConv2DInfo>[4];
  dataFormat: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

function convInfo(xShape: number[], filterShape: number[], attrs: NamedAttrMap, dilations: [number, number] | number) {
  const a = attrs as unknown as ConvAttrs;
  const c = backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    dilations,
    a.pad,
    a.dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(a.dataFormat),
  );
  return c.dataFormat === 'channelsLast' ? c : undefined;
}

const conv2D: NativeImpl = ({ x, filter }, backend, attrs) => {
  const xv = f32(backend, x);
  const wv = f32(backend, filter);
  if (!x || !filter || !xv || !wv) return undefined;
  const c = convInfo(x.shape, filter.shape, attrs, (attrs as unknown as ConvAttrs).dilations ?? 1);
  if (!c) return undefined;
  const out = backend.outputArray(size(c.outShape));
  backend.addon.conv2d(xv, wv, out, geometry(c));
  return output(backend, c.outShape, out);
};

const fusedConv2D: NativeImpl = ({ x, filter, bias }, backend, attrs) => {
  const activation = (attrs.activation as string | undefined) ?? 'linear';
  if (!FUSED_ACTIVATIONS.has(activation)) return undefined;
  const biasValues = bias ? f32(backend, bias) : null;
  if (bias && !biasValues) return undefined;
  const xv = f32(backend, x);
  const wv = f32(backend, filter);
  if (!x || !filter || !xv || !wv) return undefined;
  const c = convInfo(x.shape, filter.shape, attrs, (attrs as unknown as ConvAttrs).dilations ?? 1);
  if (!c || (bias && !isRowBias(bias, c.outChannels, 4))) return undefined;
  const out = backend.outputArray(size(c.outShape));
  backend.addon.conv2d(xv, wv, out, geometry(c));
  if (out.length > 0 && (biasValues || activation !== 'linear')) {
    const alpha = activation === 'leakyrelu' ? Number(attrs.leakyreluAlpha ?? 0.2) : 0;
    backend.addon.biasActivation(out, biasValues ?? null, c.outChannels, activation, alpha);
  }
  return output(backend, c.outShape, out);
};

const conv2DBackpropInput: NativeImpl = ({ dy, filter }, backend, attrs) => {
  const dyv = f32(backend, dy);
  const wv = f32(backend, filter);
  if (!dy || !filter || !dyv || !wv) return undefined;
  const c = convInfo(attrs.inputShape as number[], filter.shape, attrs, 1);
  if (!c) return undefined;
  const dx = backend.outputArray(size(c.inShape));
  backend.addon.conv2dBackpropInput(dyv, wv, dx, geometry(c));
  return output(backend, [...c.inShape], dx);
};

const conv2DBackpropFilter: NativeImpl = ({ x, dy }, backend, attrs) => {
  const xv = f32(backend, x);
  const dyv = f32(backend, dy);
  if (!x || !dy || !xv || !dyv) return undefined;
  const c = convInfo(x.shape, attrs.filterShape as number[], attrs, 1);
  if (!c) return undefined;
  const dw = backend.outputArray(size(c.filterShape));
  backend.addon.conv2dBackpropFilter(xv, dyv, dw, geometry(c));
  return output(backend, [...c.filterShape], dw);
};

// ---- elementwise

function unary(op: Parameters<NativeAddon['unary']>[0], alphaAttr?: string, alphaDefault = 0): NativeImpl {
  return ({ x }, backend, attrs) => {
    const xv = f32(backend, x);
    if (!x || !xv) return undefined;
    const out = backend.outputArray(xv.length);
    const alpha = alphaAttr === undefined ? alphaDefault : Number(attrs[alphaAttr] ?? alphaDefault);
    backend.addon.unary(op, xv, out, alpha);
    return output(backend, [...x.shape], out);
  };
}

/**
 * Output shape plus per-input element strides over it (0 along broadcast axes), with
 * neighbouring axes merged wherever both inputs are contiguous across them.
 */
export function broadcastStrides(aShape: readonly number[], bShape: readonly number[], outShape: readonly number[]) {
  const rank = outShape.length;
  const stridesFor = (shape: readonly number[]) => {
    const s = new Array<number>(rank).fill(0);
    let acc = 1;
    for (let d = rank - 1, i = shape.length - 1; d >= 0; d--, i--) {
      const dim = i >= 0 ? shape[i]! : 1;
      s[d] = dim === 1 ? 0 : acc;
      acc *= dim;
    }
    return s;
  };
  const sa = stridesFor(aShape);
  const sb = stridesFor(bShape);
  const shape: number[] = [];
  const ma: number[] = [];
  const mb: number[] = [];
  for (let d = 0; d < rank; d++) {
    const dim = outShape[d]!;
    if (dim === 1) continue;
    const last = shape.length - 1;
    if (last >= 0 && ma[last] === sa[d]! * dim && mb[last] === sb[d]! * dim) {
      shape[last]! *= dim;
      ma[last] = sa[d]!;
      mb[last] = sb[d]!;
    } else {
      shape.push(dim);
      ma.push(sa[d]!);
      mb.push(sb[d]!);
    }
  }
  return { shape, aStrides: ma, bStrides: mb };
}

function binary(op: Parameters<NativeAddon['binary']>[0]): NativeImpl {
  return ({ a, b }, backend) => {
    const av = f32(backend, a);
    const bv = f32(backend, b);
    if (!a || !b || !av || !bv) return undefined;
    let outShape: number[];
    try {
      outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
    } catch {
      return undefined;
    }
    const out = backend.outputArray(size(outShape));
    if (out.length > 0) {
      const m = broadcastStrides(a.shape, b.shape, outShape);
      backend.addon.binary(op, av, bv, out, ints(m.shape, 0), ints(m.aStrides, 1), ints(m.bStrides, 2));
    }
    return output(backend, outShape, out);
  };
}

// ---- reductions, softmax

function reduce(op: Parameters<NativeAddon['reduce']>[0], axisAttr: 'axis' | 'reductionIndices'): NativeImpl {
  return ({ x }, backend, attrs) => {
    const xv = f32(backend, x);
    if (!x || !xv || xv.length === 0) return undefined;
    const shape = x.shape;
    const origAxes = util.parseAxisParam(attrs[axisAttr] as number | number[], shape);
    const axes = [...new Set(origAxes)].sort((p, q) => p - q);
    const [reducedShape] = backend_util.computeOutAndReduceShapes(shape, axes);
    const outShape = attrs.keepDims ? backend_util.expandShapeToKeepDim(reducedShape, origAxes) : reducedShape;
    if (axes.length === 0) return undefined; // a copy: the cpu kernel does it
    const out = backend.outputArray(size(reducedShape));
    const contiguous = axes.every((ax, i) => i === 0 || ax === axes[i - 1]! + 1);
    if (contiguous) {
      const first = axes[0]!;
      const last = axes[axes.length - 1]!;
      backend.addon.reduce(op, xv, out, size(shape.slice(0, first)), size(shape.slice(first, last + 1)), size(shape.slice(last + 1)));
    } else {
      // Move the reduced axes innermost (one native transpose), then reduce rows.
      const keep = shape.map((_, i) => i).filter((i) => !axes.includes(i));
      const perm = [...keep, ...axes];
      const moved = backend.outputArray(xv.length);
      backend.addon.transpose(xv, moved, ints(shape, 0), ints(perm, 1));
      backend.addon.reduce(op, moved, out, size(reducedShape), size(axes.map((ax) => shape[ax]!)), 1);
    }
    return output(backend, outShape, out);
  };
}

const softmax: NativeImpl = ({ logits }, backend, attrs) => {
  const xv = f32(backend, logits);
  if (!logits || !xv || xv.length === 0) return undefined;
  const rank = logits.shape.length;
  const dim = attrs.dim as number;
  if (dim !== -1 && dim !== rank - 1) return undefined; // cpu throws its error
  const cols = logits.shape[rank - 1] ?? 1;
  const out = backend.outputArray(xv.length);
  backend.addon.softmax(xv, out, xv.length / cols, cols);
  return output(backend, [...logits.shape], out);
};

// ---- layout

const transpose: NativeImpl = ({ x }, backend, attrs) => {
  const xv = word(backend, x);
  if (!x || !xv || xv.length === 0) return undefined;
  const perm = attrs.perm as number[];
  const out = xv instanceof Int32Array ? new Int32Array(xv.length) : backend.outputArray(xv.length);
  backend.addon.transpose(xv, out, ints(x.shape, 0), ints(perm, 1));
  return output(
    backend,
    perm.map((p) => x.shape[p]!),
    out,
  );
};

const gatherV2: NativeImpl = ({ x, indices }, backend, attrs) => {
  const xv = word(backend, x);
  const iv = i32(backend, indices);
  if (!x || !indices || !xv || !iv) return undefined;
  const axis = util.parseAxisParam(attrs.axis as number, x.shape)[0]!;
  const info = backend_util.segment_util.collectGatherOpShapeInfo(x, indices, axis, (attrs.batchDims as number | undefined) ?? 0);
  const total = size(info.outputShape);
  if (total === 0 || xv.length === 0) return undefined;
  const count = iv.length / info.batchSize;
  const out = xv instanceof Int32Array ? new Int32Array(total) : backend.outputArray(total);
  backend.addon.gather(xv, iv, out, info.batchSize, info.outerSize, info.dimSize, info.sliceSize, count);
  return output(backend, info.outputShape, out);
};

/** Concat of float32 or int32 inputs along any axis (empty inputs dropped, as tfjs-cpu does). */
const concat: NativeImpl = (inputs, backend, attrs) => {
  const all = Object.values(inputs).filter((t): t is TensorInfo => t !== undefined);
  const first = all[0];
  if (!first || first.shape.length === 0 || all.some((t) => t.dtype !== first.dtype || t.shape.length !== first.shape.length)) return undefined;
  const axis = util.parseAxisParam(attrs.axis as number, first.shape)[0]!;
  if (all.some((t) => t.shape.some((d, i) => i !== axis && d !== first.shape[i]))) return undefined; // cpu throws its error
  const outShape = [...first.shape];
  outShape[axis] = all.reduce((s, t) => s + t.shape[axis]!, 0);
  const parts = all.filter((t) => size(t.shape) > 0);
  if (parts.length < 2) return undefined; // nothing to join: the cpu kernel returns the copy
  const values = parts.map((t) => word(backend, t));
  if (values.some((v) => v === undefined || v.constructor !== values[0]!.constructor)) return undefined;
  const outer = size(first.shape.slice(0, axis));
  const total = size(outShape);
  const out = values[0] instanceof Int32Array ? new Int32Array(total) : backend.outputArray(total);
  backend.addon.concat(values as (Float32Array | Int32Array)[], out, outer, ints(parts.map((t) => size(t.shape.slice(axis)))));
  return output(backend, outShape, out);
};

const unsortedSegmentSum: NativeImpl = ({ x, segmentIds }, backend, attrs) => {
  const xv = f32(backend, x);
  const ids = i32(backend, segmentIds);
  if (!x || !segmentIds || !xv || !ids || segmentIds.shape.length !== 1 || x.shape.length < 1) return undefined;
  if (x.shape[0] !== ids.length) return undefined;
  const numSegments = attrs.numSegments as number;
  const inner = size(x.shape.slice(1));
  const outShape = [numSegments, ...x.shape.slice(1)];
  const out = backend.outputArray(numSegments * inner);
  backend.addon.unsortedSegmentSum(xv, ids, out, numSegments, inner);
  return output(backend, outShape, out);
};

// ---- optimizers

/** The fused Adam kernel's name (kiln-native only; see adam.ts). */
export const FUSED_ADAM_KERNEL = 'KilnFusedAdam';

/**
 * Inputs value, grad, m, v (float32, same size); attrs learningRate, beta1, beta2, epsilon,
 * oneMinusAccBeta1, oneMinusAccBeta2 → [newValue, newM, newV], all fresh arrays (never in
 * place: a variable may share its data with other tensors). Anything else: undefined.
 */
const fusedAdam: NativeImpl = ({ value, grad, m, v }, backend, attrs) => {
  const wv = f32(backend, value);
  const gv = f32(backend, grad);
  const mv = f32(backend, m);
  const vv = f32(backend, v);
  if (!value || !wv || !gv || !mv || !vv) return undefined;
  const n = wv.length;
  if (gv.length !== n || mv.length !== n || vv.length !== n) return undefined;
  const ow = backend.outputArray(n);
  const om = backend.outputArray(n);
  const ov = backend.outputArray(n);
  if (n > 0) {
    const num = (name: string) => Number(attrs[name]);
    backend.addon.adamUpdate(
      wv,
      gv,
      mv,
      vv,
      ow,
      om,
      ov,
      num('learningRate'),
      num('beta1'),
      num('beta2'),
      num('epsilon'),
      num('oneMinusAccBeta1'),
      num('oneMinusAccBeta2'),
    );
  }
  const shape = [...value.shape];
  return [output(backend, shape, ow), output(backend, shape, om), output(backend, shape, ov)];
};

/** Kernels only kiln-native has (no cpu counterpart): registered as they are. */
export const nativeOnlyKernels: Record<string, NativeImpl> = {
  [FUSED_ADAM_KERNEL]: fusedAdam,
};

/** Kernel name → native implementation. Exported for tests that check coverage. */
export const nativeKernelImpls: Record<string, NativeImpl> = {
  BatchMatMul: batchMatMul,
  _FusedMatMul: fusedMatMul,
  Conv2D: conv2D,
  FusedConv2D: fusedConv2D,
  Conv2DBackpropInput: conv2DBackpropInput,
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Abs: unary('abs'),
  Neg: unary('neg'),
  Exp: unary('exp'),
  Expm1: unary('expm1'),
  Log: unary('log'),
  Log1p: unary('log1p'),
  Sqrt: unary('sqrt'),
  Rsqrt: unary('rsqrt'),
  Square: unary('square'),
  Reciprocal: unary('reciprocal'),
  Relu: unary('relu'),
  Relu6: unary('relu6'),
  Sigmoid: unary('sigmoid'),
  Tanh: unary('tanh'),
  Elu: unary('elu'),
  Selu: unary('selu'),
  Softplus: unary('softplus'),
  Step: unary('step', 'alpha', 0),
  LeakyRelu: unary('leakyrelu', 'alpha', 0.2),
  Add: binary('add'),
  Sub: binary('sub'),
  Multiply: binary('mul'),
  RealDiv: binary('div'),
  Maximum: binary('max'),
  Minimum: binary('min'),
  SquaredDifference: binary('squaredDifference'),
  Pow: binary('pow'),
  Sum: reduce('sum', 'axis'),
  Mean: reduce('mean', 'axis'),
  Max: reduce('max', 'reductionIndices'),
  Min: reduce('min', 'axis'),
  Softmax: softmax,
  Transpose: transpose,
  GatherV2: gatherV2,
  Concat: concat,
  UnsortedSegmentSum: unsortedSegmentSum,
};

/** The kernel function for `kiln-native`: native when it applies, else the cpu kernel. */
export function withFallback(impl: NativeImpl, fallback: Fallback): KernelFunc {
  return (args) => {
    const result = impl(args.inputs as Inputs, args.backend as NativeKernelBackend, args.attrs ?? {});
    return result ?? fallback(args);
  };
}
