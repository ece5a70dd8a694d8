/**
 * `selectiveScanChannelsLast`: Mamba's selective scan (the `selectiveScan` op's semantics,
 * without gate, initial or last state) on a Mamba block's own layout, channels last:
 *
 *   u, delta, y [rows, L, dim];  B, C [rows, L, N];  A [dim, N];  D, deltaBias [dim]
 *
 * A block computes u, Δ, B and C as rows of [rows·L, width] matrices; `selectiveScan` wants
 * [batch, dim, L], which costs a transpose of each operand and of the result, forward and
 * backward. Its reference is exactly that: the transposes around `selectiveScan`. The
 * kernels scan in this layout directly: each work item is a row and a block of 16 channels
 * walking the sequence in time order with its state in registers (no chunking — with a few
 * dozen channels, a handful of states and one long sequence per batch, the channel blocks
 * already give every core work); the backward checkpoints the state every 64 steps.
 */
import { defineOp, type Op, type OpKernel, tf, vjp } from '@kiln/tensor';
import { cpuBackend, inputInfo, nativeOutput, readF32 } from '../backend-data.js';
import { fmtShape, requireFloat, requireRank, requireShape, requireTensor } from '../checks.js';
import { hostKernels } from '../host-kernels.js';
import { EMPTY_F32, nativeOps } from '../native.js';
import { selectiveScanOp } from '../scan/selective-scan.js';

type Tensor = tf.Tensor;

const SCAN_INPUTS = ['u', 'delta', 'A', 'B', 'C', 'D', 'deltaBias'] as const;
type ScanInput = (typeof SCAN_INPUTS)[number];
type ScanGradInput = ScanInput | 'dy';
export type ChannelsLastScanAttrs = { deltaSoftplus?: boolean };
/** Gradient outputs of the backward op, in this order (zeros for absent D / deltaBias). */
const GRAD_OUTPUTS = ['u', 'delta', 'A', 'B', 'C', 'D', 'deltaBias'] as const;

const OP = 'selectiveScanChannelsLast';

interface Dims {
  rows: number;
  L: number;
  dim: number;
  N: number;
}

function validate(op: string, inputs: Partial<Record<ScanGradInput, Tensor>>): Dims {
  const u = requireTensor(op, 'u', inputs.u);
  requireRank(op, 'u', u, 3, 'rows, L, dim');
  const [rows, L, dim] = u.shape as [number, number, number];
  if (rows < 1 || L < 1 || dim < 1) throw new Error(`${op}: 'u' ${fmtShape(u.shape)} must have rows, L and dim of at least 1`);
  const A = requireTensor(op, 'A', inputs.A);
  requireRank(op, 'A', A, 2, 'dim, N');
  if (A.shape[0] !== dim || A.shape[1]! < 1) throw new Error(`${op}: 'A' must have shape [dim=${dim}, N ≥ 1] to match u ${fmtShape(u.shape)}, got ${fmtShape(A.shape)}`);
  const N = A.shape[1]!;
  const seq = `rows, L, dim as u ${fmtShape(u.shape)}`;
  requireShape(op, 'delta', requireTensor(op, 'delta', inputs.delta), [rows, L, dim], seq);
  requireShape(op, 'B', requireTensor(op, 'B', inputs.B), [rows, L, N], `rows, L, N with N=${N} from A`);
  requireShape(op, 'C', requireTensor(op, 'C', inputs.C), [rows, L, N], `rows, L, N with N=${N} from A`);
  if (inputs.D) requireShape(op, 'D', inputs.D, [dim], 'dim');
  if (inputs.deltaBias) requireShape(op, 'deltaBias', inputs.deltaBias, [dim], 'dim');
  if (inputs.dy) requireShape(op, 'dy', inputs.dy, [rows, L, dim], seq);
  for (const name of [...SCAN_INPUTS, 'dy'] as const) {
    const t = inputs[name];
    if (t) requireFloat(op, name, t);
  }
  return { rows, L, dim, N };
}

/** The transposes around the `selectiveScan` op. */
function reference(inputs: Partial<Record<ScanInput, Tensor>>, attrs: ChannelsLastScanAttrs): Tensor {
  return tf.tidy(() => {
    const t = (x: Tensor) => tf.transpose(x, [0, 2, 1]);
    const args: Partial<Record<string, Tensor>> = { u: t(inputs.u!), delta: t(inputs.delta!), A: inputs.A!, B: t(inputs.B!), C: t(inputs.C!) };
    if (inputs.D) args.D = inputs.D;
    if (inputs.deltaBias) args.deltaBias = inputs.deltaBias;
    const [y] = selectiveScanOp(args, { deltaSoftplus: Boolean(attrs.deltaSoftplus) });
    return t(y!);
  });
}

function dimsOf(inputs: tf.NamedTensorInfoMap): Dims {
  const [rows, L, dim] = inputInfo(inputs, 'u')!.shape as [number, number, number];
  return { rows, L, dim, N: inputInfo(inputs, 'A')!.shape[1]! };
}

