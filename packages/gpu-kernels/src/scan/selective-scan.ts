/**
 * `selectiveScan`: Mamba's S6 scan with mamba's shapes and semantics (`selective_scan_ref`
 * in mamba_ssm/ops/selective_scan_interface.py), plus an initial state so the state can be
 * carried across samples. Declared once with `defineOp`: the reference is mamba's per-step
 * loop in tf ops; kernels (chunked parallel scans) run forward and backward.
 */
import { defineOp, type OpKernel, tf, vjp } from '@kiln/tensor';
import { hostKernels } from '../host-kernels.js';
import { cpuBackend, inputInfo, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireRank, requireShape, requireTensor } from '../checks.js';
import { scanBackwardWgsl, scanForwardWgsl } from '../wgsl/scan.js';
import { EMPTY_F32, type GpuKernelsAddon, nativeOps } from '../native.js';
import { DEFAULT_SCAN_CHUNK, type ScanDims, type ScanGrads, type ScanInputs, scanBackward, scanForward } from './chunked-scan.js';

type Tensor = tf.Tensor;

export const SCAN_INPUTS = ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias', 'initialState'] as const;
export type ScanInputName = (typeof SCAN_INPUTS)[number];
export type ScanAttrs = {
  deltaSoftplus?: boolean;
  /** Time steps per chunk of the parallel scan (kernels only; results agree up to rounding). */
  chunkSize?: number;
};

export { DEFAULT_SCAN_CHUNK } from './chunked-scan.js';
const OP = 'selectiveScan';

/** Shapes: u, delta, z [batch, dim, L]; A [dim, N]; B, C [batch, N, L]; D, deltaBias [dim]; initialState [batch, dim, N]. */
export function validateScan(inputs: Partial<Record<ScanInputName, Tensor>>, attrs: ScanAttrs): ScanDims {
  const u = requireTensor(OP, 'u', inputs.u);
  requireRank(OP, 'u', u, 3, 'batch, dim, L');
  const [batch, dim, length] = u.shape as [number, number, number];
  if (batch < 1 || dim < 1 || length < 1) throw new Error(`${OP}: 'u' ${fmtShape(u.shape)} must have batch, dim and L of at least 1`);
  const A = requireTensor(OP, 'A', inputs.A);
  requireRank(OP, 'A', A, 2, 'dim, N');
  if (A.shape[0] !== dim) throw new Error(`${OP}: 'A' must have shape [dim=${dim}, N] to match u ${fmtShape(u.shape)}, got ${fmtShape(A.shape)}`);
  const dstate = A.shape[1]!;
  requireShape(OP, 'delta', requireTensor(OP, 'delta', inputs.delta), [batch, dim, length], `batch, dim, L as u ${fmtShape(u.shape)}`);
  const bcLayout = `batch, N, L with N=${dstate} from A ${fmtShape(A.shape)}`;
  requireShape(OP, 'B', requireTensor(OP, 'B', inputs.B), [batch, dstate, length], bcLayout);
  requireShape(OP, 'C', requireTensor(OP, 'C', inputs.C), [batch, dstate, length], bcLayout);
  if (inputs.D) requireShape(OP, 'D', inputs.D, [dim], 'dim');
  if (inputs.deltaBias) requireShape(OP, 'deltaBias', inputs.deltaBias, [dim], 'dim');
  if (inputs.z) requireShape(OP, 'z', inputs.z, [batch, dim, length], `batch, dim, L as u ${fmtShape(u.shape)}`);
  if (inputs.initialState) requireShape(OP, 'initialState', inputs.initialState, [batch, dim, dstate], 'batch, dim, N');
  for (const name of SCAN_INPUTS) {
    const t = inputs[name];
    if (t) requireFloat(OP, name, t);
  }
  if (attrs.chunkSize !== undefined && (!Number.isInteger(attrs.chunkSize) || attrs.chunkSize < 1)) {
    throw new Error(`${OP}: 'chunkSize' must be a positive integer, got ${attrs.chunkSize}`);
  }
  return { batch, dim, dstate, length };
}

/** The slices along `axis` (tfjs's unstack cannot be differentiated when there is just one). */
function timeSteps(t: Tensor, axis: number): Tensor[] {
  return t.shape[axis] === 1 ? [tf.squeeze(t, [axis])] : tf.unstack(t, axis);
}

