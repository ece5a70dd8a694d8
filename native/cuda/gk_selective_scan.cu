// Mamba's selective scan on CUDA: the chunked parallel scan (see gk_kernels.cuh).
// Forward: Δ → per-(b,d,c,n) chunk pairs (∏a, state from 0) → carry over chunks →
// per-(b,d,c) replay for y. Backward: the same for the adjoint k_t = a_t·g_t, then a replay
// per (b,d,c) for dΔ, du, dA partials and one per (b,n,c) for dB, dC.
#include <cuda_runtime.h>

#include <algorithm>

#include "gk_kernels.cuh"

namespace gk_cuda {
namespace {

constexpr int kMaxChunk = 64;
constexpr int kThreads = 256;

inline int blocks_for(int64_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

struct Dev {
  int batch, dim, N, L, chunk, nc;
};

__device__ inline float softplus_f(float x) { return x <= 20.f ? log1pf(expf(x)) : x; }
__device__ inline float sigmoid_f(float x) { return 1.f / (1.f + expf(-x)); }

__global__ void k_delta(const float* delta, const float* bias, bool softplus, Dev s, float* dt) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)s.batch * s.dim * s.L) return;
  int d = (i / s.L) % s.dim;
  float v = delta[i] + (bias ? bias[d] : 0.f);
  dt[i] = softplus ? softplus_f(v) : v;
}

// Per (b, d, c, n): (∏ a, state from zero) over the chunk.
__global__ void k_fwd_pairs(const float* dt, const float* u, const float* A, const float* B, Dev s, float* P, float* S) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)s.batch * s.dim * s.nc * s.N) return;
  int n = i % s.N, c = (i / s.N) % s.nc;
  int64_t r = i / ((int64_t)s.N * s.nc);
  int b = r / s.dim, d = r % s.dim;
  float a = A[d * s.N + n];
  int t0 = c * s.chunk, t1 = min(t0 + s.chunk, s.L);
  const float* dtr = dt + r * s.L;
  const float* ur = u + r * s.L;
  const float* br = B + ((int64_t)b * s.N + n) * s.L;
  float p = 1.f, h = 0.f;
  for (int t = t0; t < t1; t++) {
    float e = __expf(dtr[t] * a);
    p *= e;
    h = e * h + dtr[t] * br[t] * ur[t];
  }
  P[i] = p;
  S[i] = h;
}

// Per (b, d, c, n), backwards: (∏ a, adjoint entering the chunk's left from zero).
__global__ void k_bwd_pairs(const float* dt, const float* dy, const float* A, const float* C, Dev s, float* Q, float* K) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)s.batch * s.dim * s.nc * s.N) return;
  int n = i % s.N, c = (i / s.N) % s.nc;
  int64_t r = i / ((int64_t)s.N * s.nc);
  int b = r / s.dim, d = r % s.dim;
  float a = A[d * s.N + n];
  int t0 = c * s.chunk, t1 = min(t0 + s.chunk, s.L);
  const float* dtr = dt + r * s.L;
  const float* gr = dy + r * s.L;
  const float* cr = C + ((int64_t)b * s.N + n) * s.L;
  float q = 1.f, k = 0.f;
  for (int t = t1 - 1; t >= t0; t--) {
    float e = __expf(dtr[t] * a);
    q *= e;
    k = e * (k + gr[t] * cr[t]);
  }
  Q[i] = q;
  K[i] = k;
}

// Per (b, d, n): carry state forward (and adjoint backward) across chunks.
__global__ void k_carry(const float* P, const float* S, const float* h0, const float* Q, const float* K, const float* dLast, Dev s,
                        float* hStart, float* last, float* kEnd, float* dh0) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)s.batch * s.dim * s.N) return;
  int n = i % s.N;
  int64_t r = i / s.N;
  float h = h0 ? h0[i] : 0.f;
  for (int c = 0; c < s.nc; c++) {
    int64_t o = (r * s.nc + c) * s.N + n;
    hStart[o] = h;
    h = P[o] * h + S[o];
  }
  if (last) last[i] = h;
  if (Q) {
    float k = dLast ? dLast[i] : 0.f;
    for (int c = s.nc - 1; c >= 0; c--) {
      int64_t o = (r * s.nc + c) * s.N + n;
      kEnd[o] = k;
      k = Q[o] * k + K[o];
    }
    dh0[i] = k;
  }
}

