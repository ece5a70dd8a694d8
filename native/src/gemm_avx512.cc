// AVX-512 GEMM micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators. Each K step
// loads two vectors of the B panel and multiplies them by 12 broadcast A values (the
// broadcast folds into the FMA's memory operand), 24 independent FMA chains: enough to
// cover the FMA latency on both FMA pipes. Compiled for AVX-512 by a target attribute
// (gemm_kernels.h), whatever the build's -march.
#include "gemm_kernels.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

#define KILN_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

namespace kiln {
namespace gemm {
namespace {

constexpr int kMR = 12, kNR = 32;

// C[R x cols] (=|+=) A[R x kc] * B[kc x 32]; A element (i, p) at a[i * RS + p * CS].
template <int R, int64_t RS>
KILN_AVX512 inline void tile(int64_t kc, const float* a, int64_t a_step, const float* b, int64_t b_step, float* c,
                             int64_t ldc, int cols, bool accumulate) {
  __m512 lo[R], hi[R];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    lo[i] = _mm512_setzero_ps();
    hi[i] = _mm512_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * RS]);
      lo[i] = _mm512_fmadd_ps(av, b0, lo[i]);
      hi[i] = _mm512_fmadd_ps(av, b1, hi[i]);
    }
    a += a_step;
    b += b_step;
  }
  if (cols == kNR) {
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      float* ci = c + i * ldc;
      if (accumulate) {
        lo[i] = _mm512_add_ps(lo[i], _mm512_loadu_ps(ci));
        hi[i] = _mm512_add_ps(hi[i], _mm512_loadu_ps(ci + 16));
      }
      _mm512_storeu_ps(ci, lo[i]);
      _mm512_storeu_ps(ci + 16, hi[i]);
    }
    return;
  }
  const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols > 16 ? __mmask16((1u << (cols - 16)) - 1) : __mmask16(0);
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
      lo[i] = _mm512_add_ps(lo[i], _mm512_maskz_loadu_ps(m0, ci));
      hi[i] = _mm512_add_ps(hi[i], _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, lo[i]);
    _mm512_mask_storeu_ps(ci + 16, m1, hi[i]);
  }
}

template <int64_t RS>
KILN_AVX512 void kernel(int64_t kc, const float* a, int64_t a_step, const float* b, int64_t b_step, float* c, int64_t ldc,
                        int rows, int cols, bool accumulate) {
  switch (rows) {
    case 12: tile<12, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 11: tile<11, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 10: tile<10, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 9: tile<9, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 8: tile<8, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 7: tile<7, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 6: tile<6, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 5: tile<5, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 4: tile<4, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 3: tile<3, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 2: tile<2, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    case 1: tile<1, RS>(kc, a, a_step, b, b_step, c, ldc, cols, accumulate); break;
    default: break;
  }
}

}  // namespace

const KernelSet* avx512_kernels() {
  static const KernelSet set{"avx512 12x32", kMR, kNR, kernel<kAPanelStride>, kernel<1>, avx2_pack_b_trans()};
  return &set;
}

}  // namespace gemm
}  // namespace kiln

#else

namespace kiln {
namespace gemm {
const KernelSet* avx512_kernels() { return nullptr; }
}  // namespace gemm
}  // namespace kiln

#endif