/** mamba's `selective_scan_ref`, step by step, returning [out, lastState]. */
export function scanReference(inputs: Partial<Record<ScanInputName, Tensor>>, attrs: ScanAttrs): Tensor[] {
  const { u, delta, A, B, C, D, z, deltaBias, initialState } = inputs as Record<ScanInputName, Tensor | undefined>;
  const [batch, dim, length] = u!.shape as [number, number, number];
  const dstate = A!.shape[1]!;
  let dt = delta!;
  if (deltaBias) dt = tf.add(dt, tf.reshape(deltaBias, [dim, 1]));
  if (attrs.deltaSoftplus) dt = tf.softplus(dt);
  const deltaA = tf.exp(tf.mul(tf.expandDims(dt, 3), tf.reshape(A!, [1, dim, 1, dstate]))); // [b, d, L, N]
  const deltaBu = tf.mul(tf.expandDims(tf.mul(dt, u!), 3), tf.expandDims(tf.transpose(B!, [0, 2, 1]), 1)); // [b, d, L, N]
  const aSteps = timeSteps(deltaA, 2);
  const xSteps = timeSteps(deltaBu, 2);
  const cSteps = timeSteps(C!, 2).map((c) => tf.expandDims(c, 1)); // [b, 1, N]
  let h: Tensor = initialState ?? tf.zeros([batch, dim, dstate]);
  const ys: Tensor[] = [];
  for (let t = 0; t < length; t++) {
    h = tf.add(tf.mul(aSteps[t]!, h), xSteps[t]!);
    ys.push(tf.sum(tf.mul(h, cSteps[t]!), 2));
  }
  let out: Tensor = length === 0 ? tf.zeros([batch, dim, 0]) : tf.stack(ys, 2);
  if (D) out = tf.add(out, tf.mul(u!, tf.reshape(D, [dim, 1])));
  if (z) out = tf.mul(out, tf.mul(z, tf.sigmoid(z)));
  return [out, h];
}

function scanDimsOf(inputs: tf.NamedTensorInfoMap): ScanDims {
  const u = inputInfo(inputs, 'u')!;
  const A = inputInfo(inputs, 'A')!;
  return { batch: u.shape[0]!, dim: u.shape[1]!, length: u.shape[2]!, dstate: A.shape[1]! };
}

function readScanInputs(backend: ReturnType<typeof cpuBackend>, inputs: tf.NamedTensorInfoMap): ScanInputs {
  const read = (name: string) => readF32(backend, inputInfo(inputs, name));
  return {
    u: read('u')!,
    delta: read('delta')!,
    A: read('A')!,
    B: read('B')!,
    C: read('C')!,
    D: read('D'),
    z: read('z'),
    deltaBias: read('deltaBias'),
    initialState: read('initialState'),
  };
}

/** The chunked scan in TypeScript, for the CPU-memory backends (`cpu`, and `kiln-native` before its addon loads). */
export const scanForwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const a = attrs as unknown as ScanAttrs;
  const dims = scanDimsOf(inputs);
  const native = nativeOps(backend, 'selectiveScanForward');
  if (native) {
    const x = readScanInputs(b, inputs);
    const out = new Float32Array(dims.batch * dims.dim * dims.length);
    const last = new Float32Array(dims.batch * dims.dim * dims.dstate);
    native.selectiveScanForward(
      x.u, x.delta, x.A, x.B, x.C, x.D ?? EMPTY_F32, x.z ?? EMPTY_F32, x.deltaBias ?? EMPTY_F32, x.initialState ?? EMPTY_F32,
      out, last, dims.batch, dims.dim, dims.dstate, dims.length, Boolean(a.deltaSoftplus), a.chunkSize ?? DEFAULT_SCAN_CHUNK,
    );
    return [
      b.makeTensorInfo([dims.batch, dims.dim, dims.length], 'float32', out),
      b.makeTensorInfo([dims.batch, dims.dim, dims.dstate], 'float32', last),
    ];
  }
  const { out, last } = scanForward(readScanInputs(b, inputs), dims, {
    deltaSoftplus: Boolean(a.deltaSoftplus),
    chunk: a.chunkSize ?? DEFAULT_SCAN_CHUNK,
  });
  return [
    b.makeTensorInfo([dims.batch, dims.dim, dims.length], 'float32', out),
    b.makeTensorInfo([dims.batch, dims.dim, dims.dstate], 'float32', last),
  ];
};

export const SCAN_GRAD_INPUTS = [...SCAN_INPUTS, 'dout', 'dLast'] as const;
export type ScanGradInputName = (typeof SCAN_GRAD_INPUTS)[number];
/** Gradient outputs, in this order, always all present (zeros for absent inputs). */
export const SCAN_GRAD_OUTPUTS = ['u', 'delta', 'A', 'B', 'C', 'D', 'z', 'deltaBias', 'initialState'] as const;