// Per (b, d, c): y = Σ_n C·h + D·u, optionally gated.
__global__ void k_outputs(const float* dt, const float* u, const float* A, const float* B, const float* C, const float* D, const float* z,
                          const float* hStart, Dev s, float* y) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)s.batch * s.dim * s.nc) return;
  int c = i % s.nc;
  int64_t r = i / s.nc;
  int b = r / s.dim, d = r % s.dim;
  int t0 = c * s.chunk, t1 = min(t0 + s.chunk, s.L);
  float acc[kMaxChunk];
  for (int t = 0; t < t1 - t0; t++) acc[t] = 0.f;
  const float* dtr = dt + r * s.L;
  const float* ur = u + r * s.L;
  for (int n = 0; n < s.N; n++) {
    float a = A[d * s.N + n];
    const float* br = B + ((int64_t)b * s.N + n) * s.L;
    const float* cr = C + ((int64_t)b * s.N + n) * s.L;
    float h = hStart[(r * s.nc + c) * s.N + n];
    for (int t = t0; t < t1; t++) {
      h = __expf(dtr[t] * a) * h + dtr[t] * br[t] * ur[t];
      acc[t - t0] += cr[t] * h;
    }
  }
  for (int t = t0; t < t1; t++) {
    float v = acc[t - t0] + (D ? D[d] * ur[t] : 0.f);
    if (z) {
      float zv = z[r * s.L + t];
      v *= zv * sigmoid_f(zv);
    }
    y[r * s.L + t] = v;
  }
}

// Per (b, d, c): dΔ, du (scan part), dA partials [b, d, c, N].
__global__ void k_bwd_x(const float* dt, const float* u, const float* A, const float* B, const float* C, const float* hStart, const float* kEnd,
                        const float* dy, Dev s, float* ddt, float* du, float* dApart) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)s.batch * s.dim * s.nc) return;
  int c = i % s.nc;
  int64_t r = i / s.nc;
  int b = r / s.dim, d = r % s.dim;
  int t0 = c * s.chunk, t1 = min(t0 + s.chunk, s.L);
  float hp[kMaxChunk], aDt[kMaxChunk], aU[kMaxChunk];
  for (int t = 0; t < t1 - t0; t++) aDt[t] = aU[t] = 0.f;
  const float* dtr = dt + r * s.L;
  const float* ur = u + r * s.L;
  const float* gr = dy + r * s.L;
  for (int n = 0; n < s.N; n++) {
    float a = A[d * s.N + n];
    const float* br = B + ((int64_t)b * s.N + n) * s.L;
    const float* cr = C + ((int64_t)b * s.N + n) * s.L;
    int64_t o = (r * s.nc + c) * s.N + n;
    float h = hStart[o];
    for (int t = t0; t < t1; t++) {
      hp[t - t0] = h;
      h = __expf(dtr[t] * a) * h + dtr[t] * br[t] * ur[t];
    }
    float k = kEnd[o], dAacc = 0.f;
    for (int t = t1 - 1; t >= t0; t--) {
      float e = __expf(dtr[t] * a);
      float g = k + gr[t] * cr[t];
      aDt[t - t0] += g * (a * e * hp[t - t0] + br[t] * ur[t]);
      dAacc += g * e * hp[t - t0] * dtr[t];
      aU[t - t0] += g * dtr[t] * br[t];
      k = e * g;
    }
    dApart[o] = dAacc;
  }
  for (int t = t0; t < t1; t++) {
    ddt[r * s.L + t] = aDt[t - t0];
    du[r * s.L + t] = aU[t - t0];
  }
}

