/**
 * WGSL kernels of the selective scan: the chunked parallel scan of
 * src/scan/chunked-scan.ts as a pipeline of small programs. Threads are (batch, channel,
 * state, chunk) tuples in the reduction passes, so the time axis is parallel; the carry
 * pass walks chunks, not time steps.
 *
 * Forward: Δ → chunk pairs (∏a, state from 0) → carry (chunk start states, last state) →
 * replay chunks for y (+ D·u) → gate.
 * Backward: the same for the states, then the adjoint's reverse chunk pairs and carry, then
 * two replays: one per (b, d, chunk) for dΔ, du, dA and one per (b, n, chunk) for dB, dC,
 * each summing over its own inner axis so no two threads write one element.
 */
import type { OpKernel, tf } from '@kiln/tensor';
import { inputInfo } from '../backend-data.js';
import { DEFAULT_SCAN_CHUNK } from '../scan/chunked-scan.js';
import type { ScanAttrs } from '../scan/selective-scan.js';
import { dispose, runProgram, upload, WGSL_MATH } from './program.js';

type Info = tf.TensorInfo;

interface Dims {
  batch: number;
  dim: number;
  N: number;
  L: number;
  chunk: number;
  nc: number;
}

/** Chunk length on WebGPU: private arrays are sized by it, so it is capped. */
const MAX_WGSL_CHUNK = 32;

function dimsOf(inputs: tf.NamedTensorInfoMap, attrs: ScanAttrs): Dims {
  const u = inputInfo(inputs, 'u')!;
  const A = inputInfo(inputs, 'A')!;
  const L = u.shape[2]!;
  const chunk = Math.min(attrs.chunkSize ?? DEFAULT_SCAN_CHUNK, MAX_WGSL_CHUNK);
  return { batch: u.shape[0]!, dim: u.shape[1]!, N: A.shape[1]!, L, chunk, nc: Math.max(1, Math.ceil(L / chunk)) };
}

function ints(s: Dims): Record<string, number> {
  return { batch: s.batch, dim: s.dim, nstate: s.N, seqLen: s.L, chunk: s.chunk, nc: s.nc };
}

/** Δ = softplus?(delta + bias). */
function deltaProgram(backend: unknown, inputs: tf.NamedTensorInfoMap, s: Dims, softplus: boolean): Info {
  const bias = inputInfo(inputs, 'deltaBias');
  const list: [string, Info][] = [['DLT', inputInfo(inputs, 'delta')!]];
  if (bias) list.push(['BIA', bias]);
  return runProgram(backend, {
    key: `scan_dt_${Boolean(bias)}_${softplus}`,
    inputs: list,
    outShape: [s.batch, s.dim, s.L],
    threads: s.batch * s.dim * s.L,
    ints: ints(s),
    prelude: WGSL_MATH,
    body: `
  let d = (index / uniforms.seqLen) % uniforms.dim;
  var v = DLT[index]${bias ? ' + BIA[d]' : ''};
  ${softplus ? 'v = gk_softplus(v);' : ''}
  result[index] = v;`,
  });
}

const CHUNK_COORDS = `
  let n = index % uniforms.nstate;
  let c = (index / uniforms.nstate) % uniforms.nc;
  let r = index / (uniforms.nstate * uniforms.nc);
  let b = r / uniforms.dim;
  let d = r % uniforms.dim;
  let aa = AM[d * uniforms.nstate + n];
  let t0 = c * uniforms.chunk;
  let t1 = min(t0 + uniforms.chunk, uniforms.seqLen);
  let brow = (b * uniforms.nstate + n) * uniforms.seqLen;
  let row = r * uniforms.seqLen;`;

/** Per chunk, from a zero state: (∏ a, final state), interleaved. */
function forwardPairs(backend: unknown, dt: Info, inputs: tf.NamedTensorInfoMap, s: Dims): Info {
  const S = s.batch * s.dim * s.nc * s.N;
  return runProgram(backend, {
    key: 'scan_fwd_pairs',
    inputs: [
      ['DT', dt],
      ['U', inputInfo(inputs, 'u')!],
      ['AM', inputInfo(inputs, 'A')!],
      ['BM', inputInfo(inputs, 'B')!],
    ],
    outShape: [2 * S],
    threads: S,
    ints: ints(s),
    body: `${CHUNK_COORDS}
  var p = 1.0;
  var h = 0.0;
  for (var t = t0; t < t1; t = t + 1) {
    let dv = DT[row + t];
    let e = exp(dv * aa);
    p = p * e;
    h = e * h + dv * BM[brow + t] * U[row + t];
  }
  result[2 * index] = p;
  result[2 * index + 1] = h;`,
  });
}

