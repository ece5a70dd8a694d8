// FP8 casts and NVFP4 quantization on CUDA, bit-exact with the host code: nearest-even
// (rintf) or stochastic with the shared counter hash, saturating, NaN kept.
#include <cuda_runtime.h>

#include "gk_kernels.cuh"

namespace gk_cuda {
namespace {

struct Fmt {
  int mant, minExp;
  float max;
};
__device__ const Fmt kFmts[3] = {{3, -6, 448.f}, {2, -14, 57344.f}, {1, 0, 6.f}};  // e4m3, e5m2, e2m1

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

__device__ inline int64_t block_of(int64_t i, int cols, bool tile) {
  return tile ? ((i / cols) / 16) * (cols / 16) + (i % cols) / 16 : i / 16;
}
__device__ inline int64_t element_of(int64_t b, int j, int cols, bool tile) {
  return tile ? ((b / (cols / 16)) * 16 + j / 16) * (int64_t)cols + (b % (cols / 16)) * 16 + j % 16 : b * 16 + j;
}

__global__ void k_block_amax(const float* x, float* bamax, int64_t blocks, int cols, bool tile) {
  int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  float m = 0.f;
  for (int j = 0; j < (tile ? 256 : 16); j++) m = fmaxf(m, fabsf(x[element_of(b, j, cols, tile)]));
  bamax[b] = m;
}

// One block of threads reduces the block maxima to the global scale.
__global__ void k_global(const float* bamax, int64_t blocks, float* global) {
  __shared__ float part[256];
  float m = 0.f;
  for (int64_t b = threadIdx.x; b < blocks; b += blockDim.x) m = fmaxf(m, bamax[b]);
  part[threadIdx.x] = m;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if ((int)threadIdx.x < s) part[threadIdx.x] = fmaxf(part[threadIdx.x], part[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) global[0] = part[0] > 0.f ? __fdiv_rn(part[0], 2688.f) : 1.f;
}

__global__ void k_scales(const float* bamax, const float* global, float* scales, int64_t blocks) {
  int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (b >= blocks) return;
  scales[b] = round_to(__fdiv_rn(__fdiv_rn(bamax[b], 6.f), global[0]), kFmts[0], -1.f);
}

__global__ void k_values(const float* x, const float* scales, const float* global, float* values, int64_t n, int cols, bool tile,
                         bool stochastic, uint32_t seed) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= n) return;
  float denom = __fmul_rn(scales[block_of(i, cols, tile)], global[0]);
  if (denom == 0.f) {
    values[i] = 0.f;
    return;
  }
  float u = stochastic ? hash_uniform(seed, (uint32_t)i) : -1.f;
  values[i] = __fmul_rn(round_to(__fdiv_rn(x[i], denom), kFmts[2], u), denom);
}

inline int blocks_for(int64_t n) { return static_cast<int>((n + 255) / 256); }

}  // namespace

void cast_fp8(const float* x, float* out, int64_t n, float scale, int format, bool stochastic, uint32_t seed) {
  if (n > 0) k_cast<<<blocks_for(n), 256>>>(x, out, n, scale, format, stochastic, seed);
  cudaDeviceSynchronize();
}

void quantize_nvfp4(const float* x, float* values, float* blockScales, float* globalScale, int rows, int cols, int blockShape,
                    bool stochastic, uint32_t seed) {
  bool tile = blockShape == 1;
  int64_t n = (int64_t)rows * cols, blocks = tile ? (int64_t)(rows / 16) * (cols / 16) : n / 16;
  float* bamax;
  cudaMalloc(&bamax, (blocks > 0 ? blocks : 1) * sizeof(float));
  if (blocks > 0) k_block_amax<<<blocks_for(blocks), 256>>>(x, bamax, blocks, cols, tile);
  k_global<<<1, 256>>>(bamax, blocks, globalScale);
  if (blocks > 0) k_scales<<<blocks_for(blocks), 256>>>(bamax, globalScale, blockScales, blocks);
  if (n > 0) k_values<<<blocks_for(n), 256>>>(x, blockScales, globalScale, values, n, cols, tile, stochastic, seed);
  cudaDeviceSynchronize();
  cudaFree(bamax);
}

}  // namespace gk_cuda
