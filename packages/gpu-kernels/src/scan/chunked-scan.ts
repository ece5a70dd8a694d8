/**
 * The selective scan as a chunked parallel scan over time, on plain Float32Arrays. This is
 * the algorithm the C++, WGSL and CUDA kernels implement; here it backs the `cpu` kernel
 * and is the readable specification of the others.
 *
 * Per (batch b, channel d, state n) the scan is the linear recurrence
 *   h_t = a_t · h_{t−1} + x_t,   a_t = exp(Δ_t · A_dn),   x_t = Δ_t · B_nt · u_t,
 * whose steps compose associatively: (a0, x0) ∘ (a1, x1) = (a1·a0, a1·x0 + x1). Time is cut
 * into chunks of `chunk` steps. Pass 1 reduces every chunk to one pair (P, S) from a zero
 * state; pass 2 carries the state across chunks (nChunks steps, not L); pass 3 replays each
 * chunk from its carried start state and emits y_t = Σ_n C_nt · h_t + D·u_t. Passes 1 and 3
 * are independent across chunks, so they run in parallel over (b, chunk).
 *
 * The backward pass runs the same scheme on the adjoint. With g_t = ∂L/∂h_t and
 * k_t = a_t · g_t (what step t hands back to step t−1):
 *   g_t = k_{t+1} + dy_t · C_nt,   k_t = a_t · g_t,   k_L = ∂L/∂lastState,  ∂L/∂h_{−1} = k_0,
 * again a linear recurrence (backwards in time) that chunks the same way.
 */

/** Time steps per chunk unless the caller says otherwise. */
export const DEFAULT_SCAN_CHUNK = 64;

export interface ScanDims {
  batch: number;
  dim: number;
  dstate: number;
  length: number;
}

export interface ScanInputs {
  u: Float32Array;
  delta: Float32Array;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  D?: Float32Array | undefined;
  z?: Float32Array | undefined;
  deltaBias?: Float32Array | undefined;
  initialState?: Float32Array | undefined;
}

export interface ScanOptions {
  deltaSoftplus: boolean;
  /** Steps per chunk (time-axis parallelism granularity). */
  chunk: number;
}

/** mamba's softplus: log1p(exp(x)), the identity above 20 as in its CUDA kernel. */
export function softplus(x: number): number {
  return x <= 20 ? Math.log1p(Math.exp(x)) : x;
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/** Δ after bias and optional softplus, [batch, dim, L]. */
export function effectiveDelta(inp: ScanInputs, dims: ScanDims, deltaSoftplus: boolean): Float32Array {
  const { batch, dim, length: L } = dims;
  const out = new Float32Array(batch * dim * L);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const bias = inp.deltaBias ? inp.deltaBias[d]! : 0;
      const base = (b * dim + d) * L;
      for (let t = 0; t < L; t++) {
        const r = inp.delta[base + t]! + bias;
        out[base + t] = deltaSoftplus ? softplus(r) : r;
      }
    }
  }
  return out;
}

/** Passes 1 and 2: the state at the start of every chunk and the final state. */
export function chunkStartStates(
  inp: ScanInputs,
  dims: ScanDims,
  dt: Float32Array,
  chunk: number,
): { hStart: Float32Array; last: Float32Array; nChunks: number } {
  const { batch, dim, dstate: N, length: L } = dims;
  const nChunks = Math.max(1, Math.ceil(L / chunk));
  const P = new Float32Array(batch * dim * N * nChunks);
  const S = new Float32Array(batch * dim * N * nChunks);
  // Pass 1: every chunk from a zero state (independent across chunks).
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const row = (b * dim + d) * L;
      for (let n = 0; n < N; n++) {
        const Adn = inp.A[d * N + n]!;
        const bRow = (b * N + n) * L;
        for (let c = 0; c < nChunks; c++) {
          let p = 1;
          let s = 0;
          const end = Math.min(L, (c + 1) * chunk);
          for (let t = c * chunk; t < end; t++) {
            const a = Math.exp(dt[row + t]! * Adn);
            p *= a;
            s = a * s + dt[row + t]! * inp.B[bRow + t]! * inp.u[row + t]!;
          }
          const o = ((b * dim + d) * N + n) * nChunks + c;
          P[o] = p;
          S[o] = s;
        }
      }
    }
  }
  // Pass 2: carry across chunks.
  const hStart = new Float32Array(batch * dim * N * nChunks);
  const last = new Float32Array(batch * dim * N);
  for (let i = 0; i < batch * dim * N; i++) {
    let h = inp.initialState ? inp.initialState[i]! : 0;
    for (let c = 0; c < nChunks; c++) {
      hStart[i * nChunks + c] = h;
      h = P[i * nChunks + c]! * h + S[i * nChunks + c]!;
    }
    last[i] = h;
  }
  return { hStart, last, nChunks };
}