/** Per chunk, backwards, for the adjoint: (∏ a, k entering the chunk's left from zero). */
function backwardPairs(backend: unknown, dt: Info, dy: Info, inputs: tf.NamedTensorInfoMap, s: Dims): Info {
  const S = s.batch * s.dim * s.nc * s.N;
  return runProgram(backend, {
    key: 'scan_bwd_pairs',
    inputs: [
      ['DT', dt],
      ['DY', dy],
      ['AM', inputInfo(inputs, 'A')!],
      ['CM', inputInfo(inputs, 'C')!],
    ],
    outShape: [2 * S],
    threads: S,
    ints: ints(s),
    body: `${CHUNK_COORDS}
  var q = 1.0;
  var k = 0.0;
  for (var t = t1 - 1; t >= t0; t = t - 1) {
    let e = exp(DT[row + t] * aa);
    q = q * e;
    k = e * (k + DY[row + t] * CM[brow + t]);
  }
  result[2 * index] = q;
  result[2 * index + 1] = k;`,
  });
}

/**
 * Carry across chunks. Output: hStart [S] | kEnd [S] | last [R] | dInitial [R] with
 * S = b·d·nc·N, R = b·d·N (the k half only when adjoint pairs are given).
 */
function carry(backend: unknown, ps: Info, qk: Info | undefined, h0: Info | undefined, dLast: Info | undefined, s: Dims): Info {
  const S = s.batch * s.dim * s.nc * s.N;
  const R = s.batch * s.dim * s.N;
  const list: [string, Info][] = [['PS', ps]];
  if (qk) list.push(['QK', qk]);
  if (h0) list.push(['H0', h0]);
  if (dLast) list.push(['DLS', dLast]);
  return runProgram(backend, {
    key: `scan_carry_${Boolean(qk)}_${Boolean(h0)}_${Boolean(dLast)}`,
    inputs: list,
    outShape: [2 * S + 2 * R],
    threads: R,
    ints: { ...ints(s), sBig: S, rSmall: R },
    body: `
  let n = index % uniforms.nstate;
  let r = index / uniforms.nstate;
  var h = ${h0 ? 'H0[index]' : '0.0'};
  for (var c = 0; c < uniforms.nc; c = c + 1) {
    let o = (r * uniforms.nc + c) * uniforms.nstate + n;
    result[o] = h;
    h = PS[2 * o] * h + PS[2 * o + 1];
  }
  result[2 * uniforms.sBig + index] = h;
  ${
    qk
      ? `var k = ${dLast ? 'DLS[index]' : '0.0'};
  for (var c = uniforms.nc - 1; c >= 0; c = c - 1) {
    let o = (r * uniforms.nc + c) * uniforms.nstate + n;
    result[uniforms.sBig + o] = k;
    k = QK[2 * o] * k + QK[2 * o + 1];
  }
  result[2 * uniforms.sBig + uniforms.rSmall + index] = k;`
      : ''
  }`,
  });
}

