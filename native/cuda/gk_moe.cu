// Grouped GEMM, MoE row gather/scatter and the top-k router on CUDA (see gk_kernels.cuh).
#include <cuda_runtime.h>

#include <cfloat>
#include <stdexcept>

#include "gk_kernels.cuh"

namespace gk_cuda {
namespace {

constexpr int kTile = 16;
constexpr int kMaxExperts = 1024;
constexpr int kMaxTopk = 64;

__device__ inline int group_of(const int* off, int G, int row) {
  int lo = 0, hi = G - 1;  // the last g with off[g] <= row
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (off[mid] <= row) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// 16×16 output tiles through shared memory. A tile of rows may straddle groups, so every
// row reads its own group's weights; the shared tile holds x only.
__global__ void k_grouped_nn(const float* x, const float* w, float* out, const int* off, int G, int M, int K, int N) {
  __shared__ float xs[kTile][kTile];
  int row = blockIdx.y * kTile + threadIdx.y, col = blockIdx.x * kTile + threadIdx.x;
  int g = row < M ? group_of(off, G, row) : 0;
  float acc = 0.f;
  for (int k0 = 0; k0 < K; k0 += kTile) {
    int kx = k0 + threadIdx.x;
    xs[threadIdx.y][threadIdx.x] = (row < M && kx < K) ? x[(int64_t)row * K + kx] : 0.f;
    __syncthreads();
    if (row < M && col < N) {
      const float* wg = w + (int64_t)g * K * N;
      for (int kk = 0; kk < kTile && k0 + kk < K; kk++) acc += xs[threadIdx.y][kk] * wg[(int64_t)(k0 + kk) * N + col];
    }
    __syncthreads();
  }
  if (row < M && col < N) out[(int64_t)row * N + col] = acc;
}

__global__ void k_grouped_nt(const float* x, const float* w, float* out, const int* off, int G, int M, int K, int N) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)M * K) return;
  int row = i / K, k = i % K, g = group_of(off, G, row);
  const float* wr = w + ((int64_t)g * K + k) * N;
  const float* xr = x + (int64_t)row * N;
  float acc = 0.f;
  for (int n = 0; n < N; n++) acc += xr[n] * wr[n];
  out[i] = acc;
}

__global__ void k_grouped_tn(const float* x, const float* y, float* out, const int* off, int G, int K, int N) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)G * K * N) return;
  int g = i / ((int64_t)K * N), k = (i / N) % K, n = i % N;
  float acc = 0.f;
  for (int r = off[g]; r < off[g + 1]; r++) acc += x[(int64_t)r * K + k] * y[(int64_t)r * N + n];
  out[i] = acc;
}

__global__ void k_gather(const float* x, const int* idx, float* out, int R, int H) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)R * H) return;
  out[i] = x[(int64_t)idx[i / H] * H + i % H];
}

__global__ void k_scatter(const float* x, const int* idx, const float* w, float* out, int R, int H) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= (int64_t)R * H) return;
  int r = i / H;
  atomicAdd(out + (int64_t)idx[r] * H + i % H, x[i] * (w ? w[r] : 1.f));
}

// Index of the largest allowed, untaken value; ties to the lower index.
__device__ inline int argmax_free(const float* v, const bool* allowed, const bool* taken, int lo, int hi) {
  int best = -1;
  for (int e = lo; e < hi; e++)
    if (allowed[e] && !taken[e] && (best < 0 || v[e] > v[best])) best = e;
  return best;
}