/** Pass 3: y (before the gate) from the chunk start states. */
function replayOutputs(inp: ScanInputs, dims: ScanDims, dt: Float32Array, hStart: Float32Array, nChunks: number, chunk: number): Float32Array {
  const { batch, dim, dstate: N, length: L } = dims;
  const y = new Float32Array(batch * dim * L);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const row = (b * dim + d) * L;
      for (let n = 0; n < N; n++) {
        const Adn = inp.A[d * N + n]!;
        const bRow = (b * N + n) * L;
        for (let c = 0; c < nChunks; c++) {
          let h = hStart[((b * dim + d) * N + n) * nChunks + c]!;
          const end = Math.min(L, (c + 1) * chunk);
          for (let t = c * chunk; t < end; t++) {
            h = Math.exp(dt[row + t]! * Adn) * h + dt[row + t]! * inp.B[bRow + t]! * inp.u[row + t]!;
            y[row + t]! += inp.C[bRow + t]! * h;
          }
        }
      }
      const Dd = inp.D ? inp.D[d]! : 0;
      for (let t = 0; t < L; t++) y[row + t]! += Dd * inp.u[row + t]!;
    }
  }
  return y;
}

export function scanForward(inp: ScanInputs, dims: ScanDims, opts: ScanOptions): { out: Float32Array; last: Float32Array } {
  const dt = effectiveDelta(inp, dims, opts.deltaSoftplus);
  const { hStart, last, nChunks } = chunkStartStates(inp, dims, dt, opts.chunk);
  const y = replayOutputs(inp, dims, dt, hStart, nChunks, opts.chunk);
  if (inp.z) {
    for (let i = 0; i < y.length; i++) {
      const z = inp.z[i]!;
      y[i]! *= z * sigmoid(z);
    }
  }
  return { out: y, last };
}

export interface ScanGrads {
  du: Float32Array;
  ddelta: Float32Array;
  dA: Float32Array;
  dB: Float32Array;
  dC: Float32Array;
  dD: Float32Array;
  dz: Float32Array;
  ddeltaBias: Float32Array;
  dInitialState: Float32Array;
}