interface HostInputs {
  u: Float32Array;
  delta: Float32Array;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  D?: Float32Array;
  deltaBias?: Float32Array;
}

function readInputs(backend: unknown, inputs: tf.NamedTensorInfoMap): HostInputs {
  const b = cpuBackend(backend);
  const read = (n: string) => readF32(b, inputInfo(inputs, n));
  const h: HostInputs = { u: read('u')!, delta: read('delta')!, A: read('A')!, B: read('B')!, C: read('C')! };
  const D = read('D');
  const bias = read('deltaBias');
  if (D) h.D = D;
  if (bias) h.deltaBias = bias;
  return h;
}

const softplus = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Δ for every position, [rows·L·dim]. */
function effectiveDelta(x: HostInputs, d: Dims, useSoftplus: boolean): Float32Array {
  const dt = new Float32Array(x.delta.length);
  for (let i = 0; i < dt.length; i++) {
    const v = x.delta[i]! + (x.deltaBias ? x.deltaBias[i % d.dim]! : 0);
    dt[i] = useSoftplus ? softplus(v) : v;
  }
  return dt;
}

/** The literal recurrence on the host; returns y and every state h_t [rows·L·dim·N]. */
function scanHost(x: HostInputs, d: Dims, dt: Float32Array): { y: Float32Array; states: Float32Array } {
  const { rows, L, dim, N } = d;
  const y = new Float32Array(rows * L * dim);
  const states = new Float32Array(rows * L * dim * N);
  const h = new Float32Array(dim * N);
  for (let r = 0; r < rows; r++) {
    h.fill(0);
    for (let t = 0; t < L; t++) {
      const p = r * L + t;
      for (let c = 0; c < dim; c++) {
        const dv = dt[p * dim + c]!;
        const uv = x.u[p * dim + c]!;
        let acc = x.D ? x.D[c]! * uv : 0;
        for (let n = 0; n < N; n++) {
          const k = c * N + n;
          h[k] = Math.exp(dv * x.A[k]!) * h[k]! + dv * uv * x.B[p * N + n]!;
          acc += x.C[p * N + n]! * h[k]!;
        }
        y[p * dim + c] = acc;
      }
      states.set(h, p * dim * N);
    }
  }
  return { y, states };
}

const forwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const d = dimsOf(inputs);
  const sp = Boolean((attrs as unknown as ChannelsLastScanAttrs).deltaSoftplus);
  const x = readInputs(backend, inputs);
  const shape = [d.rows, d.L, d.dim];
  const native = nativeOps(backend, 'selectiveScanChannelsLastForward');
  if (native) {
    const y = nativeOutput(backend, d.rows * d.L * d.dim);
    native.selectiveScanChannelsLastForward(x.u, x.delta, x.A, x.B, x.C, x.D ?? EMPTY_F32, x.deltaBias ?? EMPTY_F32, y, d.rows, d.L, d.dim, d.N, sp);
    return b.makeTensorInfo(shape, 'float32', y);
  }
  return b.makeTensorInfo(shape, 'float32', scanHost(x, d, effectiveDelta(x, d, sp)).y);
};

const backwardCpu: OpKernel = ({ inputs, backend, attrs }) => {
  const b = cpuBackend(backend);
  const d = dimsOf(inputs);
  const { rows, L, dim, N } = d;
  const sp = Boolean((attrs as unknown as ChannelsLastScanAttrs).deltaSoftplus);
  const x = readInputs(backend, inputs);
  const dy = readF32(b, inputInfo(inputs, 'dy'))!;
  const du = nativeOutput(backend, rows * L * dim);
  const ddelta = nativeOutput(backend, rows * L * dim);
  const dA = new Float32Array(dim * N);
  const dB = new Float32Array(rows * L * N);
  const dC = new Float32Array(rows * L * N);
  const dD = new Float32Array(dim);
  const dBias = new Float32Array(dim);
  const native = nativeOps(backend, 'selectiveScanChannelsLastBackward');
  if (native) {
    native.selectiveScanChannelsLastBackward(
      x.u, x.delta, x.A, x.B, x.C, x.D ?? EMPTY_F32, x.deltaBias ?? EMPTY_F32, dy,
      du, ddelta, dA, dB, dC, dD, dBias, rows, L, dim, N, sp,
    );
  } else {
    const dt = effectiveDelta(x, d, sp);
    const { states } = scanHost(x, d, dt);
    const k = new Float64Array(dim * N); // adjoint arriving from step t + 1
    const accA = new Float64Array(dim * N);
    const accD = new Float64Array(dim);
    const accBias = new Float64Array(dim);
    for (let r = 0; r < rows; r++) {
      k.fill(0);
      for (let t = L - 1; t >= 0; t--) {
        const p = r * L + t;
        for (let c = 0; c < dim; c++) {
          const i = p * dim + c;
          const dv = dt[i]!;
          const uv = x.u[i]!;
          const g0 = dy[i]!;
          let gDt = 0;
          let gU = 0;
          for (let n = 0; n < N; n++) {
            const kk = c * N + n;
            const hPrev = t > 0 ? states[(p - 1) * dim * N + kk]! : 0;
            const g = k[kk]! + g0 * x.C[p * N + n]!;
            const ea = Math.exp(dv * x.A[kk]!);
            const gah = g * ea * hPrev;
            gDt += gah * x.A[kk]! + g * x.B[p * N + n]! * uv;
            accA[kk]! += gah * dv;
            gU += g * x.B[p * N + n]!;
            dB[p * N + n]! += g * dv * uv;
            dC[p * N + n]! += g0 * states[p * dim * N + kk]!;
            k[kk] = ea * g;
          }
          const raw = x.delta[i]! + (x.deltaBias ? x.deltaBias[c]! : 0);
          const gRaw = sp && raw <= 20 ? gDt * sigmoid(raw) : gDt;
          du[i] = gU * dv + (x.D ? x.D[c]! * g0 : 0);
          ddelta[i] = gRaw;
          accD[c]! += g0 * uv;
          accBias[c]! += gRaw;
        }
      }
    }
    dA.set(accA);
    dD.set(accD);
    dBias.set(accBias);
  }
  const seq = [rows, L, dim];
  const bc = [rows, L, N];
  return [
    b.makeTensorInfo(seq, 'float32', du),
    b.makeTensorInfo(seq, 'float32', ddelta),
    b.makeTensorInfo([dim, N], 'float32', dA),
    b.makeTensorInfo(bc, 'float32', dB),
    b.makeTensorInfo(bc, 'float32', dC),
    b.makeTensorInfo([dim], 'float32', dD),
    b.makeTensorInfo([dim], 'float32', dBias),
  ];
};