export const scanBackwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const a = attrs as unknown as ScanAttrs;
  const dims = scanDimsOf(inputs);
  const native = nativeOps(backend, 'selectiveScanBackward');
  const g = native ? scanBackwardNative(native, b, inputs, dims, a) : scanBackward(
    readScanInputs(b, inputs),
    dims,
    { deltaSoftplus: Boolean(a.deltaSoftplus), chunk: a.chunkSize ?? DEFAULT_SCAN_CHUNK },
    readF32(b, inputInfo(inputs, 'dout'))!,
    readF32(b, inputInfo(inputs, 'dLast')),
  );
  const { batch, dim, dstate, length } = dims;
  return [
    b.makeTensorInfo([batch, dim, length], 'float32', g.du),
    b.makeTensorInfo([batch, dim, length], 'float32', g.ddelta),
    b.makeTensorInfo([dim, dstate], 'float32', g.dA),
    b.makeTensorInfo([batch, dstate, length], 'float32', g.dB),
    b.makeTensorInfo([batch, dstate, length], 'float32', g.dC),
    b.makeTensorInfo([dim], 'float32', g.dD),
    b.makeTensorInfo([batch, dim, length], 'float32', g.dz.length ? g.dz : new Float32Array(batch * dim * length)),
    b.makeTensorInfo([dim], 'float32', g.ddeltaBias),
    b.makeTensorInfo([batch, dim, dstate], 'float32', g.dInitialState),
  ];
};

function scanBackwardNative(
  native: Pick<GpuKernelsAddon, 'selectiveScanBackward'>,
  b: ReturnType<typeof cpuBackend>,
  inputs: tf.NamedTensorInfoMap,
  dims: ScanDims,
  a: ScanAttrs,
): ScanGrads {
  const x = readScanInputs(b, inputs);
  const { batch, dim, dstate, length } = dims;
  const bdl = batch * dim * length;
  const g: ScanGrads = {
    du: new Float32Array(bdl),
    ddelta: new Float32Array(bdl),
    dA: new Float32Array(dim * dstate),
    dB: new Float32Array(batch * dstate * length),
    dC: new Float32Array(batch * dstate * length),
    dD: new Float32Array(dim),
    dz: new Float32Array(bdl),
    ddeltaBias: new Float32Array(dim),
    dInitialState: new Float32Array(batch * dim * dstate),
  };
  native.selectiveScanBackward(
    x.u, x.delta, x.A, x.B, x.C, x.D ?? EMPTY_F32, x.z ?? EMPTY_F32, x.deltaBias ?? EMPTY_F32, x.initialState ?? EMPTY_F32,
    readF32(b, inputInfo(inputs, 'dout'))!, readF32(b, inputInfo(inputs, 'dLast')) ?? EMPTY_F32,
    g.du, g.ddelta, g.dA, g.dB, g.dC, g.dD, g.dz, g.ddeltaBias, g.dInitialState,
    batch, dim, dstate, length, Boolean(a.deltaSoftplus), a.chunkSize ?? DEFAULT_SCAN_CHUNK,
  );
  return g;
}

/**
 * The scan's backward as an op of its own, so each backend can run a kernel for it. Its
 * reference is the vector-Jacobian product of the forward reference (tfjs autodiff).
 */
export const selectiveScanBackward = defineOp<ScanGradInputName, ScanAttrs, Tensor[]>({
  name: 'selectiveScanBackward',
  inputs: SCAN_GRAD_INPUTS,
  nonDifferentiable: SCAN_GRAD_INPUTS,
  reference: (inputs, attrs) => {
    const names = SCAN_INPUTS.filter((n) => inputs[n]);
    const xs = names.map((n) => inputs[n]!);
    const [batch, dim] = inputs.u!.shape as [number, number, number];
    const dstate = inputs.A!.shape[1]!;
    const dLast = inputs.dLast ?? tf.zeros([batch, dim, dstate]);
    const grads = vjp(
      (...vals) => {
        const named: Partial<Record<ScanInputName, Tensor>> = {};
        names.forEach((n, i) => {
          named[n] = vals[i]!;
        });
        return scanReference(named, attrs);
      },
      xs,
      [inputs.dout!, dLast],
    );
    return SCAN_GRAD_OUTPUTS.map((n) => {
      const i = names.indexOf(n);
      if (i >= 0) return grads[i]!;
      return tf.zeros(zeroShape(n, inputs.u!.shape as number[], dstate));
    });
  },
  kernels: { ...hostKernels(scanBackwardCpu), webgpu: scanBackwardWgsl },
});

