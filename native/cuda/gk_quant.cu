// FP8 casts on CUDA, bit-exact with the host code: nearest-even
// (rintf) or stochastic with the shared counter hash, saturating, NaN kept.
#include <cuda_runtime.h>

#include "gk_kernels.cuh"

namespace gk_cuda {
namespace {

struct Fmt {
  int mant, minExp;
  float max;
};
__device__ const Fmt kFmts[2] = {{3, -6, 448.f}, {2, -14, 57344.f}};  // e4m3, e5m2

__device__ inline float hash_uniform(uint32_t seed, uint32_t index) {
  uint32_t x = index ^ (seed * 0x9e3779b9u);
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return (float)(x >> 8) / 16777216.f;
}

__device__ inline float round_to(float v, Fmt f, float u) {
  if (isnan(v)) return v;
  float a = fabsf(v);
  bool neg = signbit(v);
  float m;
  if (a >= f.max) m = f.max;
  else if (a == 0.f) m = 0.f;
  else {
    int e = max((int)((__float_as_uint(a) >> 23) & 0xff) - 127, f.minExp);
    float step = ldexpf(1.f, e - f.mant);
    float q = __fdiv_rn(a, step);
    float r = u < 0.f ? rintf(q) : floorf(q + u);
    m = fminf(r * step, f.max);
  }
  return neg ? -m : m;
}

__global__ void k_cast(const float* x, float* out, int64_t n, float scale, int fmt, bool stochastic, uint32_t seed) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  float u = stochastic ? hash_uniform(seed, (uint32_t)i) : -1.f;
  out[i] = __fdiv_rn(round_to(__fmul_rn(x[i], scale), kFmts[fmt], u), scale);
}

inline int blocks_for(int64_t n) { return static_cast<int>((n + 255) / 256); }

}  // namespace

void cast_fp8(const float* x, float* out, int64_t n, float scale, int format, bool stochastic, uint32_t seed) {
  if (n > 0) k_cast<<<blocks_for(n), 256>>>(x, out, n, scale, format, stochastic, seed);
  cudaDeviceSynchronize();
}

}  // namespace gk_cuda
