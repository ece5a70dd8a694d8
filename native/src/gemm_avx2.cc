// AVX2 + FMA GEMM micro-kernel: a 6 x 16 tile of C in 12 ymm accumulators (two B vectors
// times six broadcast A values per K step), and the packer for a transposed B that both
// x86 kernel sets use (8 x 8 in-register transposes). Compiled for AVX2 by a target
// attribute (gemm_kernels.h), whatever the build's -march.
#include "gemm_kernels.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define KILN_AVX2 __attribute__((target("avx2,fma")))

namespace kiln {
namespace gemm {
namespace {

constexpr int kMR = 6, kNR = 16;

template <int R, int64_t RS>
KILN_AVX2 inline void tile(int64_t kc, const float* a, int64_t a_step, const float* b, int64_t b_step, float* c,
                           int64_t ldc, int cols, bool accumulate) {
  __m256 lo[R], hi[R];
#pragma GCC unroll 6
  for (int i = 0; i < R; ++i) {
    lo[i] = _mm256_setzero_ps();
    hi[i] = _mm256_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * RS);
      lo[i] = _mm256_fmadd_ps(av, b0, lo[i]);
      hi[i] = _mm256_fmadd_ps(av, b1, hi[i]);
    }
    a += a_step;
    b += b_step;
  }
  if (cols == kNR) {
#pragma GCC unroll 6
    for (int i = 0; i < R; ++i) {
      float* ci = c + i * ldc;
      if (accumulate) {
        lo[i] = _mm256_add_ps(lo[i], _mm256_loadu_ps(ci));
        hi[i] = _mm256_add_ps(hi[i], _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, lo[i]);
      _mm256_storeu_ps(ci + 8, hi[i]);
    }
    return;
  }
  alignas(32) float t[kNR];
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
    _mm256_store_ps(t, lo[i]);
    _mm256_store_ps(t + 8, hi[i]);
    if (accumulate) {
      for (int j = 0; j < cols; ++j) ci[j] += t[j];
    } else {
      for (int j = 0; j < cols; ++j) ci[j] = t[j];
    }
  }
}

template <int64_t RS>
KILN_AVX2 void kernel(int64_t kc, const float* a, int64_t a_step, const float* b, int64_t b_step, float* c, int64_t ldc,
                        int rows, int cols, bool accumulate) {
  switch (rows) {
    case 6: tile<6, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 5: tile<5, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 4: tile<4, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 3: tile<3, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 2: tile<2, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 1: tile<1, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    default: break;
  }
}

// Rows r[0..8) of 8 floats in, columns out: r[q][j] becomes r'[j][q].
KILN_AVX2 inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {
    const int o = 4 * h;
    s[o + 0] = _mm256_shuffle_ps(t[o + 0], t[o + 2], 0x44);
    s[o + 1] = _mm256_shuffle_ps(t[o + 0], t[o + 2], 0xEE);
    s[o + 2] = _mm256_shuffle_ps(t[o + 1], t[o + 3], 0x44);
    s[o + 3] = _mm256_shuffle_ps(t[o + 1], t[o + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
  }
}

KILN_AVX2 void pack_b_trans(const float* b, int64_t ldb, int64_t p0, int64_t kc, int64_t j0, int cols, int nr,
                            float* dst) {
  const int full_j = cols / 8 * 8;
  const int64_t full_p = kc / 8 * 8;
  for (int jb = 0; jb < full_j; jb += 8) {
    const float* src = b + (j0 + jb) * ldb + p0;
    int64_t p = 0;
    for (; p < full_p; p += 8) {
      __m256 r[8];
      for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(src + q * ldb + p);
      transpose8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (p + q) * nr + jb, r[q]);
    }
    for (; p < kc; ++p)
      for (int j = 0; j < 8; ++j) dst[p * nr + jb + j] = src[j * ldb + p];
  }
  for (int64_t p = 0; p < kc; ++p) {
    float* d = dst + p * nr;
    for (int j = full_j; j < cols; ++j) d[j] = b[(j0 + j) * ldb + p0 + p];
    for (int j = cols; j < nr; ++j) d[j] = 0.f;
  }
}

}  // namespace

PackBTrans avx2_pack_b_trans() { return pack_b_trans; }

const KernelSet* avx2_kernels() {
  static const KernelSet set{"avx2 6x16", kMR, kNR, kernel<kAPanelStride>, kernel<1>, pack_b_trans};
  return &set;
}

}  // namespace gemm
}  // namespace kiln

#else

namespace kiln {
namespace gemm {
PackBTrans avx2_pack_b_trans() { return nullptr; }
const KernelSet* avx2_kernels() { return nullptr; }
}  // namespace gemm
}  // namespace kiln

#endif