/** y = Σ_n C·h + D·u per (b, d, chunk), from the chunk start states. */
function outputs(backend: unknown, dt: Info, hk: Info, inputs: tf.NamedTensorInfoMap, s: Dims): Info {
  const D = inputInfo(inputs, 'D');
  const list: [string, Info][] = [
    ['DT', dt],
    ['U', inputInfo(inputs, 'u')!],
    ['AM', inputInfo(inputs, 'A')!],
    ['BM', inputInfo(inputs, 'B')!],
    ['CM', inputInfo(inputs, 'C')!],
    ['HK', hk],
  ];
  if (D) list.push(['DV', D]);
  return runProgram(backend, {
    key: `scan_out_${s.chunk}_${Boolean(D)}`,
    inputs: list,
    outShape: [s.batch, s.dim, s.L],
    threads: s.batch * s.dim * s.nc,
    ints: ints(s),
    body: `
  let c = index % uniforms.nc;
  let r = index / uniforms.nc;
  let b = r / uniforms.dim;
  let d = r % uniforms.dim;
  let t0 = c * uniforms.chunk;
  let t1 = min(t0 + uniforms.chunk, uniforms.seqLen);
  let row = r * uniforms.seqLen;
  var y : array<f32, ${s.chunk}>;
  for (var t = t0; t < t1; t = t + 1) { y[t - t0] = 0.0; }
  for (var n = 0; n < uniforms.nstate; n = n + 1) {
    let aa = AM[d * uniforms.nstate + n];
    let brow = (b * uniforms.nstate + n) * uniforms.seqLen;
    var h = HK[(r * uniforms.nc + c) * uniforms.nstate + n];
    for (var t = t0; t < t1; t = t + 1) {
      let dv = DT[row + t];
      h = exp(dv * aa) * h + dv * BM[brow + t] * U[row + t];
      y[t - t0] = y[t - t0] + CM[brow + t] * h;
    }
  }
  for (var t = t0; t < t1; t = t + 1) {
    result[row + t] = y[t - t0]${D ? ' + DV[d] * U[row + t]' : ''};
  }`,
  });
}

function elementwise(backend: unknown, key: string, list: [string, Info][], shape: number[], expr: string, s: Dims): Info {
  return runProgram(backend, {
    key,
    inputs: list,
    outShape: shape,
    threads: shape.reduce((a, b) => a * b, 1),
    ints: { ...ints(s), bdl: s.batch * s.dim * s.L },
    prelude: WGSL_MATH,
    body: `
  let d = (index / uniforms.seqLen) % uniforms.dim;
  result[index] = ${expr};`,
  });
}

function slice(backend: unknown, src: Info, offset: number, shape: number[]): Info {
  return runProgram(backend, {
    key: 'scan_slice',
    inputs: [['SRC', src]],
    outShape: shape,
    threads: shape.reduce((a, b) => a * b, 1),
    ints: { offset },
    body: '  result[index] = SRC[uniforms.offset + index];',
  });
}

function zeros(backend: unknown, shape: number[]): Info {
  return upload(backend, shape, 'float32', new Float32Array(shape.reduce((a, b) => a * b, 1)));
}

/** Passes shared by forward and backward: Δ and the carry buffer. */
function states(backend: unknown, inputs: tf.NamedTensorInfoMap, s: Dims, attrs: ScanAttrs, adjoint?: { dy: Info; dLast: Info | undefined }) {
  const dt = deltaProgram(backend, inputs, s, Boolean(attrs.deltaSoftplus));
  const ps = forwardPairs(backend, dt, inputs, s);
  const qk = adjoint ? backwardPairs(backend, dt, adjoint.dy, inputs, s) : undefined;
  const hk = carry(backend, ps, qk, inputInfo(inputs, 'initialState'), adjoint?.dLast, s);
  dispose(backend, ps, qk);
  return { dt, hk };
}

export const scanForwardWgsl: OpKernel = ({ inputs, backend, attrs }) => {
  const a = attrs as unknown as ScanAttrs;
  const s = dimsOf(inputs, a);
  const { dt, hk } = states(backend, inputs, s, a);
  let out = outputs(backend, dt, hk, inputs, s);
  const z = inputInfo(inputs, 'z');
  if (z) {
    const gated = elementwise(backend, 'scan_gate', [['Y', out], ['ZG', z]], [s.batch, s.dim, s.L], 'Y[index] * ZG[index] * gk_sigmoid(ZG[index])', s);
    dispose(backend, out);
    out = gated;
  }
  const last = slice(backend, hk, 2 * s.batch * s.dim * s.nc * s.N, [s.batch, s.dim, s.N]);
  dispose(backend, dt, hk);
  return [out, last];
};