function zeroShape(name: ScanInputName, uShape: number[], dstate: number): number[] {
  const [batch, dim] = uShape as [number, number];
  if (name === 'D' || name === 'deltaBias') return [dim];
  if (name === 'initialState') return [batch, dim, dstate];
  return uShape;
}

export const selectiveScanOp = defineOp<ScanInputName, ScanAttrs, Tensor[]>({
  name: OP,
  inputs: SCAN_INPUTS,
  validate: (inputs, attrs) => {
    validateScan(inputs, attrs);
  },
  reference: scanReference,
  kernels: { ...hostKernels(scanForwardCpu), webgpu: scanForwardWgsl },
  // The reference's autodiff keeps L steps of [batch, dim, N] tensors alive and runs
  // ~10·L small kernels; the dedicated backward op replays chunks instead.
  gradient: ({ inputs, dy, attrs }) => {
    const grads = selectiveScanBackward({ ...inputs, dout: dy[0]!, dLast: dy[1]! }, attrs);
    const result: Partial<Record<ScanInputName, Tensor>> = {};
    SCAN_GRAD_OUTPUTS.forEach((n, i) => {
      if (inputs[n]) result[n] = grads[i]!;
      else grads[i]!.dispose();
    });
    return result;
  },
});

export interface SelectiveScanArgs {
  /** [batch, dim, L] */
  u: Tensor;
  /** [batch, dim, L], before bias and softplus */
  delta: Tensor;
  /** [dim, N], usually −exp(A_log) */
  A: Tensor;
  /**
   * [batch, N, L]; or, as mamba also accepts, [batch, G, N, L] (G groups of dim / G channels)
   * or [dim, N] (constant). The last two run one scan per block of channels.
   */
  B: Tensor;
  /** Same layouts as B (the two may differ). */
  C: Tensor;
  /** [dim], skip connection y += D·u */
  D?: Tensor;
  /** [batch, dim, L], gate: out = y · silu(z) */
  z?: Tensor;
  /** [dim], added to delta before the softplus */
  deltaBias?: Tensor;
  /** Δ = softplus(delta + deltaBias) when true (mamba's `delta_softplus`) */
  deltaSoftplus?: boolean;
  /** [batch, dim, N], the state before step 0 (zeros when absent) */
  initialState?: Tensor;
  /** Also return the state after the last step, [batch, dim, N]. */
  returnLastState?: boolean;
  /** Kernel tuning: time steps per chunk of the parallel scan (default 64). */
  chunkSize?: number;
}

/**
 * Mamba's selective scan (S6). Returns `out` [batch, dim, L], or `{ out, lastState }` with
 * `returnLastState`. Differentiable in every tensor argument, including through the last
 * state (unlike mamba's CUDA path, whose backward ignores it), which lets a caller chain
 * segments and back-propagate across them.
 */
export function selectiveScan(args: SelectiveScanArgs & { returnLastState: true }): { out: Tensor; lastState: Tensor };
export function selectiveScan(args: SelectiveScanArgs & { returnLastState?: false }): Tensor;
export function selectiveScan(args: SelectiveScanArgs): Tensor | { out: Tensor; lastState: Tensor };
export function selectiveScan(args: SelectiveScanArgs): Tensor | { out: Tensor; lastState: Tensor } {
  const { deltaSoftplus, returnLastState, chunkSize, ...tensors } = args;
  const inputs: Partial<Record<ScanInputName, Tensor>> = {};
  for (const [k, v] of Object.entries(tensors)) if (v != null) inputs[k as ScanInputName] = v as Tensor;
  const attrs: ScanAttrs = { deltaSoftplus: Boolean(deltaSoftplus) };
  if (chunkSize !== undefined) attrs.chunkSize = chunkSize;
  const u = requireTensor(OP, 'u', inputs.u);
  requireRank(OP, 'u', u, 3, 'batch, dim, L');
  const [batch, dim, length] = u.shape as [number, number, number];
  const layoutB = bcLayout('B', requireTensor(OP, 'B', inputs.B), batch, dim, length);
  const layoutC = bcLayout('C', requireTensor(OP, 'C', inputs.C), batch, dim, length);
  const groups = lcm(layoutB.groups, layoutC.groups);
  let out: Tensor;
  let lastState: Tensor;
  if (groups === 1) {
    [out, lastState] = selectiveScanOp({ ...inputs, B: layoutB.block(0), C: layoutC.block(0) }, attrs) as [Tensor, Tensor];
  } else {
    // Validate the whole call once, so errors name the caller's shapes rather than a block's.
    tf.tidy(() => {
      validateScan({ ...inputs, B: layoutB.block(0), C: layoutC.block(0) }, attrs);
    });
    [out, lastState] = tf.tidy(() => scanByDimBlocks(inputs, attrs, groups, layoutB, layoutC));
  }
  if (returnLastState) return { out, lastState };
  lastState.dispose();
  return out;
}