// Per (b, n, c): dB, dC summed over channels.
__global__ void k_bwd_y(const float* dt, const float* u, const float* A, const float* B, const float* C, const float* hStart, const float* kEnd,
                        const float* dy, Dev s, float* dB, float* dC) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)s.batch * s.N * s.nc) return;
  int c = i % s.nc, n = (i / s.nc) % s.N, b = i / ((int64_t)s.nc * s.N);
  int t0 = c * s.chunk, t1 = min(t0 + s.chunk, s.L);
  float hp[kMaxChunk], aB[kMaxChunk], aC[kMaxChunk];
  for (int t = 0; t < t1 - t0; t++) aB[t] = aC[t] = 0.f;
  const float* br = B + ((int64_t)b * s.N + n) * s.L;
  const float* cr = C + ((int64_t)b * s.N + n) * s.L;
  for (int d = 0; d < s.dim; d++) {
    int64_t r = (int64_t)b * s.dim + d;
    float a = A[d * s.N + n];
    const float* dtr = dt + r * s.L;
    const float* ur = u + r * s.L;
    const float* gr = dy + r * s.L;
    int64_t o = (r * s.nc + c) * s.N + n;
    float h = hStart[o];
    for (int t = t0; t < t1; t++) {
      hp[t - t0] = h;
      h = __expf(dtr[t] * a) * h + dtr[t] * br[t] * ur[t];
    }
    float k = kEnd[o];
    for (int t = t1 - 1; t >= t0; t--) {
      float e = __expf(dtr[t] * a);
      float g = k + gr[t] * cr[t];
      aB[t - t0] += g * dtr[t] * ur[t];
      aC[t - t0] += gr[t] * (e * hp[t - t0] + dtr[t] * br[t] * ur[t]);
      k = e * g;
    }
  }
  for (int t = t0; t < t1; t++) {
    dB[((int64_t)b * s.N + n) * s.L + t] = aB[t - t0];
    dC[((int64_t)b * s.N + n) * s.L + t] = aC[t - t0];
  }
}

// The gate's backward: dy = dout·silu(z), dz = dout·y·silu'(z).
__global__ void k_gate_bwd(const float* dout, const float* z, const float* y, int64_t n, float* dy, float* dz) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  float zv = z[i], sg = sigmoid_f(zv);
  dy[i] = dout[i] * zv * sg;
  dz[i] = dout[i] * y[i] * sg * (1.f + zv * (1.f - sg));
}

// Per channel d: dA, dD, dbias reductions; du += dy·D; ddelta through softplus.
__global__ void k_finish(const float* delta, const float* bias, const float* u, const float* D, const float* dy, const float* ddt,
                         const float* dApart, bool softplus, Dev s, float* du, float* ddelta, float* dA, float* dD, float* dbias) {
  int d = blockIdx.x * blockDim.x + threadIdx.x;
  if (d >= s.dim) return;
  for (int n = 0; n < s.N; n++) {
    double acc = 0;
    for (int b = 0; b < s.batch; b++)
      for (int c = 0; c < s.nc; c++) acc += dApart[(((int64_t)b * s.dim + d) * s.nc + c) * s.N + n];
    dA[d * s.N + n] = (float)acc;
  }
  double accD = 0, accB = 0;
  float Dd = D ? D[d] : 0.f, bd = bias ? bias[d] : 0.f;
  for (int b = 0; b < s.batch; b++) {
    int64_t row = ((int64_t)b * s.dim + d) * s.L;
    for (int t = 0; t < s.L; t++) {
      accD += (double)dy[row + t] * u[row + t];
      du[row + t] += dy[row + t] * Dd;
      float g = ddt[row + t];
      float rv = delta[row + t] + bd;
      if (softplus && rv <= 20.f) g *= sigmoid_f(rv);
      ddelta[row + t] = g;
      accB += g;
    }
  }
  dD[d] = (float)accD;
  dbias[d] = (float)accB;
}

struct Buffers {
  float *dt = nullptr, *P = nullptr, *S = nullptr, *hStart = nullptr;
  ~Buffers() {
    cudaFree(dt);
    cudaFree(P);
    cudaFree(S);
    cudaFree(hStart);
  }
};

Dev make_dev(ScanShape s) {
  int chunk = std::min(s.chunk, kMaxChunk);
  return Dev{s.batch, s.dim, s.N, s.L, chunk, (s.L + chunk - 1) / chunk};
}