export function scanBackward(
  inp: ScanInputs,
  dims: ScanDims,
  opts: ScanOptions,
  dout: Float32Array,
  dLast: Float32Array | undefined,
): ScanGrads {
  const { batch, dim, dstate: N, length: L } = dims;
  const { chunk } = opts;
  const dt = effectiveDelta(inp, dims, opts.deltaSoftplus);
  const { hStart, nChunks } = chunkStartStates(inp, dims, dt, chunk);
  const size = batch * dim * L;
  // The gate: out = y ⊙ silu(z), so dy = dout ⊙ silu(z) and dz = dout ⊙ y ⊙ silu'(z).
  const dz = new Float32Array(inp.z ? size : 0);
  let dy = dout;
  if (inp.z) {
    const y = replayOutputs(inp, dims, dt, hStart, nChunks, chunk);
    dy = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      const z = inp.z[i]!;
      const s = sigmoid(z);
      dy[i] = dout[i]! * z * s;
      dz[i] = dout[i]! * y[i]! * s * (1 + z * (1 - s));
    }
  }
  // Backward passes 1 and 2: the adjoint k entering every chunk from its right.
  const kEnd = new Float32Array(batch * dim * N * nChunks);
  const dInitialState = new Float32Array(batch * dim * N);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const row = (b * dim + d) * L;
      for (let n = 0; n < N; n++) {
        const Adn = inp.A[d * N + n]!;
        const bRow = (b * N + n) * L;
        const i = (b * dim + d) * N + n;
        const Q = new Float64Array(nChunks);
        const K = new Float64Array(nChunks);
        for (let c = 0; c < nChunks; c++) {
          let q = 1;
          let k = 0;
          const start = c * chunk;
          for (let t = Math.min(L, start + chunk) - 1; t >= start; t--) {
            const a = Math.exp(dt[row + t]! * Adn);
            q *= a;
            k = a * (k + dy[row + t]! * inp.C[bRow + t]!);
          }
          Q[c] = Math.fround(q);
          K[c] = Math.fround(k);
        }
        let k = dLast ? dLast[i]! : 0;
        for (let c = nChunks - 1; c >= 0; c--) {
          kEnd[i * nChunks + c] = k;
          k = Math.fround(Q[c]! * k + K[c]!);
        }
        dInitialState[i] = k;
      }
    }
  }
  // Replay each chunk forward (states) and backward (adjoints), accumulating gradients.
  const du = new Float32Array(size);
  const ddt = new Float32Array(size);
  const dA = new Float32Array(dim * N);
  const dB = new Float32Array(batch * N * L);
  const dC = new Float32Array(batch * N * L);
  const dD = new Float32Array(dim);
  const hPrev = new Float32Array(chunk);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const row = (b * dim + d) * L;
      for (let n = 0; n < N; n++) {
        const Adn = inp.A[d * N + n]!;
        const bRow = (b * N + n) * L;
        const i = (b * dim + d) * N + n;
        let dAacc = 0;
        for (let c = 0; c < nChunks; c++) {
          const start = c * chunk;
          const end = Math.min(L, start + chunk);
          let h = hStart[i * nChunks + c]!;
          for (let t = start; t < end; t++) {
            hPrev[t - start] = h;
            h = Math.exp(dt[row + t]! * Adn) * h + dt[row + t]! * inp.B[bRow + t]! * inp.u[row + t]!;
          }
          let k = kEnd[i * nChunks + c]!;
          for (let t = end - 1; t >= start; t--) {
            const delta = dt[row + t]!;
            const a = Math.exp(delta * Adn);
            const bv = inp.B[bRow + t]!;
            const uv = inp.u[row + t]!;
            const hp = hPrev[t - start]!;
            const g = k + dy[row + t]! * inp.C[bRow + t]!;
            ddt[row + t]! += g * (Adn * a * hp + bv * uv);
            dAacc += g * a * hp * delta;
            du[row + t]! += g * delta * bv;
            dB[bRow + t]! += g * delta * uv;
            dC[bRow + t]! += dy[row + t]! * (a * hp + delta * bv * uv);
            k = a * g;
          }
        }
        dA[d * N + n]! += dAacc;
      }
      const Dd = inp.D ? inp.D[d]! : 0;
      let dDacc = 0;
      for (let t = 0; t < L; t++) {
        du[row + t]! += dy[row + t]! * Dd;
        dDacc += dy[row + t]! * inp.u[row + t]!;
      }
      dD[d]! += dDacc;
    }
  }
  // Through the bias and softplus: Δ = softplus(r), r = delta + bias.
  const ddelta = new Float32Array(size);
  const ddeltaBias = new Float32Array(dim);
  for (let b = 0; b < batch; b++) {
    for (let d = 0; d < dim; d++) {
      const bias = inp.deltaBias ? inp.deltaBias[d]! : 0;
      const row = (b * dim + d) * L;
      let acc = 0;
      for (let t = 0; t < L; t++) {
        const r = inp.delta[row + t]! + bias;
        const g = opts.deltaSoftplus ? (r <= 20 ? ddt[row + t]! * sigmoid(r) : ddt[row + t]!) : ddt[row + t]!;
        ddelta[row + t] = g;
        acc += g;
      }
      ddeltaBias[d]! += acc;
    }
  }
  return { du, ddelta, dA, dB, dC, dD, dz, ddeltaBias, dInitialState };
}