__global__ void k_router(const float* logits, const float* bias, float* probs, int* indices, int T, int E, int k, int fn, bool pre, int G,
                         int gk, float scaling) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= T) return;
  float row[kMaxExperts], sel[kMaxExperts];
  bool allowed[kMaxExperts], taken[kMaxExperts];
  int chosen[kMaxTopk];
  float gates[kMaxTopk];
  for (int e = 0; e < E; e++) {
    float l = logits[(int64_t)t * E + e];
    row[e] = fn == 0 ? l : fn == 1 ? 1.f / (1.f + expf(-l)) : sqrtf(l > 20.f ? l : log1pf(expf(l)));
    allowed[e] = true;
    taken[e] = false;
  }
  if (fn == 0 && pre) {
    float m = -FLT_MAX, s = 0.f;
    for (int e = 0; e < E; e++) m = fmaxf(m, row[e]);
    for (int e = 0; e < E; e++) s += (row[e] = expf(row[e] - m));
    for (int e = 0; e < E; e++) row[e] /= s;
  }
  for (int e = 0; e < E; e++) sel[e] = row[e] + (bias && fn != 0 ? bias[e] : 0.f);
  if (gk > 0) {
    int per = E / G, inK = k / gk;
    float gscore[kMaxTopk * 4];
    bool gtaken[kMaxTopk * 4], gallowed[kMaxTopk * 4];
    for (int g = 0; g < G; g++) {
      float s = 0.f;
      for (int j = 0; j < inK; j++) {
        int b = argmax_free(sel, allowed, taken, g * per, (g + 1) * per);
        taken[b] = true;
        s += sel[b];
      }
      gscore[g] = s;
      gtaken[g] = false;
      gallowed[g] = true;
    }
    for (int e = 0; e < E; e++) taken[e] = allowed[e] = false;
    for (int j = 0; j < gk; j++) {
      int b = argmax_free(gscore, gallowed, gtaken, 0, G);
      gtaken[b] = true;
      for (int e = b * per; e < (b + 1) * per; e++) allowed[e] = true;
    }
  }
  for (int j = 0; j < k; j++) {
    int b = argmax_free(sel, allowed, taken, 0, E);
    taken[b] = true;
    chosen[j] = b;
    gates[j] = row[b];
  }
  if (fn == 0 && !pre) {
    float m = gates[0], s = 0.f;
    for (int j = 1; j < k; j++) m = fmaxf(m, gates[j]);
    for (int j = 0; j < k; j++) s += (gates[j] = expf(gates[j] - m));
    for (int j = 0; j < k; j++) gates[j] /= s;
  } else if (fn != 0 && k > 1) {
    float s = 1e-20f;
    for (int j = 0; j < k; j++) s += gates[j];
    for (int j = 0; j < k; j++) gates[j] /= s;
  }
  for (int e = 0; e < E; e++) probs[(int64_t)t * E + e] = 0.f;
  for (int j = 0; j < k; j++) {
    indices[(int64_t)t * k + j] = chosen[j];
    probs[(int64_t)t * E + chosen[j]] = gates[j] * (scaling != 0.f ? scaling : 1.f);
  }
}

inline int blocks_for(int64_t n) { return static_cast<int>((n + 255) / 256); }

}  // namespace

void grouped_matmul(const float* x, const float* w, float* out, const int* offsets, int G, int M, int K, int N, int mode) {
  if (mode == 0) {
    if (M > 0 && N > 0) {
      dim3 grid((N + kTile - 1) / kTile, (M + kTile - 1) / kTile);
      k_grouped_nn<<<grid, dim3(kTile, kTile)>>>(x, w, out, offsets, G, M, K, N);
    }
  } else if (mode == 1) {
    if ((int64_t)M * K > 0) k_grouped_nt<<<blocks_for((int64_t)M * K), 256>>>(x, w, out, offsets, G, M, K, N);
  } else if ((int64_t)G * K * N > 0) {
    k_grouped_tn<<<blocks_for((int64_t)G * K * N), 256>>>(x, w, out, offsets, G, K, N);
  }
  cudaDeviceSynchronize();
}

void gather_rows(const float* x, const int* idx, float* out, int R, int H) {
  if ((int64_t)R * H > 0) k_gather<<<blocks_for((int64_t)R * H), 256>>>(x, idx, out, R, H);
  cudaDeviceSynchronize();
}

void scatter_rows(const float* x, const int* idx, const float* w, float* out, int R, int T, int H) {
  cudaMemset(out, 0, (size_t)T * H * sizeof(float));
  if ((int64_t)R * H > 0) k_scatter<<<blocks_for((int64_t)R * H), 256>>>(x, idx, w, out, R, H);
  cudaDeviceSynchronize();
}

void topk_router(const float* logits, const float* bias, float* probs, int* indices, int T, int E, int k, int fn, bool pre, int G, int gk,
                 float scaling) {
  // Per-thread arrays bound the sizes this kernel takes.
  if (E > kMaxExperts || k > kMaxTopk || G > kMaxTopk * 4) throw std::invalid_argument("topk_router: needs experts <= 1024, topk <= 64, groups <= 256");
  if (T > 0) k_router<<<blocks_for(T), 128>>>(logits, bias, probs, indices, T, E, k, fn, pre, G, gk, scaling);
  cudaDeviceSynchronize();
}

}  // namespace gk_cuda