/** [du, ddelta, dA, dB, dC, dD, ddeltaBias] for the output cotangent dy. */
export const selectiveScanChannelsLastBackwardOp: Op<ScanGradInput, ChannelsLastScanAttrs, Tensor[]> = defineOp<ScanGradInput, ChannelsLastScanAttrs, Tensor[]>({
  name: `${OP}Backward`,
  inputs: [...SCAN_INPUTS, 'dy'] as const,
  nonDifferentiable: [...SCAN_INPUTS, 'dy'],
  validate: (inputs) => {
    validate(`${OP}Backward`, inputs);
    requireTensor(`${OP}Backward`, 'dy', inputs.dy);
  },
  reference: (inputs, attrs) =>
    tf.tidy(() => {
      const dim = inputs.u!.shape[2]!;
      const D = inputs.D ?? tf.zeros([dim]);
      const bias = inputs.deltaBias ?? tf.zeros([dim]);
      const xs = [inputs.u!, inputs.delta!, inputs.A!, inputs.B!, inputs.C!, D, bias];
      return vjp((u, delta, A, B, C, Dv, bv) => [reference({ u, delta, A, B, C, D: Dv, deltaBias: bv }, attrs)], xs, [inputs.dy!]);
    }),
  kernels: hostKernels(backwardCpu),
});

export const selectiveScanChannelsLastOp: Op<ScanInput, ChannelsLastScanAttrs, Tensor> = defineOp<ScanInput, ChannelsLastScanAttrs, Tensor>({
  name: OP,
  inputs: SCAN_INPUTS,
  validate: (inputs) => void validate(OP, inputs),
  reference,
  kernels: hostKernels(forwardCpu),
  gradient: ({ inputs, dy, attrs }) => {
    const grads = selectiveScanChannelsLastBackwardOp({ ...inputs, dy: dy[0]! }, attrs);
    const result: Partial<Record<ScanInput, Tensor>> = {};
    GRAD_OUTPUTS.forEach((n, i) => {
      if (inputs[n]) result[n] = grads[i]!;
      else grads[i]!.dispose();
    });
    return result;
  },
});

export interface ChannelsLastScanArgs {
  /** [rows, L, dim] */
  u: Tensor;
  /** [rows, L, dim], before bias and softplus */
  delta: Tensor;
  /** [dim, N] */
  A: Tensor;
  /** [rows, L, N] */
  B: Tensor;
  /** [rows, L, N] */
  C: Tensor;
  /** [dim], y += D·u */
  D?: Tensor;
  /** [dim], added to delta before the softplus */
  deltaBias?: Tensor;
  deltaSoftplus?: boolean;
}

/** Mamba's selective scan on channels-last operands → y [rows, L, dim]; differentiable in every tensor. */
export function selectiveScanChannelsLast(args: ChannelsLastScanArgs): Tensor {
  const { deltaSoftplus, ...tensors } = args;
  const inputs: Partial<Record<ScanInput, Tensor>> = {};
  for (const [k, v] of Object.entries(tensors)) if (v != null) inputs[k as ScanInput] = v as Tensor;
  return selectiveScanChannelsLastOp(inputs, { deltaSoftplus: Boolean(deltaSoftplus) });
}