/** How B or C is laid out (mamba's three layouts) and its [batch, N, L] slice for a block of dims. */
interface BcLayout {
  /** Number of equal blocks of `dim` that share one slice of B/C (dim for the constant layout). */
  groups: number;
  /** The [batch, N, L] operand of block g of `groups`. */
  block(g: number): Tensor;
}

/**
 * mamba's `selective_scan_ref` takes B and C as [batch, N, L] (input-dependent), as
 * [batch, G, N, L] (G groups of dim / G channels each) or as [dim, N] (constant over time and
 * batch, `is_variable_B` false).
 */
function bcLayout(name: 'B' | 'C', t: Tensor, batch: number, dim: number, length: number): BcLayout {
  if (t.rank === 3) return { groups: 1, block: () => t };
  if (t.rank === 4) {
    const g = t.shape[1]!;
    if (g < 1 || dim % g !== 0) {
      throw new Error(`${OP}: '${name}' ${fmtShape(t.shape)} has ${g} groups, which must divide dim=${dim}`);
    }
    return {
      groups: g,
      block: (k) => tf.reshape(tf.slice(t, [0, k, 0, 0], [-1, 1, -1, -1]), [t.shape[0]!, t.shape[2]!, t.shape[3]!]),
    };
  }
  if (t.rank === 2) {
    if (t.shape[0] !== dim) {
      throw new Error(`${OP}: constant '${name}' must have shape [dim=${dim}, N], got ${fmtShape(t.shape)}`);
    }
    const n = t.shape[1]!;
    return { groups: dim, block: (d) => tf.tile(tf.reshape(tf.slice(t, [d, 0], [1, n]), [1, n, 1]), [batch, 1, length]) };
  }
  throw new Error(`${OP}: '${name}' ${fmtShape(t.shape)} must be [batch, N, L], [batch, groups, N, L] or [dim, N]`);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function lcm(a: number, b: number): number {
  return (a / gcd(a, b)) * b;
}

/**
 * Grouped or constant B/C: the scan is independent per channel, so it runs once per block of
 * dim / groups channels with that block's B and C, and the outputs are concatenated. Exact,
 * and differentiable through tfjs's slice/concat; one op call per block.
 */
function scanByDimBlocks(
  inputs: Partial<Record<ScanInputName, Tensor>>,
  attrs: ScanAttrs,
  groups: number,
  layoutB: BcLayout,
  layoutC: BcLayout,
): [Tensor, Tensor] {
  const dim = inputs.u!.shape[1]!;
  const width = dim / groups;
  const outs: Tensor[] = [];
  const lasts: Tensor[] = [];
  const channels = (t: Tensor | undefined, axis: number, start: number): Tensor | undefined => {
    if (!t) return undefined;
    const begin = t.shape.map(() => 0);
    const size = t.shape.map(() => -1);
    begin[axis] = start;
    size[axis] = width;
    return tf.slice(t, begin, size);
  };
  for (let k = 0; k < groups; k++) {
    const d0 = k * width;
    const block: Partial<Record<ScanInputName, Tensor>> = {
      u: channels(inputs.u, 1, d0),
      delta: channels(inputs.delta, 1, d0),
      A: channels(inputs.A, 0, d0),
      B: layoutB.block(Math.floor(d0 / (dim / layoutB.groups))),
      C: layoutC.block(Math.floor(d0 / (dim / layoutC.groups))),
    };
    const optional: Array<[ScanInputName, number]> = [['D', 0], ['z', 1], ['deltaBias', 0], ['initialState', 1]];
    for (const [name, axis] of optional) {
      const t = channels(inputs[name], axis, d0);
      if (t) block[name] = t;
    }
    const [out, last] = selectiveScanOp(block, attrs) as [Tensor, Tensor];
    outs.push(out);
    lasts.push(last);
  }
  return [tf.concat(outs, 1), tf.concat(lasts, 1)];
}
