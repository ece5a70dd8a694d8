// @kiln/gpu-kernels CUDA kernels: host entry points (device pointers, stream-ordered on the
// default stream). Same algorithms and layouts as the C++ and WGSL kernels
// (packages/gpu-kernels/src/scan/chunked-scan.ts is the readable specification).
#pragma once
#include <cstdint>

namespace gk_cuda {

struct ScanShape {
  int batch, dim, N, L, chunk;
};

// Absent optional inputs are nullptr. out [b,d,L], last [b,d,N].
void selective_scan_forward(const float* u, const float* delta, const float* A, const float* B, const float* C,
                            const float* D, const float* z, const float* bias, const float* h0, bool softplus,
                            ScanShape s, float* out, float* last);

// Gradients: du, ddelta [b,d,L]; dA [d,N]; dB, dC [b,N,L]; dD, dbias [d]; dz [b,d,L]; dh0 [b,d,N].
// dLast may be nullptr.
void selective_scan_backward(const float* u, const float* delta, const float* A, const float* B, const float* C,
                             const float* D, const float* z, const float* bias, const float* h0, bool softplus,
                             ScanShape s, const float* dout, const float* dLast, float* du, float* ddelta, float* dA,
                             float* dB, float* dC, float* dD, float* dz, float* dbias, float* dh0);

// mode 0: out[M,N] = x_g · W_g; 1: out[M,K] = x_g · W_gᵀ; 2: out[G,K,N] = x_gᵀ · y_g.
// offsets: device int32 [G+1], cumulative row counts.
void grouped_matmul(const float* x, const float* w, float* out, const int* offsets, int G, int M, int K, int N, int mode);

void gather_rows(const float* x, const int* idx, float* out, int R, int H);
// out [T,H] is zeroed here, then out[idx[r]] += x[r]·w[r] (w may be nullptr).
void scatter_rows(const float* x, const int* idx, const float* w, float* out, int R, int T, int H);

// scoreFunction 0 softmax, 1 sigmoid, 2 sqrtsoftplus; groupTopk 0: no group limit; scaling 0: none.
void topk_router(const float* logits, const float* bias, float* probs, int* indices, int T, int E, int k, int scoreFunction,
                 bool preSoftmax, int numGroups, int groupTopk, float scaling);

// format 0 e4m3, 1 e5m2. Dequantized output.
void cast_fp8(const float* x, float* out, int64_t n, float scale, int format, bool stochastic, uint32_t seed);

}  // namespace gk_cuda