void states(const float* u, const float* delta, const float* A, const float* B, const float* bias, const float* h0, bool softplus, Dev s,
            Buffers& w, float* last) {
  int64_t bdl = (int64_t)s.batch * s.dim * s.L, S = (int64_t)s.batch * s.dim * s.nc * s.N;
  cudaMalloc(&w.dt, bdl * sizeof(float));
  cudaMalloc(&w.P, S * sizeof(float));
  cudaMalloc(&w.S, S * sizeof(float));
  cudaMalloc(&w.hStart, S * sizeof(float));
  k_delta<<<blocks_for(bdl), kThreads>>>(delta, bias, softplus, s, w.dt);
  k_fwd_pairs<<<blocks_for(S), kThreads>>>(w.dt, u, A, B, s, w.P, w.S);
  k_carry<<<blocks_for((int64_t)s.batch * s.dim * s.N), kThreads>>>(w.P, w.S, h0, nullptr, nullptr, nullptr, s, w.hStart, last, nullptr, nullptr);
}

}  // namespace

void selective_scan_forward(const float* u, const float* delta, const float* A, const float* B, const float* C, const float* D, const float* z,
                            const float* bias, const float* h0, bool softplus, ScanShape shape, float* out, float* last) {
  Dev s = make_dev(shape);
  Buffers w;
  states(u, delta, A, B, bias, h0, softplus, s, w, last);
  k_outputs<<<blocks_for((int64_t)s.batch * s.dim * s.nc), kThreads>>>(w.dt, u, A, B, C, D, z, w.hStart, s, out);
  cudaDeviceSynchronize();
}

void selective_scan_backward(const float* u, const float* delta, const float* A, const float* B, const float* C, const float* D, const float* z,
                             const float* bias, const float* h0, bool softplus, ScanShape shape, const float* dout, const float* dLast, float* du,
                             float* ddelta, float* dA, float* dB, float* dC, float* dD, float* dz, float* dbias, float* dh0) {
  Dev s = make_dev(shape);
  int64_t bdl = (int64_t)s.batch * s.dim * s.L, S = (int64_t)s.batch * s.dim * s.nc * s.N;
  Buffers w;
  states(u, delta, A, B, bias, h0, softplus, s, w, nullptr);
  const float* dy = dout;
  float *dyBuf = nullptr, *y = nullptr;
  if (z) {
    cudaMalloc(&dyBuf, bdl * sizeof(float));
    cudaMalloc(&y, bdl * sizeof(float));
    k_outputs<<<blocks_for((int64_t)s.batch * s.dim * s.nc), kThreads>>>(w.dt, u, A, B, C, D, nullptr, w.hStart, s, y);
    k_gate_bwd<<<blocks_for(bdl), kThreads>>>(dout, z, y, bdl, dyBuf, dz);
    dy = dyBuf;
  } else {
    cudaMemset(dz, 0, bdl * sizeof(float));
  }
  float *Q, *K, *kEnd, *ddt, *dApart;
  cudaMalloc(&Q, S * sizeof(float));
  cudaMalloc(&K, S * sizeof(float));
  cudaMalloc(&kEnd, S * sizeof(float));
  cudaMalloc(&ddt, bdl * sizeof(float));
  cudaMalloc(&dApart, S * sizeof(float));
  k_bwd_pairs<<<blocks_for(S), kThreads>>>(w.dt, dy, A, C, s, Q, K);
  k_carry<<<blocks_for((int64_t)s.batch * s.dim * s.N), kThreads>>>(w.P, w.S, h0, Q, K, dLast, s, w.hStart, nullptr, kEnd, dh0);
  k_bwd_x<<<blocks_for((int64_t)s.batch * s.dim * s.nc), kThreads>>>(w.dt, u, A, B, C, w.hStart, kEnd, dy, s, ddt, du, dApart);
  k_bwd_y<<<blocks_for((int64_t)s.batch * s.N * s.nc), kThreads>>>(w.dt, u, A, B, C, w.hStart, kEnd, dy, s, dB, dC);
  k_finish<<<blocks_for(s.dim), kThreads>>>(delta, bias, u, D, dy, ddt, dApart, softplus, s, du, ddelta, dA, dD, dbias);
  cudaDeviceSynchronize();
  cudaFree(Q);
  cudaFree(K);
  cudaFree(kEnd);
  cudaFree(ddt);
  cudaFree(dApart);
  cudaFree(dyBuf);
  cudaFree(y);
}

}  // namespace gk_cuda