export const scanBackwardWgsl: OpKernel = ({ inputs, backend, attrs }) => {
  const a = attrs as unknown as ScanAttrs;
  const s = dimsOf(inputs, a);
  const bdl = [s.batch, s.dim, s.L];
  const BDL = s.batch * s.dim * s.L;
  const S = s.batch * s.dim * s.nc * s.N;
  const R = s.batch * s.dim * s.N;
  const dout = inputInfo(inputs, 'dout')!;
  const z = inputInfo(inputs, 'z');
  // The gate: dy = dout·silu(z); dz = dout·y·silu'(z), with y recomputed.
  let dy = dout;
  let dz: Info;
  if (z) {
    const pre = states(backend, inputs, s, a);
    const y = outputs(backend, pre.dt, pre.hk, inputs, s);
    dispose(backend, pre.dt, pre.hk);
    dy = elementwise(backend, 'scan_dy', [['DO', dout], ['ZG', z]], bdl, 'DO[index] * ZG[index] * gk_sigmoid(ZG[index])', s);
    dz = elementwise(
      backend,
      'scan_dz',
      [['DO', dout], ['ZG', z], ['Y', y]],
      bdl,
      'DO[index] * Y[index] * gk_sigmoid(ZG[index]) * (1.0 + ZG[index] * (1.0 - gk_sigmoid(ZG[index])))',
      s,
    );
    dispose(backend, y);
  } else dz = zeros(backend, bdl);
  const { dt, hk } = states(backend, inputs, s, a, { dy, dLast: inputInfo(inputs, 'dLast') });
  const common: [string, Info][] = [
    ['DT', dt],
    ['U', inputInfo(inputs, 'u')!],
    ['AM', inputInfo(inputs, 'A')!],
    ['BM', inputInfo(inputs, 'B')!],
    ['CM', inputInfo(inputs, 'C')!],
    ['HK', hk],
    ['DY', dy],
  ];
  const replay = (h: string) => `
    var h = HK[(r * uniforms.nc + c) * uniforms.nstate + n];
    for (var t = t0; t < t1; t = t + 1) {
      hp[t - t0] = h;
      let dv = DT[row + t];
      h = exp(dv * aa) * h + dv * BM[brow + t] * U[row + t];
    }
    var k = HK[uniforms.sBig + (r * uniforms.nc + c) * uniforms.nstate + n];
    for (var t = t1 - 1; t >= t0; t = t - 1) {
      let dv = DT[row + t];
      let e = exp(dv * aa);
      let bv = BM[brow + t];
      let uv = U[row + t];
      let hpv = hp[t - t0];
      let g = k + DY[row + t] * CM[brow + t];
${h}
      k = e * g;
    }`;
  // Per (b, d, chunk): dΔ and du (summed over n here), dA partials.
  const xp = runProgram(backend, {
    key: `scan_bwd_x_${s.chunk}`,
    inputs: common,
    outShape: [2 * BDL + S],
    threads: s.batch * s.dim * s.nc,
    ints: { ...ints(s), sBig: S, bdl: BDL },
    body: `
  let c = index % uniforms.nc;
  let r = index / uniforms.nc;
  let b = r / uniforms.dim;
  let d = r % uniforms.dim;
  let t0 = c * uniforms.chunk;
  let t1 = min(t0 + uniforms.chunk, uniforms.seqLen);
  let row = r * uniforms.seqLen;
  var hp : array<f32, ${s.chunk}>;
  var accDt : array<f32, ${s.chunk}>;
  var accU : array<f32, ${s.chunk}>;
  for (var t = t0; t < t1; t = t + 1) { accDt[t - t0] = 0.0; accU[t - t0] = 0.0; }
  for (var n = 0; n < uniforms.nstate; n = n + 1) {
    let aa = AM[d * uniforms.nstate + n];
    let brow = (b * uniforms.nstate + n) * uniforms.seqLen;
    var dAacc = 0.0;
    ${replay(`
      accDt[t - t0] = accDt[t - t0] + g * (aa * e * hpv + bv * uv);
      dAacc = dAacc + g * e * hpv * dv;
      accU[t - t0] = accU[t - t0] + g * dv * bv;`)}
    result[2 * uniforms.bdl + (r * uniforms.nc + c) * uniforms.nstate + n] = dAacc;
  }
  for (var t = t0; t < t1; t = t + 1) {
    result[row + t] = accDt[t - t0];
    result[uniforms.bdl + row + t] = accU[t - t0];
  }`,
  });
  // Per (b, n, chunk): dB and dC (summed over d here).
  const BNL = s.batch * s.N * s.L;
  const yp = runProgram(backend, {
    key: `scan_bwd_y_${s.chunk}`,
    inputs: common,
    outShape: [2 * BNL],
    threads: s.batch * s.N * s.nc,
    ints: { ...ints(s), sBig: S, bnl: BNL },
    body: `
  let c = index % uniforms.nc;
  let n = (index / uniforms.nc) % uniforms.nstate;
  let b = index / (uniforms.nc * uniforms.nstate);
  let t0 = c * uniforms.chunk;
  let t1 = min(t0 + uniforms.chunk, uniforms.seqLen);
  let brow = (b * uniforms.nstate + n) * uniforms.seqLen;
  var hp : array<f32, ${s.chunk}>;
  var accB : array<f32, ${s.chunk}>;
  var accC : array<f32, ${s.chunk}>;
  for (var t = t0; t < t1; t = t + 1) { accB[t - t0] = 0.0; accC[t - t0] = 0.0; }
  for (var d = 0; d < uniforms.dim; d = d + 1) {
    let r = b * uniforms.dim + d;
    let row = r * uniforms.seqLen;
    let aa = AM[d * uniforms.nstate + n];
    ${replay(`
      accB[t - t0] = accB[t - t0] + g * dv * uv;
      accC[t - t0] = accC[t - t0] + DY[row + t] * (e * hpv + dv * bv * uv);`)}
  }
  for (var t = t0; t < t1; t = t + 1) {
    result[brow + t] = accB[t - t0];
    result[uniforms.bnl + brow + t] = accC[t - t0];
  }`,
  });
  const D = inputInfo(inputs, 'D');
  const bias = inputInfo(inputs, 'deltaBias');
  const du = elementwise(
    backend,
    `scan_du_${Boolean(D)}`,
    D ? [['XP', xp], ['DY', dy], ['DV', D]] : [['XP', xp]],
    bdl,
    `XP[uniforms.bdl + index]${D ? ' + DY[index] * DV[d]' : ''}`,
    s,
  );
  const softplus = Boolean(a.deltaSoftplus);
  const ddelta = elementwise(
    backend,
    `scan_ddelta_${Boolean(bias)}_${softplus}`,
    bias ? [['XP', xp], ['DLT', inputInfo(inputs, 'delta')!], ['BIA', bias]] : [['XP', xp], ['DLT', inputInfo(inputs, 'delta')!]],
    bdl,
    softplus
      ? `select(XP[index], XP[index] * gk_sigmoid(DLT[index]${bias ? ' + BIA[d]' : ''}), DLT[index]${bias ? ' + BIA[d]' : ''} <= 20.0)`
      : 'XP[index]',
    s,
  );
  const dA = runProgram(backend, {
    key: 'scan_dA',
    inputs: [['XP', xp]],
    outShape: [s.dim, s.N],
    threads: s.dim * s.N,
    ints: { ...ints(s), bdl: BDL },
    body: `
  let n = index % uniforms.nstate;
  let d = index / uniforms.nstate;
  var acc = 0.0;
  for (var b = 0; b < uniforms.batch; b = b + 1) {
    for (var c = 0; c < uniforms.nc; c = c + 1) {
      acc = acc + XP[2 * uniforms.bdl + ((b * uniforms.dim + d) * uniforms.nc + c) * uniforms.nstate + n];
    }
  }
  result[index] = acc;`,
  });
  const perChannel = (key: string, list: [string, Info][], term: string) =>
    runProgram(backend, {
      key,
      inputs: list,
      outShape: [s.dim],
      threads: s.dim,
      ints: ints(s),
      body: `
  var acc = 0.0;
  for (var b = 0; b < uniforms.batch; b = b + 1) {
    let row = (b * uniforms.dim + index) * uniforms.seqLen;
    for (var t = 0; t < uniforms.seqLen; t = t + 1) { acc = acc + ${term}; }
  }
  result[index] = acc;`,
    });
  const dD = perChannel('scan_dD', [['DY', dy], ['U', inputInfo(inputs, 'u')!]], 'DY[row + t] * U[row + t]');
  const dBias = perChannel('scan_dbias', [['GD', ddelta]], 'GD[row + t]');
  const dB = slice(backend, yp, 0, [s.batch, s.N, s.L]);
  const dC = slice(backend, yp, BNL, [s.batch, s.N, s.L]);
  const dh0 = slice(backend, hk, 2 * S + R, [s.batch, s.dim, s.N]);
  dispose(backend, xp, yp, dt, hk);
  if (dy !== dout) dispose(backend, dy);
  return [du, ddelta, dA, dB, dC, dD, dz, dBias, dh0];
};
